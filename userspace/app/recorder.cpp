#include "app/recorder.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "app/commands.h"
#include "app/go_attach.h"
#include "app/options.h"
#include "app/record_cmd.h"
#include "analysis/capacity_report.h"
#include "go/runtime_json.h"
#include "analysis/replay.h"
#include "util/version.h"

namespace schedscope::app {

using nlohmann::json;

std::string hostname() {
  char h[256] = {};
  if (gethostname(h, sizeof h - 1) != 0) return "unknown";
  return h;
}

json wall_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return {{"wall", buf},
          {"wall_ns", uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec)},
          {"monotonic_ns", probe::monotonic_ns()}};
}

json go_meta(GoAttach& g) {
  json j = {{"version", g.binary().go_version},
            {"ready", g.ready()},
            {"note", g.note()},
            {"tls_g", g.binary().tls_g_offset},
            {"tls_source", g.binary().tls_source},
            {"pie", g.binary().pie},
            {"stripped", g.binary().stripped}};
  // The names of g.waitreason values, so that report/replay name the census's reasons
  // without the binary (absent: "wait reason N" beyond 1 and 2).
  if (!g.binary().wait_reasons.empty()) {
    j["wait_reasons"] = g.binary().wait_reasons;
    j["wait_reasons_source"] = g.binary().wait_reasons_source;
  }
  if (g.ready()) {
    j["source"] = g.offsets().source;
    j["offsets"] = go::offsets_to_json(g.offsets());
    j["checks"] = g.checks();
    j["load_bias"] = g.load_bias();
  }
  return j;
}

namespace {
json abi_json() {
  json j = json::object();
  for (const auto& [name, size] : record::abi_sizes()) j[name] = size;
  return j;
}
}  // namespace


json recording_meta(Observed& o, const ObserveOptions& obs, const detect::DetectOptions& d,
                    const std::string& host, const json& start_time) {
  utsname u{};
  uname(&u);
  json meta = {{"format_version", record::kFormatVersion},
               {"abi_version", SS_ABI_VERSION},
               {"schedscope_version", kSchedscopeVersion},
               {"host", host},
               {"kernel", u.release},
               {"machine", u.machine},
               {"start", start_time},
               {"target", record::target_to_json(o.target())},
               {"thresholds", record::detect_to_json(d)},
               {"symbolizer", o.go() != nullptr},
               {"abi", abi_json()}};
  observe_to_json(obs, meta);  // launched, command, mode, interval_s, ringbuf_bytes, ...
  meta["go"] = o.go() ? go_meta(*o.go()) : json(nullptr);
  meta["gomaxprocs"] = nullptr;
  if (o.go() && o.go()->ready())
    if (auto s = o.go()->sample()) meta["gomaxprocs"] = s->gomaxprocs;
  return meta;
}

void Recorder::hook(Observed& o) { o.add_tap(this); }

void Recorder::raw(const ss_hdr* rec, size_t size) {
  if (sym_) {
    auto pcs = model::symbolized_pcs(rec, size);
    if (!pcs.frames.empty()) symbols(pcs.frames, false);
    if (!pcs.start_funcs.empty()) symbols(pcs.start_funcs, true);
  }
  w_.raw(rec, size);
}

void Recorder::kernel(const probe::KernelSnapshot& s) {
  drops_ = s.drops;
  w_.kernel(s);
}

void Recorder::go(const go::SchedSample& s) {
  if (sym_) {
    std::vector<uint64_t> pcs;
    for (const auto& p : s.ps) {
      if (p.g_startpc) pcs.push_back(p.g_startpc);
      if (p.g_pc) pcs.push_back(p.g_pc);
    }
    symbols(pcs, false);
  }
  w_.go(s);
}

void Recorder::name(uint32_t tid, const std::string& n) { w_.name(tid, n); }
void Recorder::goroutine_baseline(uint64_t n) { w_.goroutine_baseline(n); }
void Recorder::census(const gc::Census& c) { w_.census(c); }
void Recorder::sched_latency(const go::TimeHist& h) { w_.sched_latency(h); }


void Recorder::symbols(const std::vector<uint64_t>& pcs, bool with_start) {
  std::vector<record::SymbolEntry> batch;
  for (uint64_t pc : pcs) {
    record::SymbolEntry e{pc, sym_->is_runtime(pc), sym_->frame(pc), false, ""};
    auto it = table_.find(pc);
    if (with_start || (it != table_.end() && it->second.has_start_func)) {
      e.has_start_func = true;
      e.start_func = sym_->start_func(pc);
    }
    bool same = it != table_.end()
                    ? (it->second.frame == e.frame && it->second.is_runtime == e.is_runtime &&
                       it->second.has_start_func == e.has_start_func &&
                       it->second.start_func == e.start_func)
                    : (e.frame.empty() && e.is_runtime && !e.has_start_func);  // the reader's default
    if (same) continue;
    table_[pc] = e;
    batch.push_back(std::move(e));
  }
  w_.symbols(batch);
}


void Recorder::marker(record::FrameMode mode, const Observed& o, const model::Frame* f,
            const std::vector<detect::Alert>* alerts) {
  json m = {{"mode", record::frame_mode_name(mode)}};
  if (f) {
    m["ts_ns"] = f->ts_ns;
    m["elapsed_s"] = f->elapsed_s;
    m["interval_s"] = f->interval_s;
  }
  json t = record::target_to_json(o.target());
  if (t != last_target_) {
    m["target"] = t;
    last_target_ = t;
  }
  if (alerts && !alerts->empty()) m["alerts"] = record::alerts_to_json(*alerts);
  if (f && f->capacity.present) m["capacity"] = capacity::answers_json(f->capacity);  // checked on replay
  if (f && mode == record::FrameMode::kShown) {
    // Stacks the observer walked from /proc/PID/mem after building the frame.
    json stacks = json::object();
    for (const auto& r : f->threads)
      if (!r.stack.empty()) stacks[std::to_string(r.tid)] = r.stack;
    if (!stacks.empty()) m["stacks"] = stacks;
  }
  w_.frame(m);
}


}  // namespace schedscope::app
