// Where the recorder puts what the observer consumes: a recording file (RecordingWriter)
// or the flight recorder's in-memory window (FlightBuffer).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gc/gc.h"
#include "record/format.h"

namespace schedscope::record {

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void raw(const ss_hdr* rec, size_t size) = 0;
  virtual void kernel(const probe::KernelSnapshot& s) = 0;
  virtual void go(const go::SchedSample& s) = 0;
  virtual void name(uint32_t tid, const std::string& name) = 0;
  virtual void symbols(const std::vector<SymbolEntry>& syms) = 0;
  virtual void frame(const nlohmann::json& marker) = 0;  // kRecFrame
  virtual void info(const nlohmann::json& info) = 0;     // kRecInfo
  virtual void goroutine_baseline(uint64_t live) = 0;    // kRecGoBaseline
  virtual void census(const gc::Census& c) = 0;          // kRecGoCensus
  virtual void sched_latency(const go::TimeHist& h) = 0;  // kRecGoSchedLatency
};

}  // namespace schedscope::record
