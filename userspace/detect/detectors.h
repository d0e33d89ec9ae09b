// Detectors over the model's frames: stuck P, blocked M, syscall storm, thread limit.
// The same code runs live (top) and on recordings (report, replay).
// Definitions: README.md "Alerts" (each alert's rule, thresholds and advice).
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
  // Pauses a runtime adapter reports over USDT: safepoint_pause / gc_pause.
  double pause_ms = 100;     // a single stop-the-world pause at least this long ...
  double pause_share = 0.1;  // ... or this share of the interval's wall time in pauses
  // gc_stall: while mark assists took at least gc_assist_min of GOMAXPROCS (the program
  // pays for the GC), minimum mutator utilisation of the interval at 10 ms windows under
  // gc_mmu_10ms_min (a long pause) or at 100 ms windows under gc_mmu_100ms_min
  double gc_mmu_10ms_min = 0.2;
  double gc_mmu_100ms_min = 0.8;
  double gc_assist_min = 0.02;
  // stw_stall: with no mark assist (under gc_assist_min), the same MMU thresholds, while
  // stop-the-world pauses take at least stw_share_min of the wall time in at least
  // stw_rate_min pauses per second (a loop, not a few GC pauses stretched by the host)
  double stw_share_min = 0.1;
  double stw_rate_min = 20;
  // netpoll_saturation: at least this many goroutines parked in IO wait, and this share
  // of the live ones, while the Ps use under netpoll_cpu_max of GOMAXPROCS
  int netpoll_min_io_wait = 50;
  double netpoll_io_frac = 0.5;
  double netpoll_cpu_max = 0.5;
};

// Runtime thread names of these tids grouped by pattern (digits folded), e.g.
// "pool-1-thread-* (40), main (1)" (pauses.cpp).
std::string name_groups(const model::Frame& f, const std::vector<uint32_t>& tids);

// What the detectors found in one frame: the active alerts and those that cleared at
// it, and the notices (shown, not alerted: blocked Ms whose P was handed off).
struct Detection {
  std::vector<Alert> alerts;
  std::vector<Alert> notices;
};

// Puts a detection into the frame that is shown or written (Frame::alerts, ::notices):
// the one place a frame receives its alerts.
void attach(model::Frame& f, Detection d);

class Detectors {
 public:
  explicit Detectors(DetectOptions o = {}) : opt_(o) {}
  // Evaluates one frame (in order: each call advances the detectors' state) and returns
  // the active alerts and those that cleared now, with the notices.
  [[nodiscard]] Detection evaluate(const model::Frame& f);
  [[nodiscard]] const std::vector<Alert>& history() const { return history_; }
  // Every alert ever raised (history + active), oldest first.
  [[nodiscard]] std::vector<Alert> all() const;

 private:
  struct PTrack {
    uint32_t schedtick = 0, syscalltick = 0;
    uint64_t unchanged_since_ns = 0;
    uint64_t last_seen_ns = 0;
  };
  void stuck_p(const model::Frame& f, std::map<std::string, Alert>& now);
  void storm(const model::Frame& f, std::map<std::string, Alert>& now);
  void pauses(const model::Frame& f, std::map<std::string, Alert>& now);  // pauses.cpp
  void gc_stall(const model::Frame& f, std::map<std::string, Alert>& now);  // gc_detectors.cpp
  void stw_stall(const model::Frame& f, std::map<std::string, Alert>& now);  // gc_detectors.cpp
  void netpoll(const model::Frame& f, std::map<std::string, Alert>& now);   // gc_detectors.cpp
  DetectOptions opt_;
  std::map<int32_t, PTrack> ptrack_;
  std::deque<std::pair<uint64_t, uint64_t>> creations_;  // (ts, creations_total)
  std::map<std::string, Alert> active_;
  std::vector<Alert> history_;
};

}  // namespace schedscope::detect
