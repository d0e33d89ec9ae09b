// The Go runtime's own histogram of goroutine scheduling latency, `sched.timeToRun`
// (runtime/histogram.go's timeHistogram): the time a goroutine spent runnable before it
// ran, recorded by casgstatus for 1 in 8 transitions (gTrackingPeriod), and the source of
// runtime/metrics `/sched/latencies:seconds`. schedscope reads it from the live process
// (a few KiB per interval, no probe) and summarises it per interval.
//
// Two layouts, verified against the runtime source and on real binaries:
//  * layout 1, Go 1.17-1.19: counts[45 x 16], then underflow. A value v < 16 lands in
//    slot v; else super = len64(v) - 4 (clamped to the last slot) and
//    sub = (v >> (super - 1)) % 16. (Go 1.17's runtime/metrics reported the boundaries
//    above 32 ns wrong, fixed later; the ranges here are the ones record() bins into,
//    and equal 1.19's reported boundaries.)
//  * layout 2, Go 1.20+: counts[40 x 4], then underflow, then overflow. Values under
//    2^8 ns share bucket 0 (sub = v >> 6); else bucket = len64(v) - 8 and
//    sub = (v >> (len64(v) - 3)) % 4; len64(v) > 47 is overflow.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace schedscope::go {

inline constexpr int kTimeHistV1 = 1;  // Go 1.17-1.19
inline constexpr int kTimeHistV2 = 2;  // Go 1.20+

// Slots of a layout: the counts, then underflow, then (layout 2) overflow. 0 if unknown.
size_t time_hist_slots(int layout);
// Number of count slots (without underflow/overflow).
size_t time_hist_counts(int layout);
// Bytes of the runtime struct (8 per slot).
inline size_t time_hist_bytes(int layout) { return time_hist_slots(layout) * 8; }

// The duration range [lo, hi) in ns of slot i. The underflow slot is [0, 0) (negative
// durations); the last open slot (layout 1's final count, layout 2's overflow) has
// hi == UINT64_MAX.
struct SlotRange {
  uint64_t lo = 0, hi = 0;
};
SlotRange time_hist_range(int layout, size_t slot);
// The slot record() puts a duration in (mirrors the runtime; used by tests).
size_t time_hist_slot_of(int layout, int64_t ns);

// One read of sched.timeToRun.
struct TimeHist {
  uint64_t ts_ns = 0;
  uint8_t layout = 0;
  std::vector<uint64_t> slots;  // time_hist_slots(layout) values
  [[nodiscard]] bool valid() const {
    return layout != 0 && slots.size() == time_hist_slots(layout);
  }
};

// Every slot of `now` is >= the same slot of `before` (the runtime only adds).
bool time_hist_monotonic(const TimeHist& now, const TimeHist& before);

struct LatencyBucket {
  uint64_t lo_ns = 0, hi_ns = 0;  // hi_ns == UINT64_MAX: open
  uint64_t count = 0;
};

// Percentiles of the samples added between two reads (or since the runtime started
// when `before` is null). Values are interpolated linearly inside a bucket; a
// percentile that falls in an open bucket is its lower bound (`open_top` set).
struct LatencySummary {
  uint64_t samples = 0;  // tracked transitions (the runtime samples 1 in 8)
  double p50_us = 0, p99_us = 0, p999_us = 0;
  double max_us = 0;     // upper bound of the highest non-empty bucket
  bool open_top = false; // some samples are beyond the histogram's range
  uint64_t underflow = 0;
  std::vector<LatencyBucket> buckets;  // non-empty buckets, ascending
};
LatencySummary summarize(const TimeHist& now, const TimeHist* before);

}  // namespace schedscope::go
