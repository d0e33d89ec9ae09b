// Detectors over the model's frames: stuck P, blocked M, syscall storm, thread limit.
// The same code runs live (top) and on recordings (report, replay).
// Definitions: ../shared/DESIGN.md "Definitions the detectors use" and README.md "Alerts".
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "detect/alert.h"
#include "model/model.h"

namespace schedscope::detect {

struct DetectOptions {
  double stuck_ms = 1000;      // P bound to an M blocked in the kernel, ticks frozen, this long
  double blocked_m_ms = 1000;  // report an M blocked in a syscall after its P was handed off
  double storm_rate = 10;      // thread creations per second (over storm_window_s) ...
  double storm_window_s = 3;
  int storm_threads = 50;           // ... with at least this many threads ...
  double storm_blocked_frac = 0.5;  // ... most of them blocked in syscalls
  double thread_limit_frac = 0.8;   // warn at this share of the runtime's thread limit
  size_t history = 200;             // alerts kept after they clear
  // Pauses a runtime adapter reports over USDT (issue 7): safepoint_pause / gc_pause.
  double pause_ms = 100;     // a single stop-the-world pause at least this long ...
  double pause_share = 0.1;  // ... or this share of the interval's wall time in pauses
};

// Runtime thread names of these tids grouped by pattern (digits folded), e.g.
// "pool-1-thread-* (40), main (1)" (pauses.cpp).
std::string name_groups(const model::Frame& f, const std::vector<uint32_t>& tids);

class Detectors {
 public:
  explicit Detectors(DetectOptions o = {}) : opt_(o) {}
  // Evaluates one frame; fills f.alerts with the active alerts and those that cleared now.
  void evaluate(model::Frame& f);
  [[nodiscard]] const std::vector<Alert>& history() const { return history_; }
  // Every alert ever raised (history + active), oldest first.
  [[nodiscard]] std::vector<Alert> all() const;

 private:
  struct PTrack {
    uint32_t schedtick = 0, syscalltick = 0;
    uint64_t unchanged_since_ns = 0;
    uint64_t last_seen_ns = 0;
  };
  void stuck_p(model::Frame& f, std::map<std::string, Alert>& now);
  void storm(model::Frame& f, std::map<std::string, Alert>& now);
  void pauses(model::Frame& f, std::map<std::string, Alert>& now);  // pauses.cpp
  DetectOptions opt_;
  std::map<int32_t, PTrack> ptrack_;
  std::deque<std::pair<uint64_t, uint64_t>> creations_;  // (ts, creations_total)
  std::map<std::string, Alert> active_;
  std::vector<Alert> history_;
};

}  // namespace schedscope::detect
