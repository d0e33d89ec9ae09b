// The top-style live view (ncurses). It renders frames from a FrameSource: a live
// Observer (top) or a recording (replay), so both share one view.
//
// Threads: run_live calls next() and final_frame() from one worker thread of its own,
// and everything else (live, can_seek, seek, set_speed, position_s, length_s, cost,
// end_reason, interrupt) from the UI thread, possibly while next() is blocked. A source
// synchronizes those itself. For a source that is not live(), pausing stops the calls to
// next() (one call per step while paused); a live source keeps being drained while the
// display is frozen, so nothing is lost.
#pragma once
#include <optional>
#include <string>

#include "model/model.h"

namespace schedscope::ui {

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Blocks up to one interval; returns the next frame (with detector alerts filled),
  // or nullopt when the source is finished (target exited, end of recording).
  virtual std::optional<model::Frame> next() = 0;
  // The totals-since-start frame shown when the source ends.
  virtual std::optional<model::Frame> final_frame() = 0;
  [[nodiscard]] virtual bool live() const = 0;  // live: pause freezes the display only
  // Replay controls (no-ops for a live source).
  virtual bool can_seek() const { return false; }
  virtual void seek(double /*t_s*/) {}
  virtual void set_speed(double /*x*/) {}
  [[nodiscard]] virtual double position_s() const { return 0; }
  [[nodiscard]] virtual double length_s() const { return 0; }
  // Probe cost line for the header ("probes: tp_btf sched x4, ~N events/s").
  [[nodiscard]] virtual std::string cost() const { return ""; }
  // Asks a blocked next() to return soon (nullopt is fine): the user quit or a stop
  // signal arrived. Called from the UI thread; must be async-safe with next().
  virtual void interrupt() {}
  // Why next() returned nullopt, for the end banner ("target exited", "end of
  // recording"); "" gives a generic text.
  [[nodiscard]] virtual std::string end_reason() const { return ""; }
};

struct LiveOptions {
  std::string title = "schedscope";
  // Rewrite the whole screen with every frame (not only what changed): repairs what
  // another writer to the terminal (a launched target's output) left on it.
  bool repaint_each_frame = false;
};

// Runs until q / the source ends / a stop signal; restores the terminal on every path.
int run_live(FrameSource& src, const LiveOptions& opt);

}  // namespace schedscope::ui
