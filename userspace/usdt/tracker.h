// The USDT side of the model: the probe table, hit counts per thread, the
// runtime adapters' thread names and stop-the-world periods. Fed only by ring-buffer
// records (SS_EV_USDT*, live or from a recording), so replay rebuilds exactly what the
// live view showed.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "schedscope.h"

namespace schedscope::usdt {

struct ProbeInfo {
  uint32_t index = 0;
  uint32_t role = SS_USDT_ROLE_GENERIC;
  uint32_t pause = SS_PAUSE_NONE;
  uint32_t locations = 0;
  std::string runtime, provider, name, file;
  [[nodiscard]] std::string full_name() const { return provider + ":" + name; }
};

struct ThreadHits {
  uint32_t tid = 0;
  std::string name;
  uint64_t hits = 0;
};

struct ProbeRow {
  std::string probe;  // provider:name
  std::string runtime;
  std::string role;   // generic | thread_start | thread_stop | pause_begin | pause_end
  std::string file;
  uint32_t locations = 0;
  uint64_t hits = 0;        // this interval (final: since attach)
  uint64_t total = 0;       // since attach
  double per_s = 0;
  std::vector<ThreadHits> threads;  // by hits, same span as `hits` (at most 10)
};

// One hit of a probe with its arguments (probes that ship events).
struct Hit {
  uint64_t ts_ns = 0;
  uint32_t tid = 0;
  std::string probe;
  std::vector<int64_t> args;
  std::string str;
};

// A stop-the-world period: a HotSpot safepoint, a GC pause (HotSpot or CPython).
struct Pause {
  std::string kind;     // "safepoint" | "gc"
  std::string runtime;  // "hotspot" | "cpython"
  uint64_t start_ns = 0, end_ns = 0;
  uint32_t tid = 0;     // thread that ran it (HotSpot's VM thread, the collecting thread)
  int64_t arg = 0;      // gc: HotSpot "full" flag / CPython generation
  [[nodiscard]] double ms() const { return double(end_ns - start_ns) / 1e6; }
};

struct PauseStats {
  std::string kind, runtime;
  uint64_t count = 0;   // this interval (final: since attach)
  double total_ms = 0, max_ms = 0;
  double share = 0;     // of the wall time of the span
  double per_s = 0;
  uint64_t count_total = 0;
  double total_ms_total = 0, max_ms_total = 0;
  double ongoing_ms = 0;  // a pause still open at the frame (0: none)
};

// A runtime thread seen starting or stopping (HotSpot thread__start/stop).
struct RuntimeThread {
  uint32_t tid = 0;
  std::string name;
  int64_t id = -1;  // the runtime's own thread id (java.lang.Thread id)
  bool daemon = false;
  uint64_t start_ns = 0, stop_ns = 0;  // 0: not seen
};

struct UsdtStats {
  std::string runtime;  // from the adapter probes attached ("" when none)
  std::vector<ProbeRow> probes;
  std::vector<PauseStats> pauses;       // by kind
  std::vector<Pause> pause_list;        // this interval (final: since attach, at most 10000)
  std::vector<RuntimeThread> started;   // this interval (final: since attach, at most 10000)
  uint64_t threads_started = 0, threads_stopped = 0;  // since attach
  std::vector<Hit> hits;                // this interval (final: the last 1000) of generic probes
  uint64_t hits_dropped = 0;            // hits beyond the cap in the span
  [[nodiscard]] bool empty() const { return probes.empty(); }
};

class Tracker {
 public:
  // SS_EV_USDT, SS_EV_USDT_COUNT, SS_EV_USDT_PROBE (size checked against the header).
  void on_record(const ss_hdr* rec, size_t size);
  // Names the runtime gave its threads (tid -> name).
  [[nodiscard]] const std::map<uint32_t, std::string>& names() const { return names_; }
  [[nodiscard]] std::optional<std::string> name(uint32_t tid) const;
  // Builds the stats of the span since the previous call (final: since attach).
  // `thread_name` names a thread that the runtime did not.
  UsdtStats frame(uint64_t now_ns, double interval_s, bool final,
                  const std::map<uint32_t, std::string>& os_names);
  [[nodiscard]] const std::map<uint32_t, ProbeInfo>& probes() const { return probes_; }

 private:
  std::map<uint32_t, ProbeInfo> probes_;
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> counts_, counts_prev_;  // (probe, tid)
  std::map<uint32_t, std::string> names_;
  std::map<std::pair<uint32_t, uint32_t>, std::pair<uint64_t, int64_t>> open_;  // (pause, tid)
  std::vector<Pause> pauses_iv_, pauses_all_;
  std::map<std::string, PauseStats> pause_totals_;
  std::vector<RuntimeThread> started_iv_, started_all_;
  std::map<uint32_t, size_t> started_index_;  // tid -> index in started_all_
  uint64_t threads_started_ = 0, threads_stopped_ = 0;
  std::vector<Hit> hits_iv_, hits_all_;
  uint64_t hits_dropped_iv_ = 0, hits_dropped_all_ = 0;
  uint64_t start_ns_ = 0;
};

const char* role_name(uint32_t role);
const char* pause_kind_name(uint32_t pause);

nlohmann::json stats_to_json(const UsdtStats& s);
// Text lines for the batch output and the report (no trailing newline).
std::vector<std::string> stats_lines(const UsdtStats& s, bool final);

}  // namespace schedscope::usdt
