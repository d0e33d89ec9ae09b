// The CLI commands as library functions (the thin main only parses flags).
#pragma once
#include <string>

#include "app/flight.h"
#include "app/observe.h"
#include "app/options.h"
#include "app/output_watch.h"
#include "detect/detectors.h"
#include "detect/pipeline.h"

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

// Batch output (top --batch/--json, replay --batch/--json): each shown frame and the
// final frame as text or one JSON object, flushed at once.
class FramePrinter : public detect::FrameSink {
 public:
  FramePrinter(FILE* out, bool json, OutputWatch& watch) : out_(out), json_(json), watch_(watch) {}
  // False once the output failed (OutputWatch says how).
  bool print(const model::Frame& f);
  void on_shown(const model::Frame& f, const detect::Pipeline&) override { (void)print(f); }
  void on_final(const model::Frame& f, const detect::Pipeline&) override {
    if (!watch_.failed()) (void)print(f);
  }
  [[nodiscard]] bool failed() const override { return !ok_; }

 private:
  FILE* out_;
  bool json_;
  OutputWatch& watch_;
  bool ok_ = true;
};

struct InspectOptions {
  std::string path;
  int pid = 0;
  bool json = false;
};

int cmd_doctor(bool json);
int cmd_top(const TopOptions& opt);
int cmd_inspect(const InspectOptions& opt);

}  // namespace schedscope::app
