#include "gc/gc.h"

#include <algorithm>
#include <cstring>

#include "util/most_first.h"

namespace schedscope::gc {

double mmu(const std::vector<BusySpan>& spans, uint64_t t0, uint64_t t1, uint64_t window_ns) {
  if (t1 <= t0 || window_ns == 0) return -1;
  // Breakpoints of the piecewise-constant lost fraction, clamped to [t0, t1].
  std::vector<std::pair<uint64_t, double>> deltas;  // (time, +/- frac)
  deltas.reserve(spans.size() * 2);
  for (const auto& s : spans) {
    uint64_t a = std::max(s.start_ns, t0), b = std::min(s.end_ns, t1);
    if (b <= a || s.frac <= 0) continue;
    deltas.emplace_back(a, s.frac);
    deltas.emplace_back(b, -s.frac);
  }
  std::sort(deltas.begin(), deltas.end());
  // Segments: lv[i] is the lost fraction on [xs[i], xs[i+1]); pre[i] the lost time up to xs[i].
  std::vector<uint64_t> xs;
  std::vector<double> lv;
  {
    std::vector<uint64_t> x2{t0};
    std::vector<double> l2;
    double lvl = 0;
    size_t i = 0;
    while (i < deltas.size() && deltas[i].first <= t0) lvl += deltas[i++].second;
    while (true) {
      uint64_t next = i < deltas.size() ? deltas[i].first : t1;
      if (next > t1) next = t1;
      if (next > x2.back()) {
        l2.push_back(std::min(1.0, std::max(0.0, lvl)));
        x2.push_back(next);
      }
      if (i >= deltas.size() || next >= t1) break;
      uint64_t t = deltas[i].first;
      while (i < deltas.size() && deltas[i].first == t) lvl += deltas[i++].second;
    }
    if (x2.back() < t1) {
      l2.push_back(0);
      x2.push_back(t1);
    }
    xs.swap(x2);
    lv.swap(l2);
  }
  std::vector<double> pre(xs.size(), 0);
  for (size_t i = 0; i + 1 < xs.size(); i++) pre[i + 1] = pre[i] + lv[i] * double(xs[i + 1] - xs[i]);
  auto integral = [&](uint64_t x) {  // lost time in [t0, x]
    if (x <= xs.front()) return 0.0;
    if (x >= xs.back()) return pre.back();
    size_t k = size_t(std::upper_bound(xs.begin(), xs.end(), x) - xs.begin()) - 1;
    return pre[k] + lv[k] * double(x - xs[k]);
  };
  uint64_t span = t1 - t0;
  if (window_ns >= span) return 1.0 - pre.back() / double(span);
  // The lost time in [s, s+w] is piecewise linear in s; its maximum is reached where s or
  // s+w sits on a breakpoint.
  double worst = 0;
  uint64_t last_start = t1 - window_ns;
  auto consider = [&](uint64_t s) {
    if (s < t0 || s > last_start) return;
    worst = std::max(worst, integral(s + window_ns) - integral(s));
  };
  for (uint64_t x : xs) {
    consider(x);
    if (x >= t0 + window_ns) consider(x - window_ns);
  }
  double u = 1.0 - worst / double(window_ns);
  return std::max(0.0, std::min(1.0, u));
}

std::string stw_reason_name(uint64_t reason) {
  static const char* names[] = {"unknown",
                                "GC mark termination",
                                "GC sweep termination",
                                "write heap dump",
                                "goroutine profile",
                                "goroutine profile cleanup",
                                "all goroutines stack trace",
                                "read mem stats",
                                "AllThreadsSyscall",
                                "GOMAXPROCS",
                                "start trace",
                                "stop trace"};
  if (reason < sizeof names / sizeof names[0]) return names[reason];
  return "for test";
}

bool stw_reasons_known(int go_minor, bool table_found) {
  return table_found || (go_minor >= 21 && go_minor <= 26);
}

bool Tracker::is_markterm_stop(uint64_t reason) const {
  return stw_reasons_known(go_minor_, !stw_names_.empty()) && (reason & 0xff) == SS_GC_STW_MARKTERM;
}

std::string wait_reason_name(uint32_t reason) {
  switch (reason) {
    case 0:
      return "none";
    case kWaitReasonGCAssistMarking:
      return "GC assist marking";
    case kWaitReasonIOWait:
      return "IO wait";
    default:
      return "wait reason " + std::to_string(reason);
  }
}

std::string wait_reason_name(uint32_t reason, const WaitReasonNames& names) {
  if (names && reason < names->size() && !(*names)[reason].empty()) return (*names)[reason];
  return wait_reason_name(reason);
}

std::vector<std::pair<std::string, uint32_t>> Census::waiting_by_name() const {
  std::vector<std::pair<std::string, uint32_t>> by;
  for (const auto& [r, n] : waiting_by_reason) by.emplace_back(reason_name(r), n);
  sort_most_first(by);
  return by;
}

void Tracker::close_stw(uint64_t end_ns) {
  Stw s = cur_stw_;
  s.end_ns = end_ns;
  in_stw_ = false;
  stws_.push_back(s);
  Period p;
  p.start_ns = s.start_ns;
  p.end_ns = s.end_ns;
  p.kind = "stw";
  p.what = stw_label(s);
  p.cycle = s.markterm ? cycles_total_ : cycles_total_ + 1;
  periods_.push_back(p);
  // Without a known reason every stop but the mark termination's is taken to start a mark
  // phase (a ReadMemStats stop then too).
  bool sweepterm = stw_reasons_known(go_minor_, !stw_names_.empty())
                       ? (s.reason & 0xff) == kStwGCSweepTerm
                       : !s.markterm;
  if (s.markterm) {
    if (mark_start_ns_) {
      Period m;
      m.start_ns = mark_start_ns_;
      m.end_ns = s.start_ns;
      m.kind = "mark";
      m.what = "GC cycle " + std::to_string(cycles_total_);
      m.cycle = cycles_total_;
      periods_.push_back(m);
    }
    mark_start_ns_ = 0;
  } else if (sweepterm) {
    mark_start_ns_ = s.end_ns;
  }
}

std::string Tracker::stw_label(const Stw& s) const {
  if (s.markterm) return "GC mark termination";
  if (!stw_reasons_known(go_minor_, !stw_names_.empty())) return "stop the world";
  const uint64_t r = s.reason & 0xff;
  if (r < stw_names_.size() && !stw_names_[r].empty()) return stw_names_[r];
  return stw_reason_name(r);
}

bool Tracker::on_record(const ss_hdr* rec, size_t size) {
  if (rec->type == SS_EV_GC) {
    if (size < sizeof(ss_gc_event)) return false;
    ss_gc_event e;
    std::memcpy(&e, rec, sizeof e);
    seen_records_ = true;
    if (!first_ns_) first_ns_ = e.h.ts;
    switch (e.what) {
      case SS_GC_STW_STOP:
        if (in_stw_) close_stw(e.h.ts);  // a lost start: close the previous one here
        in_stw_ = true;
        cur_stw_ = Stw{e.h.ts, 0, e.arg, false};
        break;
      case SS_GC_STW_START:
        if (in_stw_) close_stw(e.h.ts);
        break;
      case SS_GC_MARKTERM:
        // Once per cycle, inside the mark-termination STW. A second hit inside the same
        // STW (or within 1 ms) is the stack-growth re-entry of its prologue.
        if (in_stw_ && cur_stw_.markterm) break;
        if (!in_stw_ && last_markterm_ns_ && e.h.ts - last_markterm_ns_ < 1'000'000) break;
        last_markterm_ns_ = e.h.ts;
        if (in_stw_) cur_stw_.markterm = true;
        cycles_iv_++;
        cycles_total_++;
        break;
      default:
        break;
    }
    return true;
  }
  if (rec->type == SS_EV_GC_SAMPLE) {
    if (size < sizeof(ss_gc_sample)) return false;
    ss_gc_sample e;
    std::memcpy(&e, rec, sizeof e);
    seen_records_ = true;
    if (!first_ns_) first_ns_ = e.h.ts;
    if (samples_.size() < 2'000'000) samples_.push_back({e.h.ts, e.kind, e.goid});
    return true;
  }
  return false;
}

void Tracker::on_census(const Census& c) {
  if (have_census_) {
    prev_census_ = census_;
    have_prev_census_ = true;
  } else {
    first_rss_ = c.rss_bytes;
  }
  census_ = c;
  have_census_ = true;
}

GcStats Tracker::take(uint64_t t0, uint64_t t1, bool final) {
  GcStats g;
  g.enabled = attached_ || seen_records_;
  g.note = note_;
  g.gomaxprocs = gomaxprocs_;
  g.gcphase = gcphase_;
  g.in_cycle = gcphase_ != 0 || mark_start_ns_ != 0;
  g.cycles_total = cycles_total_;
  if (have_census_) {
    g.rss_bytes = census_.rss_bytes;
    if (final)
      g.rss_delta_bytes = int64_t(census_.rss_bytes) - int64_t(first_rss_);
    else if (have_prev_census_)
      g.rss_delta_bytes = int64_t(census_.rss_bytes) - int64_t(prev_census_.rss_bytes);
  }
  double period_ms = double(period_ns_) / 1e6;
  if (final) {
    g.cycles = cycles_total_;
    g.stw_count = stw_count_total_ + stws_.size();
    g.stw_ms = stw_ms_total_;
    g.stw_max_ms = stw_max_total_;
    g.stw_reasons = reasons_total_;
    g.stw_callers = callers_total_;
    for (const auto& [site, n] : callers_iv_) g.stw_callers[site] += n;
    for (const auto& s : stws_) {
      double ms = double(s.end_ns - s.start_ns) / 1e6;
      g.stw_ms += ms;
      g.stw_max_ms = std::max(g.stw_max_ms, ms);
      g.stw_reasons[stw_label(s)]++;
    }
    g.worker_ms = worker_ms_total_;
    g.assist_ms = assist_ms_total_;
    std::map<uint64_t, double> assists = assists_total_;
    g.idle_worker_ms = idle_worker_ms_total_;
    for (const auto& s : samples_) {
      if (s.kind == SS_GCS_WORKER) g.worker_ms += period_ms;
      if (s.kind == SS_GCS_IDLE_WORKER) g.idle_worker_ms += period_ms;
      if (s.kind == SS_GCS_ASSIST) {
        g.assist_ms += period_ms;
        assists[s.goid] += period_ms;
      }
    }
    double cap_ms = double(t1 - std::min(t0, t1)) / 1e6 * gomaxprocs_;
    if (cap_ms > 0) {
      g.worker_share = g.worker_ms / cap_ms;
      g.assist_share = g.assist_ms / cap_ms;
    }
    g.mmu_1ms = min_mmu_[0];
    g.mmu_10ms = min_mmu_[1];
    g.mmu_100ms = min_mmu_[2];
    for (auto& [goid, ms] : assists) g.top_assists.push_back({goid, ms});
    g.periods = periods_;
    g.samples = samples_.size();
  } else {
    g.cycles = cycles_iv_;
    std::vector<BusySpan> spans;
    // GC stop-the-world pauses (and one still in progress) take every P.
    auto add_stw = [&](const Stw& s, uint64_t end) {
      double ms = double(end - s.start_ns) / 1e6;
      g.stw_count++;
      g.stw_ms += ms;
      g.stw_max_ms = std::max(g.stw_max_ms, ms);
      g.stw_reasons[stw_label(s)]++;
      spans.push_back({s.start_ns, end, 1.0});
    };
    for (const auto& s : stws_) add_stw(s, s.end_ns);
    if (in_stw_ && cur_stw_.start_ns < t1) {
      spans.push_back({cur_stw_.start_ns, t1, 1.0});
      double ms = double(t1 - cur_stw_.start_ns) / 1e6;
      g.stw_max_ms = std::max(g.stw_max_ms, ms);
    }
    std::map<uint64_t, double> assists;
    double frac = 1.0 / std::max(1, gomaxprocs_);
    for (const auto& s : samples_) {
      if (s.kind == SS_GCS_IDLE_WORKER) {  // an idle P: no time taken from the program
        g.idle_worker_ms += period_ms;
        continue;
      }
      if (s.kind == SS_GCS_WORKER) g.worker_ms += period_ms;
      if (s.kind == SS_GCS_ASSIST) {
        g.assist_ms += period_ms;
        assists[s.goid] += period_ms;
      }
      uint64_t a = s.ts_ns > period_ns_ ? s.ts_ns - period_ns_ : 0;
      spans.push_back({a, s.ts_ns, frac});
    }
    g.samples = samples_.size();
    double cap_ms = double(t1 > t0 ? t1 - t0 : 0) / 1e6 * gomaxprocs_;
    if (cap_ms > 0) {
      g.worker_share = g.worker_ms / cap_ms;
      g.assist_share = g.assist_ms / cap_ms;
    }
    if (g.enabled && t1 > t0) {
      const uint64_t windows[3] = {1'000'000, 10'000'000, 100'000'000};
      double* outs[3] = {&g.mmu_1ms, &g.mmu_10ms, &g.mmu_100ms};
      for (int i = 0; i < 3; i++) {
        *outs[i] = mmu(spans, t0, t1, windows[i]);
        if (*outs[i] >= 0 && (min_mmu_[i] < 0 || *outs[i] < min_mmu_[i])) min_mmu_[i] = *outs[i];
      }
    }
    for (auto& [goid, ms] : assists) {
      g.top_assists.push_back({goid, ms});
      assists_total_[goid] += ms;
    }
    g.periods = periods_;
    // Roll the interval into the totals.
    stw_count_total_ += stws_.size();
    for (const auto& s : stws_) {
      double ms = double(s.end_ns - s.start_ns) / 1e6;
      stw_ms_total_ += ms;
      stw_max_total_ = std::max(stw_max_total_, ms);
      reasons_total_[stw_label(s)]++;
    }
    g.stw_callers = callers_iv_;
    for (const auto& [site, n] : callers_iv_) callers_total_[site] += n;
    callers_iv_.clear();
    worker_ms_total_ += g.worker_ms;
    assist_ms_total_ += g.assist_ms;
    idle_worker_ms_total_ += g.idle_worker_ms;
    stws_.clear();
    samples_.clear();
    periods_.clear();
    cycles_iv_ = 0;
  }
  std::sort(g.top_assists.begin(), g.top_assists.end(),
            [](const AssistRow& a, const AssistRow& b) { return a.ms > b.ms; });
  if (g.top_assists.size() > 5) g.top_assists.resize(5);
  return g;
}

}  // namespace schedscope::gc
