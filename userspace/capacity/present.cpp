#include "capacity/present.h"

#include <cmath>

#include "util/strfmt.h"

namespace schedscope::capacity {

namespace {
using json = nlohmann::json;
double r3(double v) { return std::isfinite(v) ? std::round(v * 1000) / 1000 : 0; }
json opt_int(int v) { return v < 0 ? json(nullptr) : json(v); }

const char* short_name(const std::string& q) {
  if (q == "raise_gomaxprocs") return "raise GOMAXPROCS";
  if (q == "shard") return "shard";
  if (q == "fewer_goroutines") return "fewer goroutines";
  if (q == "cpu_quota") return "CPU quota";
  return "?";
}
const char* answer_text(const std::string& a) {
  return a == "look_elsewhere" ? "look elsewhere" : a.c_str();
}
}  // namespace

json to_json(const Section& s) {
  const Evidence& e = s.interval;
  json j;
  j["gomaxprocs"] = e.gomaxprocs > 0 ? json(e.gomaxprocs) : json(nullptr);
  json pr;
  bool pk = e.ticks > 0;
  pr["p50"] = pk ? opt_int(e.procs_percentile(0.5)) : json(nullptr);
  pr["p99"] = pk ? opt_int(e.procs_percentile(0.99)) : json(nullptr);
  pr["max"] = pk ? opt_int(e.procs_max()) : json(nullptr);
  json hist = json::array();
  if (pk) {
    size_t n = std::max<size_t>(e.procs.size(), size_t(std::max(e.gomaxprocs, 0) + 1));
    for (size_t k = 0; k < n; k++)
      hist.push_back(r3(k < e.procs.size() ? double(e.procs[k]) / double(e.ticks) : 0));
  }
  pr["hist"] = hist;  // hist[k]: share of the time with k Ps running Go code
  pr["samples"] = e.ticks;
  pr["sample_hz"] = e.span_s > 0 ? std::round(double(e.ticks) / e.span_s) : 0.0;  // achieved
  // Reads (wake-ups) a second behind those sample slots: 1000 down to 10 (stretch, budget).
  pr["reads_hz"] = e.reads_known && e.span_s > 0 ? json(std::round(double(e.reads) / e.span_s))
                                                 : json(nullptr);
  j["procs_running"] = pr;
  json rq;
  bool rk = e.runq_known && e.runq_samples() > 0;
  rq["max"] = rk ? opt_int(e.runq_max()) : json(nullptr);
  rq["p99"] = rk ? opt_int(e.runq_percentile(0.99)) : json(nullptr);
  rq["samples"] = e.runq_samples();
  rq["sample_hz"] = e.runq_known && e.span_s > 0 ? std::round(double(e.ticks) / e.span_s) : 0.0;
  j["runq"] = rq;
  json q;
  q["cores"] = e.quota_known ? json(r3(e.quota_cores)) : json(nullptr);
  q["throttled_share"] = e.cgroup_known ? json(r3(e.throttled_share())) : json(nullptr);
  q["nr_throttled"] = e.nr_throttled;
  q["nr_periods"] = e.nr_periods;
  q["throttled_ms"] = r3(e.throttled_ms);
  q["cgroup"] = e.cgroup_known ? json(e.cgroup) : json(nullptr);
  j["cpu_quota"] = q;
  j["sched_latency_p99_us"] = e.latency_known ? json(std::round(e.latency_p99_us)) : json(nullptr);
  j["goroutines"] = e.census_known ? json(std::round(e.goroutines)) : json(nullptr);
  j["io_wait"] = e.census_known ? json(std::round(e.io_wait)) : json(nullptr);
  j["window_s"] = r3(s.window_s);
  json vs = json::array();
  for (size_t i = 0; i < s.verdicts.size(); i++) {
    const Verdict& v = s.verdicts[i];
    json o = {{"question", question_name(v.question)},
              {"answer", answer_name(v.answer)},
              {"because", v.because},
              {"advice", v.advice}};
    if (s.final && i < s.verdict_at_s.size())
      o["first_at_s"] = s.verdict_at_s[i] < 0 ? json(nullptr) : json(r3(s.verdict_at_s[i]));
    vs.push_back(std::move(o));
  }
  j["verdicts"] = vs;
  return j;
}

std::string summary_line(const Section& s) {
  std::string out = "capacity:";
  bool first = true;
  for (const auto& v : s.verdicts) {
    out += strfmt("%s %s %s", first ? "" : " ·", short_name(question_name(v.question)),
                  answer_text(answer_name(v.answer)));
    first = false;
  }
  if (s.verdicts.empty()) out += " (no data yet)";
  const Evidence& e = s.interval;
  if (e.ticks > 0 && e.gomaxprocs > 0)
    out += strfmt("  | Ps running p50 %d p99 %d max %d of %d", e.procs_percentile(0.5),
                  e.procs_percentile(0.99), e.procs_max(), e.gomaxprocs);
  if (e.runq_known && e.runq_samples() > 0) out += strfmt(" · runq max %d", e.runq_max());
  if (e.quota_known)
    out += strfmt(" · quota %.2f CPUs, throttled %.0f%%", e.quota_cores, 100 * e.throttled_share());
  return out;
}

std::vector<std::string> detail_lines(const Section& s) {
  return detail_lines(to_json(s));
}

std::vector<std::string> detail_lines(const json& j) {
  std::vector<std::string> out;
  if (!j.is_object() || !j.contains("verdicts") || !j["verdicts"].is_array()) return out;
  for (const auto& v : j["verdicts"]) {
    if (!v.is_object()) continue;
    std::string q = v.value("question", ""), a = v.value("answer", "");
    auto pad = [](std::string x, size_t w) {
      if (x.size() < w) x.resize(w, ' ');
      return x;
    };
    std::string line = pad(short_name(q), 17) + " " + pad(answer_text(a), 14) + " " +
                       v.value("because", "");
    std::string adv = v.value("advice", "");
    if (!adv.empty()) line += "  -> " + adv;
    out.push_back(line);
  }
  return out;
}

}  // namespace schedscope::capacity
