// The capacity section of a frame: the SS_EV_CAP_SAMPLE records (sampler counts and the
// cgroup, since attach) turned into per-interval evidence, joined with what the frame
// already holds (GOMAXPROCS, scheduling latency, census, GC, syscalls), and judged over a
// window of intervals (rules.h). Live and replayed recordings go through the same code.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "capacity/rules.h"
#include "schedscope.h"

namespace schedscope::model {
struct Frame;
}

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

class Tracker {
 public:
  Tracker();
  // Returns true when the record was a capacity record (consumed).
  bool on_record(const ss_hdr* rec, size_t size);
  // Fills f.capacity from f and the records seen since the previous frame.
  void fill(model::Frame& f);

 private:
  struct State;  // tracker.cpp: the latest records, the window, the run's totals
  std::shared_ptr<State> st_;
};

}  // namespace schedscope::capacity
