// --annotations in the live view: the header fields (one short field each): state and
// cost, the regions with the most time this interval, the task types, the slowest task
// since attach, the last log.
#pragma once
#include <string>
#include <vector>

#include "annotations/tracker.h"

namespace schedscope::ui {

std::vector<std::string> annotations_live_fields(const annotations::Stats& s, bool narrow);

}  // namespace schedscope::ui
