#include "model/annotations_json.h"

#include <cmath>
#include <string>

#include "model/frame_json.h"
#include "probe/syscalls.h"

namespace schedscope::model {

using annotations::Stats;
using annotations::Tables;

using nlohmann::json;

const char* const kAnnotationsNotVisible =
    "not visible with the program's tracing off: trace.StartRegion/Region.End and trace.Logf "
    "(the library returns before calling the runtime); visible: NewTask, Task.End, "
    "WithRegion, Log";

namespace {

double r3(double v) { return std::isfinite(v) ? std::round(v * 1000) / 1000 : 0; }

json tables_json(const Tables& t) {
  json regions = json::array(), tasks = json::array(), logs = json::array();
  for (const auto& r : t.regions) {
    json ps = json::object();
    for (const auto& [p, n] : r.ps) ps[p < 0 ? "?" : std::to_string(p)] = n;
    regions.push_back({{"name", r.name},
                       {"path", r.path},
                       {"count", r.count},
                       {"total_ms", r3(r.total_ms)},
                       {"avg_ms", r3(r.avg_ms)},
                       {"p50_ms", r3(r.p50_ms)},
                       {"p99_ms", r3(r.p99_ms)},
                       {"max_ms", r3(r.max_ms)},
                       {"ps", ps},
                       {"threads", r.threads}});
  }
  for (const auto& r : t.tasks)
    tasks.push_back({{"type", r.type},
                     {"started", r.started},
                     {"ended", r.ended},
                     {"in_flight", r.in_flight},
                     {"p50_ms", r3(r.p50_ms)},
                     {"p99_ms", r3(r.p99_ms)},
                     {"max_ms", r3(r.max_ms)}});
  for (const auto& r : t.logs)
    logs.push_back({{"category", r.category}, {"message", r.message}, {"count", r.count}});
  return {{"regions", regions}, {"tasks", tasks}, {"logs", logs}};
}

}  // namespace

const char* annotation_state_name(uint32_t state) {
  switch (state) {
    case SS_ANNOT_STATE_ON: return "attached";
    case SS_ANNOT_STATE_CEILING: return "detached";
    case SS_ANNOT_STATE_PAUSED: return "paused";
    default: return "off";
  }
}

json annotations_json(const Stats& s) {
  json iv = tables_json(s.interval);
  json j = {{"state", annotation_state_name(s.state)},
            {"note", s.note},
            {"probes", s.nprobes},
            {"regions", iv["regions"]},
            {"tasks", iv["tasks"]},
            {"logs", iv["logs"]},
            {"since_attach", tables_json(s.total)},
            {"hits", s.hits},
            {"hits_per_s", r3(s.hits_per_s)},
            {"cost", s.cost},
            {"cost_ms_per_s", r3(s.est_cpu_ms_per_s)},
            {"attached_s", r3(s.on_s)},
            {"unmatched", {{"region_ends", s.region_ends_unmatched}, {"task_ends", s.task_ends_unmatched}}},
            {"truncated", s.truncated},
            {"not_visible", kAnnotationsNotVisible}};
  json slowest = json::array();
  for (const auto& t : s.slowest) {
    json regions = json::array(), logs = json::array();
    for (const auto& r : t.regions)
      regions.push_back({{"name", r.name},
                         {"goid", r.goid},
                         {"start_ms", r3(r.start_ms)},
                         {"ms", r3(r.ms)},
                         {"depth", r.depth},
                         {"p", r.p}});
    for (const auto& l : t.logs)
      logs.push_back({{"category", l.category}, {"message", l.message}, {"goid", l.goid}, {"at_ms", r3(l.at_ms)}});
    json off = json::array();
    for (const auto& o : t.offcpu)
      off.push_back({{"reason", offcpu_reason_name(o.reason)},
                     {"syscall", o.syscall_nr >= 0 ? probe::syscall_name(o.syscall_nr) : ""},
                     {"count", o.count},
                     {"ms", r3(o.ms)},
                     {"runqueue_ms", r3(o.rq_ms)}});
    slowest.push_back({{"id", t.id},
                       {"type", t.type},
                       {"name", t.name},
                       {"goid", t.goid},
                       {"ms", r3(t.ms)},
                       {"regions", regions},
                       {"logs", logs},
                       {"offcpu", off}});
  }
  j["slowest"] = slowest;
  json last = json::array();
  for (const auto& l : s.last_logs)
    last.push_back({{"task", l.task},
                    {"task_name", l.task_name},
                    {"goid", l.goid},
                    {"category", l.category},
                    {"message", l.message}});
  j["last_logs"] = last;
  return j;
}

namespace {

std::string s_of(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
double d_of(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}
unsigned long long u_of(const json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_number() ? it->get<unsigned long long>() : 0;
}
const json& arr(const json& j, const char* k) {
  static const json empty = json::array();
  auto it = j.find(k);
  return it != j.end() && it->is_array() ? *it : empty;
}

}  // namespace

void print_annotations_text(const json& a, FILE* out, const char* in) {
  std::string state = s_of(a, "state");
  if (state == "off") {
    fprintf(out, "%sannotations: off (%s)\n", in, s_of(a, "note").c_str());
    return;
  }
  fprintf(out, "%sannotations: %s, %s | %s\n", in, state.c_str(), s_of(a, "note").c_str(),
          s_of(a, "cost").c_str());
  fprintf(out, "%s  (%s)\n", in, s_of(a, "not_visible").c_str());
  const json& regions = arr(a, "regions");
  if (!regions.empty()) {
    fprintf(out, "%s  %-28s %7s %10s %9s %9s %9s %9s  %s\n", in, "region", "count", "total_ms",
            "avg_ms", "p50_ms", "p99_ms", "max_ms", "Ps (count)");
    for (const auto& r : regions) {
      std::string ps;
      if (auto it = r.find("ps"); it != r.end() && it->is_object())
        for (const auto& [p, n] : it->items())
          ps += (ps.empty() ? "P" : " P") + p + ":" + std::to_string(n.get<unsigned long long>());
      fprintf(out, "%s  %-28s %7llu %10.3f %9.3f %9.3f %9.3f %9.3f  %s\n", in,
              s_of(r, "path").c_str(), u_of(r, "count"), d_of(r, "total_ms"), d_of(r, "avg_ms"),
              d_of(r, "p50_ms"), d_of(r, "p99_ms"), d_of(r, "max_ms"), ps.c_str());
    }
  }
  const json& tasks = arr(a, "tasks");
  if (!tasks.empty()) {
    fprintf(out, "%s  %-40s %7s %7s %9s %9s %9s %9s\n", in, "task type", "started", "ended",
            "in_flight", "p50_ms", "p99_ms", "max_ms");
    for (const auto& t : tasks)
      fprintf(out, "%s  %-40s %7llu %7llu %9llu %9.3f %9.3f %9.3f\n", in, s_of(t, "type").c_str(),
              u_of(t, "started"), u_of(t, "ended"), u_of(t, "in_flight"), d_of(t, "p50_ms"),
              d_of(t, "p99_ms"), d_of(t, "max_ms"));
  }
  const json& logs = arr(a, "logs");
  if (!logs.empty()) {
    fprintf(out, "%s  logs:", in);
    for (const auto& l : logs)
      fprintf(out, " %s/%s x%llu", s_of(l, "category").c_str(), s_of(l, "message").c_str(),
              u_of(l, "count"));
    fprintf(out, "\n");
  }
  const json& slowest = arr(a, "slowest");
  size_t shown = 0;
  for (const auto& t : slowest) {
    if (shown++ >= 3) break;
    fprintf(out, "%s  slow task %llu %s (G%llu) %.3f ms\n", in, u_of(t, "id"),
            s_of(t, "name").c_str(), u_of(t, "goid"), d_of(t, "ms"));
    for (const auto& r : arr(t, "regions")) {
      int depth = int(d_of(r, "depth"));
      fprintf(out, "%s    %*s%s on G%llu +%.3f ms %.3f ms\n", in, 2 * depth, "",
              s_of(r, "name").c_str(), u_of(r, "goid"), d_of(r, "start_ms"), d_of(r, "ms"));
    }
    for (const auto& l : arr(t, "logs"))
      fprintf(out, "%s    log %s/%s on G%llu at +%.3f ms\n", in, s_of(l, "category").c_str(),
              s_of(l, "message").c_str(), u_of(l, "goid"), d_of(l, "at_ms"));
    std::string off;
    for (const auto& o : arr(t, "offcpu")) {
      char b[160];
      std::string what = s_of(o, "syscall").empty() ? s_of(o, "reason") : s_of(o, "syscall");
      snprintf(b, sizeof b, "%s%s %.3f ms x%llu (run queue %.3f ms)", off.empty() ? "" : ", ",
               what.c_str(), d_of(o, "ms"), u_of(o, "count"), d_of(o, "runqueue_ms"));
      off += b;
    }
    if (!off.empty()) fprintf(out, "%s    off-CPU meanwhile: %s\n", in, off.c_str());
  }
}

}  // namespace schedscope::model
