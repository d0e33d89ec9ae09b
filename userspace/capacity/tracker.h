// The capacity section of a frame: the SS_EV_CAP_SAMPLE records (sampler counts and the
// cgroup, since attach) turned into per-interval evidence, joined with what the frame
// already holds (GOMAXPROCS, scheduling latency, census, GC, syscalls), and judged over a
// window of intervals (rules.h). Live and replayed recordings go through the same code.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "capacity/rules.h"
#include "gc/gc.h"
#include "schedscope.h"

namespace schedscope::capacity {

struct Section {
  bool present = false;    // a Go target, or capacity records seen
  bool final = false;      // totals since attach: verdicts are the run's strongest sustained ones
  Evidence interval;       // this interval (final: since attach)
  double sample_hz = 0;    // the P sampler's nominal rate
  double window_s = 0;     // the span the verdicts looked at
  std::vector<Verdict> verdicts;  // one per question, in kQuestions order
  std::vector<double> verdict_at_s;  // (final) when each verdict was first reached (-1: never)
};

// What the capacity section reads of the rest of a frame. The model fills it from the
// sections it built before (model/model.cpp), so this layer stays below the model.
struct FrameFacts {
  double interval_s = 0;  // 0: the baseline frame
  double elapsed_s = 0;
  bool final = false;
  std::string go_version;
  int gomaxprocs = 0;  // 0: unknown
  bool latency_available = false;
  uint64_t latency_samples = 0;
  double latency_p99_us = 0;
  const gc::Census* census = nullptr;  // the last goroutine census, if any
  double gc_share = 0;                 // GC assist + worker share of the interval
  double stw_ms = 0;
  double syscalls_per_s = 0;
  double rq_p99_us = 0;   // kernel run-queue wait p99
  double cpu_cores = 0;   // the target's threads' on-CPU time, in cores
};

class Tracker {
 public:
  Tracker();
  // Returns true when the record was a capacity record (consumed).
  bool on_record(const ss_hdr* rec, size_t size);
  // The capacity section of a frame, from its facts and the records seen since the
  // previous frame.
  Section fill(const FrameFacts& f);

 private:
  struct State;  // tracker.cpp: the latest records, the window, the run's totals
  std::shared_ptr<State> st_;
};

}  // namespace schedscope::capacity
