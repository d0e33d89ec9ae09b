// The capacity section as users see it: the `capacity` JSON object, the one-line summary
// of the live view's header and the batch text, and the detail lines of batch text and
// report. docs/capacity.md documents the keys.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "capacity/tracker.h"

namespace schedscope::capacity {

nlohmann::json to_json(const Section& s);
// "capacity: raise GOMAXPROCS yes · shard no · fewer goroutines no · CPU quota unknown"
// plus the numbers behind them in a few words.
std::string summary_line(const Section& s);
// One line per question: answer, because, advice.
std::vector<std::string> detail_lines(const Section& s);
// The same from a `capacity` JSON object (report text).
std::vector<std::string> detail_lines(const nlohmann::json& j);

}  // namespace schedscope::capacity
