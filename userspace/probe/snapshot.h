// What the kernel side aggregated, read once per interval (Session::snapshot()): plain
// data, no libbpf, so the model and the recording format use it without the session.
#pragma once
#include <cstdint>
#include <vector>

#include "schedscope.h"

namespace schedscope::probe {

struct ThreadEntry {
  uint32_t tid;
  ss_thread_state st;
};

struct SyscallAgg {
  int nr;
  ss_sc_stat stat;  // summed over CPUs
};

// Everything the kernel side aggregated, read once per interval.
struct KernelSnapshot {
  uint64_t ts_ns = 0;  // CLOCK_MONOTONIC when read
  std::vector<ThreadEntry> threads;
  uint32_t threads_in_slots = 0;     // of them, read from their slots (the rest: the hash map)
  std::vector<SyscallAgg> sc_block;  // non-zero entries only
  std::vector<SyscallAgg> sc_all;    // (-S) non-zero entries only
  uint64_t rq_hist[SS_HIST_BUCKETS] = {};
  uint64_t drops = 0;
  std::vector<uint64_t> drops_per_cpu;
  uint64_t go_create_hits = 0;  // (--goroutines) uprobe hits of the target since attach
  uint64_t go_exit_hits = 0;
};

}  // namespace schedscope::probe
