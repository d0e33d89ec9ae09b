// --annotations for a live observation: the control that has the session's
// AnnotationsAttacher (probe/attacher.h) put the runtime/trace uprobes (placed by
// annotations/probes.h) on the target once its Go offsets are in BPF, counts their hits
// each interval, enforces the hit-rate ceiling and the duty cycle, and reports its state
// as SS_EV_ANNOT_STATE records (so recordings carry it). The flags are rows of the
// observe options table (app/options.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "annotations.h"
#include "go/binary.h"
#include "probe/session.h"

namespace schedscope::app {

struct AnnotationsOptions {
  bool on = false;            // --annotations
  double max_rate = 20000;    // --annotations-max-rate: detach above this many hits/s (0: none)
  double duty_on_s = 0;       // --annotations-duty ON/PERIOD: attached ON seconds of every
  double duty_period_s = 0;   //   PERIOD (0: always)
};

// Parses --annotations-duty's ON/PERIOD ("2s/10s"): false unless 0 < ON <= PERIOD.
bool parse_duty(const std::string& v, double* on_s, double* period_s);

class AnnotationsControl {
 public:
  using Inject = std::function<void(const ss_hdr*, size_t)>;
  explicit AnnotationsControl(AnnotationsOptions o) : opt_(o) {}

  // The target cannot be probed (not Go, no offsets, --no-go): one OFF state with why.
  void unavailable(const std::string& why, const Inject& inject);
  // Once the Go offsets are in BPF: find the functions in /proc/PID/exe and attach.
  void attach(probe::Session& s, int pid, const go::BinaryInfo& bin, const Inject& inject);
  // Once per interval, before the model's frame: hits, ceiling, duty cycle; one state record.
  // The rate is over the time since the previous tick; the ceiling is judged only over
  // at least 200 ms.
  void tick(probe::Session& s, int pid, uint64_t now_ns, const Inject& inject);
  [[nodiscard]] bool attached() const { return attached_; }

 private:
  void emit(uint32_t state, uint32_t nprobes, const std::string& note, uint64_t now_ns,
            const Inject& inject);
  AnnotationsOptions opt_;
  probe::AnnotationProbeTargets probes_;  // /proc/PID/exe, (file offset, SS_ANNOT_* kind)
  std::string where_;      // "4 uprobes: runtime/trace.userTaskCreate+0xd, ..."
  bool found_ = false;     // probes_ resolved
  bool attached_ = false;  // links in place now
  bool ceiling_ = false;   // detached for good by the ceiling
  uint32_t state_ = SS_ANNOT_STATE_OFF;
  std::string note_;
  uint64_t hits_prev_ = 0;
  uint64_t on_ns_ = 0;          // attached time accumulated
  uint64_t attached_since_ = 0; // when the current attach began
  uint64_t period_start_ = 0;   // duty cycle: start of the current period
  uint64_t last_tick_ = 0;
};

}  // namespace schedscope::app
