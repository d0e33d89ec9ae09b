#include "app/flight.h"

#include <cstdio>
#include <ctime>

#include "app/go_attach.h"
#include "analysis/replay.h"
#include "record/rotate.h"
#include "util/units.h"

namespace schedscope::app {

using nlohmann::json;

FlightRecorder::FlightRecorder(FlightRecorderOptions opt, const ObserveOptions& obs,
                               const detect::DetectOptions& d)
    : opt_(std::move(opt)),
      obs_(obs),
      det_(d),
      host_(hostname()),
      buf_(record::FlightOptions{opt_.window_s, opt_.memory_bytes}) {}

void FlightRecorder::attach(Observed& o) {
  o_ = &o;
  meta_ = recording_meta(o, obs_, det_, host_, wall_now());
  rec_ = std::make_unique<Recorder>(buf_, o.go());
  rec_->set_target(meta_["target"]);
  rec_->hook(o);
  rec_->marker(record::FrameMode::kBaseline, o, nullptr, nullptr);
}

void FlightRecorder::say(std::vector<std::string>& out, const std::string& what,
                         const std::string& detail) {
  out.push_back("flight recorder: " + what + detail);
  note_ = what;
}

void FlightRecorder::keep(std::vector<std::string> lines) {
  for (auto& l : lines) lines_.push_back(std::move(l));
}

void FlightRecorder::on_shown(const model::Frame& f, const detect::Pipeline& p) {
  if (o_) keep(after_frame(*o_, f, p.detectors().all()));
}

void FlightRecorder::on_final(const model::Frame& f, const detect::Pipeline&) {
  if (o_) keep(finish(*o_, f.alerts));
}

std::vector<std::string> FlightRecorder::take_lines() {
  std::vector<std::string> out;
  out.swap(lines_);
  return out;
}

std::vector<std::string> FlightRecorder::after_frame(Observed& o, const model::Frame& f,
                                                     const std::vector<detect::Alert>& all) {
  if (!rec_) return {};
  rec_->marker(record::FrameMode::kShown, o, &f, &f.alerts);
  if (o.go() && o.go()->ready() && !meta_["go"].is_null() && !meta_["go"].value("ready", false)) {
    meta_["go"] = go_meta(*o.go());
    if (f.go) meta_["gomaxprocs"] = f.go->gomaxprocs;
  }
  for (const auto& a : f.alerts) {
    if (!a.active) continue;
    std::string key = a.kind + ":" + std::to_string(a.p) + ":" + std::to_string(a.tid);
    auto it = seen_.find(key);
    if (it != seen_.end() && it->second == a.ts_ns) continue;
    seen_[key] = a.ts_ns;
    triggers_.push_back(a);
  }
  if (triggers_.empty()) return {};
  // One dump per window: a dump sooner would mostly repeat the previous one.
  if (last_dump_ns_ && f.ts_ns - last_dump_ns_ < uint64_t(opt_.window_s * 1e9)) return {};
  return dump(o, all, f.ts_ns);
}

std::vector<std::string> FlightRecorder::finish(const Observed& o, const std::vector<detect::Alert>& all) {
  if (!rec_ || triggers_.empty()) return {};
  return dump(o, all, probe::monotonic_ns());
}

std::vector<std::string> FlightRecorder::dump(const Observed& o, const std::vector<detect::Alert>& all,
                                              uint64_t now_ns) {
  std::vector<std::string> out;
  std::string kinds;
  if (opt_.kind_in_name) {
    std::set<std::string> seen;
    for (const auto& a : triggers_)
      if (seen.insert(a.kind).second) kinds += (kinds.empty() ? "" : "+") + a.kind;
  }
  std::string path = record::unique_recording_path(opt_.dir, host_, o.target().pid, std::time(nullptr), kinds);
  json meta = meta_;
  meta["target"] = record::target_to_json(o.target());
  meta["capture"] = {{"kind", "flight"},
                     {"window_s", opt_.window_s},
                     {"trigger", record::alerts_to_json(triggers_)}};
  // The alerts the live view had raised within the window: what the replay of the window
  // can raise again. Older ones are before the file's start.
  uint64_t window_start = now_ns - std::min<uint64_t>(now_ns, uint64_t((buf_.span_s() + 1) * 1e9));
  std::vector<detect::Alert> recent;
  for (const auto& a : all)
    if (a.active || a.last_ns >= window_start || a.ts_ns >= window_start) recent.push_back(a);
  json fin = {{"mode", record::frame_mode_name(record::FrameMode::kFinal)},
              {"alerts", record::alerts_to_json(recent)},
              {"flight", true}};
  json trailer = {{"end", wall_now()}, {"drops", rec_->drops()}, {"alerts", recent.size()},
                  {"target_exited", o.target_gone()}, {"stopped", o.stopped()}};
  auto r = buf_.dump(path, meta, fin, trailer);
  last_dump_ns_ = now_ns;
  std::string why;
  for (size_t i = 0; i < triggers_.size(); i++) why += (i ? ", " : "") + triggers_[i].kind;
  std::vector<detect::Alert> triggers;
  triggers.swap(triggers_);
  if (!r) {
    say(out, "cannot write " + path + ": " + r.error().message);
    return out;
  }
  for (const auto& n : r->notices) say(out, n);
  written_.push_back(r->path);
  if (on_written) on_written(r->path, triggers);
  char detail[256];
  std::snprintf(detail, sizeof detail, " (the last %.0fs before %s, %llu events)", r->span_s,
                why.c_str(), static_cast<unsigned long long>(r->events));
  say(out, "wrote " + r->path, detail);
  if (buf_.trimmed_for_bytes())
    say(out, "the window was cut to fit " + format_bytes(opt_.memory_bytes) + " in memory",
        " (" + std::to_string(buf_.trimmed_for_bytes()) + " oldest frames dropped)");
  if (opt_.max_bytes > 0) {
    auto rot = record::rotate_recordings(opt_.dir, opt_.max_bytes, r->path);
    for (const auto& d : rot.deleted) say(out, "deleted " + d, " (--max-bytes)");
    for (const auto& k : rot.skipped)
      if (told_.insert(k).second) say(out, "--max-bytes leaves " + k + " alone");
    if (!rot.error.empty()) say(out, rot.error);
  }
  return out;
}

std::string FlightRecorder::status() const {
  char line[160];
  std::snprintf(line, sizeof line, "flight recorder: %.0fs/%.0fs kept (%s), %zu dump%s", buf_.span_s(),
                opt_.window_s, format_bytes(buf_.bytes()).c_str(), written_.size(),
                written_.size() == 1 ? "" : "s");
  return line;
}

}  // namespace schedscope::app
