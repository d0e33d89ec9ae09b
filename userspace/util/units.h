// Parsing of human durations ("500ms", "2s", "1m", "1.5") and sizes ("8M", "64K"), and the
// range checks every duration and size flag goes through.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace schedscope {

// The largest duration parse_duration() accepts (about 31 years): any accepted duration
// converts to nanoseconds in 64 bits.
inline constexpr double kMaxDurationS = 1e9;
// The largest size parse_size() accepts (1 PiB, "1048576G").
inline constexpr uint64_t kMaxSizeBytes = uint64_t(1) << 50;

// Seconds; a bare number means seconds. The number is plain decimal (digits, one optional
// '.'): nullopt on garbage, a sign, an exponent, inf/nan, or more than kMaxDurationS.
std::optional<double> parse_duration(const std::string& s);
// Bytes; suffixes K, M, G (powers of 1024), optional trailing "B"/"iB"; plain decimal as
// above. nullopt on garbage, a sign, or more than kMaxSizeBytes.
std::optional<uint64_t> parse_size(const std::string& s);
std::string format_bytes(uint64_t b);
// A duration as the flags write it, in the largest unit that makes it whole: "10ms",
// "1h", "1500ms".
std::string format_duration(double s);
// A size as the flags write it: "64K", "1G", "4097".
std::string format_size(uint64_t b);

// "" when s is a duration within [min_s, max_s]; otherwise one line saying why
// ("0.5ns is below the minimum of 10ms").
std::string check_duration(const std::string& s, double min_s, double max_s);
// "" when s is a size within [min_b, max_b]; otherwise one line saying why.
std::string check_size(const std::string& s, uint64_t min_b, uint64_t max_b);

// The BPF ring buffer: a power of two, a multiple of the page size, kRingbufMin..kRingbufMax.
inline constexpr uint64_t kRingbufMin = 4096;
inline constexpr uint64_t kRingbufMax = uint64_t(1) << 30;
std::string check_ringbuf_size(const std::string& s);

}  // namespace schedscope
