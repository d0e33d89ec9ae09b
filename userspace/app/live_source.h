// `top` on a terminal: the live view (ui/live.h) over an Observer. ObserverSource is the
// FrameSource of a live process: it steps the observation's pipeline (each frame with
// the detectors' alerts, the final frame with every alert raised) and adds the probes'
// cost line for the header.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "app/commands.h"
#include "app/flight.h"
#include "app/observe.h"
#include "detect/detectors.h"
#include "ui/live.h"

namespace schedscope::app {

class ObserverSource : public model::FrameSource {
 public:
  // `pipe` runs over `o` (an ObserverFeed) with its stop policy and sinks; `fr` (with
  // --flight-recorder, one of those sinks) adds its state to the cost line.
  ObserverSource(Observer& o, detect::Pipeline& pipe, FlightRecorder* fr = nullptr);

  std::optional<model::Frame> next() override;
  std::optional<model::Frame> final_frame() override;
  [[nodiscard]] bool live() const override { return true; }
  [[nodiscard]] std::string cost() const override;
  void interrupt() override;
  [[nodiscard]] std::string end_reason() const override;

  // The header's cost line: which probes are attached, the ring-buffer event rate and
  // the drops ("" rates before the first frame: events_per_s < 0).
  static std::string cost_line(const std::vector<std::string>& programs, bool p_table,
                               double interval_s, double events_per_s, uint64_t drops,
                               uint64_t drops_interval);

 private:
  Observer& o_;
  detect::Pipeline& pipe_;
  FlightRecorder* fr_;
  uint64_t last_records_ = 0;
  std::vector<std::string> programs_;
  mutable std::mutex mu_;  // cost_ and end_reason_ are read by the UI thread
  std::string cost_;
  std::string end_reason_;
};

// The live view of `top` over a started Observer; returns the exit code.
int top_live(Observer& o, const TopOptions& opt, FlightRecorder* fr = nullptr);

}  // namespace schedscope::app
