// The observe flags of `top` and `record`, declared once (flag names, default, range,
// help, where the value lands in ObserveOptions and under which key a recording keeps
// it), and the CLI registration of them and of the detector thresholds
// (detect/options.h) for every subcommand that takes them.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/cli_checks.h"
#include "app/observe.h"
#include "detect/detectors.h"

namespace CLI {
class App;
}

namespace schedscope::app {

struct ObserveFlag {
  enum Kind {
    kDuration,  // a duration within `duration` ("1ms", "2s")
    kSize,      // the ring buffer size (power of two multiple of the page size)
    kPid,       // a positive PID
    kUser,      // a user name or uid
    kSwitch,    // no value
    kList,      // repeatable
    kCommand,   // the positional command after --
    kRate,      // a rate per second, 0 to 1e9
    kDuty,      // ON/PERIOD durations ("2s/10s")
  };
  const char* names;  // CLI11 names: "-i,--interval"
  Kind kind;
  const char* help;   // with the default and the range where there is one
  DurationRange duration{0, 0};
  // Puts the parsed value (a switch: "") into the options; values are validated first.
  void (*apply)(ObserveOptions& o, const std::string& v);
  // Writes the option into a recording's metadata (nullptr: not recorded).
  void (*to_json)(const ObserveOptions& o, nlohmann::json& meta) = nullptr;
  bool target = false;  // names the process (-p, -u, the command): registered first
};

// In the order the help lists them.
const std::vector<ObserveFlag>& observe_flags();

// Registers the observe flags on a subcommand; they fill `o` as they are parsed.
// target: the flags that name the process (-p, the command, -u), else the others.
void add_observe_flags(CLI::App& cmd, ObserveOptions& o, bool target);
// The observe options a recording's metadata keeps (interval_s, ringbuf_bytes, ...).
void observe_to_json(const ObserveOptions& o, nlohmann::json& meta);

// The detector threshold flags (detect::threshold_specs()) on a subcommand.
void add_detector_flags(CLI::App& app, detect::DetectOptions& d);

}  // namespace schedscope::app
