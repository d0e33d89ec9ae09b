// A source of frames, live or recorded: what the live view (ui/live.h) renders and what
// replay and a live Observer provide. See ui/live.h for which thread calls what.
#pragma once
#include <optional>
#include <string>

#include "model/model.h"

namespace schedscope::model {

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Blocks up to one interval; returns the next frame (with detector alerts filled),
  // or nullopt when the source is finished (target exited, end of recording).
  virtual std::optional<Frame> next() = 0;
  // The totals-since-start frame shown when the source ends.
  virtual std::optional<Frame> final_frame() = 0;
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

}  // namespace schedscope::model
