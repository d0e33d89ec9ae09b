// The CLI11 validators of every duration, size, PID and count flag, with the range of
// each flag in one place (README.md "Flag ranges" lists them). A bad value fails the
// parse with one line naming the flag and the allowed range.
#pragma once
#include <cstdint>

#include "util/units.h"

namespace CLI {
class Validator;
}

namespace schedscope::app {

struct DurationRange {
  double min_s, max_s;
};
struct SizeRange {
  uint64_t min_b, max_b;
};

inline constexpr double kHour = 3600;
inline constexpr DurationRange kIntervalRange{0.010, 1 * kHour};     // -i
inline constexpr DurationRange kDurationRange{0.010, 8760 * kHour};  // -d (a year)
inline constexpr DurationRange kEveryRange{1, 8760 * kHour};         // record --every
inline constexpr DurationRange kFlightWindowRange{1, 24 * kHour};    // --flight-recorder
inline constexpr DurationRange kThresholdRange{1e-6, 1 * kHour};     // --offcpu-min, --slow-syscall
inline constexpr SizeRange kMaxBytesRange{1024, kMaxSizeBytes};      // --max-bytes
inline constexpr SizeRange kFlightMemoryRange{1ull << 20, 64ull << 30};  // --flight-memory

CLI::Validator duration_flag(DurationRange r);
CLI::Validator size_flag(SizeRange r);
CLI::Validator ringbuf_flag();  // --ringbuf-size: power of two multiple of the page size
CLI::Validator pid_flag();      // -p: a positive PID
CLI::Validator count_flag();    // -n: 0 (until the target exits or a signal) or more
CLI::Validator rate_flag();     // --annotations-max-rate: 0 (no ceiling) to 1e9 per second
CLI::Validator duty_flag();     // --annotations-duty: ON/PERIOD, 0 < ON <= PERIOD

}  // namespace schedscope::app
