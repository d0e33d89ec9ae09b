#include "go/timehist.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace schedscope::go {

namespace {
constexpr uint64_t kOpen = std::numeric_limits<uint64_t>::max();
// Layout 1 (1.17-1.19): 45 super-buckets x 16 sub-buckets, + underflow.
constexpr size_t kV1Counts = size_t{45} * 16;
// Layout 2 (1.20+): buckets for bit lengths 9..47 plus one below, 4 sub-buckets each,
// + underflow + overflow.
constexpr unsigned kV2MinBits = 9, kV2MaxBits = 48, kV2SubBits = 2;
constexpr size_t kV2Counts = (kV2MaxBits - kV2MinBits + 1) << kV2SubBits;  // 160
}  // namespace

size_t time_hist_counts(int layout) {
  return layout == kTimeHistV1 ? kV1Counts : layout == kTimeHistV2 ? kV2Counts : 0;
}

size_t time_hist_slots(int layout) {
  return layout == kTimeHistV1 ? kV1Counts + 1 : layout == kTimeHistV2 ? kV2Counts + 2 : 0;
}

SlotRange time_hist_range(int layout, size_t slot) {
  if (layout == kTimeHistV1) {
    if (slot >= kV1Counts) return {0, 0};  // underflow
    const uint64_t super = slot / 16, sub = slot % 16;
    if (super == 0) return {sub, sub + 1};
    const uint64_t width = uint64_t(1) << (super - 1);
    const uint64_t lo = (uint64_t(1) << (super + 3)) + sub * width;
    return {lo, slot == kV1Counts - 1 ? kOpen : lo + width};  // the last one takes the rest
  }
  if (layout == kTimeHistV2) {
    if (slot == kV2Counts) return {0, 0};                                   // underflow
    if (slot == kV2Counts + 1) return {uint64_t(1) << (kV2MaxBits - 1), kOpen};  // overflow
    if (slot > kV2Counts + 1) return {0, 0};
    const uint64_t bucket = slot >> kV2SubBits, sub = slot & ((1u << kV2SubBits) - 1);
    if (bucket == 0) {
      const uint64_t w = uint64_t(1) << (kV2MinBits - 1 - kV2SubBits);
      return {sub * w, (sub + 1) * w};
    }
    const unsigned bit = unsigned(bucket) + kV2MinBits - 1;  // bit length of the values
    const uint64_t width = uint64_t(1) << (bit - 1 - kV2SubBits);
    const uint64_t lo = (uint64_t(1) << (bit - 1)) + sub * width;
    return {lo, lo + width};
  }
  return {0, 0};
}

size_t time_hist_slot_of(int layout, int64_t ns) {
  if (layout == kTimeHistV1) {
    if (ns < 0) return kV1Counts;
    const auto v = uint64_t(ns);
    if (v < 16) return size_t(v);
    const size_t super = size_t(std::bit_width(v)) - 4;
    if (super * 16 >= kV1Counts) return kV1Counts - 1;
    return super * 16 + size_t((v >> (super - 1)) % 16);
  }
  if (layout == kTimeHistV2) {
    if (ns < 0) return kV2Counts;
    const auto v = uint64_t(ns);
    unsigned bit = unsigned(std::bit_width(v)), bucket = 0;
    if (bit < kV2MinBits) {
      bit = kV2MinBits;
    } else {
      bucket = bit - kV2MinBits + 1;
    }
    if (bucket >= kV2MaxBits - kV2MinBits + 1) return kV2Counts + 1;
    const size_t sub = size_t(v >> (bit - 1 - kV2SubBits)) % (1u << kV2SubBits);
    return (size_t(bucket) << kV2SubBits) + sub;
  }
  return 0;
}

bool time_hist_monotonic(const TimeHist& now, const TimeHist& before) {
  if (!now.valid() || !before.valid() || now.layout != before.layout) return false;
  for (size_t i = 0; i < now.slots.size(); i++)
    if (now.slots[i] < before.slots[i]) return false;
  return true;
}

LatencySummary summarize(const TimeHist& now, const TimeHist* before) {
  LatencySummary s;
  if (!now.valid()) return s;
  const bool delta = before != nullptr && before->valid() && before->layout == now.layout;
  const size_t counts = time_hist_counts(now.layout);
  // (lo, hi, count) in ascending order: underflow (negative durations) counts as 0 ns.
  std::vector<LatencyBucket> all;
  auto count_of = [&](size_t i) -> uint64_t {
    const uint64_t b = delta ? before->slots[i] : 0;
    return now.slots[i] > b ? now.slots[i] - b : 0;
  };
  s.underflow = count_of(counts);
  if (s.underflow) all.push_back({0, 0, s.underflow});
  for (size_t i = 0; i < counts; i++)
    if (uint64_t c = count_of(i)) {
      auto r = time_hist_range(now.layout, i);
      all.push_back({r.lo, r.hi, c});
    }
  if (now.layout == kTimeHistV2)
    if (uint64_t c = count_of(counts + 1)) {
      auto r = time_hist_range(now.layout, counts + 1);
      all.push_back({r.lo, r.hi, c});
    }
  for (const auto& b : all) s.samples += b.count;
  if (s.samples == 0) return s;
  auto quantile = [&](double q) -> double {
    const double rank = q * double(s.samples);
    double cum = 0;
    for (const auto& b : all) {
      if (cum + double(b.count) >= rank) {
        if (b.hi_ns == kOpen) {
          s.open_top = true;
          return double(b.lo_ns);
        }
        const double frac = std::clamp((rank - cum) / double(b.count), 0.0, 1.0);
        return double(b.lo_ns) + frac * double(b.hi_ns - b.lo_ns);
      }
      cum += double(b.count);
    }
    return double(all.back().lo_ns);
  };
  s.p50_us = quantile(0.50) / 1e3;
  s.p99_us = quantile(0.99) / 1e3;
  s.p999_us = quantile(0.999) / 1e3;
  const auto& top = all.back();
  s.max_us = double(top.hi_ns == kOpen ? top.lo_ns : top.hi_ns) / 1e3;
  if (top.hi_ns == kOpen) s.open_top = true;
  s.buckets = std::move(all);
  return s;
}

}  // namespace schedscope::go
