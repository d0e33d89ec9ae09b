#include "usdt/tracker.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace schedscope::usdt {

namespace {

constexpr size_t kMaxKept = 10000;
constexpr size_t kMaxHitsFinal = 1000;
constexpr size_t kMaxHitsInterval = 200;

std::string fixed_str(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

double r3(double v) { return std::isfinite(v) ? std::round(v * 1000) / 1000 : 0; }

}  // namespace

const char* role_name(uint32_t role) {
  switch (role) {
    case SS_USDT_ROLE_THREAD_START: return "thread_start";
    case SS_USDT_ROLE_THREAD_STOP: return "thread_stop";
    case SS_USDT_ROLE_PAUSE_BEGIN: return "pause_begin";
    case SS_USDT_ROLE_PAUSE_END: return "pause_end";
    default: return "generic";
  }
}

const char* pause_kind_name(uint32_t pause) {
  switch (pause) {
    case SS_PAUSE_SAFEPOINT: return "safepoint";
    case SS_PAUSE_GC: return "gc";
    default: return "";
  }
}

std::optional<std::string> Tracker::name(uint32_t tid) const {
  auto it = names_.find(tid);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

void Tracker::on_record(const ss_hdr* rec, size_t size) {
  switch (rec->type) {
    case SS_EV_USDT_PROBE: {
      if (size < sizeof(ss_usdt_probe)) return;
      const auto* e = reinterpret_cast<const ss_usdt_probe*>(rec);
      ProbeInfo p;
      p.index = e->probe;
      p.role = e->role;
      p.pause = e->pause;
      p.locations = e->locations;
      p.runtime = fixed_str(e->runtime, sizeof e->runtime);
      p.provider = fixed_str(e->provider, sizeof e->provider);
      p.name = fixed_str(e->name, sizeof e->name);
      p.file = fixed_str(e->file, sizeof e->file);
      probes_[p.index] = p;
      if (!start_ns_) start_ns_ = rec->ts;
      return;
    }
    case SS_EV_USDT_COUNT: {
      if (size < sizeof(ss_usdt_count)) return;
      const auto* e = reinterpret_cast<const ss_usdt_count*>(rec);
      auto& c = counts_[{e->probe, e->tid}];
      c = std::max(c, e->count);  // the BPF entry of an exited thread may be gone
      return;
    }
    case SS_EV_USDT: {
      if (size < sizeof(ss_usdt_hit)) return;
      const auto* e = reinterpret_cast<const ss_usdt_hit*>(rec);
      auto pit = probes_.find(e->probe);
      if (pit == probes_.end()) return;
      const ProbeInfo& p = pit->second;
      uint32_t nargs = std::min<uint32_t>(e->nargs, SS_USDT_MAX_ARGS);
      auto arg = [&](uint32_t i) -> int64_t { return i < nargs ? int64_t(e->args[i]) : 0; };
      switch (p.role) {
        case SS_USDT_ROLE_THREAD_START:
        case SS_USDT_ROLE_THREAD_STOP: {
          // HotSpot: (name, name length, java.lang.Thread id, native tid, daemon).
          uint32_t tid = e->tid;
          if (nargs >= 4 && arg(3) > 0 && arg(3) < (int64_t(1) << 32)) tid = uint32_t(arg(3));
          std::string nm = fixed_str(e->str, std::min<size_t>(e->str_len, sizeof e->str));
          if (nargs >= 2 && arg(1) >= 0 && size_t(arg(1)) < nm.size()) nm.resize(size_t(arg(1)));
          if (p.role == SS_USDT_ROLE_THREAD_START) {
            threads_started_++;
            RuntimeThread t;
            t.tid = tid;
            t.name = nm;
            t.id = nargs >= 3 ? arg(2) : -1;
            t.daemon = nargs >= 5 && arg(4) != 0;
            t.start_ns = rec->ts;
            if (!nm.empty()) names_[tid] = nm;
            started_iv_.push_back(t);
            if (started_all_.size() < kMaxKept) {
              started_index_[tid] = started_all_.size();
              started_all_.push_back(t);
            }
          } else {
            threads_stopped_++;
            if (!nm.empty() && !names_.count(tid)) names_[tid] = nm;
            if (auto it = started_index_.find(tid); it != started_index_.end())
              started_all_[it->second].stop_ns = rec->ts;
            for (auto& t : started_iv_)
              if (t.tid == tid) t.stop_ns = rec->ts;
          }
          return;
        }
        case SS_USDT_ROLE_PAUSE_BEGIN:
          open_[{p.pause, e->tid}] = {rec->ts, arg(0)};
          return;
        case SS_USDT_ROLE_PAUSE_END: {
          auto it = open_.find({p.pause, e->tid});
          if (it == open_.end()) return;  // began before attach
          Pause ps;
          ps.kind = pause_kind_name(p.pause);
          ps.runtime = p.runtime;
          ps.start_ns = it->second.first;
          ps.end_ns = std::max(rec->ts, ps.start_ns);
          ps.tid = e->tid;
          ps.arg = it->second.second;
          open_.erase(it);
          pauses_iv_.push_back(ps);
          if (pauses_all_.size() < kMaxKept) pauses_all_.push_back(ps);
          auto& t = pause_totals_[ps.kind];
          t.kind = ps.kind;
          t.runtime = ps.runtime;
          t.count_total++;
          t.total_ms_total += ps.ms();
          t.max_ms_total = std::max(t.max_ms_total, ps.ms());
          return;
        }
        default: {
          Hit h;
          h.ts_ns = rec->ts;
          h.tid = e->tid;
          h.probe = p.full_name();
          for (uint32_t i = 0; i < nargs; i++) h.args.push_back(arg(i));
          h.str = fixed_str(e->str, std::min<size_t>(e->str_len, sizeof e->str));
          if (hits_iv_.size() < kMaxHitsInterval) hits_iv_.push_back(h);
          else hits_dropped_iv_++;
          hits_all_.push_back(std::move(h));
          if (hits_all_.size() > 2 * kMaxHitsFinal) {
            hits_dropped_all_ += hits_all_.size() - kMaxHitsFinal;
            hits_all_.erase(hits_all_.begin(), hits_all_.end() - kMaxHitsFinal);
          }
          return;
        }
      }
    }
    default:
      return;
  }
}

UsdtStats Tracker::frame(uint64_t now_ns, double interval_s, bool final,
                         const std::map<uint32_t, std::string>& os_names) {
  UsdtStats s;
  double span_s = final ? (start_ns_ && now_ns > start_ns_ ? double(now_ns - start_ns_) / 1e9 : 0)
                        : interval_s;
  auto thread_name = [&](uint32_t tid) -> std::string {
    if (auto it = names_.find(tid); it != names_.end()) return it->second;
    if (auto it = os_names.find(tid); it != os_names.end()) return it->second;
    return "";
  };
  for (const auto& [idx, p] : probes_) {
    if (!p.runtime.empty() && s.runtime.empty()) s.runtime = p.runtime;
    ProbeRow row;
    row.probe = p.full_name();
    row.runtime = p.runtime;
    row.role = role_name(p.role);
    row.file = p.file;
    row.locations = p.locations;
    std::vector<ThreadHits> th;
    for (auto it = counts_.lower_bound({idx, 0}); it != counts_.end() && it->first.first == idx;
         ++it) {
      uint64_t prev = 0;
      if (auto pv = counts_prev_.find(it->first); pv != counts_prev_.end()) prev = pv->second;
      uint64_t d = final ? it->second : it->second - std::min(prev, it->second);
      row.total += it->second;
      row.hits += d;
      if (d) th.push_back({it->first.second, thread_name(it->first.second), d});
    }
    std::sort(th.begin(), th.end(), [](const ThreadHits& a, const ThreadHits& b) {
      return a.hits != b.hits ? a.hits > b.hits : a.tid < b.tid;
    });
    if (th.size() > 10) th.resize(10);
    row.threads = std::move(th);
    row.per_s = span_s > 0 ? double(row.hits) / span_s : 0;
    s.probes.push_back(std::move(row));
  }
  // Pauses of the span, by kind (kinds seen since attach stay listed with zeros).
  const auto& list = final ? pauses_all_ : pauses_iv_;
  for (const auto& [kind, tot] : pause_totals_) {
    PauseStats ps = tot;
    if (final) {
      ps.count = tot.count_total;
      ps.total_ms = tot.total_ms_total;
      ps.max_ms = tot.max_ms_total;
    } else {
      for (const auto& p : list)
        if (p.kind == kind) {
          ps.count++;
          ps.total_ms += p.ms();
          ps.max_ms = std::max(ps.max_ms, p.ms());
        }
    }
    ps.share = span_s > 0 ? ps.total_ms / (span_s * 1000) : 0;
    ps.per_s = span_s > 0 ? double(ps.count) / span_s : 0;
    s.pauses.push_back(ps);
  }
  // A pause still open (not in the final frame: the process may have died inside one).
  for (const auto& [key, o] : open_) {
    if (final) break;
    std::string kind = pause_kind_name(key.first);
    auto it = std::find_if(s.pauses.begin(), s.pauses.end(),
                           [&](const PauseStats& p) { return p.kind == kind; });
    if (it == s.pauses.end()) {
      PauseStats ps;
      ps.kind = kind;
      for (const auto& [i, p] : probes_)
        if (p.pause == key.first) ps.runtime = p.runtime;
      s.pauses.push_back(ps);
      it = s.pauses.end() - 1;
    }
    if (now_ns > o.first) it->ongoing_ms = std::max(it->ongoing_ms, double(now_ns - o.first) / 1e6);
  }
  s.pause_list = list;
  s.started = final ? started_all_ : started_iv_;
  for (auto& t : s.started)
    if (t.name.empty()) t.name = thread_name(t.tid);
  s.threads_started = threads_started_;
  s.threads_stopped = threads_stopped_;
  s.hits = final ? hits_all_ : hits_iv_;
  if (final && s.hits.size() > kMaxHitsFinal)
    s.hits.erase(s.hits.begin(), s.hits.end() - kMaxHitsFinal);
  s.hits_dropped = final ? hits_dropped_all_ : hits_dropped_iv_;
  if (!final) {
    counts_prev_ = counts_;
    pauses_iv_.clear();
    started_iv_.clear();
    hits_iv_.clear();
    hits_dropped_iv_ = 0;
  }
  return s;
}

nlohmann::json stats_to_json(const UsdtStats& s) {
  nlohmann::json probes = nlohmann::json::array();
  for (const auto& p : s.probes) {
    nlohmann::json th = nlohmann::json::array();
    for (const auto& t : p.threads) th.push_back({{"tid", t.tid}, {"name", t.name}, {"hits", t.hits}});
    probes.push_back({{"probe", p.probe},
                      {"runtime", p.runtime},
                      {"role", p.role},
                      {"file", p.file},
                      {"locations", p.locations},
                      {"hits", p.hits},
                      {"total", p.total},
                      {"per_s", r3(p.per_s)},
                      {"threads", th}});
  }
  nlohmann::json pauses = nlohmann::json::array();
  for (const auto& p : s.pauses)
    pauses.push_back({{"kind", p.kind},
                      {"runtime", p.runtime},
                      {"count", p.count},
                      {"total_ms", r3(p.total_ms)},
                      {"max_ms", r3(p.max_ms)},
                      {"share", r3(p.share)},
                      {"per_s", r3(p.per_s)},
                      {"count_total", p.count_total},
                      {"total_ms_total", r3(p.total_ms_total)},
                      {"max_ms_total", r3(p.max_ms_total)},
                      {"ongoing_ms", r3(p.ongoing_ms)}});
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : s.pause_list)
    list.push_back({{"kind", p.kind},
                    {"runtime", p.runtime},
                    {"start_ns", p.start_ns},
                    {"end_ns", p.end_ns},
                    {"ms", r3(p.ms())},
                    {"tid", p.tid},
                    {"arg", p.arg}});
  nlohmann::json started = nlohmann::json::array();
  for (const auto& t : s.started)
    started.push_back({{"tid", t.tid},
                       {"name", t.name},
                       {"id", t.id},
                       {"daemon", t.daemon},
                       {"start_ns", t.start_ns},
                       {"stop_ns", t.stop_ns}});
  nlohmann::json hits = nlohmann::json::array();
  for (const auto& h : s.hits) {
    nlohmann::json j = {{"ts_ns", h.ts_ns}, {"tid", h.tid}, {"probe", h.probe}, {"args", h.args}};
    if (!h.str.empty()) j["str"] = h.str;
    hits.push_back(j);
  }
  return {{"runtime", s.runtime},
          {"probes", probes},
          {"pauses", pauses},
          {"pause_list", list},
          {"threads_started", s.threads_started},
          {"threads_stopped", s.threads_stopped},
          {"started", started},
          {"hits", hits},
          {"hits_dropped", s.hits_dropped}};
}

std::vector<std::string> stats_lines(const UsdtStats& s, bool final) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  char buf[512];
  const char* span = final ? "since attach" : "this interval";
  snprintf(buf, sizeof buf, "USDT%s%s  (%s)", s.runtime.empty() ? "" : "  runtime ",
           s.runtime.c_str(), span);
  out.emplace_back(buf);
  for (const auto& p : s.pauses) {
    snprintf(buf, sizeof buf,
             "  %-9s pauses %4llu  total %9.3f ms  max %8.3f ms  %5.1f%% of wall  (since attach: "
             "%llu, %.1f ms)%s",
             p.kind.c_str(), static_cast<unsigned long long>(p.count), p.total_ms, p.max_ms,
             p.share * 100, static_cast<unsigned long long>(p.count_total), p.total_ms_total,
             p.ongoing_ms > 0 ? "  [in a pause now]" : "");
    out.emplace_back(buf);
  }
  if (s.threads_started || s.threads_stopped || !s.started.empty()) {
    snprintf(buf, sizeof buf, "  runtime threads: %llu started, %llu stopped since attach",
             static_cast<unsigned long long>(s.threads_started),
             static_cast<unsigned long long>(s.threads_stopped));
    out.emplace_back(buf);
    size_t shown = 0;
    for (const auto& t : s.started) {
      if (shown++ == 8) {
        out.emplace_back("    ... " + std::to_string(s.started.size() - 8) + " more");
        break;
      }
      snprintf(buf, sizeof buf, "    + tid %-7u id %-5lld %s%s", t.tid, static_cast<long long>(t.id),
               t.name.c_str(), t.daemon ? " (daemon)" : "");
      out.emplace_back(buf);
    }
  }
  for (const auto& p : s.probes) {
    if (p.role != "generic") continue;
    snprintf(buf, sizeof buf, "  %-40s %8llu hits  %9.1f/s  total %llu", p.probe.c_str(),
             static_cast<unsigned long long>(p.hits), p.per_s,
             static_cast<unsigned long long>(p.total));
    out.emplace_back(buf);
    for (const auto& t : p.threads) {
      snprintf(buf, sizeof buf, "      tid %-7u %-24s %llu", t.tid, t.name.c_str(),
               static_cast<unsigned long long>(t.hits));
      out.emplace_back(buf);
    }
  }
  return out;
}

}  // namespace schedscope::usdt
