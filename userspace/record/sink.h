// Where the recorder puts what the observer consumes: a recording file (RecordingWriter)
// or the flight recorder's in-memory window (FlightBuffer). The model's inputs
// (model/inputs.h), plus what only a recording holds: symbols, frame markers, info.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gc/gc.h"
#include "model/inputs.h"
#include "record/format.h"

namespace schedscope::record {

class RecordSink : public model::Inputs {
 public:
  virtual void symbols(const std::vector<SymbolEntry>& syms) = 0;
  virtual void frame(const nlohmann::json& marker) = 0;  // kRecFrame
  virtual void info(const nlohmann::json& info) = 0;     // kRecInfo
};

}  // namespace schedscope::record
