#include "ui/annotations_view.h"

#include <cstdio>

#include "model/annotations_json.h"

namespace schedscope::ui {

namespace {

std::string fmt_ms(double ms) {
  char b[32];
  snprintf(b, sizeof b, "%.2fms", ms);
  return b;
}

}  // namespace

std::vector<std::string> annotations_live_fields(const annotations::Stats& s, bool narrow) {
  std::vector<std::string> out;
  char buf[256];
  if (s.state == SS_ANNOT_STATE_OFF || s.state == SS_ANNOT_STATE_CEILING) {
    out.push_back(std::string("annotations: ") + model::annotation_state_name(s.state) + " (" + s.note + ")");
    return out;
  }
  snprintf(buf, sizeof buf, "annotations: %s, %u uprobes, %.0f hits/s ~ %.1f ms target CPU/s",
           model::annotation_state_name(s.state), s.nprobes, s.hits_per_s, s.est_cpu_ms_per_s);
  out.push_back(buf);
  size_t nreg = narrow ? 3 : 6;
  std::string regs = "regions (count avg p99 max ms):";
  for (size_t i = 0; i < s.interval.regions.size() && i < nreg; i++) {
    const auto& r = s.interval.regions[i];
    snprintf(buf, sizeof buf, " %s %llu %.2f %.2f %.2f;", r.path.c_str(),
             static_cast<unsigned long long>(r.count), r.avg_ms, r.p99_ms, r.max_ms);
    regs += buf;
  }
  if (s.interval.regions.empty()) regs += " none this interval";
  out.push_back(regs);
  std::string tasks = "tasks (started ended in flight p99 ms):";
  for (size_t i = 0; i < s.interval.tasks.size() && i < 4; i++) {
    const auto& t = s.interval.tasks[i];
    snprintf(buf, sizeof buf, " %s %llu %llu %llu %.2f;", t.type.c_str(),
             static_cast<unsigned long long>(t.started), static_cast<unsigned long long>(t.ended),
             static_cast<unsigned long long>(t.in_flight), t.p99_ms);
    tasks += buf;
  }
  if (s.interval.tasks.empty()) tasks += " none this interval";
  out.push_back(tasks);
  if (!s.slowest.empty()) {
    const auto& t = s.slowest.front();
    std::string tree;
    for (const auto& r : t.regions)
      if (r.depth == 0) tree += (tree.empty() ? "" : " > ") + r.name + " " + fmt_ms(r.ms);
    snprintf(buf, sizeof buf, "slowest task %llu %s %.2f ms (G%llu)%s%s",
             static_cast<unsigned long long>(t.id), t.name.c_str(), t.ms,
             static_cast<unsigned long long>(t.goid), tree.empty() ? "" : ": ", tree.c_str());
    out.push_back(buf);
  }
  if (!s.last_logs.empty()) {
    const auto& l = s.last_logs.back();
    out.push_back("last log " + l.category + "/" + l.message +
                  (l.task_name.empty() ? "" : " (" + l.task_name + ")"));
  }
  return out;
}

}  // namespace schedscope::ui
