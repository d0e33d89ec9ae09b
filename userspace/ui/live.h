// The top-style live view (ncurses). It renders frames from a model::FrameSource
// (model/frame_source.h): a live Observer (top) or a recording (replay), so both share
// one view.
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

#include "model/frame_source.h"

namespace schedscope::ui {

struct LiveOptions {
  std::string title = "schedscope";
  // Rewrite the whole screen with every frame (not only what changed): repairs what
  // another writer to the terminal (a launched target's output) left on it.
  bool repaint_each_frame = false;
};

// Runs until q / the source ends / a stop signal; restores the terminal on every path.
int run_live(model::FrameSource& src, const LiveOptions& opt);

}  // namespace schedscope::ui
