// The P sampler: a thread of schedscope that reads, about every millisecond, the status
// and run-queue length of every P of the target from its memory (process_vm_readv; no
// trap in the target, nothing stopped). It counts how many Ps are _Prunning at each
// sample (the "Procs running" of Go's execution tracer: Go's own view, so threads the
// kernel preempted or the cgroup throttled still count as holding their P) and the
// longest run queue of that instant. Pure counting in tally(); the thread in PSampler.
//
// Adaptive rate: the sampler reads every period_ns while what the capacity rules look at
// changes (docs/capacity.md: are all Ps running? is the longest run queue short, under
// kRunqShort, or near full, kRunqNear?). After kStableReads reads in a row with the same
// answers and the queues short, it doubles its period (up to kMaxStretch periods); the
// first read that differs, or a queue of kRunqShort or more, brings it back to every
// period.
// A read stands for the periods since the previous one (its weight), so the counts stay
// those of a 1 kHz sampler: `ticks` is sample slots, the histograms are time-weighted.
// When a stretched gap ends on a change, the gap is split half and half between the
// states at its two ends (the change happened somewhere inside it: the expected share).
// What a stretched gap can miss is a change that starts and ends inside it (up to
// kMaxStretch ms) — the blind spot the 1 ms period has for sub-millisecond changes.
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
inline constexpr uint32_t kStableReads = 16;              // same reads before stretching
inline constexpr uint32_t kMaxStretch = 8;                // longest period, in periods

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

// The adaptive period (above): feed each read's stretch_key(); stretch() is the period to
// sleep next, in base periods, and the weight of the next read.
class Stretch {
 public:
  uint32_t next(uint64_t key);
  [[nodiscard]] uint32_t stretch() const { return stretch_; }

 private:
  uint64_t last_ = ~0ull;
  uint32_t same_ = 0, stretch_ = 1;
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
  std::atomic<bool> stop_{false};

  std::thread th_;
};

}  // namespace schedscope::capacity
