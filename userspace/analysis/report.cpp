#include "analysis/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "analysis/capacity_report.h"
#include "analysis/replay.h"
#include "model/annotations_json.h"
#include "model/frame_json.h"

namespace schedscope::record {

using nlohmann::json;

namespace {

double r2(double v) { return std::isfinite(v) ? std::round(v * 100) / 100 : 0; }

struct PAcc {
  std::map<std::string, double> status_s;  // time per status (sample and hold)
  uint64_t sched_delta = 0, sys_delta = 0;
  double tick_span_s = 0;
  uint32_t last_sched = 0, last_sys = 0;
  bool have_last = false;
  std::map<uint64_t, std::pair<std::string, uint64_t>> gs;  // goid -> (func, samples)
  uint64_t samples = 0;
  uint64_t runq_sum = 0;
  uint32_t runq_max = 0;
};

std::string s_of(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
double d_of(const json& j, const char* k, double dflt = 0) {
  auto it = j.find(k);
  return it != j.end() && it->is_number() ? it->get<double>() : dflt;
}

// Goroutine scheduling latency over the recording, and its worst interval.
void print_latency_report(const json& r, FILE* out) {
  if (!r.contains("sched_latency") || !r["sched_latency"].contains("goroutine")) return;
  const json& g = r["sched_latency"]["goroutine"];
  if (!g.value("available", false)) return;
  fprintf(out,
          "\nGOROUTINE SCHEDULING LATENCY (runnable -> running, the runtime's own histogram)\n"
          "    p50 %.0fus  p99 %.0fus  p99.9 %.0fus  slowest under %.0fus%s  (%llu sampled transitions)\n",
          d_of(g, "p50_us"), d_of(g, "p99_us"), d_of(g, "p999_us"), d_of(g, "max_us"),
          g.value("beyond_range", false) ? " (beyond range)" : "",
          static_cast<unsigned long long>(g.value("samples", 0ull)));
  const json* worst = nullptr;
  if (auto it = g.find("intervals"); it != g.end() && it->is_array())
    for (const auto& i : *it)
      if (!worst || d_of(i, "p99_us") > d_of(*worst, "p99_us")) worst = &i;
  if (worst)
    fprintf(out, "    worst interval p99 %.0fus at t=%.1fs (%llu sampled)\n",
            d_of(*worst, "p99_us"), d_of(*worst, "t"),
            static_cast<unsigned long long>(worst->value("samples", 0ull)));
}

// The GC section of the text report (the "gc" object of build_report).
void print_gc_report(const json& r, FILE* out) {
  if (!r.contains("gc") || !r["gc"].is_object() || !r["gc"].value("enabled", false)) return;
  const json& g = r["gc"];
  auto num = [](const json& j, const char* k) {
    return j.contains(k) && j[k].is_number() ? j[k].get<double>() : -1.0;
  };
  const json& mmu = g["mmu"];
  fprintf(out,
          "\nGC  %llu cycles, %llu stop-the-world pauses (%.2f ms, longest %.2f ms), mark assist "
          "%.0f%% and workers %.0f%% of GOMAXPROCS\n    lowest MMU of an interval: 1 ms %.0f%%, "
          "10 ms %.0f%%, 100 ms %.0f%%\n",
          static_cast<unsigned long long>(g.value("cycles", 0ull)),
          static_cast<unsigned long long>(g.value("stw_count", 0ull)), num(g, "stw_ms"),
          num(g, "stw_max_ms"), 100 * num(g, "assist_share"), 100 * num(g, "worker_share"),
          100 * std::max(0.0, num(mmu, "1ms")), 100 * std::max(0.0, num(mmu, "10ms")),
          100 * std::max(0.0, num(mmu, "100ms")));
  size_t shown = 0;
  for (const auto& p : g["periods"]) {
    if (shown++ >= 12) {
      fprintf(out, "    ... %zu more GC periods (--json has them)\n", g["periods"].size() - 12);
      break;
    }
    fprintf(out, "    t=%7.3fs  %-5s %8.3f ms  %s\n", num(p, "t"), s_of(p, "kind").c_str(),
            num(p, "ms"), s_of(p, "what").c_str());
  }
}

}  // namespace

json build_report(const Recording& rec, const detect::DetectOptions& detect) {
  Replayer rp(rec, detect);
  std::vector<go::SchedSample> samples;  // deduplicated, P/M tables only
  uint64_t last_go = 0, snapshots = 0, raw = 0;
  uint64_t max_drops = 0;
  rp.on_item = [&](const Item& it) {
    if (it.kind == kRecGo && it.go.ts_ns > last_go) {
      last_go = it.go.ts_ns;
      if (samples.size() < 1'000'000) samples.push_back(it.go);
    } else if (it.kind == kRecKernel) {
      snapshots++;
      max_drops = std::max(max_drops, it.kernel.drops);
    } else if (it.kind == kRecRaw) {
      raw++;
    }
  };
  uint64_t frames = 0;
  int max_threads = 0;
  capacity::WorstInterval cap_worst;  // capacity: the interval with the worst verdicts
  double max_creation_rate = 0;
  std::vector<gc::Period> gc_periods;  // GC periods of the whole recording (capped)
  json gc_intervals = json::array();   // per interval: t, cycles, MMU, assist share
  json lat_intervals = json::array();  // per interval: goroutine scheduling latency
  // Thread creations by call site, from every interval's creations (the final frame keeps
  // only the first ones since attach).
  std::map<std::string, std::pair<uint64_t, std::set<uint64_t>>> sites;
  uint64_t last_creation_ns = 0;
  auto count_site = [&](const model::Frame_Creation& c) {
    auto& s = sites[c.site().empty() ? "?" : c.site()];
    s.first++;
    if (c.parent_goid && s.second.size() < 16) s.second.insert(c.parent_goid);
    last_creation_ns = std::max(last_creation_ns, c.ts_ns);
  };
  while (auto f = rp.next()) {
    for (const auto& c : f->creations) count_site(c);
    if (f->go_latency.available && f->go_latency.lat.samples && lat_intervals.size() < 100000)
      lat_intervals.push_back({{"t", r2(f->elapsed_s)},
                               {"samples", f->go_latency.lat.samples},
                               {"p50_us", r2(f->go_latency.lat.p50_us)},
                               {"p99_us", r2(f->go_latency.lat.p99_us)},
                               {"p999_us", r2(f->go_latency.lat.p999_us)}});
    for (const auto& p : f->gc.periods)
      if (gc_periods.size() < 2000) gc_periods.push_back(p);
    if (f->gc.enabled && gc_intervals.size() < 100000)
      gc_intervals.push_back(
          {{"t", r2(f->elapsed_s)}, {"cycles", f->gc.cycles}, {"stw_ms", r2(f->gc.stw_ms)},
           {"assist_share", r2(f->gc.assist_share)}, {"worker_share", r2(f->gc.worker_share)},
           {"mmu_10ms", r2(f->gc.mmu_10ms)}, {"mmu_100ms", r2(f->gc.mmu_100ms)}});
    frames++;
    cap_worst.offer(*f);
    max_threads = std::max(max_threads, f->threads_alive);
    max_creation_rate = std::max(max_creation_rate, f->creations_per_s);
  }
  model::Frame fin = rp.final_frame();
  const json& meta = rec.meta();
  const json& info = rp.info();

  json r;
  r["file"] = rec.name();
  r["format_version"] = rec.format_version();
  r["complete"] = rec.complete();
  json warnings = json::array();
  for (const auto& w : rec.warnings()) warnings.push_back(w);
  if (!rp.warning().empty()) warnings.push_back(rp.warning());
  if (!rec.complete() && rec.warnings().empty() && rp.warning().empty())
    warnings.push_back(rec.name() + ": the recording was not finalized (schedscope was killed or "
                                    "crashed); read up to its last chunk");
  r["warnings"] = warnings;
  r["bytes_skipped"] = rec.bytes_skipped();

  // ---- target
  json t = model::frame_to_json(fin)["target"];
  t["host"] = s_of(meta, "host");
  t["kernel"] = s_of(meta, "kernel");
  if (info.contains("go") && info["go"].is_object()) {
    t["offsets_source"] = s_of(info["go"], "source");
  }
  if (!samples.empty()) t["gomaxprocs"] = samples.back().gomaxprocs;
  r["target"] = t;
  json start = meta.contains("start") && meta["start"].is_object() ? meta["start"] : json::object();
  r["start"] = start;
  r["duration_s"] = r2(fin.elapsed_s);
  r["recorded"] = {{"interval_s", d_of(meta, "interval_s")},
                   {"frames", frames},
                   {"snapshots", snapshots},
                   {"events", raw},
                   {"drops", max_drops},
                   {"chunks", rec.data_chunks()},
                   {"bytes", rec.file_size()},
                   {"schedscope_version", s_of(meta, "schedscope_version")}};
  // How it was captured: single (-d), sampled (--every) or flight (top --flight-recorder,
  // with the alerts that made it write the window).
  r["capture"] = meta.contains("capture") && meta["capture"].is_object() ? meta["capture"] : json::object();

  // ---- per P
  std::map<int32_t, PAcc> ps;
  for (size_t k = 0; k < samples.size(); k++) {
    const auto& s = samples[k];
    uint64_t next_ts = k + 1 < samples.size() ? samples[k + 1].ts_ns : std::max(s.ts_ns, fin.ts_ns);
    double dt = next_ts > s.ts_ns ? double(next_ts - s.ts_ns) / 1e9 : 0;
    for (const auto& p : s.ps) {
      if (ps.size() >= 4096 && !ps.count(p.id)) continue;
      auto& a = ps[p.id];
      a.status_s[go::p_status_name(p.status)] += dt;
      a.samples++;
      a.runq_sum += p.runq;
      a.runq_max = std::max(a.runq_max, p.runq);
      if (a.have_last && k > 0) {
        a.sched_delta += uint32_t(p.schedtick - a.last_sched);
        a.sys_delta += uint32_t(p.syscalltick - a.last_sys);
        a.tick_span_s += double(s.ts_ns - samples[k - 1].ts_ns) / 1e9;
      }
      a.last_sched = p.schedtick;
      a.last_sys = p.syscalltick;
      a.have_last = true;
      if (p.goid && (p.status == 1 || p.status == 2)) {
        auto& g = a.gs[p.goid];
        if (g.first.empty()) g.first = p.func;
        g.second++;
      }
    }
  }
  json pj = json::array();
  for (auto& [id, a] : ps) {
    double total = 0;
    for (const auto& [st, s] : a.status_s) total += s;
    json status = json::object(), share = json::object();
    for (const auto& [st, s] : a.status_s) {
      status[st] = r2(s);
      share[st] = total > 0 ? r2(100 * s / total) : 0;
    }
    std::vector<std::pair<uint64_t, std::pair<std::string, uint64_t>>> gs(a.gs.begin(), a.gs.end());
    std::sort(gs.begin(), gs.end(), [](const auto& x, const auto& y) {
      return x.second.second != y.second.second ? x.second.second > y.second.second : x.first < y.first;
    });
    json top = json::array();
    for (size_t i = 0; i < gs.size() && i < 5; i++)
      top.push_back({{"goid", gs[i].first}, {"func", gs[i].second.first}, {"samples", gs[i].second.second}});
    pj.push_back({{"id", id},
                  {"time_s", status},
                  {"share_pct", share},
                  {"samples", a.samples},
                  {"schedticks_per_s", a.tick_span_s > 0 ? r2(double(a.sched_delta) / a.tick_span_s) : 0},
                  {"syscallticks_per_s", a.tick_span_s > 0 ? r2(double(a.sys_delta) / a.tick_span_s) : 0},
                  {"runq_avg", a.samples ? r2(double(a.runq_sum) / double(a.samples)) : 0},
                  {"runq_max", a.runq_max},
                  {"gs_seen", gs.size()},
                  {"top_gs", top}});
  }
  r["ps"] = pj;

  // ---- per thread (totals since start: the final frame)
  json tj = json::array();
  std::vector<const model::ThreadRow*> rows;
  for (const auto& row : fin.threads) rows.push_back(&row);
  auto oncpu_ms = [&](const model::ThreadRow* x) { return x->oncpu_pct / 100 * fin.interval_s * 1e3; };
  auto blocked_ms = [](const model::ThreadRow* x) {
    double s = 0;
    for (const auto& [n, b] : x->blocked_in) s += b.ms;
    return s;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](auto* a, auto* b) {
    double ka = oncpu_ms(a) + a->offcpu_ms.total(), kb = oncpu_ms(b) + b->offcpu_ms.total();
    return ka != kb ? ka > kb : a->tid < b->tid;
  });
  for (const auto* x : rows) {
    std::vector<std::pair<std::string, model::BlockedIn>> bl(x->blocked_in.begin(), x->blocked_in.end());
    std::sort(bl.begin(), bl.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    json top = json::array();
    for (const auto& [n, b] : bl)
      top.push_back({{"syscall", n}, {"count", b.count}, {"ms", r2(b.ms)}, {"max_ms", r2(b.max_ms)}});
    tj.push_back({{"tid", x->tid},
                  {"name", x->name},
                  {"state", x->state},
                  {"oncpu_ms", r2(oncpu_ms(x))},
                  {"offcpu_ms",
                   {{"preempted", r2(x->offcpu_ms.preempted)},
                    {"sleep", r2(x->offcpu_ms.sleep)},
                    {"disk", r2(x->offcpu_ms.disk)},
                    {"other", r2(x->offcpu_ms.other)}}},
                  {"blocked_ms", r2(blocked_ms(x))},
                  {"switches", x->switches},
                  {"created_by", x->created_by},
                  {"m", x->m},
                  {"goid", x->goid},
                  {"blocking", top}});
  }
  r["threads"] = tj;
  r["threads_max"] = max_threads;

  // ---- per syscall
  json sj = json::array();
  for (const auto& s : fin.syscalls)
    sj.push_back({{"name", s.name},
                  {"nr", s.nr},
                  {"count", s.total_count},
                  {"time_ms", r2(s.time_ms)},
                  {"p50_us", r2(s.p50_us)},
                  {"p99_us", r2(s.p99_us)},
                  {"max_us", r2(s.max_us)},
                  {"per_s", fin.elapsed_s > 0 ? r2(double(s.total_count) / fin.elapsed_s) : 0}});
  r["syscalls"] = sj;
  r["syscalls_kind"] = fin.target.all_syscalls ? "calls" : "blocking";

  // ---- thread creations
  for (const auto& c : fin.creations)  // those after the last interval's frame
    if (c.ts_ns > last_creation_ns) count_site(c);
  std::vector<std::pair<std::string, std::pair<uint64_t, std::set<uint64_t>>>> sv(sites.begin(), sites.end());
  std::sort(sv.begin(), sv.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  json sites_j = json::array();
  for (const auto& [site, v] : sv)
    sites_j.push_back({{"site", site}, {"count", v.first}, {"parent_goids", v.second}});
  r["creations"] = {{"total", fin.creations_total},
                    {"exits", fin.exits_total},
                    {"per_s", fin.elapsed_s > 0 ? r2(double(fin.creations_total) / fin.elapsed_s) : 0},
                    {"peak_per_s", r2(max_creation_rate)},
                    {"sites", sites_j}};

  // ---- alerts: raised on the recording, and checked against those raised live
  json aj = json::array();
  for (const auto& a : fin.alerts) {
    json x = model::frame_to_json([&] {
      model::Frame one;
      one.alerts = {a};
      return one;
    }())["alerts"][0];
    x["t"] = a.ts_ns > rp.model().start_ns() ? r2(double(a.ts_ns - rp.model().start_ns()) / 1e9) : 0;
    aj.push_back(std::move(x));
  }
  r["alerts"] = aj;
  const auto& chk = rp.check();
  r["alerts_check"] = {{"frames_compared", chk.frames},
                       {"frames_mismatched", chk.mismatched_frames},
                       {"final_recorded", chk.final_recorded},
                       {"final_match", chk.final_match},
                       {"match", chk.ok()},
                       {"live_alerts", alerts_to_json(rp.live_alerts())},
                       {"diffs", chk.diffs}};
  r["totals"] = model::frame_to_json(fin)["totals"];
  r["final"] = model::frame_to_json(fin);
  if (!fin.usdt.empty()) r["usdt"] = usdt::stats_to_json(fin.usdt);
  // ---- scheduling latency over the recording: kernel run queue and goroutines
  r["sched_latency"] = r["final"]["sched_latency"];
  if (r["sched_latency"].contains("goroutine")) r["sched_latency"]["goroutine"]["intervals"] = lat_intervals;
  // ---- GC: totals since start, every GC period, and per-interval MMU / assist share
  {
    gc::GcStats g = fin.gc;
    g.periods = gc_periods;
    json gj = model::gc_json(g);
    for (auto& p : gj["periods"])
      p["t"] = p["start_ns"].get<uint64_t>() > rp.model().start_ns()
                   ? r2(double(p["start_ns"].get<uint64_t>() - rp.model().start_ns()) / 1e9)
                   : 0;
    gj["intervals"] = gc_intervals;
    r["gc"] = gj;
  }
  // ---- capacity decisions over the whole recording, and its worst interval
  if (fin.capacity.present) {
    r["capacity"] = capacity::report_json(fin.capacity, cap_worst);
    r["capacity"]["check"] = rp.capacity_check().to_json();
  }
  return r;
}

void print_report(const json& r, FILE* out) {
  const json& t = r["target"];
  fprintf(out, "schedscope report: %s\n", s_of(r, "file").c_str());
  for (const auto& w : r["warnings"]) fprintf(out, "  WARNING: %s\n", w.get<std::string>().c_str());
  fprintf(out, "\nTARGET  pid %d (%s) %s\n", t.value("pid", 0), s_of(t, "comm").c_str(),
          s_of(t, "exe").c_str());
  std::string gov = t.contains("go_version") && t["go_version"].is_string() ? t["go_version"].get<std::string>() : "";
  fprintf(out, "        %s%s  gomaxprocs %d  mode %s\n", gov.empty() ? "not Go" : gov.c_str(),
          t.contains("offsets_source") ? (" (offsets: " + s_of(t, "offsets_source") + ")").c_str() : "",
          t.value("gomaxprocs", 0), s_of(t, "mode").c_str());
  std::string note = s_of(t, "go_note");
  if (!note.empty() && note != "offsets: " + s_of(t, "offsets_source")) fprintf(out, "        %s\n", note.c_str());
  fprintf(out, "        host %s, kernel %s\n", s_of(t, "host").c_str(), s_of(t, "kernel").c_str());
  const json& rc = r["recorded"];
  fprintf(out, "RECORDING  started %s, %.1fs, %llu frames every %.2fs, %llu events, %llu drops%s\n",
          r["start"].is_object() ? s_of(r["start"], "wall").c_str() : "?", d_of(r, "duration_s"),
          static_cast<unsigned long long>(rc.value("frames", 0ull)), d_of(rc, "interval_s"),
          static_cast<unsigned long long>(rc.value("events", 0ull)),
          static_cast<unsigned long long>(rc.value("drops", 0ull)),
          r.value("complete", false) ? "" : "  (not finalized)");
  if (r.contains("capture") && s_of(r["capture"], "kind") == "flight") {
    std::string why;
    if (r["capture"].contains("trigger") && r["capture"]["trigger"].is_array())
      for (const auto& a : r["capture"]["trigger"])
        if (a.is_object()) why += (why.empty() ? "" : "; ") + s_of(a, "message");
    fprintf(out, "           flight recorder: the last %.0fs kept in memory, written when an alert fired: %s\n",
            d_of(r["capture"], "window_s"), why.c_str());
  }

  if (!r["ps"].empty()) {
    fprintf(out, "\nPs (sampled every interval)\n");
    fprintf(out, "  %-4s %-34s %12s %12s %8s %6s  %s\n", "P", "TIME running/syscall/idle/other",
            "SCHEDTICK/s", "SYSCALLTK/s", "RUNQavg", "Gs", "TOP Gs");
    for (const auto& p : r["ps"]) {
      const json& sh = p["share_pct"];
      double other = 100 - d_of(sh, "running") - d_of(sh, "syscall") - d_of(sh, "idle");
      char pct[64];
      snprintf(pct, sizeof pct, "%3.0f%% / %3.0f%% / %3.0f%% / %3.0f%%", d_of(sh, "running"),
               d_of(sh, "syscall"), d_of(sh, "idle"), std::max(0.0, other));
      std::string top;
      for (const auto& g : p["top_gs"]) {
        if (!top.empty()) top += ", ";
        top += "G" + std::to_string(g.value("goid", 0ull)) + " " + s_of(g, "func");
      }
      fprintf(out, "  %-4d %-34s %12.1f %12.1f %8.2f %6llu  %s\n", p.value("id", 0), pct,
              d_of(p, "schedticks_per_s"), d_of(p, "syscallticks_per_s"), d_of(p, "runq_avg"),
              static_cast<unsigned long long>(p.value("gs_seen", 0ull)), top.c_str());
    }
  }

  fprintf(out, "\nTHREADS  %zu seen, at most %d alive\n", r["threads"].size(), r.value("threads_max", 0));
  fprintf(out, "  %-8s %-15s %-8s %10s %10s %10s %10s  %s\n", "TID", "NAME", "STATE", "ONCPU(ms)",
          "PREEMPT", "SLEEP", "DISK", "TOP BLOCKING SYSCALLS (count, ms)");
  size_t shown = 0;
  for (const auto& th : r["threads"]) {
    if (shown++ >= 25) {
      fprintf(out, "  ... %zu more threads (--json has them all)\n", r["threads"].size() - 25);
      break;
    }
    std::string top;
    size_t n = 0;
    for (const auto& b : th["blocking"]) {
      if (n++ >= 3) break;
      char buf[96];
      snprintf(buf, sizeof buf, "%s%s %llu, %.1f", top.empty() ? "" : "; ", s_of(b, "syscall").c_str(),
               static_cast<unsigned long long>(b.value("count", 0ull)), d_of(b, "ms"));
      top += buf;
    }
    const json& off = th["offcpu_ms"];
    fprintf(out, "  %-8llu %-15.15s %-8s %10.1f %10.1f %10.1f %10.1f  %s\n",
            static_cast<unsigned long long>(th.value("tid", 0ull)), s_of(th, "name").c_str(),
            s_of(th, "state").c_str(), d_of(th, "oncpu_ms"), d_of(off, "preempted"), d_of(off, "sleep"),
            d_of(off, "disk"), top.c_str());
  }

  bool calls = s_of(r, "syscalls_kind") == "calls";
  fprintf(out, "\nSYSCALLS  (%s)\n", calls ? "every call, -S" : "blocking episodes; record with -S for every call");
  fprintf(out, "  %-20s %10s %10s %12s %10s %10s %10s\n", "SYSCALL", "COUNT", "PER_S",
          calls ? "TIME(ms)" : "BLOCKED(ms)", "p50(us)", "p99(us)", "max(us)");
  shown = 0;
  for (const auto& s : r["syscalls"]) {
    if (shown++ >= 20) break;
    fprintf(out, "  %-20s %10llu %10.1f %12.1f %10.1f %10.1f %10.1f\n", s_of(s, "name").c_str(),
            static_cast<unsigned long long>(s.value("count", 0ull)), d_of(s, "per_s"), d_of(s, "time_ms"),
            d_of(s, "p50_us"), d_of(s, "p99_us"), d_of(s, "max_us"));
  }

  const json& c = r["creations"];
  fprintf(out, "\nTHREAD CREATIONS  %llu created (%.1f/s, peak %.1f/s), %llu exited\n",
          static_cast<unsigned long long>(c.value("total", 0ull)), d_of(c, "per_s"), d_of(c, "peak_per_s"),
          static_cast<unsigned long long>(c.value("exits", 0ull)));
  shown = 0;
  for (const auto& s : c["sites"]) {
    if (shown++ >= 10) break;
    fprintf(out, "  %6llu  from %s\n", static_cast<unsigned long long>(s.value("count", 0ull)),
            s_of(s, "site").c_str());
  }

  if (r.contains("usdt")) {
    const json& u = r["usdt"];
    fprintf(out, "\nUSDT  runtime %s\n", s_of(u, "runtime").empty() ? "-" : s_of(u, "runtime").c_str());
    for (const auto& p : u["pauses"])
      fprintf(out, "  %-9s pauses %llu, total %.1f ms, longest %.1f ms, %.2f%% of the wall time\n",
              s_of(p, "kind").c_str(), static_cast<unsigned long long>(p.value("count", 0ull)),
              d_of(p, "total_ms"), d_of(p, "max_ms"), 100 * d_of(p, "share"));
    if (u.value("threads_started", 0ull) || u.value("threads_stopped", 0ull))
      fprintf(out, "  runtime threads: %llu started, %llu stopped\n",
              static_cast<unsigned long long>(u.value("threads_started", 0ull)),
              static_cast<unsigned long long>(u.value("threads_stopped", 0ull)));
    for (const auto& p : u["probes"]) {
      fprintf(out, "  %-40s %8llu hits  (%s)\n", s_of(p, "probe").c_str(),
              static_cast<unsigned long long>(p.value("total", 0ull)), s_of(p, "role").c_str());
      int shown_t = 0;
      for (const auto& th : p["threads"])
        if (shown_t++ < 5)
          fprintf(out, "      tid %-7llu %-24s %llu\n", static_cast<unsigned long long>(th.value("tid", 0ull)),
                  s_of(th, "name").c_str(), static_cast<unsigned long long>(th.value("hits", 0ull)));
    }
    if (!u["hits"].empty())
      fprintf(out, "  %zu hits with arguments kept (the last ones; `report --json` lists them)\n",
              u["hits"].size());
  }

  print_gc_report(r, out);
  if (r["final"].contains("annotations")) {  // --annotations: the live tables, since attach
    fprintf(out, "\nANNOTATIONS\n");
    model::print_annotations_text(r["final"]["annotations"], out, "  ");
  }
  print_latency_report(r, out);
  if (r.contains("capacity")) capacity::print_report(r["capacity"], out);
  fprintf(out, "\nALERTS  %zu\n", r["alerts"].size());
  for (const auto& a : r["alerts"]) {
    fprintf(out, "  [%s] t=%.1fs %s: %s\n", s_of(a, "severity").c_str(), d_of(a, "t"),
            s_of(a, "kind").c_str(), s_of(a, "message").c_str());
    for (const auto& e : a["evidence"]) fprintf(out, "        %s\n", e.get<std::string>().c_str());
  }
  const json& chk = r["alerts_check"];
  if (chk.value("match", false))
    fprintf(out, "  (same as raised live while recording: %llu frames compared%s)\n",
            static_cast<unsigned long long>(chk.value("frames_compared", 0ull)),
            chk.value("final_recorded", false) ? "" : ", no final frame recorded");
  else {
    fprintf(out, "  WARNING: differs from the alerts raised live while recording\n");
    for (const auto& d : chk["diffs"]) fprintf(out, "    %s\n", d.get<std::string>().c_str());
  }
  const json& tot = r["totals"];
  if (tot.is_object())
    fprintf(out, "\nTOTALS  on-CPU %.1f ms, %llu switches, run-queue latency p50 %.0fus p99 %.0fus\n",
            d_of(tot, "oncpu_ms"), static_cast<unsigned long long>(tot.value("switches", 0ull)),
            d_of(tot, "rq_p50_us"), d_of(tot, "rq_p99_us"));
  fflush(out);
}

}  // namespace schedscope::record
