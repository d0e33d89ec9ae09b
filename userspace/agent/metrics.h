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
