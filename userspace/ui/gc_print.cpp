#include "ui/gc_print.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace schedscope::ui {

using nlohmann::json;

namespace {
json r3(double v) { return v < 0 ? json(nullptr) : json(std::round(v * 1000) / 1000); }
}  // namespace

json gc_json(const gc::GcStats& g) {
  json reasons = json::object();
  for (const auto& [k, v] : g.stw_reasons) reasons[k] = v;
  json callers = json::object();
  for (const auto& [k, v] : g.stw_callers) callers[k] = v;
  json top = json::array();
  for (const auto& a : g.top_assists) top.push_back({{"goid", a.goid}, {"ms", r3(a.ms)}});
  json periods = json::array();
  for (const auto& p : g.periods)
    periods.push_back({{"kind", p.kind}, {"what", p.what}, {"cycle", p.cycle},
                       {"start_ns", p.start_ns}, {"end_ns", p.end_ns},
                       {"ms", r3(double(p.end_ns - p.start_ns) / 1e6)}});
  return {{"enabled", g.enabled},
          {"note", g.note},
          {"cycles", g.cycles},
          {"cycles_total", g.cycles_total},
          {"in_cycle", g.in_cycle},
          {"gcphase", g.gcphase},
          {"stw_count", g.stw_count},
          {"stw_ms", r3(g.stw_ms)},
          {"stw_max_ms", r3(g.stw_max_ms)},
          {"stw_reasons", reasons},
          {"stw_callers", callers},
          {"worker_ms", r3(g.worker_ms)},
          {"assist_ms", r3(g.assist_ms)},
          {"idle_worker_ms", r3(g.idle_worker_ms)},
          {"worker_share", r3(g.worker_share)},
          {"assist_share", r3(g.assist_share)},
          {"mmu", {{"1ms", r3(g.mmu_1ms)}, {"10ms", r3(g.mmu_10ms)}, {"100ms", r3(g.mmu_100ms)}}},
          {"gomaxprocs", g.gomaxprocs},
          {"rss_bytes", g.rss_bytes},
          {"rss_delta_bytes", g.rss_delta_bytes},
          {"samples", g.samples},
          {"top_assists", top},
          {"periods", periods}};
}

json census_json(const gc::Census& c) {
  static const char* names[16] = {"idle",     "runnable", "running", "syscall", "waiting", "5",
                                  "dead",     "7",        "copystack", "preempted", "leaked",
                                  "deadextra", "12",      "13",      "14",      "15+"};
  json st = json::object();
  for (int i = 0; i < 16; i++)
    if (c.by_status[i]) st[names[i]] = c.by_status[i];
  json wr = json::object();
  for (const auto& [r, n] : c.waiting_by_reason) {
    std::string name = c.reason_name(r);
    wr[name] = (wr.contains(name) ? wr[name].get<uint32_t>() : 0u) + n;
  }
  auto io = c.waiting_by_reason.find(gc::kWaitReasonIOWait);
  return {{"allglen", c.allglen},
          {"read", c.read},
          {"complete", c.read >= c.allglen},
          {"live", c.live()},
          {"io_wait", io == c.waiting_by_reason.end() ? 0u : io->second},
          {"by_status", st},
          {"waiting_by_reason", wr},
          {"read_ms", r3(c.read_ms)},
          {"io_wait_funcs", [&] {
             json a = json::array();
             for (const auto& [fn, n] : c.io_wait_funcs) a.push_back({{"func", fn}, {"count", n}});
             return a;
           }()}};
}

json sched_latency_json(const model::Frame& f) {
  json buckets = json::array();
  for (size_t i = 0; i < f.rq_hist.size(); i++)
    if (f.rq_hist[i]) buckets.push_back({{"le_ns", uint64_t(2) << i}, {"count", f.rq_hist[i]}});
  json j = {{"kernel_runqueue",
             {{"p50_us", r3(f.rq_p50_us)},
              {"p99_us", r3(f.rq_p99_us)},
              {"p999_us", r3(f.rq_p999_us)},
              {"buckets", buckets}}}};
  const model::GoLatency& g = f.go_latency;
  if (g.available || !g.note.empty()) j["goroutine"] = go_latency_json(g);
  return j;
}

json go_latency_json(const model::GoLatency& g) {
  json j = {{"available", g.available}, {"source", g.note}};
  if (!g.available) return j;
  const auto& l = g.lat;
  json buckets = json::array();
  for (const auto& b : l.buckets)
    buckets.push_back({{"ge_ns", b.lo_ns},
                       {"lt_ns", b.hi_ns == UINT64_MAX ? json(nullptr) : json(b.hi_ns)},
                       {"count", b.count}});
  j["samples"] = l.samples;
  j["sampling"] = "the runtime tracks 1 in 8 goroutine transitions";
  j["p50_us"] = r3(l.p50_us);
  j["p99_us"] = r3(l.p99_us);
  j["p999_us"] = r3(l.p999_us);
  j["max_us"] = r3(l.max_us);
  j["beyond_range"] = l.open_top;
  j["negative"] = l.underflow;
  j["buckets"] = std::move(buckets);
  return j;
}

void print_gc_text(const model::Frame& f, FILE* out) {
  const auto& g = f.gc;
  if (g.enabled) {
    fprintf(out,
            "   gc: cycles %llu (total %llu)  STW %llu / %.2f ms (max %.2f)  assist %.0f%%  "
            "workers %.0f%%  MMU 1ms %.0f%% 10ms %.0f%% 100ms %.0f%%\n",
            static_cast<unsigned long long>(g.cycles),
            static_cast<unsigned long long>(g.cycles_total),
            static_cast<unsigned long long>(g.stw_count), g.stw_ms, g.stw_max_ms,
            g.assist_share * 100, g.worker_share * 100, std::max(0.0, g.mmu_1ms) * 100,
            std::max(0.0, g.mmu_10ms) * 100, std::max(0.0, g.mmu_100ms) * 100);
  } else if (!g.note.empty()) {
    fprintf(out, "   gc: off (%s)\n", g.note.c_str());
  }
  if (f.census) {
    const auto& c = *f.census;
    auto io = c.waiting_by_reason.find(gc::kWaitReasonIOWait);
    fprintf(out, "   goroutines: %u live, %u in IO wait, %u runnable  (allgs %u, read %u in %.1f ms)\n",
            c.live(), io == c.waiting_by_reason.end() ? 0u : io->second, c.by_status[1],
            c.allglen, c.read, c.read_ms);
    if (!c.waiting_by_reason.empty()) {
      const auto by = c.waiting_by_name();
      std::string line = "   waiting:";
      for (size_t i = 0; i < by.size() && i < 6; i++)
        line += " " + by[i].first + " " + std::to_string(by[i].second) + ",";
      if (by.size() > 6) line += " ...,";
      line.pop_back();
      fprintf(out, "%s\n", line.c_str());
    }
  }
  if (f.go_latency.available) {
    const auto& l = f.go_latency.lat;
    fprintf(out,
            "   goroutine sched latency (runnable->running): p50 %.0fus p99 %.0fus p99.9 %.0fus%s"
            "  (%llu sampled)\n",
            l.p50_us, l.p99_us, l.p999_us, l.open_top ? " (beyond range)" : "",
            static_cast<unsigned long long>(l.samples));
  }
}

}  // namespace schedscope::ui
