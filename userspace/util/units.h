// Parsing of human durations ("500ms", "2s", "1m", "1.5") and sizes ("8M", "64K").
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace schedscope {

// Seconds; a bare number means seconds. nullopt on garbage or negative values.
std::optional<double> parse_duration(const std::string& s);
// Bytes; suffixes K, M, G (powers of 1024), optional trailing "B"/"iB".
std::optional<uint64_t> parse_size(const std::string& s);
std::string format_bytes(uint64_t b);

}  // namespace schedscope
