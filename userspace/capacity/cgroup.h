// The CPU quota and throttling counters of a process's cgroup (cgroup v2 cpu.max/cpu.stat,
// cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us/cpu.stat). The parsers are pure functions
// of the files' text; CgroupReader finds the files from /proc/PID/cgroup and a mountinfo.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace schedscope::capacity {

// The target's place in the hierarchies that can hold a CPU quota (/proc/PID/cgroup).
struct ProcCgroup {
  std::optional<std::string> v1_cpu;  // path in the v1 hierarchy with the "cpu" controller
  std::optional<std::string> v2;      // path in the unified hierarchy ("0::/...")
};
ProcCgroup parse_proc_cgroup(std::string_view text);

// Mount points from a mountinfo: the v1 hierarchy with the cpu controller and cgroup2.
struct CgroupMount {
  std::string point;  // where it is mounted
  std::string root;   // the hierarchy path mounted there ("/" unless a container's view)
};
struct CgroupMounts {
  std::optional<CgroupMount> v1_cpu;
  std::optional<CgroupMount> v2;
};
CgroupMounts parse_mountinfo(std::string_view text);

struct Quota {
  bool limited = false;  // false: "max" / -1 (no quota)
  uint64_t quota_us = 0, period_us = 0;
  [[nodiscard]] double cores() const { return period_us ? double(quota_us) / period_us : 0; }
};
// v2 cpu.max: "max 100000" or "50000 100000". nullopt when malformed.
std::optional<Quota> parse_cpu_max(std::string_view text);
// v1 cpu.cfs_quota_us ("-1" or microseconds) and cpu.cfs_period_us.
std::optional<Quota> parse_cfs_quota(std::string_view quota, std::string_view period);

// cpu.stat: nr_periods, nr_throttled and throttled time (v2 throttled_usec, v1
// throttled_time in ns), as ns. nullopt when nr_periods or nr_throttled is missing.
struct CpuStat {
  uint64_t nr_periods = 0, nr_throttled = 0, throttled_ns = 0;
};
std::optional<CpuStat> parse_cpu_stat(std::string_view text);

struct CgroupReading {
  bool found = false;  // a cgroup with CPU control was found and read
  bool v2 = false;
  std::string path;    // the cgroup whose quota applies (or the target's own, no quota)
  Quota quota;         // the tightest quota of the cgroup and its ancestors
  CpuStat stat;        // cpu.stat of `path`
  std::string note;    // why not found
};

class CgroupReader {
 public:
  // `proc_cgroup`: /proc/PID/cgroup; `mountinfo`: the observer's (/proc/self/mountinfo).
  CgroupReader(std::string proc_cgroup, std::string mountinfo)
      : proc_cgroup_(std::move(proc_cgroup)), mountinfo_(std::move(mountinfo)) {}
  static CgroupReader for_pid(int pid) {
    return CgroupReader("/proc/" + std::to_string(pid) + "/cgroup", "/proc/self/mountinfo");
  }
  // Reads the files again (the target may have been moved to another cgroup).
  CgroupReading read() const;

 private:
  std::string proc_cgroup_, mountinfo_;
};

}  // namespace schedscope::capacity
