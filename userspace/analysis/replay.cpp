#include "analysis/replay.h"

#include <cmath>
#include <thread>

#include "detect/options.h"
#include "util/json_out.h"

namespace schedscope::record {

namespace {

template <typename T>
void get_num(const nlohmann::json& j, const char* k, T& v) {
  json_get_num(j, k, v);
}
void get_str(const nlohmann::json& j, const char* k, std::string& v) {
  if (auto it = j.find(k); it != j.end() && it->is_string()) v = it->get<std::string>();
}
void get_bool(const nlohmann::json& j, const char* k, bool& v) {
  if (auto it = j.find(k); it != j.end() && it->is_boolean()) v = it->get<bool>();
}

std::string alerts_key(const nlohmann::json& j) {
  // Normalized through Alert so that number types parsed back from text compare equal.
  return dump_json(alerts_to_json(alerts_from_json(j)));
}

// The names of a recorded enum table (index = value), at most 256: the runtime's wait and
// stop-the-world reasons are uint8. A non-string entry is an unknown name.
std::vector<std::string> enum_names(const nlohmann::json& arr) {
  std::vector<std::string> names;
  for (const auto& n : arr) {
    if (names.size() >= 256) break;
    names.push_back(n.is_string() ? n.get<std::string>() : std::string());
  }
  return names;
}

}  // namespace

nlohmann::json target_to_json(const model::TargetInfo& t) {
  return {{"pid", t.pid},
          {"comm", t.comm},
          {"exe", t.exe},
          {"go_version", t.go_version},
          {"go_enabled", t.go_enabled},
          {"go_note", t.go_note},
          {"all_syscalls", t.all_syscalls},
          {"max_threads", t.max_threads},
          {"goroutines", t.goroutines},
          {"goroutines_attached", t.goroutines_attached},
          {"goroutine_exits", t.goroutine_exits},
          {"goroutines_note", t.goroutines_note},
          {"stw_reasons", t.stw_reasons}};
}

model::TargetInfo target_from_json(const nlohmann::json& j) {
  model::TargetInfo t;
  if (!j.is_object()) return t;
  get_num(j, "pid", t.pid);
  get_str(j, "comm", t.comm);
  get_str(j, "exe", t.exe);
  get_str(j, "go_version", t.go_version);
  get_bool(j, "go_enabled", t.go_enabled);
  get_str(j, "go_note", t.go_note);
  get_bool(j, "all_syscalls", t.all_syscalls);
  get_num(j, "max_threads", t.max_threads);
  get_bool(j, "goroutines", t.goroutines);
  get_bool(j, "goroutines_attached", t.goroutines_attached);
  // Recorded before exits could come from the census: the exit uprobe was always attached.
  t.goroutine_exits = !j.contains("goroutine_exits");
  get_bool(j, "goroutine_exits", t.goroutine_exits);
  get_str(j, "goroutines_note", t.goroutines_note);
  // Recorded before the table was read: empty, the release's known list names the stops.
  if (auto sr = j.find("stw_reasons"); sr != j.end() && sr->is_array()) t.stw_reasons = enum_names(*sr);
  if (t.max_threads <= 0) t.max_threads = 10000;
  return t;
}

nlohmann::json detect_to_json(const detect::DetectOptions& d) { return detect::thresholds_to_json(d); }

detect::DetectOptions detect_from_json(const nlohmann::json& j, detect::DetectOptions d) {
  return detect::thresholds_from_json(j, d);
}

// ---- RecordedSymbols
void RecordedSymbols::add(const std::vector<SymbolEntry>& syms) {
  for (const auto& e : syms) syms_[e.pc] = e;
}
std::string RecordedSymbols::frame(uint64_t pc) const {
  auto it = syms_.find(pc);
  return it == syms_.end() ? std::string() : it->second.frame;
}
bool RecordedSymbols::is_runtime(uint64_t pc) const {
  auto it = syms_.find(pc);
  return it == syms_.end() ? true : it->second.is_runtime;
}
std::string RecordedSymbols::start_func(uint64_t pc) const {
  auto it = syms_.find(pc);
  if (it != syms_.end() && it->second.has_start_func) return it->second.start_func;
  return model::Symbolize::start_func(pc);
}

// ---- Replayer
Replayer::Replayer(const Recording& rec, const detect::DetectOptions& detect)
    : it_(rec.records()),
      model_(target_from_json(rec.meta().value("target", nlohmann::json::object()))),
      info_(rec.meta()),
      pipe_(feed_, detect) {
  pipe_.add_sink(&check_sink_);
  auto sym = rec.meta().find("symbolizer");
  if (sym == rec.meta().end() || (sym->is_boolean() && sym->get<bool>())) model_.set_symbolizer(&syms_);
  read_wait_reasons(rec.meta());
}

// meta (or an info record) {"go": {"wait_reasons": ["", "GC assist marking", ...]}}.
void Replayer::read_wait_reasons(const nlohmann::json& meta) {
  auto go = meta.find("go");
  if (go == meta.end() || !go->is_object()) return;
  auto wr = go->find("wait_reasons");
  if (wr == go->end() || !wr->is_array() || wr->empty()) return;
  wait_reasons_ = std::make_shared<std::vector<std::string>>(enum_names(*wr));
}

// The stacks the live observer walked from /proc/PID/mem after building the frame.
void Replayer::apply_stacks(model::Frame& f, const nlohmann::json& marker) {
  auto st = marker.find("stacks");
  if (st == marker.end() || !st->is_object()) return;
  for (auto& r : f.threads) {
    auto it = st->find(std::to_string(r.tid));
    if (it == st->end() || !it->is_array()) continue;
    r.stack.clear();
    for (const auto& s : *it)
      if (s.is_string()) r.stack.push_back(s.get<std::string>());
  }
}

void Replayer::compare(const model::Frame& f, const nlohmann::json& recorded, bool final) {
  nlohmann::json rec_alerts = recorded.value("alerts", nlohmann::json::array());
  std::string want = alerts_key(rec_alerts);
  std::string got = dump_json(alerts_to_json(f.alerts));
  if (final) {
    check_.final_recorded = true;
    check_.final_match = want == got;
  } else {
    check_.frames++;
    if (want != got) check_.mismatched_frames++;
  }
  if (want != got && check_.diffs.size() < 5) {
    char t[64];
    snprintf(t, sizeof t, "%s t=%.2fs", final ? "final" : "frame", f.elapsed_s);
    check_.diffs.push_back(std::string(t) + ": live " + std::to_string(rec_alerts.size()) +
                           " alert(s), replay " + std::to_string(f.alerts.size()) + ": live " +
                           want.substr(0, 300) + " / replay " + got.substr(0, 300));
  }
}

detect::Pulled Replayer::pull() {
  detect::Pulled out;
  while (it_.next(&item_)) {
    if (on_item) on_item(item_);
    switch (item_.kind) {
      case kRecRaw:
        raw_records_++;
        model_.on_record(item_.raw(), item_.raw_size);
        break;
      case kRecKernel:
        model_.on_kernel(item_.kernel);
        break;
      case kRecGo:
        model_.on_go_sample(item_.go);
        break;
      case kRecName:
        model_.set_thread_name(item_.tid, item_.name);
        break;
      case kRecSymbols:
        syms_.add(item_.symbols);
        break;
      case kRecGoBaseline:
        model_.set_goroutine_baseline(item_.value);
        break;
      case kRecGoCensus:
        item_.census.reason_names = wait_reasons_;
        model_.on_census(item_.census);
        break;
      case kRecGoSchedLatency:
        model_.on_sched_latency(item_.time_hist);
        break;
      case kRecInfo:
        if (item_.json.is_object()) {
          for (auto& [k, v] : item_.json.items()) info_[k] = v;
          read_wait_reasons(item_.json);
        }
        break;
      case kRecFrame: {
        const auto& m = item_.json;
        if (auto t = m.find("target"); t != m.end() && t->is_object())
          model_.set_target(target_from_json(*t));
        std::string mode_name;
        get_str(m, "mode", mode_name);
        auto mode = frame_mode_from(mode_name);
        if (!mode) break;  // unknown marker: ignored
        switch (*mode) {
          case FrameMode::kBaseline:
          case FrameMode::kSkipped:
            (void)model_.frame();
            (void)model_.take_exited();
            break;
          case FrameMode::kShown:
            out.kind = detect::Pulled::kShown;
            out.frame = model_.frame();
            (void)model_.take_exited();  // as the observer does (it forgets what it keeps per thread)
            apply_stacks(out.frame, m);
            shown_marker_ = m;
            frames_shown_++;
            return out;
          case FrameMode::kFinal:
            final_marker_ = m;
            return out;  // the final frame is built where the live one was: now
        }
        break;
      }
      default:
        break;
    }
  }
  return out;
}

void Replayer::Check::on_shown(const model::Frame& f, const detect::Pipeline&) {
  r_.compare(f, r_.shown_marker_, false);
  r_.cap_check_.compare(f.capacity, r_.shown_marker_, f.elapsed_s);
}

void Replayer::Check::on_final(const model::Frame& f, const detect::Pipeline&) {
  if (!r_.final_marker_) return;  // truncated recording: nothing to compare with
  r_.live_alerts_ = alerts_from_json(r_.final_marker_->value("alerts", nlohmann::json::array()));
  r_.compare(f, *r_.final_marker_, true);
  r_.cap_check_.compare(f.capacity, *r_.final_marker_, f.elapsed_s);
}

std::optional<model::Frame> Replayer::next() {
  auto f = pipe_.step();
  return f ? std::move(*f) : std::nullopt;
}

model::Frame Replayer::final_frame() {
  while (next()) {
  }
  return pipe_.finish();
}

// ---- RecordingSource
RecordingSource::RecordingSource(const Recording& rec, const detect::DetectOptions& detect)
    : rec_(rec), detect_(detect), rp_(std::make_unique<Replayer>(rec, detect)) {
  const auto& tr = rec.trailer();
  if (tr.is_object() && tr.contains("duration_s") && tr["duration_s"].is_number()) {
    length_ = tr["duration_s"].get<double>();
  } else {
    // Not finalized: the last frame marker says how far it goes.
    Item it;
    auto iter = rec.records();
    while (iter.next(&it))
      if (it.kind == kRecFrame && it.json.contains("elapsed_s") && it.json["elapsed_s"].is_number())
        length_ = std::max(length_, it.json["elapsed_s"].get<double>());
  }
}

std::optional<model::Frame> RecordingSource::next() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    if (interrupted_) return std::nullopt;
    std::optional<model::Frame> f;
    if (pending_) {
      f = std::move(pending_);
      pending_.reset();
    } else {
      f = rp_->next();
      if (!f) return std::nullopt;
      // Pace: the recorded interval / speed after the previous frame was handed out (a
      // paused view simply calls later). A seek or interrupt ends the wait.
      if (speed_ > 0 && have_last_) {
        auto due = last_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(std::min(f->interval_s / speed_, 3600.0)));
        uint64_t seeks = seeks_;
        cv_.wait_until(lk, due, [&] { return interrupted_ || seeks_ != seeks; });
        if (interrupted_) return std::nullopt;
        if (seeks_ != seeks) continue;  // this frame is stale: hand out the seek's
      }
    }
    last_ = std::chrono::steady_clock::now();
    have_last_ = true;
    pos_ = f->elapsed_s;
    return f;
  }
}

std::optional<model::Frame> RecordingSource::final_frame() {
  std::lock_guard<std::mutex> lk(mu_);
  return rp_->final_frame();
}

void RecordingSource::seek(double t_s) {
  std::lock_guard<std::mutex> lk(mu_);
  rp_ = std::make_unique<Replayer>(rec_, detect_);
  pending_.reset();
  pos_ = 0;
  while (auto f = rp_->next()) {
    pos_ = f->elapsed_s;
    if (f->elapsed_s + 1e-6 >= t_s) {
      pending_ = std::move(f);
      break;
    }
  }
  have_last_ = false;
  seeks_++;
  cv_.notify_all();
}

void RecordingSource::set_speed(double x) {
  std::lock_guard<std::mutex> lk(mu_);
  speed_ = x;
  cv_.notify_all();
}

double RecordingSource::speed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return speed_;
}

double RecordingSource::position_s() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pos_;
}

void RecordingSource::interrupt() {
  std::lock_guard<std::mutex> lk(mu_);
  interrupted_ = true;
  cv_.notify_all();
}

std::string RecordingSource::end_reason() const { return "end of recording"; }

AlertCheck RecordingSource::check() const {
  std::lock_guard<std::mutex> lk(mu_);
  return rp_->check();
}

std::string RecordingSource::cost() const {
  const auto& m = rec_.meta();
  std::string s = "replay of " + rec_.name();
  if (m.contains("host") && m["host"].is_string()) s += " (host " + m["host"].get<std::string>() + ")";
  double sp = speed();
  char buf[48];
  snprintf(buf, sizeof buf, ", speed x%g", sp);
  return s + (sp > 0 ? buf : ", unpaced");
}

}  // namespace schedscope::record
