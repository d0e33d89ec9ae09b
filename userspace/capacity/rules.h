// Capacity decisions: per-interval evidence and the verdicts drawn from it over time.
// Pure functions of plain numbers (fed by the model from frames and SS_EV_CAP_SAMPLE
// records), so the rules are unit-tested without a target. docs/capacity.md explains each
// rule and threshold.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace schedscope::capacity {

enum class Question { kRaiseGomaxprocs, kShard, kFewerGoroutines, kCpuQuota };
enum class Answer { kUnknown, kNo, kLookElsewhere, kYes };
inline constexpr Question kQuestions[] = {Question::kRaiseGomaxprocs, Question::kShard,
                                          Question::kFewerGoroutines, Question::kCpuQuota};
const char* question_name(Question q);  // raise_gomaxprocs | shard | fewer_goroutines | cpu_quota
const char* answer_name(Answer a);      // unknown | no | look_elsewhere | yes

// What one interval (or a span of them, summed) shows.
struct Evidence {
  double span_s = 0;    // time covered
  int gomaxprocs = 0;   // 0: unknown (not a Go target, offsets off)
  int cpus = 0;         // CPUs the target may run on (0 unknown)
  std::string go_version;
  // Ps running Go code on a CPU, sampled at the sampler's tick on one CPU.
  uint64_t ticks = 0;
  std::vector<uint64_t> procs;  // procs[k]: ticks with k Ps running
  double tick_hz = 0;
  // Reads the P sampler made (each one wake-up; a read stands for >= 1 tick).
  bool reads_known = false;
  uint64_t reads = 0;
  // Run-queue lengths of the running Ps, sampled at every CPU's tick.
  bool runq_known = false;
  std::vector<uint64_t> runq;   // runq[n]: samples with length n
  // Goroutine scheduling latency (runtime histogram).
  bool latency_known = false;
  double latency_p99_us = 0;
  uint64_t latency_samples = 0;
  // Goroutine census (last read of the span).
  bool census_known = false;
  double goroutines = 0, io_wait = 0, lock_wait = 0;
  // The target's cgroup.
  bool cgroup_known = false;
  bool quota_known = false;  // a CPU quota applies
  double quota_cores = 0;
  std::string cgroup;
  uint64_t nr_periods = 0, nr_throttled = 0;  // in the span
  double throttled_ms = 0;
  // Where else the time goes (for "look elsewhere").
  double gc_share = 0;        // GC mark assist + workers, of GOMAXPROCS x span
  double stw_ms = 0;          // stop-the-world time in the span
  double syscalls_per_s = 0;  // blocking syscall episodes per second
  double kernel_rq_p99_us = 0;  // threads waiting for a CPU (the kernel's run queue)
  double cpu_cores = -1;        // CPU the target's threads used, in CPUs (-1 unknown)

  // Derived.
  [[nodiscard]] bool procs_known() const;  // GOMAXPROCS and enough P samples
  [[nodiscard]] double saturated_share() const;  // share of ticks with >= gomaxprocs running
  [[nodiscard]] int procs_percentile(double q) const;  // -1 unknown
  [[nodiscard]] int procs_max() const;
  [[nodiscard]] double procs_mean() const;  // Ps running on average
  [[nodiscard]] uint64_t runq_samples() const;
  [[nodiscard]] int runq_percentile(double q) const;  // -1 unknown
  [[nodiscard]] int runq_max() const;
  [[nodiscard]] double throttled_share() const;  // nr_throttled / nr_periods (0 when none)
};

// Sums the histograms and counters of `b` into `a` (latency: the larger p99; census and
// cgroup identity: the later).
void accumulate(Evidence& a, const Evidence& b);

struct Verdict {
  Question question = Question::kRaiseGomaxprocs;
  Answer answer = Answer::kUnknown;
  std::string because;  // the numbers, one line
  std::string advice;
};

// The answer one interval's evidence gives.
Verdict judge(Question q, const Evidence& e);

// The verdict over a window of intervals (oldest first: span in s, judge() of it):
// an answer needs kEvidenceS seconds of intervals giving it and kAgreeShare of the known
// time (capacity/thresholds.h); otherwise "no" when enough is known, else "unknown". `summed` is the window's
// evidence, whose judgement gives the numbers in `because`.
Verdict decide(Question q, const std::vector<std::pair<double, Verdict>>& intervals,
               const Evidence& summed);

}  // namespace schedscope::capacity
