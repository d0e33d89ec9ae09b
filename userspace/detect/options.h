// The detector thresholds, declared once: each with its flag, its key in a recording's
// "thresholds", its unit, its valid range and its help. The CLI registers the flags of
// every subcommand that takes them from this table (app/options.h), recordings store the
// thresholds through it, and report/replay/export read them back through it.
#pragma once
#include <cstddef>
#include <limits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "detect/detectors.h"

namespace schedscope::detect {

struct ThresholdSpec {
  const char* flag;  // "--stuck-ms"; nullptr: not a flag, kept in recordings only
  const char* key;   // in a recording's "thresholds" object
  std::variant<double DetectOptions::*, int DetectOptions::*, size_t DetectOptions::*> field;
  const char* unit;  // "ms", "/s", "share" (0-1), "threads", "goroutines", "s", "alerts"
  double min = -std::numeric_limits<double>::infinity();  // the flag's valid range
  double max = std::numeric_limits<double>::infinity();
  const char* help = "";
  [[nodiscard]] bool bounded() const {
    return min != -std::numeric_limits<double>::infinity() ||
           max != std::numeric_limits<double>::infinity();
  }
};

// In the order the help lists them.
const std::vector<ThresholdSpec>& threshold_specs();

// The value of one threshold as a number (for the JSON and the help).
double threshold_value(const ThresholdSpec& s, const DetectOptions& d);
// to.<field of s> = from.<field of s>.
void copy_threshold(const ThresholdSpec& s, DetectOptions& to, const DetectOptions& from);

// A recording's "thresholds": every entry of the table.
nlohmann::json thresholds_to_json(const DetectOptions& d);
// Reads them back over `base`: keys missing or not numbers (or out of the type's range)
// keep the base value; the history is capped.
DetectOptions thresholds_from_json(const nlohmann::json& j, DetectOptions base = {});

}  // namespace schedscope::detect
