// Batch (text) and JSON printers of a Frame. The JSON keys are a stable interface:
// scripts and tests rely on them and README.md documents them.
#pragma once
#include <cstdio>
#include <nlohmann/json.hpp>

#include "model/model.h"

namespace schedscope::ui {

nlohmann::json frame_to_json(const model::Frame& f);
void print_text(const model::Frame& f, FILE* out, int max_threads = 40);
// "sleeping" -> short reason label used in text output.
const char* offcpu_reason_name(uint32_t reason);

}  // namespace schedscope::ui
