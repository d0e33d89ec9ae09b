// The one observation driver: a source of frames (a live process or a recording), the
// detectors, a stop policy and the sinks the run asked for (a printer, the live view, a
// recorder, the flight recorder). `top` (batch and live), `record`, the flight recorder
// and replay/report/export all step the same Pipeline; docs/architecture.md draws it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "detect/detectors.h"
#include "model/model.h"
#include "util/expected.h"

namespace schedscope::detect {

// One frame pulled from a source, before detection.
struct Pulled {
  enum Kind {
    kShown,    // a frame to evaluate and show
    kSkipped,  // built, but the source ended while it was built (the final frame covers it)
    kEnded,    // nothing more: no frame
  };
  Kind kind = kEnded;
  model::Frame frame;
};

// Where frames come from: a live observation (app::ObserverFeed) or a recording
// (record::Replayer).
class FrameFeed {
 public:
  virtual ~FrameFeed() = default;
  // Blocks up to one interval. An error ends the run (the caller decides what of it).
  virtual Expected<Pulled> pull() = 0;
  // The totals-since-start frame (the pipeline adds every alert raised).
  virtual model::Frame final_frame() = 0;
  // Why pull() ended ("target 123 exited", "stopped", "end of recording").
  [[nodiscard]] virtual std::string end_reason() const = 0;
};

class Pipeline;

// Where frames go once the detectors ran. Every hook is optional; a sink that was not
// asked for is not created, so it costs nothing.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A shown frame with its alerts and notices (Frame::alerts, ::notices).
  virtual void on_shown(const model::Frame& /*f*/, const Pipeline& /*p*/) {}
  // A frame built while the source ended, not shown.
  virtual void on_skipped(const model::Frame& /*f*/) {}
  // The final frame with every alert raised (Detectors::all()).
  virtual void on_final(const model::Frame& /*f*/, const Pipeline& /*p*/) {}
  // True once the sink cannot go on (its output went away): the run ends after this
  // frame, and the final frame still goes to every sink.
  [[nodiscard]] virtual bool failed() const { return false; }
};

// When a run ends besides its source ending: -n intervals, -d seconds (0: no limit).
struct StopPolicy {
  int count = 0;
  double duration_s = 0;
};

class Pipeline {
 public:
  Pipeline(FrameFeed& src, const DetectOptions& d, StopPolicy stop = {})
      : src_(src), det_(d), stop_(stop) {}
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Sinks receive frames in the order they were added.
  void add_sink(FrameSink* s) { sinks_.push_back(s); }

  // The next shown frame, detected and handed to every sink; nullopt once the run ended
  // (end_reason() says why). A source error is returned as is.
  Expected<std::optional<model::Frame>> step();
  // The final frame with every alert raised, handed to every sink. Once: later calls
  // return the same frame.
  const model::Frame& finish();

  [[nodiscard]] bool ended() const { return ended_; }
  [[nodiscard]] bool finished() const { return final_.has_value(); }
  [[nodiscard]] const std::string& end_reason() const { return end_reason_; }
  [[nodiscard]] const Detectors& detectors() const { return det_; }
  [[nodiscard]] uint64_t frames() const { return frames_; }
  [[nodiscard]] double elapsed_s() const { return elapsed_s_; }

 private:
  std::optional<model::Frame> end(std::string why);
  FrameFeed& src_;
  Detectors det_;
  StopPolicy stop_;
  std::vector<FrameSink*> sinks_;
  bool ended_ = false;
  std::string end_reason_;
  uint64_t frames_ = 0;
  double elapsed_s_ = 0;
  std::optional<model::Frame> final_;
};

}  // namespace schedscope::detect
