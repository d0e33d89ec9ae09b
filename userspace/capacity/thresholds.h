// The thresholds of the capacity rules (rules.cpp); docs/capacity.md says why each.
#pragma once
#include <cstdint>

namespace schedscope::capacity {

// ---- thresholds (docs/capacity.md)
inline constexpr double kSaturatedShare = 0.25;  // all GOMAXPROCS Ps running this share of the time
inline constexpr double kLatencyHighUs = 10'000;  // goroutine scheduling latency p99: more CPU
inline constexpr double kLatencyLowUs = 1'000;    // under this: the scheduler is not the issue
inline constexpr uint32_t kRunqNear = 192;        // run queue near its capacity (256)
inline constexpr uint32_t kRunqShort = 64;        // short run queues
inline constexpr double kManyGoroutines = 10'000;
inline constexpr double kMostParked = 0.5;        // share of live goroutines in IO wait
inline constexpr double kThrottledShare = 0.10;   // share of enforcement periods throttled
inline constexpr double kQuotaHeadroom = 1.0;     // quota this many cores above GOMAXPROCS
inline constexpr double kWindowS = 5.0;           // verdicts look at the last 5 s ...
inline constexpr double kEvidenceS = 3.0;         // ... and need 3 s of intervals that agree
inline constexpr double kAgreeShare = 0.6;        // and 60% of the known time in the window
inline constexpr double kOnCpuShare = 0.5;       // held Ps whose threads get this share of a CPU
inline constexpr uint64_t kMinTicks = 50;         // sampler ticks for an interval to count

}  // namespace schedscope::capacity
