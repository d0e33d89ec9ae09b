#include "ui/print.h"
#include "ui/gc_print.h"

#include <algorithm>
#include <cmath>

#include "capacity/present.h"
#include "go/runtime_reader.h"
#include "model/annotations_json.h"

namespace schedscope::ui {

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
  if (f.annotations)  // --annotations (docs/annotations.md)
    model::print_annotations_text(model::annotations_json(*f.annotations), out);
  if (f.target.goroutines) {
    const auto& g = f.goroutines;
    if (!g.enabled) {
      fprintf(out, "   goroutines: off (%s)\n", g.note.c_str());
    } else {
      char live[32] = "?";
      if (g.live) snprintf(live, sizeof live, "%lld", static_cast<long long>(*g.live));
      // Exits from the census are an estimate (docs/goroutines.md): marked "~".
      const char* est = g.exited_source == "census" ? "~" : "";
      fprintf(out, "   goroutines: +%llu -%s%llu (%.0f/s)  total +%llu -%s%llu  live ~%s  | goroutine uprobes: %s\n",
              static_cast<unsigned long long>(g.created), est,
              static_cast<unsigned long long>(g.exited), g.created_per_s,
              static_cast<unsigned long long>(g.created_total), est,
              static_cast<unsigned long long>(g.exited_total), live, g.cost.c_str());
      int n = 0;
      for (const auto& r : g.top) {
        if (n++ >= 5) break;
        fprintf(out, "     %8llu created %s%8llu exited  %s\n",
                static_cast<unsigned long long>(r.created), est,
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
        t->tid, t->name.c_str(), model::thread_state_name(t->state), t->syscall.empty() ? "-" : t->syscall.c_str(),
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
            static_cast<unsigned long long>(c.parent_goid), c.site().empty() ? "?" : c.site().c_str());
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
