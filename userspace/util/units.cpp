#include "util/units.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace schedscope {

namespace {

// A plain decimal number at the start of s ("12", "0.5", ".5", "3."): its value, and in
// *rest what follows. No sign, no exponent, no whitespace, no hex, no inf/nan.
std::optional<double> leading_decimal(const std::string& s, std::string* rest) {
  size_t i = 0, digits = 0;
  bool dot = false;
  for (; i < s.size(); i++) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      digits++;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (digits == 0 || digits > 30) return std::nullopt;
  double v = std::strtod(s.substr(0, i).c_str(), nullptr);
  if (!std::isfinite(v) || v < 0) return std::nullopt;
  *rest = s.substr(i);
  return v;
}

// The duration in seconds, without the upper bound of parse_duration().
std::optional<double> duration_unbounded(const std::string& s) {
  std::string unit;
  auto v = leading_decimal(s, &unit);
  if (!v) return std::nullopt;
  double mul;
  if (unit.empty() || unit == "s")
    mul = 1;
  else if (unit == "ms")
    mul = 1e-3;
  else if (unit == "us")
    mul = 1e-6;
  else if (unit == "ns")
    mul = 1e-9;
  else if (unit == "m" || unit == "min")
    mul = 60;
  else if (unit == "h")
    mul = 3600;
  else
    return std::nullopt;
  double r = *v * mul;
  if (!std::isfinite(r)) return std::nullopt;
  return r;
}

// The size in bytes (as a double: it may exceed 64 bits), without the upper bound.
std::optional<double> size_unbounded(const std::string& s) {
  std::string unit;
  auto v = leading_decimal(s, &unit);
  if (!v) return std::nullopt;
  for (auto& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() >= 2 && unit.substr(unit.size() - 2) == "IB")
    unit.resize(unit.size() - 2);
  else if (!unit.empty() && unit.back() == 'B')
    unit.pop_back();
  double mul;
  if (unit.empty())
    mul = 1;
  else if (unit == "K")
    mul = 1024.0;
  else if (unit == "M")
    mul = 1024.0 * 1024;
  else if (unit == "G")
    mul = 1024.0 * 1024 * 1024;
  else
    return std::nullopt;
  double b = *v * mul;
  if (!std::isfinite(b)) return std::nullopt;
  return b;
}

}  // namespace

std::optional<double> parse_duration(const std::string& s) {
  auto r = duration_unbounded(s);
  if (!r || *r > kMaxDurationS) return std::nullopt;
  return r;
}

std::optional<uint64_t> parse_size(const std::string& s) {
  auto b = size_unbounded(s);
  if (!b || *b > double(kMaxSizeBytes)) return std::nullopt;
  return uint64_t(*b);
}

std::string format_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30))
    snprintf(buf, sizeof buf, "%.1f GiB", double(b) / double(1ull << 30));
  else if (b >= (1ull << 20))
    snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1ull << 20));
  else if (b >= 1024)
    snprintf(buf, sizeof buf, "%.1f KiB", double(b) / 1024);
  else
    snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

std::string format_duration(double s) {
  struct Unit {
    const char* name;
    double secs;
  };
  static const Unit units[] = {{"h", 3600},  {"m", 60},    {"s", 1},
                               {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}};
  char buf[48];
  for (const auto& u : units) {
    double n = s / u.secs;
    if (n >= 1 && std::fabs(n - std::round(n)) < 1e-9 * n) {
      snprintf(buf, sizeof buf, "%.0f%s", std::round(n), u.name);
      return buf;
    }
  }
  for (const auto& u : units) {
    if (s >= u.secs) {
      snprintf(buf, sizeof buf, "%g%s", s / u.secs, u.name);
      return buf;
    }
  }
  snprintf(buf, sizeof buf, "%gs", s);
  return buf;
}

std::string format_size(uint64_t b) {
  static const struct {
    const char* name;
    uint64_t bytes;
  } units[] = {{"G", 1ull << 30}, {"M", 1ull << 20}, {"K", 1ull << 10}};
  for (const auto& u : units)
    if (b >= u.bytes && b % u.bytes == 0) return std::to_string(b / u.bytes) + u.name;
  return std::to_string(b);
}

std::string check_duration(const std::string& s, double min_s, double max_s) {
  auto v = duration_unbounded(s);
  if (!v)
    return "not a duration (a plain number with ns, us, ms, s, m or h, e.g. 500ms, 2s, 5m): " + s;
  const std::string allowed =
      " (allowed: " + format_duration(min_s) + " to " + format_duration(max_s) + ")";
  // A little slack: "10ms" must pass a 10 ms minimum after the float multiplication.
  if (*v < min_s * (1 - 1e-9))
    return s + " is below the minimum of " + format_duration(min_s) + allowed;
  if (*v > max_s * (1 + 1e-9))
    return s + " is above the maximum of " + format_duration(max_s) + allowed;
  return "";
}

std::string check_size(const std::string& s, uint64_t min_b, uint64_t max_b) {
  auto v = size_unbounded(s);
  if (!v) return "not a size (a plain number with K, M or G, e.g. 512K, 8M, 2G): " + s;
  const std::string allowed =
      " (allowed: " + format_size(min_b) + " to " + format_size(max_b) + ")";
  if (*v < double(min_b)) return s + " is below the minimum of " + format_size(min_b) + allowed;
  if (*v > double(max_b)) return s + " is above the maximum of " + format_size(max_b) + allowed;
  return "";
}

std::string check_ringbuf_size(const std::string& s) {
  long page = sysconf(_SC_PAGESIZE);
  uint64_t pg = page > 0 ? uint64_t(page) : 4096;
  uint64_t lo = std::max(kRingbufMin, pg);
  const std::string rule = "the BPF ring buffer is a power of two multiple of the page size (" +
                           format_size(pg) + "), " + format_size(lo) + " to " +
                           format_size(kRingbufMax) + ", e.g. 4M, 8M, 16M";
  auto v = size_unbounded(s);
  if (!v) return "not a size (a plain number with K, M or G, e.g. 512K, 8M, 2G): " + s;
  if (*v < double(lo) || *v > double(kRingbufMax)) return s + " is out of range: " + rule;
  auto b = uint64_t(*v);
  if (double(b) != *v || (b & (b - 1)) != 0 || b % pg != 0) return s + " is not allowed: " + rule;
  return "";
}

}  // namespace schedscope
