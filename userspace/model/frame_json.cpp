#include "model/frame_json.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

#include "capacity/present.h"
#include "model/annotations_json.h"
#include "go/runtime_json.h"
#include "util/json_out.h"

namespace schedscope::model {

using nlohmann::json;

const char* offcpu_reason_name(uint32_t reason) {
  switch (reason) {
    case SS_OFF_PREEMPTED:
      return "preempted";
    case SS_OFF_SLEEP:
      return "sleep";
    case SS_OFF_DISK:
      return "disk";
    case annotations::kGcAssistReason:
      return "gc_assist";
    default:
      return "other";
  }
}

namespace {

double r2(double v) { return std::round(v * 100) / 100; }

json offcpu_json(const OffCpu& o) {
  return {{"preempted", r2(o.preempted)},
          {"sleep", r2(o.sleep)},
          {"disk", r2(o.disk)},
          {"other", r2(o.other)}};
}

json alert_json(const Alert& a) {
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

json goroutines_json(const GoroutineStats& g) {
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
            {"exited_source", g.exited_source},
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
  if (!g.exited_note.empty()) j["exited_note"] = g.exited_note;
  return j;
}

// The frame's JSON. With `rows` false, "threads" and "creations" (the two arrays that grow
// with the target) are null placeholders that frame_json_text() writes itself.
json frame_dom(const Frame& f, bool rows) {
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
  json threads = rows ? json::array() : json(nullptr);
  for (const auto& t : f.threads) {
    if (!rows) break;
    json r = {{"tid", t.tid},
              {"name", t.name},
              {"state", model::thread_state_name(t.state)},
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
  json cr = rows ? json::array() : json(nullptr);
  for (const auto& c : f.creations) {
    if (!rows) break;
    json r = {{"tid", c.tid},
              {"parent_tid", c.parent_tid},
              {"parent_goid", c.parent_goid},
              {"parent_m", c.parent_m},
              {"site", c.site()}};
    if (!c.frames().empty()) r["stack"] = c.frames();
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
  if (f.goroutine_counts.available) {
    const GoroutineCounts& g = f.goroutine_counts;
    j["goroutine_counts"] = {{"created", g.created},
                             {"created_total", g.created_total},
                             {"created_per_s", r2(g.created_per_s)},
                             {"error_max", g.error_max},
                             {"live", g.live ? json(*g.live) : json(nullptr)},
                             {"source", "sched.goidgen (ids handed to per-P caches of 16)"}};
  }
  if (f.annotations) j["annotations"] = annotations_json(*f.annotations);  // docs/annotations.md
  if (!f.usdt.empty()) j["usdt"] = usdt::stats_to_json(f.usdt);
  if (f.go) {
    j["ps"] = go::ps_to_json(*f.go);
    j["ms"] = rows ? go::ms_to_json(*f.go) : json(nullptr);  // frame_json_text: put_ms
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

// ---- frame_json_text: the same text as dump_json(frame_to_json(f)), the thread rows and
// creations written straight into the string (no DOM for what grows with the target).
// nlohmann's objects are std::maps: keys are written in their sorted order here too.

void put_raw(std::string& o, const char* s) { o.append(s); }

void put_str(std::string& o, const std::string& s) {
  bool plain = true;
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  if (!plain) {  // escapes and UTF-8 (checked, invalid bytes replaced): the one policy
    o += dump_json(json(s));
    return;
  }
  o += '"';
  o += s;
  o += '"';
}

template <size_t N>
void put_key(std::string& o, const char (&k)[N], bool& first) {
  if (!first) o += ',';
  first = false;
  o += '"';
  o.append(k, N - 1);
  o.append("\":", 2);
}

void put_u(std::string& o, uint64_t v) {
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, v);
  o.append(b, size_t(r.ptr - b));
}

void put_i(std::string& o, int64_t v) {
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, v);
  o.append(b, size_t(r.ptr - b));
}

void put_d(std::string& o, double v) {
  if (!std::isfinite(v)) {
    o += "null";
    return;
  }
  std::array<char, 64> b{};
  char* e = nlohmann::detail::to_chars(b.data(), b.data() + b.size(), v);
  o.append(b.data(), size_t(e - b.data()));
}

void put_offcpu(std::string& o, const OffCpu& c) {
  o += "{\"disk\":";
  put_d(o, r2(c.disk));
  o += ",\"other\":";
  put_d(o, r2(c.other));
  o += ",\"preempted\":";
  put_d(o, r2(c.preempted));
  o += ",\"sleep\":";
  put_d(o, r2(c.sleep));
  o += '}';
}

void put_threads(std::string& o, const Frame& f) {
  o += '[';
  bool first_row = true;
  for (const auto& t : f.threads) {
    if (!first_row) o += ',';
    first_row = false;
    bool first = true;
    o += '{';
    if (!t.blocked_in.empty()) {
      put_key(o, "blocked_in", first);
      o += '{';
      bool fb = true;
      for (const auto& [name, v] : t.blocked_in) {
        if (!fb) o += ',';
        fb = false;
        put_str(o, name);
        o += ":{\"count\":";
        put_u(o, v.count);
        o += ",\"max_ms\":";
        put_d(o, r2(v.max_ms));
        o += ",\"ms\":";
        put_d(o, r2(v.ms));
        o += '}';
      }
      o += '}';
    }
    put_key(o, "created_by", first);
    put_u(o, t.created_by);
    if (!t.go_func.empty()) {
      put_key(o, "func", first);
      put_str(o, t.go_func);
    }
    put_key(o, "goid", first);
    put_u(o, t.goid);
    if (t.incgo) {
      put_key(o, "incgo", first);
      put_raw(o, "true");
    }
    put_key(o, "m", first);
    put_i(o, t.m);
    put_key(o, "name", first);
    put_str(o, t.name);
    put_key(o, "offcpu_ms", first);
    put_offcpu(o, t.offcpu_ms);
    put_key(o, "oncpu_pct", first);
    put_d(o, r2(t.oncpu_pct));
    put_key(o, "p", first);
    put_i(o, t.p);
    if (t.p_from_oldp) {
      put_key(o, "p_detached", first);
      put_raw(o, "true");
    }
    put_key(o, "rq_p50_us", first);
    put_d(o, r2(t.rq_p50_us));
    put_key(o, "rq_p99_us", first);
    put_d(o, r2(t.rq_p99_us));
    put_key(o, "state", first);
    put_str(o, model::thread_state_name(t.state));
    put_key(o, "state_ms", first);
    put_d(o, r2(t.state_ms));
    put_key(o, "switches", first);
    put_u(o, t.switches);
    put_key(o, "syscall", first);
    if (t.syscall.empty()) {
      put_raw(o, "null");
    } else {
      put_str(o, t.syscall);
    }
    put_key(o, "syscall_ms", first);
    put_d(o, r2(t.syscall_ms));
    if (f.target.all_syscalls) {
      put_key(o, "syscalls_per_s", first);
      put_d(o, r2(t.syscalls_per_s));
    }
    put_key(o, "tid", first);
    put_u(o, t.tid);
    o += '}';
  }
  o += ']';
}

// go::ms_to_json's text: one row per M of the target (as many as its threads).
void put_ms(std::string& o, const go::SchedSample& s) {
  o += '[';
  bool first_row = true;
  for (const auto& m : s.ms) {
    if (!first_row) o += ',';
    first_row = false;
    o += "{\"blocked\":";
    put_raw(o, m.blocked ? "true" : "false");
    o += ",\"func\":";
    put_str(o, m.curg_func);
    o += ",\"goid\":";
    put_u(o, m.curg_goid);
    o += ",\"id\":";
    put_i(o, m.id);
    o += ",\"incgo\":";
    put_raw(o, m.incgo ? "true" : "false");
    o += ",\"lockedg\":";
    put_u(o, m.lockedg_goid);
    o += ",\"oldp\":";
    put_i(o, m.oldp);
    o += ",\"p\":";
    put_i(o, m.p);
    o += ",\"spinning\":";
    put_raw(o, m.spinning ? "true" : "false");
    o += ",\"sysmon\":";
    put_raw(o, m.sysmon ? "true" : "false");
    o += ",\"tid\":";
    put_i(o, m.tid);
    o += '}';
  }
  o += ']';
}

void put_creations(std::string& o, const Frame& f) {
  o += '[';
  bool first_row = true;
  for (const auto& c : f.creations) {
    if (!first_row) o += ',';
    first_row = false;
    bool first = true;
    o += '{';
    put_key(o, "parent_goid", first);
    put_u(o, c.parent_goid);
    put_key(o, "parent_m", first);
    put_i(o, c.parent_m);
    put_key(o, "parent_tid", first);
    put_u(o, c.parent_tid);
    put_key(o, "site", first);
    put_str(o, c.site());
    if (!c.frames().empty()) {
      put_key(o, "stack", first);
      o += '[';
      for (size_t i = 0; i < c.frames().size(); i++) {
        if (i) o += ',';
        put_str(o, c.frames()[i]);
      }
      o += ']';
    }
    if (c.stack_skipped) {
      put_key(o, "stack_skipped", first);
      put_raw(o, "true");
    }
    put_key(o, "tid", first);
    put_u(o, c.tid);
    o += '}';
  }
  o += ']';
}

}  // namespace

json frame_to_json(const Frame& f) { return frame_dom(f, true); }

std::string frame_json_text(const Frame& f) {
  const json j = frame_dom(f, false);
  std::string o;
  o.reserve(256 * (f.threads.size() + f.creations.size()) + (f.go ? 160 * f.go->ms.size() : 0) + 4096);
  o += '{';
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (!first) o += ',';
    first = false;
    put_str(o, k);
    o += ':';
    if (k == "threads") {
      put_threads(o, f);
    } else if (k == "creations") {
      put_creations(o, f);
    } else if (k == "ms" && f.go) {
      put_ms(o, *f.go);
    } else {
      o += dump_json(*it);
    }
  }
  o += '}';
  return o;
}

namespace {
json r3(double v) { return v < 0 ? json(nullptr) : json(std::round(v * 1000) / 1000); }
}  // namespace

json gc_json(const gc::GcStats& g) {
  json reasons = json::object();
  for (const auto& [k, v] : g.stw_reasons) reasons[k] = v;
  json callers = json::object();
  for (const auto& [k, v] : g.stw_callers) callers[k] = v;
  json top = json::array();
  for (const auto& a : g.top_assists) top.push_back({{"goid", a.goid}, {"ms", r3(a.ms)}});
  json periods = json::array();
  for (const auto& p : g.periods)
    periods.push_back({{"kind", p.kind}, {"what", p.what}, {"cycle", p.cycle},
                       {"start_ns", p.start_ns}, {"end_ns", p.end_ns},
                       {"ms", r3(double(p.end_ns - p.start_ns) / 1e6)}});
  return {{"enabled", g.enabled},
          {"note", g.note},
          {"cycles", g.cycles},
          {"cycles_total", g.cycles_total},
          {"in_cycle", g.in_cycle},
          {"gcphase", g.gcphase},
          {"stw_count", g.stw_count},
          {"stw_ms", r3(g.stw_ms)},
          {"stw_max_ms", r3(g.stw_max_ms)},
          {"stw_reasons", reasons},
          {"stw_callers", callers},
          {"worker_ms", r3(g.worker_ms)},
          {"assist_ms", r3(g.assist_ms)},
          {"idle_worker_ms", r3(g.idle_worker_ms)},
          {"worker_share", r3(g.worker_share)},
          {"assist_share", r3(g.assist_share)},
          {"mmu", {{"1ms", r3(g.mmu_1ms)}, {"10ms", r3(g.mmu_10ms)}, {"100ms", r3(g.mmu_100ms)}}},
          {"gomaxprocs", g.gomaxprocs},
          {"rss_bytes", g.rss_bytes},
          {"rss_delta_bytes", g.rss_delta_bytes},
          {"samples", g.samples},
          {"top_assists", top},
          {"periods", periods}};
}

json census_json(const gc::Census& c) {
  static const char* names[16] = {"idle",     "runnable", "running", "syscall", "waiting", "5",
                                  "dead",     "7",        "copystack", "preempted", "leaked",
                                  "deadextra", "12",      "13",      "14",      "15+"};
  json st = json::object();
  for (int i = 0; i < 16; i++)
    if (c.by_status[i]) st[names[i]] = c.by_status[i];
  json wr = json::object();
  for (const auto& [r, n] : c.waiting_by_reason) {
    std::string name = c.reason_name(r);
    wr[name] = (wr.contains(name) ? wr[name].get<uint32_t>() : 0u) + n;
  }
  auto io = c.waiting_by_reason.find(gc::kWaitReasonIOWait);
  return {{"allglen", c.allglen},
          {"read", c.read},
          {"complete", c.read >= c.allglen},
          {"live", c.live()},
          {"io_wait", io == c.waiting_by_reason.end() ? 0u : io->second},
          {"by_status", st},
          {"waiting_by_reason", wr},
          {"read_ms", r3(c.read_ms)},
          {"io_wait_funcs", [&] {
             json a = json::array();
             for (const auto& [fn, n] : c.io_wait_funcs) a.push_back({{"func", fn}, {"count", n}});
             return a;
           }()},
          {"live_funcs", [&] {
             json a = json::array();
             for (const auto& [fn, n] : c.live_funcs) {
               if (a.size() == gc::kCensusLiveFuncsShown) break;
               a.push_back({{"func", fn}, {"count", n}});
             }
             return a;
           }()}};
}

json sched_latency_json(const Frame& f) {
  json buckets = json::array();
  for (size_t i = 0; i < f.rq_hist.size(); i++)
    if (f.rq_hist[i]) buckets.push_back({{"le_ns", uint64_t(2) << i}, {"count", f.rq_hist[i]}});
  json j = {{"kernel_runqueue",
             {{"p50_us", r3(f.rq_p50_us)},
              {"p99_us", r3(f.rq_p99_us)},
              {"p999_us", r3(f.rq_p999_us)},
              {"buckets", buckets}}}};
  const GoLatency& g = f.go_latency;
  if (g.available || !g.note.empty()) j["goroutine"] = go_latency_json(g);
  return j;
}

json go_latency_json(const GoLatency& g) {
  json j = {{"available", g.available}, {"source", g.note}};
  if (!g.available) return j;
  const auto& l = g.lat;
  json buckets = json::array();
  for (const auto& b : l.buckets)
    buckets.push_back({{"ge_ns", b.lo_ns},
                       {"lt_ns", b.hi_ns == UINT64_MAX ? json(nullptr) : json(b.hi_ns)},
                       {"count", b.count}});
  j["samples"] = l.samples;
  j["sampling"] = "the runtime tracks 1 in 8 goroutine transitions";
  j["p50_us"] = r3(l.p50_us);
  j["p99_us"] = r3(l.p99_us);
  j["p999_us"] = r3(l.p999_us);
  j["max_us"] = r3(l.max_us);
  j["beyond_range"] = l.open_top;
  j["negative"] = l.underflow;
  j["buckets"] = std::move(buckets);
  return j;
}

}  // namespace schedscope::model
