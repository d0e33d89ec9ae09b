#include "app/target.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace schedscope::app {
namespace {

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// Field 3 (state) and 9 (flags) of a /proc stat file, parsed after the last ')'.
bool stat_fields(const std::string& path, char* state, unsigned long* flags) {
  std::string s = read_first_line(path);
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return false;
  std::istringstream is(s.substr(rp + 2));
  std::string f[7];
  is >> *state;
  for (int i = 0; i < 5; i++) is >> f[i];  // ppid pgrp session tty_nr tpgid
  is >> *flags;
  return !is.fail();
}

bool stat_fields(int pid, char* state, unsigned long* flags) {
  return stat_fields("/proc/" + std::to_string(pid) + "/stat", state, flags);
}

constexpr unsigned long kPfKthread = 0x00200000;
constexpr unsigned long kPfExiting = 0x00000004;  // set by do_exit() before sched_process_exit

}  // namespace

bool thread_exiting(int pid, uint32_t tid) {
  char state = 0;
  unsigned long flags = 0;
  if (!stat_fields("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat",
                   &state, &flags))
    return true;
  return state == 'Z' || state == 'X' || (flags & kPfExiting) != 0;
}

bool process_alive(int pid) {
  char state = 0;
  unsigned long flags = 0;
  if (!stat_fields(pid, &state, &flags)) return false;
  return state != 'Z' && state != 'X';
}

Expected<ProcInfo> probe_pid(int pid, int* exit_code) {
  *exit_code = kExitNoProcess;
  if (pid <= 0) return make_error("invalid PID " + std::to_string(pid));
  char state = 0;
  unsigned long flags = 0;
  if (!stat_fields(pid, &state, &flags))
    return make_error("no process with PID " + std::to_string(pid));
  if (flags & kPfKthread)
    return make_error("PID " + std::to_string(pid) +
                      " is a kernel thread: schedscope observes user-space processes");
  if (state == 'Z' || state == 'X')
    return make_error("PID " + std::to_string(pid) + " has exited (zombie)");
  ProcInfo pi;
  pi.pid = pid;
  pi.comm = read_first_line("/proc/" + std::to_string(pid) + "/comm");
  char buf[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
  if (n > 0) pi.exe.assign(buf, size_t(n));
  std::ifstream st("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(st, line);)
    if (line.rfind("Threads:", 0) == 0) pi.threads = std::stoi(line.substr(8));
  *exit_code = kExitOk;
  return pi;
}

Expected<RunAs> resolve_user(const std::string& spec) {
  if (spec.empty()) return make_error("-u/--user needs a user name or uid");
  RunAs ra;
  ra.name = spec;
  bool numeric = spec.find_first_not_of("0123456789") == std::string::npos;
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  int rc = 0;
  if (numeric) {
    errno = 0;
    unsigned long long v = std::strtoull(spec.c_str(), nullptr, 10);
    if (errno != 0 || spec.size() > 10 || v >= 0xffffffffULL)
      return make_error("-u/--user: not a valid uid: " + spec);
    rc = getpwuid_r(uid_t(v), &pw, buf.data(), buf.size(), &found);
    if (!found) {
      ra.uid = uid_t(v);
      ra.gid = gid_t(v);
      return ra;
    }
  } else {
    rc = getpwnam_r(spec.c_str(), &pw, buf.data(), buf.size(), &found);
    if (!found)
      return make_error("-u/--user: no such user: " + spec +
                        (rc != 0 ? std::string(" (") + strerror(rc) + ")" : ""));
  }
  ra.uid = pw.pw_uid;
  ra.gid = pw.pw_gid;
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  while (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) {
    if (n <= int(groups.size())) n = int(groups.size()) * 2;  // defensive: grow anyway
    if (n > 65536) return make_error("-u/--user: cannot list the groups of " + spec);
    groups.resize(size_t(n));
  }
  groups.resize(size_t(n));
  ra.groups = std::move(groups);
  return ra;
}

namespace {

// What the child reports on the error pipe when it cannot get to exec.
enum ChildStage : int { kStageExec = 0, kStageSetgroups, kStageSetgid, kStageSetuid };

// Closes every descriptor from `from` on except `keep_a` and `keep_b` (async-signal-safe).
void close_from(int from, int keep_a, int keep_b) {
  auto range = [](unsigned first, unsigned last) {
    if (first > last) return;
    if (syscall(SYS_close_range, first, last, 0) == 0) return;
    // Kernels before 5.9: one by one, up to the descriptor limit.
    struct rlimit rl {};
    unsigned cap = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                       ? unsigned(rl.rlim_cur)
                       : 65536u;
    for (unsigned fd = first; fd <= last && fd < cap; fd++) close(int(fd));
  };
  int keep[2] = {std::min(keep_a, keep_b), std::max(keep_a, keep_b)};
  unsigned next = unsigned(from);
  for (int k : keep) {
    if (k < from || unsigned(k) < next) continue;
    if (unsigned(k) > next) range(next, unsigned(k) - 1);
    next = unsigned(k) + 1;
  }
  range(next, ~0u);
}

[[noreturn]] void child_fail(int err_w, int stage, int e) {
  int msg[2] = {stage, e};
  (void)!write(err_w, msg, sizeof msg);
  _exit(kExitExec);
}

}  // namespace

Expected<Launched> Launched::start(const std::vector<std::string>& argv, const RunAs* user) {
  if (argv.empty()) return make_error("no command given after --");
  int gate[2], err[2];
  if (pipe2(gate, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    return make_error(std::string("pipe: ") + strerror(errno));
  // Everything the child needs, prepared before fork (no allocation after it).
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return make_error(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    // The command gets what a shell would give it, not the observer's state: default
    // signal dispositions (SIGPIPE is ignored here), an empty mask, no inherited
    // descriptors beyond 0-2 (the -o file, BPF objects, the terminal's raw mode fd).
    // The raw system call: glibc's sigaction() refuses the two real-time signals it
    // reserves (32, 33), and an ignored disposition of those survives exec too.
    struct {
      void (*handler)(int);
      unsigned long flags;
      void (*restorer)();
      uint64_t mask;
    } dfl{SIG_DFL, 0, nullptr, 0};
    for (int sig = 1; sig < NSIG; sig++)
      (void)syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(dfl.mask));
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, nullptr);
    close(gate[1]);
    close(err[0]);
    close_from(3, gate[0], err[1]);
    char b;
    ssize_t r;
    do {
      r = read(gate[0], &b, 1);
    } while (r < 0 && errno == EINTR);
    if (r != 1) _exit(126);  // the observer went away before releasing us
    close(gate[0]);
    if (user) {
      if (setgroups(user->groups.size(), user->groups.data()) != 0)
        child_fail(err[1], kStageSetgroups, errno);
      if (setgid(user->gid) != 0) child_fail(err[1], kStageSetgid, errno);
      if (setuid(user->uid) != 0) child_fail(err[1], kStageSetuid, errno);
    }
    execvp(args[0], args.data());
    child_fail(err[1], kStageExec, errno);
  }
  close(gate[0]);
  close(err[1]);
  Launched l;
  l.pid_ = pid;
  l.gate_w_ = gate[1];
  l.err_r_ = err[0];
  l.cmd_ = argv[0];
  if (user) l.user_ = user->name;
  return l;
}

Launched::Launched(Launched&& o) noexcept
    : pid_(o.pid_),
      gate_w_(o.gate_w_),
      err_r_(o.err_r_),
      reaped_(o.reaped_),
      status_(o.status_),
      cmd_(std::move(o.cmd_)),
      user_(std::move(o.user_)) {
  o.pid_ = -1;
  o.gate_w_ = o.err_r_ = -1;
  o.reaped_ = true;
}

Launched::~Launched() {
  if (gate_w_ >= 0) close(gate_w_);  // an unreleased child exits at the closed gate
  if (err_r_ >= 0) close(err_r_);
  if (pid_ > 0 && !reaped_) terminate(1000);
}

Status Launched::release() {
  char b = 1;
  if (write(gate_w_, &b, 1) != 1) return make_error(std::string("gate: ") + strerror(errno));
  close(gate_w_);
  gate_w_ = -1;
  int msg[2] = {0, 0};
  ssize_t n;
  do {
    n = read(err_r_, msg, sizeof msg);
  } while (n < 0 && errno == EINTR);
  close(err_r_);
  err_r_ = -1;
  if (n == sizeof msg) {
    waitpid(pid_, &status_, 0);
    reaped_ = true;
    static const char* const kCall[] = {"execvp", "setgroups", "setgid", "setuid"};
    if (msg[0] == kStageExec)
      return make_error("cannot execute '" + cmd_ + "': " + strerror(msg[1]));
    if (msg[0] > 0 && msg[0] < 4)
      return make_error("cannot run '" + cmd_ + "' as user " + user_ + " (" + kCall[msg[0]] +
                        "): " + strerror(msg[1]));
    return make_error("cannot execute '" + cmd_ + "'");
  }
  return {};
}

bool Launched::exited() {
  if (reaped_) return true;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
    return true;
  }
  return false;
}

void Launched::terminate(int grace_ms) {
  if (reaped_ || pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int waited = 0; waited < grace_ms; waited += 10) {
    if (exited()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status_, 0);
  reaped_ = true;
}

}  // namespace schedscope::app
