#include "ui/print.h"
#include "ui/gc_print.h"

#include <algorithm>
#include <cmath>

#include "capacity/present.h"
#include "go/runtime_reader.h"

namespace schedscope::ui {

using nlohmann::json;

const char* offcpu_reason_name(uint32_t reason) {
  switch (reason) {
    case SS_OFF_PREEMPTED:
      return "preempted";
    case SS_OFF_SLEEP:
      return "sleep";
    case SS_OFF_DISK:
      return "disk";
    default:
      return "other";
  }
}

namespace {

double r2(double v) { return std::round(v * 100) / 100; }

json offcpu_json(const model::OffCpu& o) {
  return {{"preempted", r2(o.preempted)},
          {"sleep", r2(o.sleep)},
          {"disk", r2(o.disk)},
          {"other", r2(o.other)}};
}

json alert_json(const detect::Alert& a) {
  return {{"kind", a.kind},
          {"severity", a.severity},
          {"t", r2(double(a.ts_ns) / 1e9)},
          {"p", a.p},
          {"m", a.m},
          {"tid", a.tid},
          {"goid", a.goid},
          {"func", a.func},
          {"stack", a.stack},
          {"syscall", a.syscall},
          {"duration_ms", r2(a.duration_ms)},
          {"handed_off", a.handed_off},
          {"threads", a.threads},
          {"message", a.message},
          {"evidence", a.evidence},
          {"active", a.active}};
}

json goroutines_json(const model::GoroutineStats& g) {
  json top = json::array();
  for (const auto& r : g.top)
    top.push_back({{"func", r.func}, {"count", r.created}, {"exited", r.exited}});
  json creators = json::array();
  for (const auto& c : g.creators) {
    json r = {{"goid", c.goid}, {"count", c.count}};
    if (!c.func.empty()) r["func"] = c.func;
    creators.push_back(std::move(r));
  }
  json j = {{"enabled", g.enabled},
            {"created", g.created},
            {"exited", g.exited},
            {"created_total", g.created_total},
            {"exited_total", g.exited_total},
            {"exited_unmatched", g.exited_unmatched},
            {"per_s", r2(g.created_per_s)},
            {"exited_per_s", r2(g.exited_per_s)},
            {"live", g.live ? json(*g.live) : json(nullptr)},
            {"top", std::move(top)},
            {"top_creators", std::move(creators)},
            {"uprobe_hits", g.uprobe_hits},
            {"uprobe_hits_per_s", r2(g.uprobe_hits_per_s)},
            {"cost_us_per_hit", r2(g.cost_us_per_hit)},
            {"est_target_cpu_ms_per_s", r2(g.est_cpu_ms_per_s)},
            {"cost", g.cost}};
  if (!g.note.empty()) j["note"] = g.note;
  return j;
}

}  // namespace

json frame_to_json(const model::Frame& f) {
  json j;
  j["t"] = r2(f.elapsed_s);
  j["interval_s"] = r2(f.interval_s);
  json target = {{"pid", f.target.pid},
                 {"comm", f.target.comm},
                 {"exe", f.target.exe},
                 {"threads", f.threads_alive},
                 {"mode", f.target.all_syscalls ? "all-syscalls" : "default"}};
  target["go_version"] = f.target.go_version.empty() ? json(nullptr) : json(f.target.go_version);
  target["go_enabled"] = f.target.go_enabled;
  if (!f.target.go_note.empty()) target["go_note"] = f.target.go_note;
  if (f.go) {
    target["gomaxprocs"] = f.go->gomaxprocs;
    target["max_threads"] = f.go->maxmcount;
  }
  j["target"] = target;
  json threads = json::array();
  for (const auto& t : f.threads) {
    json r = {{"tid", t.tid},
              {"name", t.name},
              {"state", t.state},
              {"syscall", t.syscall.empty() ? json(nullptr) : json(t.syscall)},
              {"syscall_ms", r2(t.syscall_ms)},
              {"state_ms", r2(t.state_ms)},
              {"oncpu_pct", r2(t.oncpu_pct)},
              {"offcpu_ms", offcpu_json(t.offcpu_ms)},
              {"rq_p50_us", r2(t.rq_p50_us)},
              {"rq_p99_us", r2(t.rq_p99_us)},
              {"switches", t.switches},
              {"m", t.m},
              {"p", t.p},
              {"goid", t.goid},
              {"created_by", t.created_by}};
    if (f.target.all_syscalls) r["syscalls_per_s"] = r2(t.syscalls_per_s);
    if (!t.go_func.empty()) r["func"] = t.go_func;
    if (t.p_from_oldp) r["p_detached"] = true;
    if (t.incgo) r["incgo"] = true;
    if (!t.blocked_in.empty()) {
      json b = json::object();
      for (const auto& [name, v] : t.blocked_in)
        b[name] = {{"count", v.count}, {"ms", r2(v.ms)}, {"max_ms", r2(v.max_ms)}};
      r["blocked_in"] = std::move(b);
    }
    threads.push_back(std::move(r));
  }
  j["threads"] = std::move(threads);
  json sc = json::array();
  for (const auto& s : f.syscalls) {
    sc.push_back({{"name", s.name},
                  {"nr", s.nr},
                  {"count", s.count},
                  {"total", s.total_count},
                  {"time_ms", r2(s.time_ms)},
                  {"calls_per_s", r2(s.calls_per_s)},
                  {"p50_us", r2(s.p50_us)},
                  {"p99_us", r2(s.p99_us)},
                  {"max_us", r2(s.max_us)},
                  {"in_flight", s.in_flight}});
  }
  j["syscalls"] = std::move(sc);
  j["syscalls_kind"] = f.target.all_syscalls ? "calls" : "blocking";
  json cr = json::array();
  for (const auto& c : f.creations) {
    json r = {{"tid", c.tid},
              {"parent_tid", c.parent_tid},
              {"parent_goid", c.parent_goid},
              {"parent_m", c.parent_m},
              {"site", c.site}};
    if (!c.frames.empty()) r["stack"] = c.frames;
    if (c.stack_skipped) r["stack_skipped"] = true;
    cr.push_back(std::move(r));
  }
  j["creations"] = std::move(cr);
  j["creations_total"] = f.creations_total;
  j["exits_total"] = f.exits_total;
  j["creations_per_s"] = r2(f.creations_per_s);
  j["switches_per_s"] = r2(f.switches_per_s);
  j["syscalls_per_s"] = r2(f.syscalls_per_s);
  j["rq_p50_us"] = r2(f.rq_p50_us);
  j["rq_p99_us"] = r2(f.rq_p99_us);
  j["drops"] = f.drops;
  j["drops_interval"] = f.drops_interval;
  if (f.target.goroutines) j["goroutines"] = goroutines_json(f.goroutines);
  if (!f.usdt.empty()) j["usdt"] = usdt::stats_to_json(f.usdt);
  if (f.go) {
    json ps = json::array();
    for (const auto& p : f.go->ps) {
      ps.push_back({{"id", p.id},
                    {"status", go::p_status_name(p.status)},
                    {"m", p.m_id},
                    {"tid", p.tid},
                    {"goid", p.goid},
                    {"func", p.func},
                    {"cur_func", p.cur_func},
                    {"schedtick", p.schedtick},
                    {"syscalltick", p.syscalltick},
                    {"runq", p.runq}});
    }
    j["ps"] = std::move(ps);
    json ms = json::array();
    for (const auto& m : f.go->ms) {
      ms.push_back({{"id", m.id},
                    {"tid", m.tid},
                    {"p", m.p},
                    {"oldp", m.oldp},
                    {"goid", m.curg_goid},
                    {"func", m.curg_func},
                    {"spinning", m.spinning},
                    {"blocked", m.blocked},
                    {"incgo", m.incgo},
                    {"sysmon", m.sysmon},
                    {"lockedg", m.lockedg_goid}});
    }
    j["ms"] = std::move(ms);
  }
  j["gc"] = gc_json(f.gc);
  j["sched_latency"] = sched_latency_json(f);
  if (f.census) j["census"] = census_json(*f.census);
  if (f.capacity.present) j["capacity"] = capacity::to_json(f.capacity);  // docs/capacity.md
  json alerts = json::array();
  for (const auto& a : f.alerts) alerts.push_back(alert_json(a));
  j["alerts"] = std::move(alerts);
  json notices = json::array();
  for (const auto& a : f.notices) notices.push_back(alert_json(a));
  j["notices"] = std::move(notices);
  if (f.final) {
    j["final"] = true;
    j["totals"] = {
        {"oncpu_ms", r2(f.totals.oncpu_ms)},   {"offcpu_ms", offcpu_json(f.totals.offcpu_ms)},
        {"switches", f.totals.switches},       {"rq_count", f.totals.rq_count},
        {"rq_p50_us", r2(f.totals.rq_p50_us)}, {"rq_p99_us", r2(f.totals.rq_p99_us)},
        {"syscalls", f.totals.syscalls},       {"threads_created", f.creations_total},
        {"threads_exited", f.exits_total}};
  }
  return j;
}

void print_text(const model::Frame& f, FILE* out, int max_threads) {
  fprintf(out, "%s t=%.1fs  pid %d (%s)  threads %d  %s\n", f.final ? "== FINAL" : "--",
          f.elapsed_s, f.target.pid, f.target.comm.c_str(), f.threads_alive,
          f.target.all_syscalls ? "mode: all-syscalls (-S)"
                                : "mode: default (blocking syscalls only; -S adds every call)");
  if (!f.target.go_version.empty() || f.go) {
    fprintf(out, "   go %s  gomaxprocs %d  %s\n",
            f.target.go_version.empty() ? "?" : f.target.go_version.c_str(),
            f.go ? f.go->gomaxprocs : 0, f.target.go_note.c_str());
  }
  fprintf(out,
          "   ctxsw/s %.0f  %s %.0f  rq-latency p50 %.0fus p99 %.0fus  threads +%zu (total +%llu "
          "-%llu)  drops %llu\n",
          f.switches_per_s, f.target.all_syscalls ? "syscalls/s" : "blocking/s", f.syscalls_per_s,
          f.rq_p50_us, f.rq_p99_us, f.creations.size(),
          static_cast<unsigned long long>(f.creations_total),
          static_cast<unsigned long long>(f.exits_total), static_cast<unsigned long long>(f.drops));
  print_gc_text(f, out);
  if (f.capacity.present) {  // capacity decisions (docs/capacity.md)
    fprintf(out, "   %s\n", capacity::summary_line(f.capacity).c_str());
    for (const auto& l : capacity::detail_lines(f.capacity)) fprintf(out, "     %s\n", l.c_str());
  }
  if (f.target.goroutines) {
    const auto& g = f.goroutines;
    if (!g.enabled) {
      fprintf(out, "   goroutines: off (%s)\n", g.note.c_str());
    } else {
      char live[32] = "?";
      if (g.live) snprintf(live, sizeof live, "%lld", static_cast<long long>(*g.live));
      fprintf(out, "   goroutines: +%llu -%llu (%.0f/s)  total +%llu -%llu  live ~%s  | goroutine uprobes: %s\n",
              static_cast<unsigned long long>(g.created), static_cast<unsigned long long>(g.exited),
              g.created_per_s, static_cast<unsigned long long>(g.created_total),
              static_cast<unsigned long long>(g.exited_total), live, g.cost.c_str());
      int n = 0;
      for (const auto& r : g.top) {
        if (n++ >= 5) break;
        fprintf(out, "     %8llu created %8llu exited  %s\n",
                static_cast<unsigned long long>(r.created),
                static_cast<unsigned long long>(r.exited), r.func.c_str());
      }
    }
  }
  if (f.go && !f.go->ps.empty()) {
    fprintf(out, "   %-4s %-8s %-5s %-8s %-8s %-32s %10s %10s %5s\n", "P", "STATUS", "M", "TID",
            "GOID", "G FUNC", "SCHEDTICK", "SYSCALLTK", "RUNQ");
    for (const auto& p : f.go->ps) {
      fprintf(out, "   %-4d %-8s %-5lld %-8d %-8llu %-32.32s %10u %10u %5u\n", p.id,
              go::p_status_name(p.status), static_cast<long long>(p.m_id), p.tid,
              static_cast<unsigned long long>(p.goid), p.func.c_str(), p.schedtick, p.syscalltick,
              p.runq);
    }
  }
  fprintf(out, "   %-8s %-15s %-9s %-16s %9s %6s %8s %8s %8s %9s %5s %4s %8s\n", "TID", "NAME",
          "STATE", "SYSCALL", "FOR(ms)", "CPU%", "PRE(ms)", "SLP(ms)", "DSK(ms)", "RQp99(us)", "M",
          "P", "GOID");
  std::vector<const model::ThreadRow*> rows;
  for (const auto& t : f.threads) rows.push_back(&t);
  std::stable_sort(rows.begin(), rows.end(), [](auto* a, auto* b) {
    return a->oncpu_pct + a->syscall_ms / 1000 > b->oncpu_pct + b->syscall_ms / 1000;
  });
  int shown = 0;
  for (const auto* t : rows) {
    if (shown++ >= max_threads) {
      fprintf(out, "   ... %zu more threads\n", rows.size() - size_t(max_threads));
      break;
    }
    fprintf(
        out, "   %-8u %-15.15s %-9s %-16.16s %9.1f %6.1f %8.1f %8.1f %8.1f %9.0f %5lld %4d %8llu\n",
        t->tid, t->name.c_str(), t->state.c_str(), t->syscall.empty() ? "-" : t->syscall.c_str(),
        t->syscall.empty() ? t->state_ms : t->syscall_ms, t->oncpu_pct, t->offcpu_ms.preempted,
        t->offcpu_ms.sleep, t->offcpu_ms.disk, t->rq_p99_us, static_cast<long long>(t->m), t->p,
        static_cast<unsigned long long>(t->goid));
  }
  if (!f.syscalls.empty()) {
    if (f.target.all_syscalls)
      fprintf(out, "   %-20s %10s %10s %10s %10s %10s %6s\n", "SYSCALL", "CALLS/s", "p50(us)",
              "p99(us)", "max(us)", "time(ms)", "INFL");
    else
      fprintf(out, "   %-20s %10s %10s %10s %10s %6s   (blocking episodes)\n", "SYSCALL", "COUNT",
              "BLOCKED(ms)", "p50(us)", "p99(us)", "INFL");
    int n = 0;
    for (const auto& s : f.syscalls) {
      if (n++ >= 15) break;
      if (f.target.all_syscalls)
        fprintf(out, "   %-20s %10.0f %10.1f %10.1f %10.1f %10.1f %6d\n", s.name.c_str(),
                s.calls_per_s, s.p50_us, s.p99_us, s.max_us, s.time_ms, s.in_flight);
      else
        fprintf(out, "   %-20s %10llu %10.1f %10.1f %10.1f %6d\n", s.name.c_str(),
                static_cast<unsigned long long>(s.count), s.time_ms, s.p50_us, s.p99_us,
                s.in_flight);
    }
  }
  size_t nc = 0;
  for (const auto& c : f.creations) {
    if (nc++ >= 5) {
      fprintf(out, "   ... %zu more thread creations\n", f.creations.size() - 5);
      break;
    }
    fprintf(out, "   new thread %u by %u (goid %llu) at %s\n", c.tid, c.parent_tid,
            static_cast<unsigned long long>(c.parent_goid), c.site.empty() ? "?" : c.site.c_str());
  }
  for (const auto& l : usdt::stats_lines(f.usdt, f.final)) fprintf(out, "   %s\n", l.c_str());
  for (const auto& a : f.alerts) {
    if (!a.active && !f.final) continue;
    fprintf(out, "   ALERT [%s] %s: %s\n", a.severity.c_str(), a.kind.c_str(), a.message.c_str());
    for (const auto& e : a.evidence) fprintf(out, "         %s\n", e.c_str());
  }
  for (const auto& a : f.notices)
    fprintf(out, "   NOTE %s: %s\n", a.kind.c_str(), a.message.c_str());
  if (f.final) {
    fprintf(out,
            "   totals: on-CPU %.1f ms, off-CPU preempted %.1f / sleep %.1f / disk %.1f ms, %llu "
            "switches, rq p50 %.0fus p99 %.0fus, threads created %llu exited %llu\n",
            f.totals.oncpu_ms, f.totals.offcpu_ms.preempted, f.totals.offcpu_ms.sleep,
            f.totals.offcpu_ms.disk, static_cast<unsigned long long>(f.totals.switches),
            f.totals.rq_p50_us, f.totals.rq_p99_us,
            static_cast<unsigned long long>(f.creations_total),
            static_cast<unsigned long long>(f.exits_total));
  }
  if (f.drops_interval)
    fprintf(out, "   WARNING: %llu events dropped this interval (raise --ringbuf-size)\n",
            static_cast<unsigned long long>(f.drops_interval));
  fflush(out);
}

}  // namespace schedscope::ui
