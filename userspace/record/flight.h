// The flight recorder's memory: the last N seconds of everything the observer consumed,
// cut at frame markers, ready to be written as an ordinary recording when an alert fires
// (`top --flight-recorder 30s --dir DIR`). What a window needs that was recorded before
// it started (thread names, symbols, late Go metadata, the goroutine baseline) is kept
// aside and written first, so each dump is self-contained like any recording.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "record/sink.h"
#include "util/expected.h"

namespace schedscope::record {

struct FlightOptions {
  double window_s = 30;              // keep at least this much history
  size_t max_bytes = size_t(256) << 20;  // and never more than this in memory (oldest frames go)
};

class FlightBuffer : public RecordSink {
 public:
  explicit FlightBuffer(FlightOptions opt) : opt_(opt) {}

  void raw(const ss_hdr* rec, size_t size) override;
  void kernel(const probe::KernelSnapshot& s) override;
  void go(const go::SchedSample& s) override;
  void name(uint32_t tid, const std::string& name) override;
  void symbols(const std::vector<SymbolEntry>& syms) override;
  // Closes the current frame: the records since the previous marker plus this marker.
  // The window is then trimmed to window_s (measured from the oldest frame kept, which
  // a dump turns into the baseline) and to max_bytes.
  void frame(const nlohmann::json& marker) override;
  void info(const nlohmann::json& info) override;
  void goroutine_baseline(uint64_t live) override;
  void census(const gc::Census& c) override;
  void sched_latency(const go::TimeHist& h) override;  // kRecGoSchedLatency

  struct DumpResult {
    std::string path;
    double span_s = 0;     // covered by the frames written after the baseline
    uint64_t frames = 0;   // shown frames written
    uint64_t records = 0;  // records written (all kinds)
    uint64_t events = 0;   // ring-buffer records written
    std::vector<std::string> notices;  // stale temporaries removed from the directory
  };
  // Writes the window as a recording at `path` (temporary name, fsync, rename, mode
  // 0600): meta, the kept-aside state, the frames (the oldest as the baseline), then
  // `final_marker` (a kFinal frame marker) and a trailer that `trailer` extends.
  [[nodiscard]] Expected<DumpResult> dump(const std::string& path, const nlohmann::json& meta,
                                          const nlohmann::json& final_marker,
                                          const nlohmann::json& trailer) const;

  [[nodiscard]] size_t frames() const { return segs_.size(); }
  [[nodiscard]] size_t bytes() const { return bytes_ + cur_.size(); }
  // Seconds between the oldest frame kept (the baseline) and the newest.
  [[nodiscard]] double span_s() const;
  // Frames dropped to stay under max_bytes before they aged out of the window.
  [[nodiscard]] uint64_t trimmed_for_bytes() const { return trimmed_for_bytes_; }

 private:
  struct Segment {
    std::vector<uint8_t> records;  // encoded records (append_record)
    nlohmann::json marker;
    uint64_t ts_ns = 0;
    uint64_t count = 0, raw = 0;
  };
  void add(RecordKind kind, const void* payload, size_t len);
  void trim();

  FlightOptions opt_;
  std::deque<Segment> segs_;
  ByteWriter cur_;
  uint64_t cur_count_ = 0, cur_raw_ = 0;
  size_t bytes_ = 0;  // of segs_
  uint64_t trimmed_for_bytes_ = 0;
  uint64_t last_ts_ = 0;  // of the last kernel snapshot
  // State from before any window.
  std::map<uint32_t, std::string> names_;
  std::map<uint64_t, SymbolEntry> syms_;
  nlohmann::json info_ = nlohmann::json::object();
  bool have_baseline_ = false;
  uint64_t go_baseline_ = 0;
};

}  // namespace schedscope::record
