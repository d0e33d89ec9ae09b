// `schedscope report`: a recording fed through the same Model and Detectors frame by
// frame, summarized for the person who reads it first: target, duration, per P (time per
// status, schedtick rates, Gs seen), per thread (on-CPU, off-CPU by reason, top blocking
// syscalls), per syscall, thread creations (rate, sites) and the alerts, checked against
// the alerts raised live while recording. JSON for scripts, text for people.
#pragma once
#include <cstdio>

#include <nlohmann/json.hpp>

#include "detect/detectors.h"
#include "record/reader.h"

namespace schedscope::record {

// The whole report as JSON (keys documented in docs/recording.md). "final" holds the
// totals frame in the same form as `top --json`'s final object.
nlohmann::json build_report(const Recording& rec, const detect::DetectOptions& detect);
void print_report(const nlohmann::json& report, FILE* out);

}  // namespace schedscope::record
