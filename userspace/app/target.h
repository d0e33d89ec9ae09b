// The observed process: attach to an existing PID, or launch a command held at a gate
// until the BPF programs are attached (so it is observed from its first instruction).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "util/expected.h"

namespace schedscope::app {

// Exit codes of the CLI.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,        // runtime failure
  kExitUsage = 2,        // bad flags / arguments
  kExitNoProcess = 3,    // the PID does not exist, or is a kernel thread
  kExitNoPrivilege = 4,  // cannot load/attach BPF (privileges, BTF)
  kExitExec = 127,       // the command could not be executed
  kExitPipe = 141,       // the reader of the output went away (128 + SIGPIPE, what a shell
                         // reports for a writer killed by SIGPIPE); cleaned up first
};

struct ProcInfo {
  int pid = 0;
  std::string comm;
  std::string exe;  // readlink /proc/PID/exe ("" if unreadable)
  int threads = 0;
};

// Checks the pid names a live user-space process. Error messages are one clear line.
// Whether thread `tid` of `pid` has begun to exit (PF_EXITING: its sched_process_exit may
// already have run), is a zombie or dead, or is gone.
bool thread_exiting(int pid, uint32_t tid);
Expected<ProcInfo> probe_pid(int pid, int* exit_code);

// The credentials a launched command runs with (-u/--user).
struct RunAs {
  std::string name;  // as given, for messages
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (initgroups)
};
// A user name, or a numeric uid (one without a passwd entry gets the group of the same
// number and no supplementary groups). One-line error for an unknown user.
Expected<RunAs> resolve_user(const std::string& spec);

class Launched {
 public:
  // fork()s the command, which waits at a gate until release(). The child gets default
  // signal dispositions and an empty signal mask, keeps only descriptors 0-2, and with
  // `user` drops to that user (setgroups, setgid, setuid) before exec. Errors (not
  // executable, cannot switch user) are reported by release().
  static Expected<Launched> start(const std::vector<std::string>& argv,
                                  const RunAs* user = nullptr);
  Launched(Launched&& o) noexcept;
  Launched& operator=(Launched&&) = delete;
  Launched(const Launched&) = delete;
  ~Launched();
  [[nodiscard]] int pid() const { return pid_; }
  // Lets the child exec; returns an error if exec failed (the child is reaped then).
  Status release();
  // Non-blocking: true once the child has exited (status saved).
  bool exited();
  // SIGTERM, then SIGKILL after grace_ms; reaps.
  void terminate(int grace_ms);
  [[nodiscard]] int exit_status() const { return status_; }

 private:
  Launched() = default;
  int pid_ = -1;
  int gate_w_ = -1;  // parent writes one byte to let the child exec
  int err_r_ = -1;   // child writes {stage, errno} here if it cannot exec (CLOEXEC: EOF on success)
  bool reaped_ = false;
  int status_ = 0;
  std::string cmd_;
  std::string user_;  // -u/--user as given ("" without)
};

// True while the process exists (and is not a zombie).
bool process_alive(int pid);

}  // namespace schedscope::app
