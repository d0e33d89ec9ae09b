// The agent's discovery: every process of the machine, the ones the filters keep, and
// which of them are Go programs (recognised by their binary, as `inspect` does; the
// answer is kept per executable file, so a rescan reads only binaries it has not seen).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace schedscope::agent {

// --exe, --comm, --cgroup and --exclude: shell globs (fnmatch, `*` matches `/` too).
// Empty lists keep everything; a process matching any --exclude glob (on its exe path
// or its comm) is left out.
struct Filter {
  std::vector<std::string> exe;
  std::vector<std::string> comm;
  std::vector<std::string> cgroup;
  std::vector<std::string> exclude;
};

struct ProcEntry {
  int pid = 0;
  std::string exe;     // readlink /proc/PID/exe
  std::string comm;
  std::string cgroup;  // the unified-hierarchy path ("0::" line), else the first line's path
};

bool glob_match(const std::string& pattern, const std::string& text);
bool keep(const Filter& f, const ProcEntry& p);

// The container and Kubernetes pod of a cgroup path: docker/containerd/cri-o/podman
// scopes ("docker-<id>.scope", "cri-containerd-<id>.scope", "crio-<id>.scope",
// "libpod-<id>.scope", cgroupfs ".../docker/<id>") give the container id (its first 12
// hex digits), kubepods slices the pod UID. Empty when the path names neither.
struct ContainerLabels {
  std::string container;
  std::string pod;
};
ContainerLabels container_of(std::string_view cgroup_path);
// The cgroup path in the text of /proc/PID/cgroup.
std::string cgroup_path(std::string_view proc_cgroup);

// User-space processes under `proc`, pid and exe only (kernel threads and zombies left
// out, `self_pid` too): one readlink each, so a rescan costs little.
std::vector<ProcEntry> list_processes(int self_pid, const std::string& proc = "/proc");
// One process, as list_processes() lists it; false when it is gone, a kernel thread or a
// zombie.
bool process_entry(int pid, ProcEntry& out, const std::string& proc = "/proc");
// Fills comm and cgroup (a process seen for the first time).
void read_details(ProcEntry& p, const std::string& proc = "/proc");

// Is this process's executable a Go program? Kept per file (device, inode, size, mtime).
struct GoVerdict {
  bool is_go = false;
  std::string go_version;
  std::string note;  // why not ("not a Go program", "binary not readable: ...")
};
class GoRecognizer {
 public:
  GoVerdict check(int pid);
  [[nodiscard]] size_t cached() const { return cache_.size(); }

 private:
  std::map<std::tuple<dev_t, ino_t, off_t, int64_t>, GoVerdict> cache_;
};

}  // namespace schedscope::agent
