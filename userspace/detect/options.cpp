#include "detect/options.h"

#include "util/json_out.h"

namespace schedscope::detect {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

const std::vector<ThresholdSpec>& threshold_specs() {
  using D = DetectOptions;
  static const std::vector<ThresholdSpec> specs = {
      {"--stuck-ms", "stuck_ms", &D::stuck_ms, "ms", -kInf, kInf,
       "stuck P: P bound to an M blocked in the kernel with frozen ticks this long"},
      {"--blocked-m-ms", "blocked_m_ms", &D::blocked_m_ms, "ms", -kInf, kInf,
       "blocked M: a G in a syscall this long after its P was handed off"},
      {"--storm-rate", "storm_rate", &D::storm_rate, "/s", -kInf, kInf,
       "syscall storm: thread creations per second"},
      {nullptr, "storm_window_s", &D::storm_window_s, "s", -kInf, kInf,
       "syscall storm: the window the creation rate is measured over"},
      {"--storm-threads", "storm_threads", &D::storm_threads, "threads", -kInf, kInf,
       "syscall storm: at least this many threads"},
      {"--storm-blocked", "storm_blocked_frac", &D::storm_blocked_frac, "share", 0, 1,
       "syscall storm: share of threads blocked in syscalls, at the instant or on average over the interval (0-1)"},
      {"--pause-ms", "pause_ms", &D::pause_ms, "ms", -kInf, kInf,
       "safepoint/GC pause (USDT runtimes): alert on a single pause this long (ms)"},
      {"--pause-share", "pause_share", &D::pause_share, "share", 0, 1,
       "safepoint/GC pause: alert when pauses take this share of the wall time (0-1)"},
      {"--thread-limit-warn", "thread_limit_frac", &D::thread_limit_frac, "share", 0, 1,
       "warn at this share of the runtime's thread limit (0-1)"},
      {nullptr, "history", &D::history, "alerts", 0, 100000, "alerts kept after they clear"},
      {"--gc-mmu-10ms", "gc_mmu_10ms_min", &D::gc_mmu_10ms_min, "share", 0, 1,
       "GC stall: minimum mutator utilisation at 10 ms windows under this (0-1)"},
      {"--gc-mmu-100ms", "gc_mmu_100ms_min", &D::gc_mmu_100ms_min, "share", 0, 1,
       "GC stall: ... or at 100 ms windows under this (0-1) ..."},
      {"--gc-assist", "gc_assist_min", &D::gc_assist_min, "share", 0, 1,
       "GC stall: only while mark assists take at least this share of GOMAXPROCS (0-1)"},
      {"--stw-share", "stw_share_min", &D::stw_share_min, "share", 0, 1,
       "stop-the-world stall (no mark assist): pauses take this share of the time (0-1) ..."},
      {"--stw-rate", "stw_rate_min", &D::stw_rate_min, "/s", -kInf, kInf,
       "stop-the-world stall: ... in at least this many pauses per second"},
      {"--netpoll-io-wait", "netpoll_min_io_wait", &D::netpoll_min_io_wait, "goroutines", -kInf,
       kInf, "netpoller saturation: at least this many goroutines in IO wait"},
      {"--netpoll-io-frac", "netpoll_io_frac", &D::netpoll_io_frac, "share", 0, 1,
       "netpoller saturation: ... and this share of the live goroutines (0-1)"},
      {"--netpoll-cpu-max", "netpoll_cpu_max", &D::netpoll_cpu_max, "share", 0, 1,
       "netpoller saturation: while the process uses under this share of GOMAXPROCS (0-1)"},
  };
  return specs;
}

double threshold_value(const ThresholdSpec& s, const DetectOptions& d) {
  return std::visit([&](auto mp) { return double(d.*mp); }, s.field);
}

void copy_threshold(const ThresholdSpec& s, DetectOptions& to, const DetectOptions& from) {
  std::visit([&](auto mp) { to.*mp = from.*mp; }, s.field);
}

nlohmann::json thresholds_to_json(const DetectOptions& d) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& s : threshold_specs()) std::visit([&](auto mp) { j[s.key] = d.*mp; }, s.field);
  return j;
}

DetectOptions thresholds_from_json(const nlohmann::json& j, DetectOptions d) {
  if (!j.is_object()) return d;
  for (const auto& s : threshold_specs()) std::visit([&](auto mp) { json_get_num(j, s.key, d.*mp); }, s.field);
  if (d.history > 100000) d.history = 100000;
  return d;
}

}  // namespace schedscope::detect
