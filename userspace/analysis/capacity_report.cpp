#include "analysis/capacity_report.h"

#include <cmath>
#include <tuple>

#include "capacity/present.h"
#include "model/model.h"
#include "util/json_out.h"
#include "util/strfmt.h"

namespace schedscope::capacity {

void WorstInterval::offer(const model::Frame& f) {
  const Section& s = f.capacity;
  if (!s.present || s.final || s.verdicts.empty()) return;
  int yes = 0, look = 0;
  for (const auto& v : s.verdicts) {
    yes += v.answer == Answer::kYes;
    look += v.answer == Answer::kLookElsewhere;
  }
  double p99 = s.interval.latency_known ? s.interval.latency_p99_us : 0;
  if (worst_ && std::tie(yes, look, p99) <= std::tie(yes_, look_, p99_)) return;
  worst_ = s;
  t_ = f.elapsed_s;
  yes_ = yes;
  look_ = look;
  p99_ = p99;
}

nlohmann::json report_json(const Section& whole, const WorstInterval& worst) {
  nlohmann::json j = to_json(whole);
  if (worst.section()) {
    nlohmann::json w = to_json(*worst.section());
    w["t"] = std::round(worst.t() * 100) / 100;
    j["worst_interval"] = w;
  } else {
    j["worst_interval"] = nullptr;
  }
  return j;
}

nlohmann::json answers_json(const Section& s) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& v : s.verdicts) j[question_name(v.question)] = answer_name(v.answer);
  return j;
}

void ReplayCheck::compare(const Section& replayed, const nlohmann::json& marker, double t) {
  auto it = marker.find("capacity");
  if (it == marker.end() || !it->is_object()) return;  // not recorded (an older schedscope)
  frames_++;
  nlohmann::json got = answers_json(replayed);
  if (got == *it) return;
  mismatched_++;
  if (diffs_.size() < 5)
    diffs_.push_back(strfmt("t=%.2fs: live ", t) + dump_json(*it) + " / replay " + dump_json(got));
}

nlohmann::json ReplayCheck::to_json() const {
  return {{"frames_compared", frames_}, {"frames_mismatched", mismatched_}, {"match", ok()},
          {"diffs", diffs_}};
}

void print_report(const nlohmann::json& c, FILE* out) {
  if (!c.is_object()) return;
  fprintf(out, "\nCAPACITY  over the whole recording (the strongest answer each question held "
               "for 3 s of a 5 s window)\n");
  for (const auto& l : detail_lines(c)) fprintf(out, "  %s\n", l.c_str());
  const auto& w = c.contains("worst_interval") ? c["worst_interval"] : nlohmann::json();
  if (w.is_object()) {
    fprintf(out, "  worst interval t=%.1fs:\n", w.value("t", 0.0));
    for (const auto& l : detail_lines(w)) fprintf(out, "    %s\n", l.c_str());
  }
  if (c.contains("check") && c["check"].is_object()) {
    const auto& k = c["check"];
    if (k.value("match", false))
      fprintf(out, "  (the same answers as shown live while recording: %llu frames compared)\n",
              static_cast<unsigned long long>(k.value("frames_compared", 0ull)));
    else
      fprintf(out, "  WARNING: the answers differ from those shown live while recording\n");
  }
}

}  // namespace schedscope::capacity
