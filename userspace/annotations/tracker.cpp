#include "annotations/tracker.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace schedscope::annotations {

namespace {

std::string fixed_str(const char* s, size_t cap, uint32_t len) {
  size_t n = std::min<size_t>(cap, len);
  n = strnlen(s, n);
  return std::string(s, n);
}

}  // namespace

std::string task_type(const std::string& name) {
  std::string out;
  size_t i = 0;
  while (i < name.size()) {
    size_t j = i;
    while (j < name.size() && std::isxdigit(static_cast<unsigned char>(name[j]))) j++;
    // A run of hex digits that is not part of a longer word.
    bool word_before = i > 0 && std::isalnum(static_cast<unsigned char>(name[i - 1]));
    bool word_after = j < name.size() && std::isalnum(static_cast<unsigned char>(name[j]));
    if (j - i >= 8 && !word_before && !word_after) {
      out += "<id>";
      i = j;
    } else if (j > i) {
      out.append(name, i, j - i);
      i = j;
    } else {
      out += name[i++];
    }
  }
  return out;
}

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = size_t(std::ceil(q * double(v.size())));
  if (rank == 0) rank = 1;
  return v[std::min(rank, v.size()) - 1];
}

bool Tracker::on_record(const ss_hdr* rec, size_t size) {
  if (rec->type == SS_EV_ANNOT) {
    if (size < sizeof(ss_annot)) return false;
    ss_annot e;
    std::memcpy(&e, rec, sizeof e);
    on_annot(e);
    return true;
  }
  if (rec->type == SS_EV_ANNOT_STATE) {
    if (size < sizeof(ss_annot_state)) return false;
    ss_annot_state s;
    std::memcpy(&s, rec, sizeof s);
    on_state(s);
    return true;
  }
  return false;
}

void Tracker::on_offcpu(const ss_offcpu& e) {
  if (!asked_ || !(e.go.flags & SS_GO_VALID) || !e.go.goid || e.h.ts <= e.start_ns) return;
  const uint64_t g = e.go.goid;
  // The tasks this goroutine works for: those of its open regions, and those it created.
  std::vector<uint64_t> ids;
  if (auto st = stacks_.find(g); st != stacks_.end())
    for (const auto& o : st->second)
      if (o.task && std::find(ids.begin(), ids.end(), o.task) == ids.end()) ids.push_back(o.task);
  for (const auto& [id, t] : tasks_)
    if (t.goid == g && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    Task& t = it->second;
    uint64_t from = std::max(e.start_ns, t.start_ns);
    if (from >= e.h.ts) continue;
    OffCpuRow& r = t.offcpu[{e.reason, e.syscall_nr}];
    r.reason = e.reason;
    r.syscall_nr = e.syscall_nr;
    r.count++;
    r.ms += double(e.h.ts - from) / 1e6;
    // The runnable part is the interval's last rq_ns.
    r.rq_ms += double(std::min<uint64_t>(e.rq_ns, e.h.ts - from)) / 1e6;
  }
}

void Tracker::on_state(const ss_annot_state& s) {
  asked_ = true;
  // Detached (duty cycle pause, ceiling): the ends of what is open now will not be seen.
  // Forget it, so a region begun after the next attach does not nest under a stale one;
  // and again at the re-attach, for the records of before the detach that were still in
  // the ring buffer when it was written.
  if ((state_.state == SS_ANNOT_STATE_ON) != (s.state == SS_ANNOT_STATE_ON)) {
    stacks_.clear();
    tasks_.clear();
    in_flight_by_type_.clear();
  }
  state_ = s;
  note_ = fixed_str(s.note, sizeof s.note, sizeof s.note);
}

void Tracker::add_region(const std::string& path, const std::string& name, double ms, int p,
                         uint32_t tid) {
  for (Agg* a : {&iv_, &total_}) {
    RegionAgg& r = a->regions[path];
    r.name = name;
    r.count++;
    r.total_ms += ms;
    r.max_ms = std::max(r.max_ms, ms);
    if (r.samples.size() < kMaxSamples) r.samples.push_back(ms);
    r.ps[p]++;
    r.tids[tid] = true;
  }
}

void Tracker::region_end(uint64_t goid, const std::string& name, uint64_t ts, int p,
                         uint32_t tid) {
  auto it = stacks_.find(goid);
  if (it == stacks_.end() || it->second.empty()) {
    region_ends_unmatched_++;
    return;
  }
  auto& st = it->second;
  // The innermost open region of that name: regions of one goroutine nest, so it is the
  // top; a mismatch means a begin was missed (attached in between) or the program ended
  // regions out of order, and the regions above it are dropped as the runtime does.
  size_t k = st.size();
  while (k > 0 && st[k - 1].name != name) k--;
  if (k == 0) {
    region_ends_unmatched_++;
    return;
  }
  size_t idx = k - 1;
  std::string path;
  for (size_t i = 0; i <= idx; i++) {
    if (i) path += '/';
    path += st[i].name;
  }
  const Open& o = st[idx];
  double ms = double(ts - std::min(ts, o.begin_ns)) / 1e6;
  add_region(path, name, ms, o.p, o.tid);
  (void)p;
  (void)tid;
  if (o.task) {
    auto t = tasks_.find(o.task);
    if (t != tasks_.end() && t->second.regions.size() < kMaxTaskRegions)
      t->second.regions.push_back({name, goid, o.begin_ns, ts, int(idx), o.p});
  }
  st.resize(idx);
  if (st.empty()) stacks_.erase(it);
}

void Tracker::on_annot(const ss_annot& e) {
  last_ts_ = std::max(last_ts_, e.h.ts);
  const int p = (e.flags & SS_ANNOT_P) ? e.p_id : -1;
  if (e.len1 > SS_ANNOT_S1 || e.len2 > SS_ANNOT_S2) truncated_++;
  switch (e.kind) {
    case SS_ANNOT_TASK_CREATE: {
      std::string name = fixed_str(e.s1, SS_ANNOT_S1, e.len1);
      if (tasks_.size() >= kMaxInFlight) {
        // Forget the oldest: a program that never ends its tasks must not grow us.
        auto old = std::min_element(tasks_.begin(), tasks_.end(), [](const auto& a, const auto& b) {
          return a.second.start_ns < b.second.start_ns;
        });
        auto& n = in_flight_by_type_[old->second.type];
        n -= std::min<uint64_t>(n, 1);
        tasks_.erase(old);
      }
      Task t;
      t.name = name;
      t.type = task_type(name);
      t.goid = e.goid;
      t.start_ns = e.h.ts;
      in_flight_by_type_[t.type]++;
      for (Agg* a : {&iv_, &total_}) a->tasks[t.type].started++;
      tasks_[e.id] = std::move(t);
      return;
    }
    case SS_ANNOT_TASK_END: {
      auto it = tasks_.find(e.id);
      if (it == tasks_.end()) {
        task_ends_unmatched_++;
        return;
      }
      Task& t = it->second;
      double ms = double(e.h.ts - std::min(e.h.ts, t.start_ns)) / 1e6;
      for (Agg* a : {&iv_, &total_}) {
        TaskAgg& ta = a->tasks[t.type];
        ta.ended++;
        ta.max_ms = std::max(ta.max_ms, ms);
        if (ta.samples.size() < kMaxSamples) ta.samples.push_back(ms);
      }
      auto& n = in_flight_by_type_[t.type];
      n -= std::min<uint64_t>(n, 1);
      if (slowest_.size() < kSlowest || ms > slowest_.back().ms) {
        slowest_.push_back(tree(e.id, t, e.h.ts));
        std::stable_sort(slowest_.begin(), slowest_.end(),
                         [](const SlowTask& a, const SlowTask& b) { return a.ms > b.ms; });
        if (slowest_.size() > kSlowest) slowest_.resize(kSlowest);
      }
      tasks_.erase(it);
      return;
    }
    case SS_ANNOT_REGION: {
      std::string name = fixed_str(e.s1, SS_ANNOT_S1, e.len1);
      if (e.arg == 0) {  // begin
        if (stacks_.size() >= kMaxInFlight && !stacks_.count(e.goid)) return;
        auto& st = stacks_[e.goid];
        if (st.size() >= 64) st.erase(st.begin());
        st.push_back({name, e.id, e.h.ts, p, e.tid});
      } else {
        region_end(e.goid, name, e.h.ts, p, e.tid);
      }
      return;
    }
    case SS_ANNOT_LOG: {
      std::string cat = fixed_str(e.s1, SS_ANNOT_S1, e.len1);
      std::string msg = fixed_str(e.s2, SS_ANNOT_S2, e.len2);
      for (Agg* a : {&iv_, &total_}) a->logs[{cat, msg}]++;
      LastLog l{e.h.ts, e.id, "", e.goid, cat, msg};
      if (auto t = tasks_.find(e.id); t != tasks_.end()) {
        l.task_name = t->second.name;
        if (t->second.logs.size() < 64)
          t->second.logs.push_back(
              {cat, msg, e.goid, double(e.h.ts - std::min(e.h.ts, t->second.start_ns)) / 1e6});
      }
      last_logs_.push_back(std::move(l));
      if (last_logs_.size() > kLastLogs) last_logs_.pop_front();
      return;
    }
    default:
      return;
  }
}

// The region tree of a task: a region's parent is the innermost region of the same task
// that encloses it on its own goroutine; a goroutine's outermost region on another
// goroutine than the task's creator hangs under the creator's innermost region that
// encloses it in time (the fanout region around `go` statements).
SlowTask Tracker::tree(uint64_t id, const Task& t, uint64_t end_ns) const {
  SlowTask s;
  s.id = id;
  s.type = t.type;
  s.name = t.name;
  s.goid = t.goid;
  s.start_ns = t.start_ns;
  s.end_ns = end_ns;
  s.ms = double(end_ns - std::min(end_ns, t.start_ns)) / 1e6;
  s.logs = t.logs;
  for (const auto& [k, r] : t.offcpu) s.offcpu.push_back(r);
  std::stable_sort(s.offcpu.begin(), s.offcpu.end(),
                   [](const OffCpuRow& a, const OffCpuRow& b) { return a.ms > b.ms; });
  std::vector<size_t> order(t.regions.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto &ra = t.regions[a], &rb = t.regions[b];
    return ra.begin_ns != rb.begin_ns ? ra.begin_ns < rb.begin_ns : ra.end_ns > rb.end_ns;
  });
  std::vector<int> depth(t.regions.size(), 0);
  for (size_t oi = 0; oi < order.size(); oi++) {
    const auto& r = t.regions[order[oi]];
    int best = -1;
    uint64_t best_begin = 0;
    for (size_t pj = 0; pj < oi; pj++) {
      const auto& q = t.regions[order[pj]];
      if (q.begin_ns > r.begin_ns || q.end_ns < r.end_ns) continue;
      bool ok = (q.goid == r.goid && q.gdepth < r.gdepth) ||
                (r.gdepth == 0 && r.goid != t.goid && q.goid == t.goid);
      if (ok && (best < 0 || q.begin_ns >= best_begin)) {
        best = int(pj);
        best_begin = q.begin_ns;
      }
    }
    depth[order[oi]] = best < 0 ? 0 : depth[order[size_t(best)]] + 1;
  }
  for (size_t i : order) {
    const auto& r = t.regions[i];
    s.regions.push_back({r.name, r.goid, double(r.begin_ns - std::min(r.begin_ns, t.start_ns)) / 1e6,
                         double(r.end_ns - r.begin_ns) / 1e6, depth[i], r.p});
  }
  // Tree order: each region after its parent, children by start time (a pre-order walk).
  std::vector<TreeRegion> pre;
  std::vector<bool> used(s.regions.size(), false);
  std::vector<int> parent(s.regions.size(), -1);
  for (size_t i = 0; i < s.regions.size(); i++)
    for (size_t j = i; j-- > 0;)
      if (s.regions[j].depth == s.regions[i].depth - 1 &&
          s.regions[j].start_ms <= s.regions[i].start_ms &&
          s.regions[j].start_ms + s.regions[j].ms >= s.regions[i].start_ms + s.regions[i].ms) {
        parent[i] = int(j);
        break;
      }
  std::vector<int> stack;
  for (size_t i = s.regions.size(); i-- > 0;)
    if (parent[i] < 0) stack.push_back(int(i));
  while (!stack.empty()) {
    int i = stack.back();
    stack.pop_back();
    if (used[size_t(i)]) continue;
    used[size_t(i)] = true;
    pre.push_back(s.regions[size_t(i)]);
    for (size_t c = s.regions.size(); c-- > 0;)
      if (parent[c] == i) stack.push_back(int(c));
  }
  for (size_t i = 0; i < s.regions.size(); i++)
    if (!used[i]) pre.push_back(s.regions[i]);
  s.regions = std::move(pre);
  return s;
}

Tables Tracker::tables(const Agg& a) const {
  Tables t;
  for (const auto& [path, r] : a.regions) {
    RegionRow row;
    row.name = r.name;
    row.path = path;
    row.count = r.count;
    row.total_ms = r.total_ms;
    row.avg_ms = r.count ? r.total_ms / double(r.count) : 0;
    std::vector<double> v = r.samples;
    row.p50_ms = percentile(v, 0.5);
    row.p99_ms = percentile(v, 0.99);
    row.max_ms = r.max_ms;
    row.ps = r.ps;
    row.threads = r.tids.size();
    t.regions.push_back(std::move(row));
  }
  std::sort(t.regions.begin(), t.regions.end(), [](const RegionRow& x, const RegionRow& y) {
    return x.total_ms != y.total_ms ? x.total_ms > y.total_ms : x.path < y.path;
  });
  for (const auto& [type, ta] : a.tasks) {
    TaskRow row;
    row.type = type;
    row.started = ta.started;
    row.ended = ta.ended;
    auto it = in_flight_by_type_.find(type);
    row.in_flight = it == in_flight_by_type_.end() ? 0 : it->second;
    std::vector<double> v = ta.samples;
    row.p50_ms = percentile(v, 0.5);
    row.p99_ms = percentile(v, 0.99);
    row.max_ms = ta.max_ms;
    t.tasks.push_back(std::move(row));
  }
  std::sort(t.tasks.begin(), t.tasks.end(), [](const TaskRow& x, const TaskRow& y) {
    return x.started != y.started ? x.started > y.started : x.type < y.type;
  });
  for (const auto& [k, n] : a.logs) t.logs.push_back({k.first, k.second, n});
  std::sort(t.logs.begin(), t.logs.end(), [](const LogRow& x, const LogRow& y) {
    return x.count != y.count ? x.count > y.count
                              : (x.category != y.category ? x.category < y.category
                                                          : x.message < y.message);
  });
  return t;
}

Stats Tracker::frame(bool final, double interval_s, uint64_t now_ns) {
  Stats s;
  s.asked = asked_;
  s.state = state_.state;
  s.note = note_;
  s.nprobes = state_.nprobes;
  s.total = tables(total_);
  s.interval = final ? s.total : tables(iv_);
  s.slowest = slowest_;
  s.last_logs.assign(last_logs_.begin(), last_logs_.end());
  s.on_s = double(state_.on_ns) / 1e9;
  s.hits = state_.hits - (final ? 0 : std::min(state_.hits, hits_prev_));
  double span = final ? s.on_s : interval_s;
  s.hits_per_s = span > 0 ? double(s.hits) / span : 0;
  s.est_cpu_ms_per_s = s.hits_per_s * kAnnotUprobeCostUs / 1000.0;
  char buf[200];
  snprintf(buf, sizeof buf,
           "%.0f hits/s ~ %.0f x ~%.0fus = %.1f ms of target CPU/s on this VM (measured: see "
           "docs/annotations.md)",
           s.hits_per_s, s.hits_per_s, kAnnotUprobeCostUs, s.est_cpu_ms_per_s);
  s.cost = buf;
  s.region_ends_unmatched = region_ends_unmatched_;
  s.task_ends_unmatched = task_ends_unmatched_;
  s.truncated = truncated_;
  if (now_ns == 0) now_ns = last_ts_;
  for (const auto& [goid, st] : stacks_)
    if (!st.empty()) s.open_regions.push_back(in_flight(goid, now_ns));
  std::sort(s.open_regions.begin(), s.open_regions.end(),
            [](const InFlight& a, const InFlight& b) {
              return a.region_ms != b.region_ms ? a.region_ms > b.region_ms : a.goid < b.goid;
            });
  if (s.open_regions.size() > kInFlightShown) s.open_regions.resize(kInFlightShown);
  s.oldest_tasks = oldest_in_flight(5, now_ns);
  if (!final) {
    hits_prev_ = state_.hits;
    iv_ = Agg{};
  }
  return s;
}

InFlight Tracker::in_flight(uint64_t goid, uint64_t now_ns) const {
  InFlight f;
  f.goid = goid;
  auto it = stacks_.find(goid);
  if (it == stacks_.end()) return f;
  for (const auto& o : it->second) f.regions.push_back(o.name);
  if (!it->second.empty()) {
    const Open& top = it->second.back();
    f.region_ms = double(now_ns - std::min(now_ns, top.begin_ns)) / 1e6;
    f.task = top.task;
    if (auto t = tasks_.find(top.task); t != tasks_.end()) f.task_name = t->second.name;
  }
  return f;
}

std::vector<InFlight> Tracker::oldest_in_flight(size_t n, uint64_t now_ns) const {
  std::vector<std::pair<uint64_t, uint64_t>> by_start;  // start, id
  for (const auto& [id, t] : tasks_) by_start.push_back({t.start_ns, id});
  std::sort(by_start.begin(), by_start.end());
  std::vector<InFlight> out;
  for (const auto& [start, id] : by_start) {
    if (out.size() >= n) break;
    const Task& t = tasks_.at(id);
    InFlight f;
    f.goid = t.goid;
    f.task = id;
    f.task_name = t.name;
    f.region_ms = double(now_ns - std::min(now_ns, start)) / 1e6;
    if (auto s = stacks_.find(t.goid); s != stacks_.end())
      for (const auto& o : s->second) f.regions.push_back(o.name);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace schedscope::annotations
