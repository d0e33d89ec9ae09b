// The agent's Prometheus series: what one target's frames add up to (TargetSeries,
// updated once per interval from the frame and the alerts its detectors raised), the
// agent's own numbers, and the text exposition format of both (docs/agent.md lists every
// metric, its labels and its cardinality).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "detect/alert.h"
#include "model/model.h"

namespace schedscope::agent {

// The alert kinds the detectors raise: every target has one schedscope_alert_active
// series for each (0 or 1), so a rule can match on the kind without waiting for a first
// alert.
const std::vector<std::string>& alert_kinds();

// Upper bounds (seconds) of the goroutine scheduling-latency histogram's buckets.
inline constexpr std::array<double, 16> kLatencyBounds = {
    1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 1};

// Upper bounds (seconds) of the per-syscall latency histogram (--all-syscalls-for): every
// other power of two from 2^10 ns to 2^30 ns, so that each of the kernel's log2 buckets
// ([2^i, 2^(i+1)) ns) falls whole into one: the counts are exact, not interpolated.
inline constexpr std::array<double, 11> kSyscallBounds = {
    1024e-9, 4096e-9, 16384e-9, 65536e-9, 262144e-9, 1048576e-9,
    4194304e-9, 16777216e-9, 67108864e-9, 268435456e-9, 1073741824e-9};

struct SyscallHist {
  std::array<uint64_t, kSyscallBounds.size() + 1> buckets{};  // not cumulative; last: +Inf
  uint64_t count = 0;
  double sum = 0;  // seconds in the calls
};

struct TargetSeries {
  int pid = 0;
  std::string exe, comm, go_version, container, pod;

  std::map<std::string, bool> alert_active;      // kind -> active now
  std::map<std::string, std::string> alert_syscall;  // kind -> syscall of the active alert
  std::map<std::string, uint64_t> alerts_total;  // kind -> alerts raised since attach
  std::map<std::string, int> ps;                 // P status -> count (Go offsets validated)
  std::map<std::string, int> threads;            // thread state -> count
  uint64_t threads_created_total = 0;
  // Blocking episodes (off-CPU in a syscall) by syscall: at most top_n names, the rest
  // in "other". A name once exported stays, so every series is a counter.
  std::map<std::string, uint64_t> blocking_syscalls_total;
  std::map<std::string, double> blocking_syscall_seconds_total;
  std::map<int, uint64_t> syscall_seen;  // nr -> total already counted (the model's since-attach count)
  double oncpu_seconds_total = 0;
  std::map<std::string, double> offcpu_seconds_total;  // reason -> seconds
  bool have_latency = false;
  std::array<uint64_t, kLatencyBounds.size() + 1> latency_buckets{};  // not cumulative; last: +Inf
  uint64_t latency_count = 0;
  double latency_sum = 0;  // from each bucket's midpoint
  bool have_census = false;
  std::map<std::string, uint64_t> goroutines;  // state -> count (last census)
  bool gc = false;
  double gc_stw_seconds_total = 0;
  uint64_t gc_cycles_total = 0;
  double gc_assist_share = 0;
  std::map<std::string, double> gc_mmu;  // window -> minimum mutator utilization (0..1)
  int gomaxprocs = 0;
  double runqueue_latency_p99_seconds = -1;

  // --all-syscalls-for: every completed call, by syscall (top_n names, the rest in
  // "other"), with its latency.
  bool all_syscalls = false;
  std::map<std::string, SyscallHist> syscall_latency;
  struct SeenAll {
    uint64_t total_ns = 0;
    std::array<uint64_t, SS_HIST_BUCKETS> hist{};
  };
  std::map<int, SeenAll> syscall_all_seen;  // nr -> what is already counted
  // --goroutines-for: goroutines created and exited (uprobes) since they were attached.
  bool goroutine_probes = false;
  uint64_t goroutines_created_total = 0, goroutines_exited_total = 0;
  // --annotations-for: runtime/trace tasks ended, regions ended and log calls since attach.
  bool annotations = false;
  uint64_t annotation_tasks_total = 0, annotation_regions_total = 0, annotation_logs_total = 0;
};

// Adds one shown frame (with the detectors' alerts on it) to `s`; `all` is every alert
// the target's detectors raised since attach.
void update(TargetSeries& s, const model::Frame& f, const std::vector<detect::Alert>& all,
            size_t top_syscalls);

struct AgentSeries {
  std::map<std::string, int> targets;  // state -> count
  uint64_t drops_total = 0;            // ring-buffer records lost (full buffer)
  uint64_t records_total = 0;          // ring-buffer records consumed
  uint64_t scans_total = 0;
  uint64_t exec_lookups_total = 0;
  uint64_t intervals_total = 0;
  double cpu_seconds_total = 0;
  uint64_t resident_memory_bytes = 0;
  double last_interval_seconds = 0;  // time one interval's reads and detectors took
};

// The text exposition format (version 0.0.4) of every series.
std::string render(const std::vector<TargetSeries>& targets, const AgentSeries& agent);
// A label value escaped for the text format (\\, \", \n).
std::string escape_label(const std::string& v);

}  // namespace schedscope::agent
