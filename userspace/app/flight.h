// `top --flight-recorder 30s --dir DIR` and `agent --flight-recorder 30s --dir DIR` (one
// instance per target): keep the last N seconds of what one observed process's model
// consumed in memory and write them as a recording when an alert fires — the capture of
// an incident that nobody was recording. One dump per alert, at most one per window
// (alerts raised meanwhile are covered by the next dump, written as soon as the window
// allows); a dump still owed when top ends is written then.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "app/observe.h"
#include "app/recorder.h"
#include "detect/detectors.h"
#include "detect/pipeline.h"
#include "record/flight.h"

namespace schedscope::app {

struct FlightRecorderOptions {
  double window_s = 0;      // 0: off
  std::string dir = ".";    // where dumps go (default recording names)
  uint64_t max_bytes = 0;   // cap of the recordings in dir (oldest deleted), 0: none
  size_t memory_bytes = size_t(256) << 20;  // cap of the window in memory
  // File names carry the kinds of the alerts that made them
  // ("schedscope-HOST-PID-KIND-TIME.sched"; the agent's, where many targets share a dir).
  bool kind_in_name = false;
};

// A sink of the pipeline (detect/pipeline.h) and a tap of one observed process (through
// its Recorder). What it has to tell (files written, errors) waits in take_lines().
class FlightRecorder : public detect::FrameSink {
 public:
  FlightRecorder(FlightRecorderOptions opt, const ObserveOptions& obs, const detect::DetectOptions& d);

  // Taps the process: call before it consumes its baseline (Observer::start's init
  // callback; the agent when it adds a target).
  void attach(Observed& o);
  // After the detectors ran on a shown frame: after_frame() with every alert raised.
  void on_shown(const model::Frame& f, const detect::Pipeline& p) override;
  // The final frame: finish() with its alerts.
  void on_final(const model::Frame& f, const detect::Pipeline& p) override;
  // The lines to tell the user since the last call ("flight recorder: wrote ...").
  std::vector<std::string> take_lines();
  // What it said last, short ("wrote PATH"), for the live view's header; "" before.
  [[nodiscard]] const std::string& last_note() const { return note_; }
  // After the detectors ran on a shown frame: buffers its marker, and writes a dump
  // when a new alert asks for one. Returns lines to tell the user (files written,
  // errors).
  std::vector<std::string> after_frame(Observed& o, const model::Frame& f,
                                       const std::vector<detect::Alert>& all);
  // When the observation ends: the dump still owed, if any.
  std::vector<std::string> finish(const Observed& o, const std::vector<detect::Alert>& all);
  // Called after each file written, with the alerts that made it write.
  std::function<void(const std::string& path, const std::vector<detect::Alert>& triggers)> on_written;

  [[nodiscard]] const std::vector<std::string>& written() const { return written_; }
  [[nodiscard]] std::string status() const;  // one line for the view

 private:
  std::vector<std::string> dump(const Observed& o, const std::vector<detect::Alert>& all, uint64_t now_ns);
  // One line to tell: "flight recorder: " + what + detail; what is also the short note.
  void say(std::vector<std::string>& out, const std::string& what, const std::string& detail = "");
  void keep(std::vector<std::string> lines);

  Observed* o_ = nullptr;
  std::vector<std::string> lines_;
  std::string note_;

  FlightRecorderOptions opt_;
  ObserveOptions obs_;
  detect::DetectOptions det_;
  std::string host_;
  nlohmann::json meta_;  // captured at attach; refreshed with late Go metadata
  record::FlightBuffer buf_;
  std::unique_ptr<Recorder> rec_;
  std::map<std::string, uint64_t> seen_;  // alert key -> ts raised
  std::vector<detect::Alert> triggers_;   // new alerts not yet in a dump
  uint64_t last_dump_ns_ = 0;
  std::vector<std::string> written_;
  std::set<std::string> told_;  // rotation skips already reported
};

}  // namespace schedscope::app
