// What a model consumes, in the order it consumes it: ring-buffer records, kernel
// snapshots, Go runtime samples, /proc thread names, the goroutine baseline, goroutine
// censuses and reads of the runtime's scheduling-latency histogram. A live observation
// hands each input to its model and to every tap it was given (a recorder); a recording
// stores them in this order and replays them into a model.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "gc/gc.h"
#include "go/runtime_reader.h"
#include "go/timehist.h"
#include "probe/session.h"
#include "schedscope.h"

namespace schedscope::model {

class Inputs {
 public:
  virtual ~Inputs() = default;
  virtual void raw(const ss_hdr* rec, size_t size) = 0;  // already size-checked
  virtual void kernel(const probe::KernelSnapshot& s) = 0;
  virtual void go(const go::SchedSample& s) = 0;
  virtual void name(uint32_t tid, const std::string& name) = 0;
  virtual void goroutine_baseline(uint64_t live) = 0;  // (--goroutines) live at attach
  virtual void census(const gc::Census& c) = 0;
  virtual void sched_latency(const go::TimeHist& h) = 0;
};

}  // namespace schedscope::model
