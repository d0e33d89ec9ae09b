// The P sampler: a thread of schedscope that reads, about every millisecond, the status
// and run-queue length of every P of the target from its memory (process_vm_readv; no
// trap in the target, nothing stopped). It counts how many Ps are _Prunning at each
// sample (the "Procs running" of Go's execution tracer: Go's own view, so threads the
// kernel preempted or the cgroup throttled still count as holding their P) and the
// longest run queue of that instant. Pure counting in tally(); the thread in PSampler.
//
// Adaptive rate (docs/capacity.md): the sampler reads every period_ns while what the
// capacity rules look at changes (are all Ps running? is the longest run queue short,
// under kRunqShort, or near full, kRunqNear?). After kStableReads periods' worth of reads
// with the same answers and the queues short, it doubles its period, up to kShortStretch;
// beyond that it doubles only after kLongStableSlots more periods of the same answers, up
// to kMaxStretch. The first read that differs, or a queue of kRunqShort or more, brings it
// back to every period.
// CPU budget: every kBudgetWindowNs the thread reads its own CPU time and sets a floor
// under its period so that its wake-ups cost at most kCpuBudget of a core (each wake-up's
// cost measured, not assumed); the floor overrides the "every period" above.
// A read stands for the periods since the previous one (its weight), so the counts stay
// those of a 1 kHz sampler: `ticks` is sample slots, the histograms are time-weighted.
// When a gap of several periods ends on a change, it is split half and half between the
// states at its two ends (the change happened somewhere inside it: the expected share).
// What a longer gap can miss is a change that starts and ends inside it — the blind spot
// the 1 ms period has for sub-millisecond changes.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "schedscope.h"

namespace schedscope::capacity {

inline constexpr uint64_t kPSamplePeriodNs = 1'000'000;  // 1 kHz
inline constexpr uint32_t kPRunning = 1;                  // _Prunning
inline constexpr uint32_t kStableReads = 16;      // same reads before stretching (short)
inline constexpr uint32_t kShortStretch = 8;       // reached after 16 reads at 1, 2 and 4
inline constexpr uint32_t kLongStableSlots = 500;  // beyond it: periods of the same answers
inline constexpr uint32_t kMaxStretch = 32;        // longest period, in periods
inline constexpr double kCpuBudget = 0.005;        // the sampler's CPU: 0.5% of one core
inline constexpr uint64_t kBudgetWindowNs = 250'000'000;  // how often it checks
inline constexpr uint32_t kMaxFloor = 100;         // the budget's longest period: 10 reads/s

// One read: statuses and run-queue lengths of every P (same order) -> the count of Ps
// running in the low 32 bits, the longest run queue (0 when unknown) above.
uint64_t measure(const std::vector<uint32_t>& status, const std::vector<uint32_t>& runq,
                 bool runq_known);
// A measure() into the counts, standing for `weight` sample slots.
void add(ss_cap_counts& c, uint64_t m, bool runq_known, uint32_t weight);
// measure() and add(): one sample into the counts; returns the measure.
uint64_t tally(const std::vector<uint32_t>& status, const std::vector<uint32_t>& runq,
               bool runq_known, ss_cap_counts& c, uint32_t weight = 1);
// What the adaptive period compares: all `nps` Ps running (1 or 0), and above it the
// longest queue's class (0: under kRunqShort, 1: under kRunqNear, 2: near full).
uint64_t stretch_key(uint64_t m, size_t nps);
// A read `cur` after a gap of `weight` periods since the read `prev`: the whole gap to
// `cur`, or, when the gap ends on a change of stretch_key, half to each end.
void add_gap(ss_cap_counts& c, uint64_t prev, uint64_t cur, size_t nps, bool runq_known,
             uint32_t weight);

// The adaptive period (above): feed each read's stretch_key() and the periods it stood
// for (its weight; 0: the current stretch); stretch() is the period to sleep next, in base
// periods. The stability counted is time (periods), so a period the budget raised above
// the stretch counts for what it covered.
class Stretch {
 public:
  uint32_t next(uint64_t key, uint32_t weight = 0);
  [[nodiscard]] uint32_t stretch() const { return stretch_; }

 private:
  uint64_t last_ = ~0ull;
  uint64_t same_ = 0;  // periods with the same key since the last doubling
  uint32_t stretch_ = 1;
};

// The period after a read: the stretch, or the budget's floor when longer. Also the weight
// of the next read (the periods it will stand for).
uint32_t next_gap(Stretch& s, uint32_t floor, uint64_t key, uint32_t weight);

// The budget's floor: the period, in base periods, at which wake-ups costing
// `cost_ns_per_wakeup` of CPU each use at most `share` of a core (1 .. max_floor).
uint32_t budget_floor(double cost_ns_per_wakeup, double share, uint64_t period_ns,
                      uint32_t max_floor = kMaxFloor);

// The CPU budget (above): count each wake-up with woke(); when due(), close() the window
// with the thread's CPU time. floor() is the shortest period allowed, in base periods.
// The cost per wake-up is the mean of the last two windows' (one slow window alone does
// not swing the floor).
class Budget {
 public:
  explicit Budget(double share = kCpuBudget, uint64_t period_ns = kPSamplePeriodNs,
                  uint64_t window_ns = kBudgetWindowNs)
      : share_(share), period_ns_(period_ns), window_ns_(window_ns) {}
  void woke() { n_++; }
  [[nodiscard]] bool due(uint64_t wall_ns) const { return !started_ || wall_ns - w0_ >= window_ns_; }
  uint32_t close(uint64_t wall_ns, uint64_t cpu_ns);
  [[nodiscard]] uint32_t floor() const { return floor_; }
  [[nodiscard]] double cost_ns() const { return cost_ns_; }  // per wake-up, 0 before a window

 private:
  double share_;
  uint64_t period_ns_, window_ns_;
  bool started_ = false;
  uint64_t w0_ = 0, c0_ = 0, n_ = 0;
  double cost_ns_ = 0, last_cost_ns_ = 0;
  uint32_t floor_ = 1;
};

struct PSamplerConfig {
  int pid = 0;
  uint64_t allp = 0;  // runtime address of runtime.allp (the slice header)
  uint32_t p_status = 0;
  uint32_t p_runqhead = 0, p_runqtail = 0, p_runnext = 0;  // 0: unknown
  uint64_t period_ns = kPSamplePeriodNs;
};

class PSampler {
 public:
  explicit PSampler(const PSamplerConfig& c);
  ~PSampler();
  PSampler(const PSampler&) = delete;
  PSampler& operator=(const PSampler&) = delete;
  [[nodiscard]] ss_cap_counts counts() const;
  [[nodiscard]] uint64_t reads() const;  // successful reads since start (each one wake-up)
  [[nodiscard]] bool runq_known() const { return runq_; }
  [[nodiscard]] uint64_t period_ns() const { return cfg_.period_ns; }

 private:
  void run();
  bool refresh_ps();  // re-reads allp (len and the P pointers)
  bool read(uint64_t addr, void* buf, size_t len) const;
  PSamplerConfig cfg_;
  bool runq_ = false;
  std::vector<uint64_t> ps_;
  mutable std::mutex mu_;
  ss_cap_counts counts_{};
  uint64_t reads_ = 0;
  std::atomic<bool> stop_{false};

  std::thread th_;
};

}  // namespace schedscope::capacity
