#include "agent/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "go/runtime_reader.h"

namespace schedscope::agent {

const std::vector<std::string>& alert_kinds() {
  static const std::vector<std::string> k = {"stuck_p",     "syscall_storm", "blocked_m",
                                             "thread_limit", "gc_stall",     "stw_stall",
                                             "netpoll_saturation"};
  return k;
}

namespace {
// g.atomicstatus -> the state label of schedscope_goroutines.
const char* g_state(int s) {
  switch (s) {
    case 1: return "runnable";
    case 2: return "running";
    case 3: return "syscall";
    case 4: return "waiting";
    case 9: return "preempted";
    default: return "other";
  }
}
}  // namespace

namespace {
// Which bucket of kSyscallBounds the kernel's log2 bucket i ([2^i, 2^(i+1)) ns) falls in.
size_t syscall_bucket(int i) {
  for (size_t b = 0; b < kSyscallBounds.size(); b++)
    if (std::ldexp(1.0, i + 1) <= kSyscallBounds[b] * 1e9 + 0.5) return b;
  return kSyscallBounds.size();  // +Inf
}

// Every call of the interval into the per-syscall histograms: the frame's table holds
// each syscall's totals since attach; what was counted before is subtracted.
void update_all_syscalls(TargetSeries& s, const model::Frame& f, size_t top_syscalls) {
  s.all_syscalls = true;
  std::vector<const model::SyscallRow*> rows;
  for (const auto& r : f.syscalls) rows.push_back(&r);
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->total_count > b->total_count; });
  size_t named = s.syscall_latency.size() - s.syscall_latency.count("other");
  for (const auto* r : rows) {
    auto& seen = s.syscall_all_seen[r->nr];
    SyscallHist add;
    for (int i = 0; i < SS_HIST_BUCKETS; i++) {
      const uint64_t now = r->hist_total[size_t(i)], before = seen.hist[size_t(i)];
      const uint64_t d = now > before ? now - before : 0;
      seen.hist[size_t(i)] = std::max(now, before);
      add.buckets[syscall_bucket(i)] += d;
      add.count += d;
    }
    add.sum = r->total_ns > seen.total_ns ? double(r->total_ns - seen.total_ns) / 1e9 : 0;
    seen.total_ns = std::max(seen.total_ns, r->total_ns);
    if (add.count == 0) continue;
    std::string name = r->name.empty() ? "nr_" + std::to_string(r->nr) : r->name;
    if (!s.syscall_latency.count(name)) {
      if (named < top_syscalls && name != "other") {
        named++;
      } else {
        name = "other";
      }
    }
    auto& h = s.syscall_latency[name];
    for (size_t b = 0; b < h.buckets.size(); b++) h.buckets[b] += add.buckets[b];
    h.count += add.count;
    h.sum += add.sum;
  }
}
}  // namespace

void update(TargetSeries& s, const model::Frame& f, const std::vector<detect::Alert>& all,
            size_t top_syscalls) {
  s.pid = f.target.pid;
  s.comm = f.target.comm;
  s.exe = f.target.exe;
  s.go_version = f.target.go_version;

  for (const auto& k : alert_kinds()) s.alert_active[k] = false;
  s.alert_syscall.clear();
  for (const auto& a : f.alerts) {
    if (!a.active) continue;
    s.alert_active[a.kind] = true;
    if (!a.syscall.empty()) s.alert_syscall[a.kind] = a.syscall;
  }
  for (const auto& k : alert_kinds()) s.alerts_total[k] = 0;
  for (const auto& a : all) s.alerts_total[a.kind]++;

  s.ps.clear();
  s.gomaxprocs = 0;
  if (f.go) {
    s.gomaxprocs = f.go->gomaxprocs;
    for (const char* st : {"idle", "running", "syscall", "gcstop", "dead"}) s.ps[st] = 0;
    for (const auto& p : f.go->ps) s.ps[go::p_status_name(p.status)]++;
  }
  s.threads.clear();
  for (auto st : {model::ThreadState::kRunning, model::ThreadState::kRunnable,
                  model::ThreadState::kDisk, model::ThreadState::kSleeping,
                  model::ThreadState::kStopped})
    s.threads[model::thread_state_name(st)] = 0;
  for (const auto& r : f.threads)
    if (r.state != model::ThreadState::kExited) s.threads[model::thread_state_name(r.state)]++;
  s.threads_created_total = f.creations_total;

  // With -S the frame's syscall table has every call; the blocking one is apart.
  const auto& blocking = f.target.all_syscalls ? f.blocking_syscalls : f.syscalls;
  std::vector<const model::SyscallRow*> rows;
  for (const auto& r : blocking) rows.push_back(&r);
  std::sort(rows.begin(), rows.end(),
            [](auto* a, auto* b) { return a->total_count > b->total_count; });
  size_t named = s.blocking_syscalls_total.size() - s.blocking_syscalls_total.count("other");
  for (const auto* r : rows) {
    uint64_t& seen = s.syscall_seen[r->nr];
    uint64_t delta = r->total_count >= seen ? r->total_count - seen : 0;
    seen = std::max(seen, r->total_count);
    if (delta == 0 && r->time_ms <= 0) continue;
    std::string name = r->name.empty() ? "nr_" + std::to_string(r->nr) : r->name;
    if (!s.blocking_syscalls_total.count(name)) {
      if (named < top_syscalls && name != "other") {
        named++;
      } else {
        name = "other";
      }
    }
    s.blocking_syscalls_total[name] += delta;
    s.blocking_syscall_seconds_total[name] += r->time_ms / 1000;
  }

  if (f.target.all_syscalls) update_all_syscalls(s, f, top_syscalls);

  s.oncpu_seconds_total = f.totals.oncpu_ms / 1000;
  s.offcpu_seconds_total["preempted"] = f.totals.offcpu_ms.preempted / 1000;
  s.offcpu_seconds_total["sleep"] = f.totals.offcpu_ms.sleep / 1000;
  s.offcpu_seconds_total["disk"] = f.totals.offcpu_ms.disk / 1000;
  s.offcpu_seconds_total["other"] = f.totals.offcpu_ms.other / 1000;

  if (f.go_latency.available) {
    s.have_latency = true;
    for (const auto& b : f.go_latency.lat.buckets) {
      const bool open = b.hi_ns == UINT64_MAX;
      const double hi = open ? INFINITY : double(b.hi_ns) / 1e9;
      size_t i = 0;
      while (i < kLatencyBounds.size() && kLatencyBounds[i] < hi) i++;
      s.latency_buckets[i] += b.count;
      s.latency_count += b.count;
      const double mid = open ? double(b.lo_ns) / 1e9 : (double(b.lo_ns) + double(b.hi_ns)) / 2e9;
      s.latency_sum += double(b.count) * mid;
    }
  }

  if (f.census) {
    s.have_census = true;
    s.goroutines.clear();
    for (const char* st : {"runnable", "running", "syscall", "waiting", "preempted", "other"})
      s.goroutines[st] = 0;
    for (int st = 1; st < 16; st++)
      if (st != 6) s.goroutines[g_state(st)] += f.census->by_status[st];
  }

  if (f.gc.enabled) {
    s.gc = true;
    s.gc_stw_seconds_total += f.gc.stw_ms / 1000;
    s.gc_cycles_total = std::max(s.gc_cycles_total, f.gc.cycles_total);
    s.gc_assist_share = f.gc.assist_share;
    s.gc_mmu.clear();
    if (f.gc.mmu_1ms >= 0) s.gc_mmu["1ms"] = f.gc.mmu_1ms;
    if (f.gc.mmu_10ms >= 0) s.gc_mmu["10ms"] = f.gc.mmu_10ms;
    if (f.gc.mmu_100ms >= 0) s.gc_mmu["100ms"] = f.gc.mmu_100ms;
  }
  s.runqueue_latency_p99_seconds = f.rq_p99_us / 1e6;

  if (f.goroutines.enabled) {
    s.goroutine_probes = true;
    s.goroutines_created_total = std::max(s.goroutines_created_total, f.goroutines.created_total);
    s.goroutines_exited_total = std::max(s.goroutines_exited_total, f.goroutines.exited_total);
  }
  if (f.annotations && f.annotations->asked) {
    s.annotations = true;
    uint64_t tasks = 0, regions = 0, logs = 0;
    for (const auto& t : f.annotations->total.tasks) tasks += t.ended;
    for (const auto& r : f.annotations->total.regions) regions += r.count;
    for (const auto& l : f.annotations->total.logs) logs += l.count;
    s.annotation_tasks_total = std::max(s.annotation_tasks_total, tasks);
    s.annotation_regions_total = std::max(s.annotation_regions_total, regions);
    s.annotation_logs_total = std::max(s.annotation_logs_total, logs);
  }
}

std::string escape_label(const std::string& v) {
  std::string o;
  o.reserve(v.size());
  for (char c : v) {
    if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}

namespace {
std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char b[32];
    snprintf(b, sizeof b, "%.0f", v);
    return b;
  }
  char b[40];
  snprintf(b, sizeof b, "%.9g", v);
  return b;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

class Out {
 public:
  // One family: HELP and TYPE once, then its samples.
  void family(const std::string& name, const char* type, const char* help,
              const std::function<void()>& samples) {
    size_t mark = s_.size();
    s_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    size_t body = s_.size();
    samples();
    if (s_.size() == body) s_.resize(mark);  // no sample: no family
  }
  void sample(const std::string& name, const Labels& l, double v) {
    s_ += name;
    if (!l.empty()) {
      s_ += '{';
      for (size_t i = 0; i < l.size(); i++) {
        if (i) s_ += ',';
        s_ += l[i].first + "=\"" + escape_label(l[i].second) + "\"";
      }
      s_ += '}';
    }
    s_ += ' ' + num(v) + '\n';
  }
  std::string take() { return std::move(s_); }

 private:
  std::string s_;
};
}  // namespace

std::string render(const std::vector<TargetSeries>& ts, const AgentSeries& ag) {
  Out o;
  auto each = [&](const std::function<void(const TargetSeries&, const std::string&)>& fn) {
    return [&ts, fn] {
      for (const auto& t : ts) fn(t, std::to_string(t.pid));
    };
  };
  o.family("schedscope_target_info", "gauge", "An observed process (1), with its identity as labels.",
           each([&](const TargetSeries& t, const std::string& pid) {
             o.sample("schedscope_target_info",
                      {{"pid", pid}, {"exe", t.exe}, {"comm", t.comm}, {"go_version", t.go_version},
                       {"container", t.container}, {"pod", t.pod}},
                      1);
           }));
  o.family("schedscope_alert_active", "gauge", "1 while an alert of this kind is active on the target, else 0.",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [k, v] : t.alert_active)
               o.sample("schedscope_alert_active", {{"pid", pid}, {"kind", k}}, v ? 1 : 0);
           }));
  o.family("schedscope_alert_syscall_info", "gauge",
           "The syscall an active alert names (stuck P, storm, blocked M), 1 while active.",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [k, sc] : t.alert_syscall)
               o.sample("schedscope_alert_syscall_info", {{"pid", pid}, {"kind", k}, {"syscall", sc}}, 1);
           }));
  o.family("schedscope_alerts_total", "counter", "Alerts raised since the target was attached, by kind.",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [k, v] : t.alerts_total)
               o.sample("schedscope_alerts_total", {{"pid", pid}, {"kind", k}}, double(v));
           }));
  o.family("schedscope_sched_gomaxprocs_threads", "gauge", "GOMAXPROCS of the target (its Ps).",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.gomaxprocs > 0)
               o.sample("schedscope_sched_gomaxprocs_threads", {{"pid", pid}}, t.gomaxprocs);
           }));
  o.family("schedscope_ps", "gauge", "The target's Ps by status (idle, running, syscall, gcstop, dead).",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [st, n] : t.ps) o.sample("schedscope_ps", {{"pid", pid}, {"status", st}}, n);
           }));
  o.family("schedscope_threads", "gauge", "The target's threads (Ms) by state.",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [st, n] : t.threads)
               o.sample("schedscope_threads", {{"pid", pid}, {"state", st}}, n);
           }));
  o.family("schedscope_threads_created_total", "counter", "Threads the target created since attach.",
           each([&](const TargetSeries& t, const std::string& pid) {
             o.sample("schedscope_threads_created_total", {{"pid", pid}}, double(t.threads_created_total));
           }));
  o.family("schedscope_blocking_syscalls_total", "counter",
           "Blocking episodes (off-CPU in a syscall) since attach: the top syscalls by name, the rest as \"other\".",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [sc, n] : t.blocking_syscalls_total)
               o.sample("schedscope_blocking_syscalls_total", {{"pid", pid}, {"syscall", sc}}, double(n));
           }));
  o.family("schedscope_blocking_syscall_seconds_total", "counter",
           "Time blocked in those syscalls since attach (same names as schedscope_blocking_syscalls_total).",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [sc, v] : t.blocking_syscall_seconds_total)
               o.sample("schedscope_blocking_syscall_seconds_total", {{"pid", pid}, {"syscall", sc}}, v);
           }));
  o.family("schedscope_oncpu_seconds_total", "counter", "CPU time of the target's threads since attach.",
           each([&](const TargetSeries& t, const std::string& pid) {
             o.sample("schedscope_oncpu_seconds_total", {{"pid", pid}}, t.oncpu_seconds_total);
           }));
  o.family("schedscope_offcpu_seconds_total", "counter",
           "Off-CPU time of the target's threads since attach, by reason (preempted, sleep, disk, other).",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [r, v] : t.offcpu_seconds_total)
               o.sample("schedscope_offcpu_seconds_total", {{"pid", pid}, {"reason", r}}, v);
           }));
  o.family("schedscope_runqueue_latency_p99_seconds", "gauge",
           "p99 of the kernel run-queue latency of the target's threads over the last interval.",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.runqueue_latency_p99_seconds >= 0)
               o.sample("schedscope_runqueue_latency_p99_seconds", {{"pid", pid}}, t.runqueue_latency_p99_seconds);
           }));
  o.family("schedscope_goroutine_sched_latency_seconds", "histogram",
           "Goroutine scheduling latency (runnable to running), from the runtime's own histogram (sampled 1 in 8).",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (!t.have_latency) return;
             uint64_t cum = 0;
             for (size_t i = 0; i < kLatencyBounds.size(); i++) {
               cum += t.latency_buckets[i];
               o.sample("schedscope_goroutine_sched_latency_seconds_bucket",
                        {{"pid", pid}, {"le", num(kLatencyBounds[i])}}, double(cum));
             }
             cum += t.latency_buckets.back();
             o.sample("schedscope_goroutine_sched_latency_seconds_bucket", {{"pid", pid}, {"le", "+Inf"}},
                      double(cum));
             o.sample("schedscope_goroutine_sched_latency_seconds_sum", {{"pid", pid}}, t.latency_sum);
             o.sample("schedscope_goroutine_sched_latency_seconds_count", {{"pid", pid}}, double(cum));
           }));
  o.family("schedscope_goroutines", "gauge", "The target's goroutines by state (last census of runtime.allgs).",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (!t.have_census) return;
             for (const auto& [st, n] : t.goroutines)
               o.sample("schedscope_goroutines", {{"pid", pid}, {"state", st}}, double(n));
           }));
  o.family("schedscope_gc_cycles_total", "counter", "GC cycles (mark terminations) since attach.",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.gc) o.sample("schedscope_gc_cycles_total", {{"pid", pid}}, double(t.gc_cycles_total));
           }));
  o.family("schedscope_gc_stw_seconds_total", "counter", "Time the world was stopped since attach.",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.gc) o.sample("schedscope_gc_stw_seconds_total", {{"pid", pid}}, t.gc_stw_seconds_total);
           }));
  o.family("schedscope_gc_assist_share", "gauge",
           "Share of GOMAXPROCS x interval spent in GC mark assists over the last interval (0..1).",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.gc) o.sample("schedscope_gc_assist_share", {{"pid", pid}}, t.gc_assist_share);
           }));
  o.family("schedscope_gc_mmu", "gauge",
           "Minimum mutator utilization over the last interval, by window (1ms, 10ms, 100ms).",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [w, v] : t.gc_mmu) o.sample("schedscope_gc_mmu", {{"pid", pid}, {"window", w}}, v);
           }));

  o.family("schedscope_syscall_latency_seconds", "histogram",
           "Every completed syscall of a target that asked for it (--all-syscalls-for), by syscall (the top "
           "syscalls by name, the rest as \"other\"): time from entry to exit.",
           each([&](const TargetSeries& t, const std::string& pid) {
             for (const auto& [sc, h] : t.syscall_latency) {
               uint64_t cum = 0;
               for (size_t i = 0; i < kSyscallBounds.size(); i++) {
                 cum += h.buckets[i];
                 o.sample("schedscope_syscall_latency_seconds_bucket",
                          {{"pid", pid}, {"syscall", sc}, {"le", num(kSyscallBounds[i])}}, double(cum));
               }
               cum += h.buckets.back();
               o.sample("schedscope_syscall_latency_seconds_bucket", {{"pid", pid}, {"syscall", sc}, {"le", "+Inf"}},
                        double(cum));
               o.sample("schedscope_syscall_latency_seconds_sum", {{"pid", pid}, {"syscall", sc}}, h.sum);
               o.sample("schedscope_syscall_latency_seconds_count", {{"pid", pid}, {"syscall", sc}}, double(cum));
             }
           }));
  o.family("schedscope_goroutines_created_total", "counter",
           "Goroutines the target created since the goroutine uprobes were attached (--goroutines-for).",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.goroutine_probes)
               o.sample("schedscope_goroutines_created_total", {{"pid", pid}}, double(t.goroutines_created_total));
           }));
  o.family("schedscope_goroutines_exited_total", "counter",
           "Goroutines of the target that exited since the goroutine uprobes were attached (--goroutines-for).",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.goroutine_probes)
               o.sample("schedscope_goroutines_exited_total", {{"pid", pid}}, double(t.goroutines_exited_total));
           }));
  o.family("schedscope_annotation_tasks_total", "counter",
           "runtime/trace tasks of the target that ended since the annotation uprobes were attached (--annotations-for).",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.annotations)
               o.sample("schedscope_annotation_tasks_total", {{"pid", pid}}, double(t.annotation_tasks_total));
           }));
  o.family("schedscope_annotation_regions_total", "counter",
           "runtime/trace regions (WithRegion) of the target that ended since the annotation uprobes were attached.",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.annotations)
               o.sample("schedscope_annotation_regions_total", {{"pid", pid}}, double(t.annotation_regions_total));
           }));
  o.family("schedscope_annotation_logs_total", "counter",
           "runtime/trace.Log calls of the target since the annotation uprobes were attached.",
           each([&](const TargetSeries& t, const std::string& pid) {
             if (t.annotations)
               o.sample("schedscope_annotation_logs_total", {{"pid", pid}}, double(t.annotation_logs_total));
           }));

  o.family("schedscope_agent_targets", "gauge",
           "Processes the agent found, by state (observed, kernel_only, unobservable).", [&] {
             for (const auto& [st, n] : ag.targets) o.sample("schedscope_agent_targets", {{"state", st}}, n);
           });
  o.family("schedscope_agent_drops_total", "counter", "Ring-buffer records lost (buffer full).",
           [&] { o.sample("schedscope_agent_drops_total", {}, double(ag.drops_total)); });
  o.family("schedscope_agent_records_total", "counter", "Ring-buffer records consumed.",
           [&] { o.sample("schedscope_agent_records_total", {}, double(ag.records_total)); });
  o.family("schedscope_agent_scans_total", "counter", "Scans of /proc for targets.",
           [&] { o.sample("schedscope_agent_scans_total", {}, double(ag.scans_total)); });
  o.family("schedscope_agent_exec_lookups_total", "counter",
           "Processes looked at as soon as they exec'd (discovery on exec, between two scans).",
           [&] { o.sample("schedscope_agent_exec_lookups_total", {}, double(ag.exec_lookups_total)); });
  o.family("schedscope_agent_intervals_total", "counter", "Intervals stepped (every target read once).",
           [&] { o.sample("schedscope_agent_intervals_total", {}, double(ag.intervals_total)); });
  o.family("schedscope_agent_interval_work_seconds", "gauge",
           "How long the last interval's reads, frames and detectors took.",
           [&] { o.sample("schedscope_agent_interval_work_seconds", {}, ag.last_interval_seconds); });
  o.family("schedscope_agent_cpu_seconds_total", "counter", "CPU time (user + system) of the agent.",
           [&] { o.sample("schedscope_agent_cpu_seconds_total", {}, ag.cpu_seconds_total); });
  o.family("schedscope_agent_resident_memory_bytes", "gauge", "Resident memory of the agent.",
           [&] { o.sample("schedscope_agent_resident_memory_bytes", {}, double(ag.resident_memory_bytes)); });
  return o.take();
}

}  // namespace schedscope::agent
