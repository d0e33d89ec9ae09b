#include "detect/pipeline.h"

namespace schedscope::detect {

std::optional<model::Frame> Pipeline::end(std::string why) {
  if (!ended_) end_reason_ = std::move(why);
  ended_ = true;
  return std::nullopt;
}

Expected<std::optional<model::Frame>> Pipeline::step() {
  if (ended_) return std::optional<model::Frame>();
  if (stop_.count > 0 && frames_ >= uint64_t(stop_.count)) return end("the -n limit was reached");
  if (stop_.duration_s > 0 && elapsed_s_ + 1e-3 >= stop_.duration_s)
    return end("the -d limit was reached");
  auto p = src_.pull();
  if (!p) return p.error();
  if (p->kind == Pulled::kEnded) return end(src_.end_reason());
  if (p->kind == Pulled::kSkipped) {
    for (auto* s : sinks_) s->on_skipped(p->frame);
    return end(src_.end_reason());
  }
  model::Frame& f = p->frame;
  attach(f, det_.evaluate(f));
  frames_++;
  elapsed_s_ += f.interval_s;
  for (auto* s : sinks_) {
    s->on_shown(f, *this);
    if (s->failed()) {
      end("the output failed");
      break;
    }
  }
  return std::optional<model::Frame>(std::move(f));
}

const model::Frame& Pipeline::finish() {
  if (final_) return *final_;
  ended_ = true;
  model::Frame f = src_.final_frame();
  f.alerts = det_.all();
  final_ = std::move(f);
  for (auto* s : sinks_) s->on_final(*final_, *this);
  return *final_;
}

}  // namespace schedscope::detect
