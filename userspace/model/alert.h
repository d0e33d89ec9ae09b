// An alert raised by a detector, with the evidence behind it. A model type: frames carry
// them, recordings store them, printers show them; the detectors (detect/) make them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace schedscope::model {

struct Alert {
  std::string
      kind;  // stuck_p | syscall_storm | blocked_m | thread_limit | gc_stall | netpoll_saturation
  std::string severity;   // info | warning | critical
  uint64_t ts_ns = 0;     // when raised (monotonic)
  uint64_t since_ns = 0;  // when the condition started
  int32_t p = -1;
  int64_t m = -1;
  uint32_t tid = 0;
  uint64_t goid = 0;
  std::string func;                // the G's start function
  std::vector<std::string> stack;  // symbolized evidence stack (call site first)
  std::string syscall;
  double duration_ms = 0;
  bool handed_off = false;
  int threads = 0;
  std::string message;                // one human line
  std::vector<std::string> evidence;  // further human lines
  bool active = true;                 // still ongoing at this frame
  uint64_t last_ns = 0;  // frame at which the evidence was last updated
};

}  // namespace schedscope::model
