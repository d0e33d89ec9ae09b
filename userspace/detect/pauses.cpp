// The pause detector: stop-the-world periods a runtime adapter reported through
// USDT (HotSpot safepoints and GC pauses, CPython collections) that are long, or so
// frequent that the process spends a large share of its wall time stopped.
#include <algorithm>

#include "detect/detectors.h"
#include "util/strfmt.h"

namespace schedscope::detect {

void Detectors::pauses(const model::Frame& f, std::map<std::string, Alert>& now) {
  for (const auto& p : f.usdt.pauses) {
    bool is_long = p.max_ms >= opt_.pause_ms || p.ongoing_ms >= opt_.pause_ms;
    bool frequent = p.share >= opt_.pause_share;
    if (!is_long && !frequent) continue;
    Alert a;
    a.kind = p.kind == "safepoint" ? "safepoint_pause" : "gc_pause";
    a.severity = (p.share >= 2 * opt_.pause_share || p.max_ms >= 10 * opt_.pause_ms) ? "critical"
                                                                                    : "warning";
    a.duration_ms = std::max(p.max_ms, p.ongoing_ms);
    const char* what = p.kind == "safepoint" ? "safepoints" : "GC pauses";
    std::string rt = p.runtime.empty() ? "" : p.runtime + " ";
    if (is_long)
      a.message = strfmt("%s%s: a pause of %.1f ms (>= %.0f ms); %llu pauses, %.1f%% of the wall time",
                       rt.c_str(), what, a.duration_ms, opt_.pause_ms,
                       static_cast<unsigned long long>(p.count), p.share * 100);
    else
      a.message = strfmt("%s%s: %llu pauses (%.1f/s) stop the process %.1f%% of the wall time "
                       "(>= %.0f%%)",
                       rt.c_str(), what, static_cast<unsigned long long>(p.count), p.per_s,
                       p.share * 100, opt_.pause_share * 100);
    a.evidence.push_back(strfmt("this interval: %llu pauses, total %.1f ms, longest %.1f ms",
                              static_cast<unsigned long long>(p.count), p.total_ms, p.max_ms));
    if (p.ongoing_ms > 0) a.evidence.push_back(strfmt("a pause in progress for %.1f ms", p.ongoing_ms));
    a.evidence.push_back(strfmt("since attach: %llu pauses, %.1f ms, longest %.1f ms",
                              static_cast<unsigned long long>(p.count_total), p.total_ms_total,
                              p.max_ms_total));
    for (const auto& e : f.usdt.pause_list)
      if (e.kind == p.kind && e.ms() >= opt_.pause_ms && a.evidence.size() < 8) {
        a.tid = e.tid;
        a.evidence.push_back(strfmt("  %.1f ms pause run by tid %u", e.ms(), e.tid));
      }
    if (p.kind == "safepoint")
      a.evidence.push_back("every Java thread waits at the safepoint: GC, deoptimization, "
                           "biased-lock revocation, thread dumps (-Xlog:safepoint says which)");
    now[a.kind] = a;
  }
}

// Runtime thread names grouped by pattern (digits folded): "pool-1-thread-* (40)".
std::string name_groups(const model::Frame& f, const std::vector<uint32_t>& tids) {
  std::map<std::string, int> groups;
  std::map<uint32_t, const std::string*> names;
  for (const auto& r : f.threads) names[r.tid] = &r.name;
  for (uint32_t tid : tids) {
    auto it = names.find(tid);
    if (it == names.end()) continue;
    std::string g;
    bool digit = false;
    for (char c : *it->second) {
      if (c >= '0' && c <= '9') {
        if (!digit) g += '*';
        digit = true;
      } else {
        g += c;
        digit = false;
      }
    }
    groups[g]++;
  }
  std::vector<std::pair<int, std::string>> v;
  for (const auto& [g, n] : groups) v.push_back({-n, g});
  std::sort(v.begin(), v.end());
  std::string out;
  for (size_t i = 0; i < v.size() && i < 5; i++)
    out += (i ? ", " : "") + v[i].second + " (" + std::to_string(-v[i].first) + ")";
  return out;
}

}  // namespace schedscope::detect
