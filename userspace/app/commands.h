// The CLI commands as library functions (the thin main only parses flags).
#pragma once
#include <string>

#include "app/flight.h"
#include "app/observe.h"
#include "detect/detectors.h"

namespace CLI {
class App;
}

namespace schedscope::app {

struct TopOptions {
  ObserveOptions observe;
  bool batch = false;
  bool json = false;
  int count = 0;          // intervals, 0: until the target exits or a signal
  double duration_s = 0;  // 0: no limit
  detect::DetectOptions detect;
  std::string output;     // batch/JSON output file (default stdout)
  FlightRecorderOptions flight;  // --flight-recorder WINDOW --dir DIR [--max-bytes]
};

struct InspectOptions {
  std::string path;
  int pid = 0;
  bool json = false;
};

// Threshold flags of the detectors (shared by top, record, report, replay).
void add_detector_flags(CLI::App& app, detect::DetectOptions& d);

int cmd_doctor(bool json);
int cmd_top(const TopOptions& opt);
int cmd_inspect(const InspectOptions& opt);

}  // namespace schedscope::app
