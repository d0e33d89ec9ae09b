#include "detect/detectors.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "detect/annotations_evidence.h"
#include "util/strfmt.h"

namespace schedscope::detect {

namespace {


bool blocked_in_kernel(const model::ThreadRow& r) {
  return model::off_cpu_blocked(r.state) &&
         (!r.syscall.empty() || r.state == model::ThreadState::kDisk);
}

double blocked_ms(const model::ThreadRow& r) {
  return r.syscall.empty() ? r.state_ms : r.syscall_ms;
}

template <typename K>
K top_key(const std::map<K, int>& counts, int* n) {
  K best{};
  *n = 0;
  for (const auto& [k, c] : counts)
    if (c > *n) {
      *n = c;
      best = k;
    }
  return best;
}

}  // namespace

void Detectors::stuck_p(const model::Frame& f, std::map<std::string, Alert>& now) {
  if (!f.go) return;
  std::unordered_map<uint32_t, const model::ThreadRow*> rows;
  for (const auto& r : f.threads) rows[r.tid] = &r;
  std::unordered_map<int64_t, const go::MSample*> m_by_id;
  for (const auto& m : f.go->ms) m_by_id[m.id] = &m;

  for (const auto& p : f.go->ps) {
    auto& tr = ptrack_[p.id];
    bool seen_before = tr.last_seen_ns != 0;
    if (!seen_before || tr.schedtick != p.schedtick || tr.syscalltick != p.syscalltick) {
      tr.schedtick = p.schedtick;
      tr.syscalltick = p.syscalltick;
      tr.unchanged_since_ns = f.ts_ns;
    }
    tr.last_seen_ns = f.ts_ns;
    bool frozen = seen_before && tr.unchanged_since_ns < f.ts_ns;
    if (!frozen) continue;

    // The M bound to this P: p.m while running (also during syscalls on Go 1.26+ and raw
    // syscalls that skip entersyscall), m.oldp while the P sits in _Psyscall.
    const go::MSample* m = nullptr;
    if (p.status == 1 && p.m_id >= 0) {
      auto it = m_by_id.find(p.m_id);
      if (it != m_by_id.end()) m = it->second;
    } else if (p.status == 2) {
      for (const auto& cand : f.go->ms)
        if (cand.oldp == p.id && cand.p < 0) m = &cand;
    }
    if (!m || m->tid <= 0) continue;
    auto rit = rows.find(uint32_t(m->tid));
    if (rit == rows.end()) continue;
    const model::ThreadRow& r = *rit->second;
    double frozen_ms = double(f.ts_ns - tr.unchanged_since_ns) / 1e6;
    const std::string key = "stuck_p:" + std::to_string(p.id);
    // The alert already raised for this P stays while the same M holds it and its ticks have
    // stayed frozen since: a signal interrupting the call and restarting it catches the
    // thread on CPU for a moment, or restarts the block's own clock when the restart is not
    // taken for the same block (a long gap on CPU, under load). The P never moved.
    auto still_stuck = [&] {
      auto it = active_.find(key);
      if (it != active_.end() && it->second.tid == uint32_t(m->tid) &&
          tr.unchanged_since_ns <= it->second.ts_ns) {
        Alert a = it->second;
        a.duration_ms += double(f.ts_ns - it->second.last_ns) / 1e6;
        a.last_ns = f.ts_ns;
        now[key] = a;
      }
    };
    if (!blocked_in_kernel(r)) {
      still_stuck();
      continue;
    }
    double dur = blocked_ms(r);
    if (dur < opt_.stuck_ms) {
      still_stuck();
      continue;
    }

    Alert a;
    a.kind = "stuck_p";
    a.severity = "critical";
    a.p = p.id;
    a.m = m->id;
    a.tid = uint32_t(m->tid);
    a.goid = m->curg_goid ? m->curg_goid : p.goid;
    a.func = !m->curg_func.empty() ? m->curg_func : p.func;
    a.stack = r.stack;  // where the M blocked (live: frame-pointer walk)
    if (a.stack.empty() && !p.cur_func.empty()) a.stack.push_back(p.cur_func);
    a.syscall = r.syscall;
    a.duration_ms = dur;
    a.handed_off = false;
    a.threads = f.threads_alive;
    const char* how = p.status == 2 ? "in _Psyscall and not retaken by sysmon"
                                    : (m->incgo ? "running, its M inside a cgo call"
                                                : "running, its M blocked in a syscall that "
                                                  "bypassed entersyscall");
    a.message =
        strfmt("P%d stuck %.1fs: M%lld (tid %d) blocked in %s, running G%llu %s; P %s", p.id,
            dur / 1e3, static_cast<long long>(m->id), m->tid,
            r.syscall.empty() ? model::thread_state_name(r.state) : r.syscall.c_str(),
            static_cast<unsigned long long>(a.goid), a.func.empty() ? "?" : a.func.c_str(), how);
    a.evidence.push_back(strfmt("P%d status=%s schedtick=%u syscalltick=%u unchanged for %.1fs", p.id,
                             go::p_status_name(p.status), p.schedtick, p.syscalltick,
                             frozen_ms / 1e3));
    a.evidence.push_back(strfmt("thread %d state=%s %s for %.1fs, on-CPU %.0f%% this interval", m->tid,
                             model::thread_state_name(r.state), r.syscall.c_str(), dur / 1e3, r.oncpu_pct));
    if (!r.stack.empty()) a.evidence.push_back("blocked at " + r.stack.front());
    for (size_t i = 1; i < r.stack.size() && i < 6; i++)
      a.evidence.push_back("  called from " + r.stack[i]);
    a.evidence.push_back("the other Ps carry on; this one is lost until the call returns");
    a.last_ns = f.ts_ns;
    now[key] = a;
  }

  // Blocked Ms: a user G in a long syscall whose P was handed off (sysmon retake or
  // entersyscallblock). Shown, not alerted as a stuck P: the P is working elsewhere.
  for (const auto& m : f.go->ms) {
    if (m.p >= 0 || m.curg_goid == 0 || m.tid <= 0) continue;
    auto rit = rows.find(uint32_t(m.tid));
    if (rit == rows.end()) continue;
    const model::ThreadRow& r = *rit->second;
    if (!blocked_in_kernel(r) || blocked_ms(r) < opt_.blocked_m_ms) continue;
    bool p_still_held = false;
    for (const auto& p : f.go->ps)
      if (p.id == m.oldp && p.status == 2) p_still_held = true;
    if (p_still_held) continue;  // that is the stuck-P case above
    Alert a;
    a.kind = "blocked_m";
    a.severity = "info";
    a.m = m.id;
    a.tid = uint32_t(m.tid);
    a.goid = m.curg_goid;
    a.func = m.curg_func;
    a.stack = r.stack;
    a.syscall = r.syscall;
    a.duration_ms = blocked_ms(r);
    a.handed_off = true;
    a.p = m.oldp;
    a.threads = f.threads_alive;
    a.message = strfmt("M%lld (tid %d) blocked %.1fs in %s%s running G%llu %s; its P%s was handed off",
                    static_cast<long long>(m.id), m.tid, a.duration_ms / 1e3,
                    r.syscall.empty() ? model::thread_state_name(r.state) : r.syscall.c_str(),
                    m.incgo ? " (cgo call)" : "", static_cast<unsigned long long>(m.curg_goid),
                    m.curg_func.empty() ? "?" : m.curg_func.c_str(),
                    m.oldp >= 0 ? std::to_string(m.oldp).c_str() : "");
    a.evidence.push_back("the scheduler works around it: not a stuck P, but one thread parked");
    now["blocked_m:" + std::to_string(m.tid)] = a;
  }
}

void Detectors::storm(const model::Frame& f, std::map<std::string, Alert>& now) {
  creations_.emplace_back(f.ts_ns, f.creations_total);
  while (creations_.size() > 1 &&
         double(f.ts_ns - creations_.front().first) / 1e9 > opt_.storm_window_s + 1e-6)
    creations_.pop_front();
  double span = double(f.ts_ns - creations_.front().first) / 1e9;
  double rate =
      span > 0 ? double(f.creations_total - creations_.front().second) / span : f.creations_per_s;

  std::unordered_map<int32_t, const go::MSample*> m_by_tid;
  if (f.go)
    for (const auto& m : f.go->ms) m_by_tid[m.tid] = &m;
  // The instant a frame is taken can catch threads between two short calls: a storm of
  // fsyncs of a few ms each shows 40% of its threads in fsync one frame and 95% the next.
  // So the share is weighed over the interval too: a thread blocked now counts 1; one
  // between two calls counts the share of the interval it spent blocked (asleep or in disk
  // wait, at most all of it), for the syscall of its longest blocks in the interval.
  int blocked = 0;
  double avg_blocked = 0;
  std::map<std::string, int> by_syscall, by_func;
  std::map<std::string, double> weighted;
  std::vector<uint32_t> blocked_tids;  // named by the runtime adapter
  const double interval_ms = f.interval_s * 1e3;
  for (const auto& r : f.threads) {
    if (r.state == model::ThreadState::kExited || r.syscall == "futex") continue;
    std::string func = r.go_func;
    if (auto it = m_by_tid.find(int32_t(r.tid)); it != m_by_tid.end()) {
      if (it->second->curg_goid == 0) continue;  // idle M, netpoller or sysmon
      func = it->second->curg_func;
    }
    if (blocked_in_kernel(r)) {
      blocked++;
      blocked_tids.push_back(r.tid);
      const std::string sc = r.syscall.empty() ? model::thread_state_name(r.state) : r.syscall;
      by_syscall[sc]++;
      weighted[sc] += 1;
      avg_blocked += 1;
      if (!func.empty()) by_func[func]++;
      continue;
    }
    if (interval_ms <= 0) continue;
    const std::string* longest = nullptr;
    double longest_ms = 0;
    for (const auto& [sc, b] : r.blocked_in)
      if (sc != "futex" && b.ms > longest_ms) {
        longest = &sc;
        longest_ms = b.ms;
      }
    if (!longest) continue;
    double w = std::min(1.0, (r.offcpu_ms.sleep + r.offcpu_ms.disk) / interval_ms);
    weighted[*longest] += w;
    avg_blocked += w;
  }
  int threads = f.threads_alive;
  avg_blocked = std::min(avg_blocked, double(threads));
  double frac = threads ? std::max(double(blocked), avg_blocked) / threads : 0;
  int max_threads = f.go && f.go->maxmcount > 0 ? f.go->maxmcount : f.target.max_threads;

  const std::string key = "syscall_storm";
  bool was_active = active_.count(key) > 0;
  bool growing = rate >= opt_.storm_rate;
  bool piled = threads >= opt_.storm_threads && frac >= opt_.storm_blocked_frac;
  if (piled && (growing || was_active)) {
    Alert a;
    a.kind = "syscall_storm";
    a.severity = threads >= opt_.thread_limit_frac * max_threads ? "critical" : "warning";
    a.threads = threads;
    int n_sc = 0, n_fn = 0;
    // The syscall named is the one most threads were in, weighed over the interval.
    double best = -1;
    for (const auto& [sc, w] : weighted)
      if (w > best) {
        best = w;
        a.syscall = sc;
      }
    n_sc = by_syscall.count(a.syscall) ? by_syscall[a.syscall] : 0;
    a.func = top_key(by_func, &n_fn);
    std::map<std::string, int> sites;
    const model::Frame_Creation* example = nullptr;
    int sampled = 0;
    for (const auto& c : f.creations) {
      if (!c.stack_skipped) sampled++;
      if (!c.site().empty()) sites[c.site()]++;
      if (!example || (!c.site().empty() && example->site().empty())) example = &c;
    }
    int n_site = 0;
    std::string site = top_key(sites, &n_site);
    if (example) a.stack = example->frames();
    a.message = strfmt(
        "syscall storm: %d threads (+%.0f/s), %d blocked in syscalls, most in %s (%d)%s%s", threads,
        rate, blocked, a.syscall.c_str(), n_sc, a.func.empty() ? "" : ", from ", a.func.c_str());
    a.evidence.push_back(strfmt("thread creations: %.1f/s over the last %.0fs; %llu since attach",
                             rate, opt_.storm_window_s,
                             static_cast<unsigned long long>(f.creations_total)));
    for (const auto& [sc, n] : by_syscall)
      a.evidence.push_back(strfmt("  %4d threads blocked in %s", n, sc.c_str()));
    if (avg_blocked > blocked)
      a.evidence.push_back(strfmt("  %.1f threads blocked on average over the last %.1fs (those "
                                  "between two calls weighed by their time blocked)",
                                  avg_blocked, f.interval_s));
    for (const auto& [fn, n] : by_func)
      if (n * 10 >= blocked)
        a.evidence.push_back(strfmt("  %4d of them run goroutines in %s", n, fn.c_str()));
    if (!f.usdt.runtime.empty() && !blocked_tids.empty())
      a.evidence.push_back(f.usdt.runtime + " threads blocked: " + name_groups(f, blocked_tids));
    if (!site.empty()) {
      if (sampled < int(f.creations.size()))
        a.evidence.push_back(strfmt("new threads spawned from %s (%d of the %d creations whose stack was "
                                 "sampled this interval, of %zu)",
                                 site.c_str(), n_site, sampled, f.creations.size()));
      else
        a.evidence.push_back(
            strfmt("new threads spawned from %s (%d this interval)", site.c_str(), n_site));
    }
    a.evidence.push_back(strfmt("runtime thread limit %d: %.0f%% used", max_threads,
                             100.0 * threads / std::max(1, max_threads)));
    a.evidence.push_back(
        "each blocking call holds an M; the scheduler spawns new Ms to keep Ps busy");
    if (was_active) {
      a.since_ns = active_[key].since_ns;
      a.duration_ms = double(f.ts_ns - a.since_ns) / 1e6;
    }
    now[key] = a;
  }

  if (threads >= opt_.thread_limit_frac * max_threads) {
    Alert a;
    a.kind = "thread_limit";
    a.severity = "critical";
    a.threads = threads;
    a.message = strfmt("%d threads: %.0f%% of the runtime limit %d (the process dies at the limit)",
                    threads, 100.0 * threads / max_threads, max_threads);
    now["thread_limit"] = a;
  }
}

Detection Detectors::evaluate(const model::Frame& f) {
  std::map<std::string, Alert> now;
  stuck_p(f, now);
  storm(f, now);
  pauses(f, now);
  gc_stall(f, now);
  stw_stall(f, now);
  netpoll(f, now);
  if (f.annotations)  // --annotations: the tasks and regions in flight (annotations_evidence.h)
    for (auto& [k, a] : now) annotate_alert(*f.annotations, a);
  Detection out;
  // Blocked Ms are shown, not alerted: the scheduler handed their P to another M.
  for (auto it = now.begin(); it != now.end();) {
    if (it->second.kind == "blocked_m") {
      it->second.ts_ns = f.ts_ns;
      it->second.since_ns = f.ts_ns - uint64_t(it->second.duration_ms * 1e6);
      out.notices.push_back(std::move(it->second));
      it = now.erase(it);
    } else {
      ++it;
    }
  }
  // Keep the first-raised time of ongoing alerts; retire the ones that cleared.
  for (auto& [k, a] : now) {
    auto it = active_.find(k);
    a.ts_ns = f.ts_ns;
    if (it != active_.end()) {
      a.since_ns = it->second.since_ns;
      a.ts_ns = it->second.ts_ns;
    } else if (a.since_ns == 0) {
      a.since_ns = a.duration_ms > 0 ? f.ts_ns - uint64_t(a.duration_ms * 1e6) : f.ts_ns;
    }
    a.active = true;
  }
  for (auto& [k, a] : active_) {
    if (now.count(k)) continue;
    a.active = false;
    out.alerts.push_back(a);  // cleared at this frame
    history_.push_back(a);
    if (history_.size() > opt_.history) history_.erase(history_.begin());
  }
  active_ = std::move(now);
  for (const auto& [k, a] : active_) out.alerts.push_back(a);
  return out;
}

void attach(model::Frame& f, Detection d) {
  f.alerts = std::move(d.alerts);
  f.notices = std::move(d.notices);
}

std::vector<Alert> Detectors::all() const {
  std::vector<Alert> out = history_;
  for (const auto& [k, a] : active_) out.push_back(a);
  return out;
}

}  // namespace schedscope::detect
