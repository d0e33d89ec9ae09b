#include "app/cli_checks.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>

namespace schedscope::app {

CLI::Validator duration_flag(DurationRange r) {
  return CLI::Validator([r](std::string& s) { return check_duration(s, r.min_s, r.max_s); },
                        "DURATION");
}

CLI::Validator size_flag(SizeRange r) {
  return CLI::Validator([r](std::string& s) { return check_size(s, r.min_b, r.max_b); }, "SIZE");
}

CLI::Validator ringbuf_flag() {
  return CLI::Validator([](std::string& s) { return check_ringbuf_size(s); }, "SIZE");
}

namespace {
// A whole decimal integer (optional '-'), or nullopt.
bool whole_number(const std::string& s, long long* v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  *v = std::strtoll(s.c_str(), &end, 10);
  return errno == 0 && end && *end == '\0' && !std::isspace(static_cast<unsigned char>(s[0]));
}
}  // namespace

CLI::Validator pid_flag() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        long long v = 0;
        if (!whole_number(s, &v)) return "not a PID: " + s;
        if (v <= 0 || v > 4194304) return "a PID is a positive number (at most 4194304): " + s;
        return "";
      },
      "PID");
}

CLI::Validator count_flag() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        long long v = 0;
        if (!whole_number(s, &v) || v < 0 || v > 2147483647)
          return "the count is 0 (until the target exits or Ctrl-C) or a positive number of "
                 "intervals: " +
                 s;
        return "";
      },
      "N");
}

CLI::Validator rate_flag() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        errno = 0;
        char* end = nullptr;
        double v = std::strtod(s.c_str(), &end);
        if (s.empty() || errno != 0 || !end || *end != '\0' || !(v >= 0 && v <= 1e9))
          return "a rate per second from 0 (none) to 1e9: " + s;
        return "";
      },
      "PER_S");
}

CLI::Validator duty_flag() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        auto slash = s.find('/');
        auto on = slash == std::string::npos ? std::nullopt : parse_duration(s.substr(0, slash));
        auto period = slash == std::string::npos ? std::nullopt : parse_duration(s.substr(slash + 1));
        if (!on || !period || *on <= 0 || *period < *on)
          return "expected ON/PERIOD with 0 < ON <= PERIOD, e.g. 2s/10s: " + s;
        return "";
      },
      "ON/PERIOD");
}

}  // namespace schedscope::app
