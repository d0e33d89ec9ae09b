// Thread ids of a process in a PID namespace of its own (a container's, a pod's).
//
// The Go runtime stores in m.procid the tid gettid() returned, that is the tid in the
// process's own PID namespace; the kernel's events and the observer's /proc name the same
// thread by the tid of the observer's namespace. Each /proc/PID/task/TID/status has both,
// on its NSpid line (outermost first). See docs/go-runtime.md, "PID namespaces".
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace schedscope::go {

struct NsTids {
  bool nested = false;  // the process's innermost PID namespace is not the observer's
  int ns_pid = 0;       // its pid in that namespace (the observer's pid when not nested)
  std::unordered_map<int32_t, int32_t> to_host;  // tid in its namespace -> observer's tid
};

// Reads /proc/PID/status and, when nested, every /proc/PID/task/TID/status. A process that
// is gone, or a kernel without NSpid lines, gives {nested = false, ns_pid = pid}.
NsTids read_ns_tids(int pid);

// The tids the process itself sees (sorted): the observer's when not nested.
std::vector<int> namespace_tids(int pid);

// The pid the process itself sees (getpid() in it).
int namespace_pid(int pid);

}  // namespace schedscope::go
