// The GC-stall and netpoller-saturation detectors (README "Alerts").
#include <algorithm>
#include <cstdio>

#include "detect/detectors.h"
#include "util/most_first.h"
#include "util/strfmt.h"

namespace schedscope::detect {

namespace {
double mib(double b) { return b / (1 << 20); }
}  // namespace

// GC stall: the GC's stop-the-world pauses, background workers and mark assists took so
// much of the Ps that the program's minimum mutator utilisation fell under a threshold.
void Detectors::gc_stall(const model::Frame& f, std::map<std::string, Alert>& now) {
  const gc::GcStats& g = f.gc;
  if (f.final || !g.enabled || g.mmu_10ms < 0) return;
  // The program must be paying for the GC itself (mark assists): a lone long pause with
  // no assist work is what an overloaded host does to any stop-the-world (measured: 20 ms
  // pauses of a healthy 9 MiB heap while other builds saturated the CPUs).
  if (g.assist_share < opt_.gc_assist_min) return;
  bool low10 = g.mmu_10ms < opt_.gc_mmu_10ms_min;
  bool low100 = g.mmu_100ms >= 0 && g.mmu_100ms < opt_.gc_mmu_100ms_min;
  if (!low10 && !low100) return;
  Alert a;
  a.kind = "gc_stall";
  a.severity = (g.mmu_10ms < 0.05 || g.stw_max_ms >= 10) ? "critical" : "warning";
  a.duration_ms = f.interval_s * 1000;
  a.message = strfmt(
      "GC took the program's CPU: MMU %.0f%% at 10 ms, %.0f%% at 100 ms (1 ms: %.0f%%); "
      "mark assists %.0f%% and mark workers %.0f%% of GOMAXPROCS=%d",
      g.mmu_10ms * 100, std::max(0.0, g.mmu_100ms) * 100, std::max(0.0, g.mmu_1ms) * 100,
      g.assist_share * 100, g.worker_share * 100, g.gomaxprocs);
  a.evidence.push_back(strfmt("GC cycles: %llu this interval, cycle #%llu since attach",
                           static_cast<unsigned long long>(g.cycles),
                           static_cast<unsigned long long>(g.cycles_total)));
  a.evidence.push_back(strfmt("stop-the-world: %llu pause(s), %.2f ms total, longest %.2f ms",
                           static_cast<unsigned long long>(g.stw_count), g.stw_ms,
                           g.stw_max_ms));
  a.evidence.push_back(strfmt("mark assist: %.1f ms CPU (%.0f%%), mark workers: %.1f ms CPU (%.0f%%)",
                           g.assist_ms, g.assist_share * 100, g.worker_ms,
                           g.worker_share * 100));
  if (g.rss_bytes)
    a.evidence.push_back(strfmt("heap growth: resident set %.1f MiB (%+.1f MiB this interval)",
                             mib(double(g.rss_bytes)), mib(double(g.rss_delta_bytes))));
  if (!g.top_assists.empty()) {
    std::string s = "goroutines assisting most:";
    for (const auto& r : g.top_assists)
      s += strfmt(" G%llu %.1f ms;", static_cast<unsigned long long>(r.goid), r.ms);
    s.pop_back();
    a.evidence.push_back(s);
    a.goid = g.top_assists.front().goid;
  }
  a.evidence.push_back(
      "allocation outpaces the GC: cut allocation on the hot path (pool or reuse buffers), "
      "shrink the live heap, or trade memory for CPU with GOGC / GOMEMLIMIT");
  now["gc_stall"] = a;
}

// What to do about a stop-the-world loop, by the reason that dominates (Go 1.21+ names
// it; older releases say only "stop the world").
namespace {
std::string stw_advice(const std::string& reason) {
  if (reason == "read mem stats")
    return "something calls runtime.ReadMemStats in a loop (a metrics exporter polling "
           "MemStats?): read runtime/metrics instead, which does not stop the world, or poll "
           "less often";
  if (reason == "goroutine profile" || reason == "goroutine profile cleanup" ||
      reason == "all goroutines stack trace")
    return "goroutine profiles or runtime.Stack(all=true) in a loop (a pprof endpoint "
           "scraped too often, a watchdog dumping stacks?): take them less often";
  if (reason == "GOMAXPROCS") return "runtime.GOMAXPROCS(n) is called over and over: set it once";
  if (reason == "start trace" || reason == "stop trace")
    return "runtime/trace is started and stopped over and over: trace for longer, less often";
  if (reason == "GC sweep termination" || reason == "GC mark termination")
    return "GC cycles with no mark assist: runtime.GC() or debug.FreeOSMemory() called in a "
           "loop, or a very low GOGC; let the pacer run the GC";
  return "find the caller that stops the world in a loop: runtime.ReadMemStats, runtime.GC, "
         "debug.FreeOSMemory, runtime.GOMAXPROCS, goroutine profiles, runtime.Stack(all=true)";
}
}  // namespace

// A stop-the-world stall: the program is stopped over and over with no mark assist, so
// it is not the GC's pacing but a caller (ReadMemStats, runtime.GC, GOMAXPROCS,
// goroutine profiles) stopping the world in a loop. Many pauses are required, not a few
// long ones: an overloaded host stretches a few GC pauses to tens of ms, which is not
// this program's doing.
void Detectors::stw_stall(const model::Frame& f, std::map<std::string, Alert>& now) {
  const gc::GcStats& g = f.gc;
  if (f.final || !g.enabled || g.mmu_10ms < 0 || f.interval_s <= 0) return;
  if (g.assist_share >= opt_.gc_assist_min) return;  // gc_stall's case
  const bool low10 = g.mmu_10ms < opt_.gc_mmu_10ms_min;
  const bool low100 = g.mmu_100ms >= 0 && g.mmu_100ms < opt_.gc_mmu_100ms_min;
  const double share = g.stw_ms / (f.interval_s * 1000);
  const double rate = double(g.stw_count) / f.interval_s;
  if ((!low10 && !low100) || share < opt_.stw_share_min || rate < opt_.stw_rate_min) return;
  const auto reasons = most_first(g.stw_reasons);
  const std::string top = reasons.empty() ? "stop the world" : reasons.front().first;
  Alert a;
  a.kind = "stw_stall";
  a.severity = (g.mmu_10ms < 0.05 || share >= 0.3) ? "critical" : "warning";
  a.duration_ms = f.interval_s * 1000;
  a.func = top;
  a.message = strfmt(
      "the world was stopped %.0f%% of the time: %.0f stop-the-world pauses/s (%s), MMU %.0f%% "
      "at 10 ms, %.0f%% at 100 ms; no mark assist: not the GC's pacing",
      share * 100, rate, top.c_str(), g.mmu_10ms * 100, std::max(0.0, g.mmu_100ms) * 100);
  std::string rs = "pauses by reason:";
  for (size_t i = 0; i < reasons.size() && i < 4; i++)
    rs += strfmt(" %s %llu;", reasons[i].first.c_str(),
                 static_cast<unsigned long long>(reasons[i].second));
  rs.pop_back();
  a.evidence.push_back(rs);
  a.evidence.push_back(strfmt("stop-the-world: %llu pause(s), %.1f ms total, longest %.2f ms, "
                              "mean %.0f us",
                              static_cast<unsigned long long>(g.stw_count), g.stw_ms,
                              g.stw_max_ms, g.stw_count ? 1000 * g.stw_ms / g.stw_count : 0.0));
  a.evidence.push_back(strfmt("GC cycles: %llu this interval; mark assist %.0f%%, mark workers "
                              "%.0f%% of GOMAXPROCS=%d",
                              static_cast<unsigned long long>(g.cycles), g.assist_share * 100,
                              g.worker_share * 100, g.gomaxprocs));
  if (!g.stw_callers.empty()) {
    const auto callers = most_first(g.stw_callers);
    uint64_t sampled = 0;
    for (const auto& c : callers) sampled += c.second;
    std::string cs = strfmt("stopped by (%llu sampled stacks):",
                            static_cast<unsigned long long>(sampled));
    for (size_t i = 0; i < callers.size() && i < 3; i++)
      cs += strfmt(" %s %llu;", callers[i].first.c_str(),
                   static_cast<unsigned long long>(callers[i].second));
    cs.pop_back();
    a.evidence.push_back(cs);
    const std::string& site = callers.front().first;
    if (site != "?") a.func = site.substr(0, site.find(' '));
  }
  a.evidence.push_back(stw_advice(top));
  now["stw_stall"] = a;
}

// Netpoller saturation: the Ps are idle and their run queues empty while many goroutines
// sit parked on network I/O: the program waits for the network, not for the scheduler.
void Detectors::netpoll(const model::Frame& f, std::map<std::string, Alert>& now) {
  if (f.final || !f.go || !f.census || f.census->read == 0) return;
  const gc::Census& c = *f.census;
  double scale = c.allglen > c.read ? double(c.allglen) / c.read : 1.0;  // partial read
  uint32_t io = 0;
  if (auto it = c.waiting_by_reason.find(gc::kWaitReasonIOWait); it != c.waiting_by_reason.end())
    io = it->second;
  double io_est = io * scale, live = c.live() * scale;
  if (io_est < opt_.netpoll_min_io_wait || io_est < opt_.netpoll_io_frac * live) return;
  int gmp = std::max(1, f.go->gomaxprocs);
  uint32_t runq = 0;
  int idle = 0;
  for (const auto& p : f.go->ps) {
    runq += p.runq;
    if (p.status == 0) idle++;
  }
  double cpu = 0;  // Ps' worth of CPU the process used this interval
  for (const auto& r : f.threads) cpu += r.oncpu_pct / 100.0;
  if (runq > uint32_t(gmp) || cpu > opt_.netpoll_cpu_max * gmp) return;
  int in_epoll = 0;
  for (const auto& r : f.threads)
    if (r.syscall == "epoll_wait" || r.syscall == "epoll_pwait") in_epoll++;
  bool lastpoll0 = f.go->lastpoll == 0;
  if (!in_epoll && !lastpoll0) return;
  Alert a;
  a.kind = "netpoll_saturation";
  a.severity = "warning";
  a.duration_ms = f.interval_s * 1000;
  a.message = strfmt(
      "%.0f goroutines parked on network I/O, Ps idle (CPU %.2f of GOMAXPROCS=%d), run queues "
      "empty: not a scheduler problem; look at the network, the backend, the connection pool",
      io_est, cpu, gmp);
  a.evidence.push_back(strfmt("goroutines: %.0f live, %.0f in IO wait (%.0f%%)%s", live, io_est,
                           live > 0 ? 100.0 * io_est / live : 0.0,
                           scale > 1 ? " (estimated from a partial allgs pass)" : ""));
  const auto reasons = c.waiting_by_name();
  std::string s = "waiting by reason:";
  for (size_t i = 0; i < reasons.size() && i < 4; i++)
    s += strfmt(" %s %u;", reasons[i].first.c_str(), reasons[i].second);
  s.pop_back();
  a.evidence.push_back(s);
  if (!c.io_wait_funcs.empty()) {
    std::string fs = "parked on the network in:";
    for (const auto& [fn, n] : c.io_wait_funcs) fs += strfmt(" %s %u;", fn.c_str(), n);
    fs.pop_back();
    a.evidence.push_back(fs);
    a.func = c.io_wait_funcs.front().first;
  }
  a.evidence.push_back(strfmt("Ps: %d of %d idle at the sample, %u runnable G(s) queued", idle,
                           gmp, runq));
  a.evidence.push_back(strfmt("netpoller: %d thread(s) blocked in epoll_wait%s", in_epoll,
                           lastpoll0 ? ", sched.lastpoll == 0 (an M is blocked in netpoll)" : ""));
  a.evidence.push_back(
      "where not to look: the scheduler (GOMAXPROCS, run queues). Where to look: backend "
      "latency, connection pool size and limits, network round trips, timeouts");
  now["netpoll_saturation"] = a;
}

}  // namespace schedscope::detect
