#include "ui/gc_print.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace schedscope::ui {

void print_gc_text(const model::Frame& f, FILE* out) {
  const auto& g = f.gc;
  if (g.enabled) {
    fprintf(out,
            "   gc: cycles %llu (total %llu)  STW %llu / %.2f ms (max %.2f)  assist %.0f%%  "
            "workers %.0f%%  MMU 1ms %.0f%% 10ms %.0f%% 100ms %.0f%%\n",
            static_cast<unsigned long long>(g.cycles),
            static_cast<unsigned long long>(g.cycles_total),
            static_cast<unsigned long long>(g.stw_count), g.stw_ms, g.stw_max_ms,
            g.assist_share * 100, g.worker_share * 100, std::max(0.0, g.mmu_1ms) * 100,
            std::max(0.0, g.mmu_10ms) * 100, std::max(0.0, g.mmu_100ms) * 100);
  } else if (!g.note.empty()) {
    fprintf(out, "   gc: off (%s)\n", g.note.c_str());
  }
  if (f.census) {
    const auto& c = *f.census;
    auto io = c.waiting_by_reason.find(gc::kWaitReasonIOWait);
    fprintf(out, "   goroutines: %u live, %u in IO wait, %u runnable  (allgs %u, read %u in %.1f ms)\n",
            c.live(), io == c.waiting_by_reason.end() ? 0u : io->second, c.by_status[1],
            c.allglen, c.read, c.read_ms);
    if (!c.waiting_by_reason.empty()) {
      const auto by = c.waiting_by_name();
      std::string line = "   waiting:";
      for (size_t i = 0; i < by.size() && i < 6; i++)
        line += " " + by[i].first + " " + std::to_string(by[i].second) + ",";
      if (by.size() > 6) line += " ...,";
      line.pop_back();
      fprintf(out, "%s\n", line.c_str());
    }
  }
  if (f.goroutine_counts.available) {
    const auto& gcount = f.goroutine_counts;
    fprintf(out, "   goroutines created: %llu (%.0f/s, +-%llu: goidgen per-P batches)\n",
            static_cast<unsigned long long>(gcount.created), gcount.created_per_s,
            static_cast<unsigned long long>(gcount.error_max));
  }
  if (f.go_latency.available) {
    const auto& l = f.go_latency.lat;
    fprintf(out,
            "   goroutine sched latency (runnable->running): p50 %.0fus p99 %.0fus p99.9 %.0fus%s"
            "  (%llu sampled)\n",
            l.p50_us, l.p99_us, l.p999_us, l.open_top ? " (beyond range)" : "",
            static_cast<unsigned long long>(l.samples));
  }
}

}  // namespace schedscope::ui
