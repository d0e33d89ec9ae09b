// The batch text printer of a Frame (the JSON form is model::frame_to_json,
// model/frame_json.h).
#pragma once
#include <cstdio>

#include "model/model.h"

namespace schedscope::ui {

void print_text(const model::Frame& f, FILE* out, int max_threads = 40);

}  // namespace schedscope::ui
