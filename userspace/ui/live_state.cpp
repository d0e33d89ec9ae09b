#include "ui/live_state.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <set>

#include "go/runtime_reader.h"
#include "model/frame_json.h"
#include "probe/syscalls.h"

namespace schedscope::ui::live {

// ---------------------------------------------------------------- formatting

namespace {
std::string printf_str(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}
}  // namespace

std::string fmt_ms(double ms) {
  if (!std::isfinite(ms) || ms < 0) ms = 0;
  if (ms < 1) return printf_str("%.1fms", ms);
  if (ms < 999.5) return printf_str("%.0fms", ms);
  if (ms < 59950) return printf_str("%.1fs", ms / 1e3);
  char buf[64];
  auto s = static_cast<long long>(ms / 1e3);
  if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s / 60) % 60);
  return buf;
}

std::string fmt_us(double us) {
  if (!std::isfinite(us) || us < 0) us = 0;
  if (us < 999.5) return printf_str("%.0fus", us);
  if (us < 999950) return printf_str("%.1fms", us / 1e3);
  return printf_str("%.2fs", us / 1e6);
}

std::string fmt_count(double v) {
  if (!std::isfinite(v) || v < 0) v = 0;
  if (v < 9999.5) return printf_str("%.0f", v);
  if (v < 999950) return printf_str("%.1fk", v / 1e3);
  if (v < 999950000) return printf_str("%.1fM", v / 1e6);
  return printf_str("%.1fG", v / 1e9);
}

std::string fmt_clock(double s) {
  if (!std::isfinite(s) || s < 0) s = 0;
  auto t = static_cast<long long>(s);
  char buf[64];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", t / 60, t % 60);
  return buf;
}

std::string fit(const std::string& s, size_t w) { return s.size() <= w ? s : s.substr(0, w); }

std::string fit_tail(const std::string& s, size_t w) {
  if (s.size() <= w) return s;
  if (w == 0) return "";
  return "~" + s.substr(s.size() - (w - 1));
}

std::string pad(const std::string& s, size_t w, bool right) {
  std::string t = fit(s, w);
  if (t.size() < w) {
    if (right)
      t.insert(0, w - t.size(), ' ');
    else
      t.append(w - t.size(), ' ');
  }
  return t;
}

std::vector<std::string> wrap_text(const std::string& s, size_t w) {
  std::vector<std::string> out;
  std::string cur;
  size_t i = 0;
  w = std::max<size_t>(w, 1);
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') i++;
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j == i) break;
    std::string word = s.substr(i, j - i);
    i = j;
    if (!cur.empty() && cur.size() + 1 + word.size() <= w) {
      cur += " " + word;
      continue;
    }
    if (!cur.empty()) out.push_back(cur);
    while (word.size() > w) {
      out.push_back(word.substr(0, w));
      word = word.substr(w);
    }
    cur = word;
  }
  if (!cur.empty() || out.empty()) out.push_back(cur);
  return out;
}

// ---------------------------------------------------------------- PTracker

void PTracker::reset() {
  t_.clear();
  last_ts_ = 0;
}

void PTracker::update(const model::Frame& f) {
  if (!f.go) return;
  if (last_ts_ != 0 && f.ts_ns < last_ts_) reset();  // a seek back
  last_ts_ = f.ts_ns;
  std::set<int32_t> seen;
  for (const auto& p : f.go->ps) {
    seen.insert(p.id);
    auto it = t_.find(p.id);
    if (it == t_.end()) {
      Track t;
      t.status = p.status;
      t.schedtick = p.schedtick;
      t.syscalltick = p.syscalltick;
      t.since_ns = t.last_ns = f.ts_ns;
      t.since_first = true;
      t_[p.id] = t;
      continue;
    }
    Track& t = it->second;
    if (f.ts_ns == t.last_ns) continue;  // the same frame again
    double dt = double(f.ts_ns - t.last_ns) / 1e9;
    t.info.known = true;
    t.info.sched_per_s = double(uint32_t(p.schedtick - t.schedtick)) / dt;
    t.info.syscall_per_s = double(uint32_t(p.syscalltick - t.syscalltick)) / dt;
    if (p.status != t.status || p.schedtick != t.schedtick || p.syscalltick != t.syscalltick) {
      t.since_ns = f.ts_ns;
      t.since_first = false;
    }
    t.status = p.status;
    t.schedtick = p.schedtick;
    t.syscalltick = p.syscalltick;
    t.last_ns = f.ts_ns;
    t.info.in_state_s = double(f.ts_ns - t.since_ns) / 1e9;
    t.info.since_first = t.since_first;
  }
  for (auto it = t_.begin(); it != t_.end();)
    it = seen.count(it->first) ? std::next(it) : t_.erase(it);
}

PTracker::Info PTracker::info(int32_t p) const {
  auto it = t_.find(p);
  return it == t_.end() ? Info{} : it->second.info;
}

std::map<int32_t, PTracker::Info> PTracker::all() const {
  std::map<int32_t, Info> out;
  for (const auto& [id, t] : t_) out[id] = t.info;
  return out;
}

// ---------------------------------------------------------------- AlertHistory

std::string alert_key(const model::Alert& a) {
  return a.kind + ":" + std::to_string(a.p) + ":" + std::to_string(a.tid) + ":" +
         std::to_string(a.since_ns);
}

void AlertHistory::update(const model::Frame& f) {
  std::set<std::string> seen;
  auto at_s = [&](uint64_t ns) {  // a monotonic time as seconds since attach
    if (ns == 0 || ns > f.ts_ns) return f.elapsed_s;
    return std::max(0.0, f.elapsed_s - double(f.ts_ns - ns) / 1e9);
  };
  const double tolerance = std::max(f.interval_s, 1.0) + 0.5;
  for (const auto& a : f.alerts) {
    std::string key = alert_key(a);
    auto it = std::find_if(e_.begin(), e_.end(), [&](const AlertEntry& e) {
      return std::find(e.keys.begin(), e.keys.end(), key) != e.keys.end();
    });
    if (it == e_.end() && a.active) {  // a re-raise of an episode that just cleared?
      double since = at_s(a.since_ns);
      for (auto r = e_.rbegin(); r != e_.rend(); ++r)
        if (!r->active && r->alert.kind == a.kind && r->alert.p == a.p && r->alert.tid == a.tid &&
            since <= r->last_s + tolerance) {
          it = std::prev(r.base());
          it->keys.push_back(key);
          it->key = key;
          it->raised++;
          break;
        }
    }
    if (it == e_.end()) {
      AlertEntry e;
      e.key = key;
      e.keys = {key};
      e.alert = a;
      e.first_s = at_s(a.ts_ns);
      e.last_s = f.elapsed_s;
      e.active = a.active;
      seen.insert(key);
      e_.push_back(std::move(e));
      continue;
    }
    if (it->key != key) continue;  // an earlier raise of a merged entry (the final list)
    seen.insert(key);
    it->alert = a;
    if (a.active) it->last_s = f.elapsed_s;
    it->active = a.active;
  }
  // The detectors carry every active alert in every frame: one missing has cleared.
  if (!f.final)
    for (auto& e : e_)
      if (e.active && !seen.count(e.key)) e.active = false;
  while (e_.size() > max_) {
    auto it = std::find_if(e_.begin(), e_.end(), [](const AlertEntry& e) { return !e.active; });
    e_.erase(it == e_.end() ? e_.begin() : it);
  }
}

int AlertHistory::active(const char* severity) const {
  int n = 0;
  for (const auto& e : e_)
    if (e.active && (!severity || e.alert.severity == severity)) n++;
  return n;
}

// ---------------------------------------------------------------- sorting

int severity_rank(const std::string& s) {
  if (s == "critical") return 3;
  if (s == "warning") return 2;
  if (s == "info") return 1;
  return 0;
}

const std::vector<std::string>& p_sort_keys() {
  static const std::vector<std::string> k = {"P", "status", "for", "sched/s", "runq", "M"};
  return k;
}
const std::vector<std::string>& thread_sort_keys() {
  static const std::vector<std::string> k = {"cpu%",     "for",    "state", "off-cpu",
                                             "switches", "rq-p99", "tid",   "name"};
  return k;
}
const std::vector<std::string>& syscall_sort_keys() {
  static const std::vector<std::string> k = {"count",     "time",  "p99", "p50",
                                             "in-flight", "total", "name"};
  return k;
}
const std::vector<std::string>& alert_sort_keys() {
  static const std::vector<std::string> k = {"time", "severity", "kind", "state"};
  return k;
}

namespace {

// cmp(i, j) < 0: i first in the natural direction of the key.
using Cmp = std::function<int(size_t, size_t)>;

template <typename T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Stable sort of `natural` (the tie order) by cmp, reversed on request.
std::vector<size_t> order(std::vector<size_t> natural, const Cmp& cmp, bool reverse) {
  std::stable_sort(natural.begin(), natural.end(), [&](size_t a, size_t b) {
    int c = cmp(a, b);
    return reverse ? c > 0 : c < 0;
  });
  return natural;
}

std::vector<size_t> iota_n(size_t n) {
  std::vector<size_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

int state_rank(model::ThreadState s) { return int(s); }  // the enum's order

double thread_for_ms(const model::ThreadRow& t) {
  return t.syscall.empty() ? t.state_ms : t.syscall_ms;
}

}  // namespace

std::vector<size_t> order_ps(const model::Frame& f, const std::map<int32_t, PTracker::Info>& info,
                             int key, bool reverse) {
  if (!f.go) return {};
  const auto& ps = f.go->ps;
  std::vector<size_t> natural = iota_n(ps.size());
  std::stable_sort(natural.begin(), natural.end(),
                   [&](size_t a, size_t b) { return ps[a].id < ps[b].id; });
  auto inf = [&](size_t i) {
    auto it = info.find(ps[i].id);
    return it == info.end() ? PTracker::Info{} : it->second;
  };
  Cmp cmp;
  switch (key) {
    case 1:
      cmp = [&](size_t a, size_t b) {
        return three_way(std::string(go::p_status_name(ps[a].status)),
                         std::string(go::p_status_name(ps[b].status)));
      };
      break;
    case 2:
      cmp = [&](size_t a, size_t b) { return three_way(inf(b).in_state_s, inf(a).in_state_s); };
      break;
    case 3:
      cmp = [&](size_t a, size_t b) { return three_way(inf(b).sched_per_s, inf(a).sched_per_s); };
      break;
    case 4:
      cmp = [&](size_t a, size_t b) { return three_way(ps[b].runq, ps[a].runq); };
      break;
    case 5:
      cmp = [&](size_t a, size_t b) { return three_way(ps[a].m_id, ps[b].m_id); };
      break;
    default:
      cmp = [&](size_t a, size_t b) { return three_way(ps[a].id, ps[b].id); };
  }
  return order(natural, cmp, reverse);
}

std::vector<size_t> order_threads(const model::Frame& f, int key, bool reverse) {
  const auto& t = f.threads;
  std::vector<size_t> natural = iota_n(t.size());
  std::stable_sort(natural.begin(), natural.end(),
                   [&](size_t a, size_t b) { return t[a].tid < t[b].tid; });
  Cmp cmp;
  switch (key) {
    case 1:
      cmp = [&](size_t a, size_t b) { return three_way(thread_for_ms(t[b]), thread_for_ms(t[a])); };
      break;
    case 2:
      cmp = [&](size_t a, size_t b) {
        return three_way(state_rank(t[a].state), state_rank(t[b].state));
      };
      break;
    case 3:
      cmp = [&](size_t a, size_t b) {
        return three_way(t[b].offcpu_ms.total(), t[a].offcpu_ms.total());
      };
      break;
    case 4:
      cmp = [&](size_t a, size_t b) { return three_way(t[b].switches, t[a].switches); };
      break;
    case 5:
      cmp = [&](size_t a, size_t b) { return three_way(t[b].rq_p99_us, t[a].rq_p99_us); };
      break;
    case 6:
      cmp = [&](size_t a, size_t b) { return three_way(t[a].tid, t[b].tid); };
      break;
    case 7:
      cmp = [&](size_t a, size_t b) { return three_way(t[a].name, t[b].name); };
      break;
    default:  // cpu%, then the longest in its state
      cmp = [&](size_t a, size_t b) {
        int c = three_way(t[b].oncpu_pct, t[a].oncpu_pct);
        return c ? c : three_way(thread_for_ms(t[b]), thread_for_ms(t[a]));
      };
  }
  return order(natural, cmp, reverse);
}

std::vector<size_t> order_syscalls(const model::Frame& f, int key, bool reverse) {
  const auto& s = f.syscalls;
  std::vector<size_t> natural = iota_n(s.size());
  std::stable_sort(natural.begin(), natural.end(),
                   [&](size_t a, size_t b) { return s[a].name < s[b].name; });
  Cmp cmp;
  switch (key) {
    case 1:
      cmp = [&](size_t a, size_t b) { return three_way(s[b].time_ms, s[a].time_ms); };
      break;
    case 2:
      cmp = [&](size_t a, size_t b) { return three_way(s[b].p99_us, s[a].p99_us); };
      break;
    case 3:
      cmp = [&](size_t a, size_t b) { return three_way(s[b].p50_us, s[a].p50_us); };
      break;
    case 4:
      cmp = [&](size_t a, size_t b) { return three_way(s[b].in_flight, s[a].in_flight); };
      break;
    case 5:
      cmp = [&](size_t a, size_t b) { return three_way(s[b].total_count, s[a].total_count); };
      break;
    case 6:
      cmp = [&](size_t a, size_t b) { return three_way(s[a].name, s[b].name); };
      break;
    default:  // count, then total
      cmp = [&](size_t a, size_t b) {
        int c = three_way(s[b].count, s[a].count);
        return c ? c : three_way(s[b].total_count, s[a].total_count);
      };
  }
  return order(natural, cmp, reverse);
}

std::vector<size_t> order_alerts(const std::vector<AlertEntry>& e, int key, bool reverse) {
  // Natural order: newest first.
  std::vector<size_t> natural = iota_n(e.size());
  std::reverse(natural.begin(), natural.end());
  std::stable_sort(natural.begin(), natural.end(),
                   [&](size_t a, size_t b) { return e[a].first_s > e[b].first_s; });
  Cmp cmp;
  switch (key) {
    case 1:
      cmp = [&](size_t a, size_t b) {
        return three_way(severity_rank(e[b].alert.severity), severity_rank(e[a].alert.severity));
      };
      break;
    case 2:
      cmp = [&](size_t a, size_t b) { return three_way(e[a].alert.kind, e[b].alert.kind); };
      break;
    case 3:
      cmp = [&](size_t a, size_t b) { return three_way(int(e[b].active), int(e[a].active)); };
      break;
    default:
      cmp = [&](size_t a, size_t b) { return three_way(e[b].first_s, e[a].first_s); };
  }
  return order(natural, cmp, reverse);
}

// ---------------------------------------------------------------- columns and layout

std::vector<int> fit_columns(const std::vector<Col>& cols, int total, int flex) {
  size_t n = cols.size();
  std::vector<bool> on(n);
  for (size_t i = 0; i < n; i++) on[i] = cols[i].width > 0;  // width 0: never shown
  auto need = [&] {
    int s = 0, c = 0;
    for (size_t i = 0; i < n; i++)
      if (on[i]) {
        s += cols[i].width;
        c++;
      }
    return s + std::max(0, c - 1);
  };
  while (need() > total) {
    int best = -1;
    for (size_t i = 0; i < n; i++)
      if (on[i] && cols[i].prio > 0 && (best < 0 || cols[i].prio >= cols[size_t(best)].prio))
        best = int(i);
    if (best < 0) break;
    on[size_t(best)] = false;
  }
  std::vector<int> w(n, 0);
  for (size_t i = 0; i < n; i++) w[i] = on[i] ? cols[i].width : 0;
  int spare = total - need();
  if (spare > 0 && flex >= 0 && size_t(flex) < n && on[size_t(flex)]) w[size_t(flex)] += spare;
  return w;
}

std::vector<std::vector<size_t>> wrap_fields(const std::vector<std::string>& fields, int width,
                                             int gap) {
  std::vector<std::vector<size_t>> lines;
  std::vector<size_t> cur;
  int curw = 0;
  for (size_t i = 0; i < fields.size(); i++) {
    int w = int(fields[i].size());
    if (w == 0) continue;
    if (cur.empty()) {
      cur.push_back(i);
      curw = w;
    } else if (curw + gap + w <= width) {
      cur.push_back(i);
      curw += gap + w;
    } else {
      lines.push_back(cur);
      cur = {i};
      curw = w;
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

Layout layout_panes(Rect area, int focused, bool maximized, const int want[kPanes]) {
  Layout L;
  constexpr int kMin = 3;  // title, column header, one row
  if (focused < 0 || focused >= kPanes) focused = kThreads;
  if (maximized || area.h < 4 * kMin || area.w < 30) {
    L.pane[focused] = area;
    L.shown[focused] = true;
    return L;
  }
  const int H = area.h;
  const bool side = area.w >= 150;
  int hp = std::clamp(want[kPs], kMin, std::max(kMin, H * 3 / 10));
  int rem = H - hp;
  int hs = 0, ha = 0;
  if (side) {
    hs = ha =
        std::clamp(std::max(want[kSyscalls], want[kAlerts]), kMin, std::max(kMin, rem * 45 / 100));
  } else {
    hs = std::clamp(want[kSyscalls], kMin, std::max(kMin, rem / 4));
    ha = std::clamp(want[kAlerts], kMin, std::max(kMin, rem * 3 / 10));
  }
  auto bottom = [&] { return side ? hs : hs + ha; };
  int ht = rem - bottom();
  while (ht < kMin && (ha > kMin || hs > kMin)) {  // give the threads pane its minimum
    if (side) {
      hs--;
      ha--;
    } else if (ha >= hs && ha > kMin) {
      ha--;
    } else {
      hs--;
    }
    ht = rem - bottom();
  }
  if (want[kThreads] >= kMin && ht > want[kThreads]) {  // few threads: the rest to the bottom
    int spare = ht - want[kThreads];
    ht = want[kThreads];
    if (side) {
      hs += spare;
      ha += spare;
    } else {
      ha += spare;
    }
  }
  int y = area.y;
  L.pane[kPs] = {y, area.x, hp, area.w};
  y += hp;
  L.pane[kThreads] = {y, area.x, ht, area.w};
  y += ht;
  if (side) {
    int ws = std::min(84, area.w * 45 / 100);
    L.pane[kSyscalls] = {y, area.x, hs, ws};
    L.pane[kAlerts] = {y, area.x + ws + 1, ha, area.w - ws - 1};
  } else {
    L.pane[kSyscalls] = {y, area.x, hs, area.w};
    y += hs;
    L.pane[kAlerts] = {y, area.x, ha, area.w};
  }
  for (bool& s : L.shown) s = true;
  return L;
}

// ---------------------------------------------------------------- --annotations views

const char* pane3_name(Pane3 v) {
  switch (v) {
    case Pane3::kRegions:
      return "Regions";
    case Pane3::kTasks:
      return "Tasks";
    case Pane3::kSlowest:
      return "Slowest tasks";
    default:
      return "Syscalls";
  }
}
const std::vector<std::string>& region_sort_keys() {
  static const std::vector<std::string> k = {"total", "count", "avg", "p99", "max", "path"};
  return k;
}
const std::vector<std::string>& task_sort_keys() {
  static const std::vector<std::string> k = {"p99", "started", "in-flight", "max", "type"};
  return k;
}
const std::vector<std::string>& slowest_sort_keys() {
  static const std::vector<std::string> k = {"duration"};
  return k;
}

std::vector<size_t> order_regions(const std::vector<annotations::RegionRow>& r, int key,
                                  bool reverse) {
  std::vector<size_t> natural = iota_n(r.size());
  std::stable_sort(natural.begin(), natural.end(),
                   [&](size_t a, size_t b) { return r[a].path < r[b].path; });
  Cmp cmp;
  switch (key) {
    case 1:
      cmp = [&](size_t a, size_t b) { return three_way(r[b].count, r[a].count); };
      break;
    case 2:
      cmp = [&](size_t a, size_t b) { return three_way(r[b].avg_ms, r[a].avg_ms); };
      break;
    case 3:
      cmp = [&](size_t a, size_t b) { return three_way(r[b].p99_ms, r[a].p99_ms); };
      break;
    case 4:
      cmp = [&](size_t a, size_t b) { return three_way(r[b].max_ms, r[a].max_ms); };
      break;
    case 5:
      cmp = [&](size_t a, size_t b) { return three_way(r[a].path, r[b].path); };
      break;
    default:  // total, then count
      cmp = [&](size_t a, size_t b) {
        int c = three_way(r[b].total_ms, r[a].total_ms);
        return c ? c : three_way(r[b].count, r[a].count);
      };
  }
  return order(natural, cmp, reverse);
}

std::vector<size_t> order_tasks(const std::vector<annotations::TaskRow>& t, int key,
                                bool reverse) {
  std::vector<size_t> natural = iota_n(t.size());
  std::stable_sort(natural.begin(), natural.end(),
                   [&](size_t a, size_t b) { return t[a].type < t[b].type; });
  Cmp cmp;
  switch (key) {
    case 1:
      cmp = [&](size_t a, size_t b) { return three_way(t[b].started, t[a].started); };
      break;
    case 2:
      cmp = [&](size_t a, size_t b) { return three_way(t[b].in_flight, t[a].in_flight); };
      break;
    case 3:
      cmp = [&](size_t a, size_t b) { return three_way(t[b].max_ms, t[a].max_ms); };
      break;
    case 4:
      cmp = [&](size_t a, size_t b) { return three_way(t[a].type, t[b].type); };
      break;
    default:  // p99, then started
      cmp = [&](size_t a, size_t b) {
        int c = three_way(t[b].p99_ms, t[a].p99_ms);
        return c ? c : three_way(t[b].started, t[a].started);
      };
  }
  return order(natural, cmp, reverse);
}

std::vector<SlowestRow> slowest_rows(const std::vector<annotations::SlowTask>& tasks) {
  std::vector<SlowestRow> out;
  auto ms3 = [](double v) { return printf_str("%.3f", v); };
  for (const auto& t : tasks) {
    out.push_back({{std::to_string(t.id), t.name, "G" + std::to_string(t.goid), "", "",
                    ms3(t.ms)},
                   true});
    for (const auto& r : t.regions)
      out.push_back({{"", std::string(size_t(2 * (r.depth + 1)), ' ') + r.name,
                      "G" + std::to_string(r.goid), r.p >= 0 ? std::to_string(r.p) : "-",
                      ms3(r.start_ms), ms3(r.ms)},
                     false});
    for (const auto& l : t.logs)
      out.push_back({{"", "  log " + l.category + (l.category.empty() ? "" : ": ") + l.message,
                      "G" + std::to_string(l.goid), "", ms3(l.at_ms), ""},
                     false});
    for (const auto& o : t.offcpu) {
      std::string what = std::string("  off-CPU ") + model::offcpu_reason_name(o.reason);
      if (o.syscall_nr >= 0) what += " in " + probe::syscall_name(o.syscall_nr);
      what += " x" + std::to_string(o.count);
      if (o.rq_ms > 0) what += " (run-queue " + ms3(o.rq_ms) + " ms)";
      out.push_back({{"", what, "", "", "", ms3(o.ms)}, false});
    }
  }
  return out;
}

}  // namespace schedscope::ui::live
