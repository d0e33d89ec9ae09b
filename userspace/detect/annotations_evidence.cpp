#include "detect/annotations_evidence.h"

#include <cstdio>

namespace schedscope::detect {

using annotations::InFlight;
using annotations::Stats;

namespace {

std::string task_of(const InFlight& f) {
  if (!f.task) return "the background task";
  char buf[64];
  snprintf(buf, sizeof buf, "task %llu", static_cast<unsigned long long>(f.task));
  return std::string(buf) + (f.task_name.empty() ? "" : " \"" + f.task_name + "\"");
}

}  // namespace

void annotate_alert(const Stats& s, model::Alert& a) {
  char buf[96];
  if (a.goid) {
    for (const auto& f : s.open_regions) {
      if (f.goid != a.goid) continue;
      std::string path;
      for (const auto& r : f.regions) path += (path.empty() ? "" : "/") + r;
      snprintf(buf, sizeof buf, " (innermost open %.1f ms)", f.region_ms);
      a.evidence.push_back("annotations on G" + std::to_string(a.goid) + ": " + task_of(f) +
                           ", region " + path + buf);
      return;
    }
    return;
  }
  if (s.oldest_tasks.empty()) return;
  std::string line = "annotations: tasks in flight:";
  size_t n = 0;
  for (const auto& f : s.oldest_tasks) {
    if (n++ >= 3) break;
    snprintf(buf, sizeof buf, " (G%llu, %.1f ms)", static_cast<unsigned long long>(f.goid),
             f.region_ms);
    line += (n > 1 ? ";" : "") + std::string(" ") + task_of(f) + buf;
    if (!f.regions.empty()) {
      std::string path;
      for (const auto& r : f.regions) path += (path.empty() ? "" : "/") + r;
      line += " in " + path;
    }
  }
  a.evidence.push_back(line);
}

}  // namespace schedscope::detect
