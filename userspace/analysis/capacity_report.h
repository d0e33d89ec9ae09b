// The capacity section of `schedscope report`: the whole recording (the final frame's
// section: the strongest verdict each question reached, sustained) and its worst interval.
#pragma once
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "capacity/tracker.h"

namespace schedscope::model {
struct Frame;
}

namespace schedscope::capacity {

// Keeps the interval whose verdicts were worst: the most "yes", then the most
// "look_elsewhere", then the highest goroutine scheduling latency p99.
class WorstInterval {
 public:
  void offer(const model::Frame& f);
  [[nodiscard]] const std::optional<Section>& section() const { return worst_; }
  [[nodiscard]] double t() const { return t_; }

 private:
  std::optional<Section> worst_;
  double t_ = 0;
  int yes_ = -1, look_ = -1;
  double p99_ = -1;
};

nlohmann::json report_json(const Section& whole, const WorstInterval& worst);

// {"raise_gomaxprocs": "yes", ...}: the answers of a frame, stored in the recording's frame
// markers as shown live.
nlohmann::json answers_json(const Section& s);

// Replayed answers against the live ones of the same frames.
class ReplayCheck {
 public:
  void compare(const Section& replayed, const nlohmann::json& marker, double t);
  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] bool ok() const { return mismatched_ == 0; }

 private:
  uint64_t frames_ = 0, mismatched_ = 0;
  std::vector<std::string> diffs_;
};
void print_report(const nlohmann::json& capacity, FILE* out);

}  // namespace schedscope::capacity
