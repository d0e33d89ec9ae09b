// What `record` and the flight recorders (`top --flight-recorder`, the agent's) share: the
// Recorder, which hooks an observed process (app::Observed) and sends everything it consumes — plus the symbols of every
// PC the model symbolizes and one marker per frame — to a RecordSink, and the metadata
// that heads a recording.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/observe.h"
#include "detect/detectors.h"
#include "record/sink.h"

namespace schedscope::app {

std::string hostname();
// {"wall": ISO-8601 UTC, "wall_ns", "monotonic_ns"}: now.
nlohmann::json wall_now();
// The recording's metadata (docs/recording-format.md) without "capture", which the
// caller adds.
nlohmann::json recording_meta(Observed& o, const ObserveOptions& obs, const detect::DetectOptions& d,
                              const std::string& host, const nlohmann::json& start_time);
// Go metadata as recorded (version, offsets and their source, checks).
nlohmann::json go_meta(GoAttach& g);

// A tap of the observer (model/inputs.h): passes every input on to the sink, preceded by
// the symbols of the PCs the model looks up in it.
class Recorder : public model::Inputs {
 public:
  Recorder(record::RecordSink& w, const model::Symbolize* sym) : w_(w), sym_(sym) {}

  // Taps the observer (call from Observer::start's init, before it consumes).
  void hook(Observed& o);
  void raw(const ss_hdr* rec, size_t size) override;
  void kernel(const probe::KernelSnapshot& s) override;
  void go(const go::SchedSample& s) override;
  void name(uint32_t tid, const std::string& name) override;
  void goroutine_baseline(uint64_t live) override;
  void census(const gc::Census& c) override;
  void sched_latency(const go::TimeHist& h) override;
  // Writes the symbols of these PCs that are new or changed since last written (the
  // symbolizer's answer can change once the load bias is known).
  // with_start: also Symbolize::start_func (goroutine start PCs).
  void symbols(const std::vector<uint64_t>& pcs, bool with_start);
  // The end of one frame. Shown frames carry the live alerts and the stacks the
  // observer walked from /proc/PID/mem after building the frame.
  void marker(record::FrameMode mode, const Observed& o, const model::Frame* f,
              const std::vector<detect::Alert>* alerts);

  void set_target(const nlohmann::json& t) { last_target_ = t; }
  [[nodiscard]] uint64_t drops() const { return drops_; }

 private:
  record::RecordSink& w_;
  const model::Symbolize* sym_;
  std::map<uint64_t, record::SymbolEntry> table_;
  nlohmann::json last_target_;
  uint64_t drops_ = 0;
};

}  // namespace schedscope::app
