// The JSON of a Frame and of its parts: batch `top --json`, recordings' reports, replay
// and the Perfetto export all write frames through these. The keys are a stable
// interface: scripts and tests rely on them and README.md documents them.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace schedscope::model {

nlohmann::json frame_to_json(const Frame& f);
// The same text as dump_json(frame_to_json(f)), cheaper: the thread rows and creations (what
// grows with the target) are written straight into the string. For output only.
std::string frame_json_text(const Frame& f);
// An ss_offcpu reason (SS_OFF_*) -> "preempted" | "sleep" | "disk" | "other".
const char* offcpu_reason_name(uint32_t reason);

nlohmann::json gc_json(const gc::GcStats& g);
nlohmann::json census_json(const gc::Census& c);
// Scheduler latency: the kernel run-queue latency histogram (runnable -> running of the
// target's threads) with p50/p99/p999.
// With "goroutine": the runtime's runnable -> running histogram (go_latency_json).
nlohmann::json sched_latency_json(const Frame& f);
nlohmann::json go_latency_json(const GoLatency& g);

}  // namespace schedscope::model
