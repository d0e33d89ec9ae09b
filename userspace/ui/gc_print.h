// Text rendering of the GC statistics, the goroutine census and the goroutine scheduling
// latency (their JSON: model/frame_json.h).
#pragma once
#include <cstdio>

#include "model/model.h"

namespace schedscope::ui {

// Lines under the frame header ("   gc: ...", goroutines, goroutine scheduling latency).
void print_gc_text(const model::Frame& f, FILE* out);

}  // namespace schedscope::ui
