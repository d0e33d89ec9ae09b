#include "capacity/tracker.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>

#include "capacity/thresholds.h"

namespace schedscope::capacity {

struct Tracker::State {
  struct Entry {
    Evidence e;
    std::vector<Verdict> judged;  // per question
  };
  std::optional<ss_cap_sample> last_, base_;
  bool seen_ = false;
  std::deque<Entry> window_;
  Evidence total_;
  std::vector<Verdict> strongest_;  // per question, over the run
  std::vector<double> strongest_at_;
};

Tracker::Tracker() : st_(std::make_shared<State>()) {}

bool Tracker::on_record(const ss_hdr* rec, size_t size) {
  auto& last_ = st_->last_;
  auto& seen_ = st_->seen_;
  if (rec->type != SS_EV_CAP_SAMPLE) return false;
  if (size < sizeof(ss_cap_sample)) return true;  // truncated: consumed, ignored
  ss_cap_sample s;
  std::memcpy(&s, rec, sizeof s);
  s.cgroup[sizeof s.cgroup - 1] = 0;
  last_ = s;
  seen_ = true;
  return true;
}

namespace {

// The interval's evidence from the capacity records (cur minus base) and the frame.
Evidence evidence_of(const FrameFacts& f, const ss_cap_sample* cur, const ss_cap_sample* base) {
  Evidence e;
  e.span_s = f.interval_s;
  e.go_version = f.go_version;
  if (f.gomaxprocs > 0) e.gomaxprocs = f.gomaxprocs;
  if (cur) {
    e.cpus = int(cur->cpus);
    if (cur->period_us) e.tick_hz = 1e6 / cur->period_us;
    if (cur->flags & SS_CAPF_SAMPLER) {
      uint64_t bt = base && (base->flags & SS_CAPF_SAMPLER) ? base->counts.ticks : 0;
      if (cur->counts.ticks >= bt) {
        e.ticks = cur->counts.ticks - bt;
        e.procs.assign(SS_CAP_PROCS, 0);
        for (int k = 0; k < SS_CAP_PROCS; k++) {
          uint64_t b = base && (base->flags & SS_CAPF_SAMPLER) ? base->counts.procs[k] : 0;
          e.procs[size_t(k)] = cur->counts.procs[k] >= b ? cur->counts.procs[k] - b : 0;
        }
        while (!e.procs.empty() && !e.procs.back()) e.procs.pop_back();
      }
      if (cur->flags & SS_CAPF_READS) {
        e.reads_known = true;
        uint32_t br = base && (base->flags & SS_CAPF_READS) ? base->reads : 0;
        e.reads = uint32_t(cur->reads - br);  // mod 2^32
      }
    }
    if (cur->flags & SS_CAPF_RUNQ) {
      e.runq_known = true;
      e.runq.assign(SS_CAP_RUNQ, 0);
      for (int n = 0; n < SS_CAP_RUNQ; n++) {
        uint64_t b = base && (base->flags & SS_CAPF_RUNQ) ? base->counts.runq[n] : 0;
        e.runq[size_t(n)] = cur->counts.runq[n] >= b ? cur->counts.runq[n] - b : 0;
      }
      while (!e.runq.empty() && !e.runq.back()) e.runq.pop_back();
    }
    if (cur->flags & SS_CAPF_CGROUP) {
      e.cgroup_known = true;
      e.cgroup = cur->cgroup;
      e.quota_known = cur->flags & SS_CAPF_QUOTA;
      if (e.quota_known && cur->cfs_period_us)
        e.quota_cores = double(cur->quota_us) / double(cur->cfs_period_us);
      // Counters are since the cgroup's creation: deltas need the same cgroup before.
      if (base && (base->flags & SS_CAPF_CGROUP) && std::strcmp(base->cgroup, cur->cgroup) == 0 &&
          cur->nr_periods >= base->nr_periods && cur->nr_throttled >= base->nr_throttled) {
        e.nr_periods = cur->nr_periods - base->nr_periods;
        e.nr_throttled = cur->nr_throttled - base->nr_throttled;
        e.throttled_ms = cur->throttled_ns >= base->throttled_ns
                             ? double(cur->throttled_ns - base->throttled_ns) / 1e6
                             : 0;
      }
    }
  }
  if (f.latency_available) {
    e.latency_known = true;
    e.latency_samples = f.latency_samples;
    e.latency_p99_us = f.latency_p99_us;
  }
  if (f.census && f.census->read > 0) {
    const gc::Census& c = *f.census;
    double scale = c.allglen > c.read ? double(c.allglen) / c.read : 1.0;  // partial pass
    e.census_known = true;
    e.goroutines = c.live() * scale;
    if (auto it = c.waiting_by_reason.find(gc::kWaitReasonIOWait); it != c.waiting_by_reason.end())
      e.io_wait = it->second * scale;
    for (const auto& [name, n] : c.waiting_by_name())
      if (name.find("Mutex") != std::string::npos || name.find("semacquire") != std::string::npos)
        e.lock_wait += n * scale;
  }
  e.gc_share = f.gc_share;
  e.stw_ms = f.stw_ms;
  e.syscalls_per_s = f.syscalls_per_s;
  e.kernel_rq_p99_us = f.rq_p99_us;
  if (f.interval_s > 0) e.cpu_cores = f.cpu_cores;
  return e;
}

}  // namespace

Section Tracker::fill(const FrameFacts& f) {
  auto& [last_, base_, seen_, window_, total_, strongest_, strongest_at_] = *st_;
  using Entry = State::Entry;
  Section s;
  s.present = seen_ || f.gomaxprocs > 0;
  s.final = f.final;
  if (last_ && last_->period_us) s.sample_hz = 1e6 / last_->period_us;
  if (strongest_.empty()) {
    for (Question q : kQuestions) strongest_.push_back(Verdict{q, Answer::kUnknown, "", ""});
    strongest_at_.assign(strongest_.size(), -1);
  }
  if (f.final) {
    s.interval = total_;
    s.interval.span_s = f.interval_s;
    if (f.gomaxprocs > 0) s.interval.gomaxprocs = f.gomaxprocs;
    s.verdicts = strongest_;
    s.verdict_at_s = strongest_at_;
    for (auto& v : s.verdicts)
      if (v.answer == Answer::kUnknown && v.because.empty()) v = judge(v.question, total_);
    s.window_s = f.elapsed_s;
    return s;
  }
  bool fresh = last_ && (!base_ || last_->h.ts != base_->h.ts);
  Evidence e = evidence_of(f, fresh ? &*last_ : nullptr, base_ ? &*base_ : nullptr);
  if (fresh) base_ = last_;
  if (f.interval_s <= 0) {  // the baseline frame
    s.interval = e;
    return s;
  }
  accumulate(total_, e);
  Entry en{e, {}};
  for (Question q : kQuestions) en.judged.push_back(judge(q, e));
  window_.push_back(std::move(en));
  // Keep the last kWindowS seconds (the newest interval always).
  double span = 0;
  size_t keep = 0;
  for (auto it = window_.rbegin(); it != window_.rend(); ++it) {
    if (keep > 0 && span >= kWindowS - 1e-6) break;
    span += it->e.span_s;
    keep++;
  }
  while (window_.size() > keep) window_.pop_front();
  Evidence summed;
  for (const auto& w : window_) accumulate(summed, w.e);
  s.interval = e;
  s.window_s = summed.span_s;
  for (size_t i = 0; i < std::size(kQuestions); i++) {
    std::vector<std::pair<double, Verdict>> iv;
    for (const auto& w : window_) iv.emplace_back(w.e.span_s, w.judged[i]);
    Verdict v = decide(kQuestions[i], iv, summed);
    if (int(v.answer) > int(strongest_[i].answer)) {
      strongest_[i] = v;
      strongest_at_[i] = f.elapsed_s;
    } else if (strongest_[i].answer == v.answer) {
      strongest_[i] = v;  // the latest numbers of the same answer
    }
    s.verdicts.push_back(std::move(v));
  }
  return s;
}

}  // namespace schedscope::capacity
