// The P sampler: a thread of schedscope that reads, about every millisecond, the status
// and run-queue length of every P of the target from its memory (process_vm_readv; no
// trap in the target, nothing stopped). It counts how many Ps are _Prunning at each
// sample (the "Procs running" of Go's execution tracer: Go's own view, so threads the
// kernel preempted or the cgroup throttled still count as holding their P) and the
// longest run queue of that instant. Pure counting in tally(); the thread in PSampler.
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

// One sample: statuses and run-queue lengths of every P (same order), into the counts.
void tally(const std::vector<uint32_t>& status, const std::vector<uint32_t>& runq, bool runq_known,
           ss_cap_counts& c);

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
