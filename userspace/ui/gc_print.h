// JSON and text rendering of the GC statistics and the goroutine census.
#pragma once
#include <cstdio>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace schedscope::ui {

nlohmann::json gc_json(const gc::GcStats& g);
nlohmann::json census_json(const gc::Census& c);
// Scheduler latency: the kernel run-queue latency histogram (runnable -> running of the
// target's threads) with p50/p99/p999.
nlohmann::json sched_latency_json(const model::Frame& f);
// One or two lines under the frame header ("   gc: ..."); nothing when GC is off.
void print_gc_text(const model::Frame& f, FILE* out);

}  // namespace schedscope::ui
