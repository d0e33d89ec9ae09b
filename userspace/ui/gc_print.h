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
// With "goroutine": the runtime's runnable -> running histogram (go_latency_json).
nlohmann::json sched_latency_json(const model::Frame& f);
nlohmann::json go_latency_json(const model::GoLatency& g);
// Lines under the frame header ("   gc: ...", goroutines, goroutine scheduling latency).
void print_gc_text(const model::Frame& f, FILE* out);

}  // namespace schedscope::ui
