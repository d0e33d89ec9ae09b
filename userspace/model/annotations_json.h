// The `annotations` object of a frame's JSON (--annotations, docs/annotations.md), and
// its batch text, printed from that JSON so that `top`'s batch text and `report` (which
// has only the JSON of a recording's final frame) show the same tables.
#pragma once
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "annotations/tracker.h"

namespace schedscope::model {

// What an outside observer cannot see, said in every output that shows annotations.
extern const char* const kAnnotationsNotVisible;

nlohmann::json annotations_json(const annotations::Stats& s);
// The text block (a few lines per table) from annotations_json()'s object. `indent`
// prefixes every line.
void print_annotations_text(const nlohmann::json& a, FILE* out, const char* indent = "   ");
// Short state words for the SS_ANNOT_STATE_* code ("attached", "paused", ...).
const char* annotation_state_name(uint32_t state);

}  // namespace schedscope::model
