// Replays a recording through the same Model and Detectors the live observer used:
// records, kernel snapshots, Go samples and thread names are fed in recorded order, and
// each frame marker builds the frame exactly where the live observer built it. So the
// frames and alerts equal the live ones (check() compares them with the alerts stored
// live). RecordingSource puts a Replayer behind the live view (model::FrameSource).
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/capacity_report.h"
#include "detect/detectors.h"
#include "detect/pipeline.h"
#include "model/frame_source.h"
#include "model/model.h"
#include "record/reader.h"

namespace schedscope::record {

nlohmann::json target_to_json(const model::TargetInfo& t);
model::TargetInfo target_from_json(const nlohmann::json& j);
// Detector thresholds as stored in the metadata ("thresholds").
nlohmann::json detect_to_json(const detect::DetectOptions& d);
detect::DetectOptions detect_from_json(const nlohmann::json& j, detect::DetectOptions base = {});

// The symbols stored in the recording (model::Symbolize without the binary).
class RecordedSymbols : public model::Symbolize {
 public:
  void add(const std::vector<SymbolEntry>& syms);
  [[nodiscard]] std::string frame(uint64_t pc) const override;
  [[nodiscard]] bool is_runtime(uint64_t pc) const override;
  [[nodiscard]] std::string start_func(uint64_t pc) const override;
  [[nodiscard]] size_t size() const { return syms_.size(); }

 private:
  std::map<uint64_t, SymbolEntry> syms_;
};

// Agreement between the replayed alerts and the ones raised live while recording.
struct AlertCheck {
  uint64_t frames = 0;             // shown frames compared
  uint64_t mismatched_frames = 0;  // whose alerts differ
  bool final_recorded = false;     // the recording has its final frame marker
  bool final_match = false;        // every alert ever raised equals the live list
  std::vector<std::string> diffs;  // the first few differences, human-readable
  [[nodiscard]] bool ok() const { return mismatched_frames == 0 && (!final_recorded || final_match); }
};

// The recording as the frame source of a detect::Pipeline: the same driver, detectors and
// end-of-run rule as the live observation, with a sink that compares each frame's
// alerts with the ones recorded live.
class Replayer {
 public:
  // `detect` are the thresholds to use (usually detect_from_json(meta["thresholds"])).
  Replayer(const Recording& rec, const detect::DetectOptions& detect);
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;

  // The next frame the live view showed, with the detectors' alerts; nullopt once the
  // recording ends (the final marker or the end of the data).
  std::optional<model::Frame> next();
  // The totals-since-start frame with every alert raised: the recorded final frame, or
  // (truncated recording) built after the last record. Consumes what is left.
  model::Frame final_frame();
  [[nodiscard]] bool ended() const { return pipe_.ended(); }

  [[nodiscard]] const AlertCheck& check() const { return check_; }
  // The capacity answers replayed against those shown live (stored in the frame markers).
  [[nodiscard]] const capacity::ReplayCheck& capacity_check() const { return cap_check_; }
  [[nodiscard]] const std::vector<model::Alert>& live_alerts() const { return live_alerts_; }
  [[nodiscard]] const detect::Detectors& detectors() const { return pipe_.detectors(); }
  [[nodiscard]] model::Model& model() { return model_; }
  // Metadata merged with the info records seen so far (e.g. Go offsets resolved late).
  [[nodiscard]] const nlohmann::json& info() const { return info_; }
  // Why reading stopped early ("" when the data was read to its end).
  [[nodiscard]] const std::string& warning() const { return it_.warning(); }
  [[nodiscard]] uint64_t raw_records() const { return raw_records_; }
  [[nodiscard]] uint64_t frames_shown() const { return frames_shown_; }
  [[nodiscard]] const RecordedSymbols& symbols() const { return syms_; }
  // The binary's wait reason names from the Go metadata ("go"."wait_reasons"); null when
  // the recording has none (older recordings, or not found in the binary).
  [[nodiscard]] const gc::WaitReasonNames& wait_reasons() const { return wait_reasons_; }

  // Called with every item as it is applied (before a frame marker builds its frame).
  std::function<void(const Item&)> on_item;

 private:
  // The recorded items up to the next shown frame (or the final marker, or the end).
  class Feed : public detect::FrameFeed {
   public:
    explicit Feed(Replayer& r) : r_(r) {}
    Expected<detect::Pulled> pull() override { return r_.pull(); }
    model::Frame final_frame() override { return r_.model_.frame(true); }
    [[nodiscard]] std::string end_reason() const override { return "end of recording"; }

   private:
    Replayer& r_;
  };
  // Compares the alerts of each detected frame with the ones recorded live.
  class Check : public detect::FrameSink {
   public:
    explicit Check(Replayer& r) : r_(r) {}
    void on_shown(const model::Frame& f, const detect::Pipeline&) override;
    void on_final(const model::Frame& f, const detect::Pipeline&) override;

   private:
    Replayer& r_;
  };
  detect::Pulled pull();
  void compare(const model::Frame& f, const nlohmann::json& recorded, bool final);
  static void apply_stacks(model::Frame& f, const nlohmann::json& marker);
  void read_wait_reasons(const nlohmann::json& meta);
  Recording::Iterator it_;
  Item item_;
  RecordedSymbols syms_;
  model::Model model_;
  nlohmann::json info_;
  gc::WaitReasonNames wait_reasons_;
  nlohmann::json shown_marker_;                // of the frame last pulled
  std::optional<nlohmann::json> final_marker_;  // the recorded final frame's
  std::vector<model::Alert> live_alerts_;
  AlertCheck check_;
  capacity::ReplayCheck cap_check_;
  uint64_t raw_records_ = 0, frames_shown_ = 0;
  Feed feed_{*this};
  Check check_sink_{*this};
  detect::Pipeline pipe_;
};

// A recording as a FrameSource for the live view (replay): next() paces frames by the
// recorded interval / speed, seek(t) rebuilds the model from the start up to t. Safe to
// drive from two threads as ui::run_live does (next() on one, the controls on another).
class RecordingSource : public model::FrameSource {
 public:
  RecordingSource(const Recording& rec, const detect::DetectOptions& detect);
  std::optional<model::Frame> next() override;
  std::optional<model::Frame> final_frame() override;
  [[nodiscard]] bool live() const override { return false; }
  [[nodiscard]] bool can_seek() const override { return true; }
  void seek(double t_s) override;
  void set_speed(double x) override;  // <= 0: no pacing
  [[nodiscard]] double position_s() const override;
  [[nodiscard]] double length_s() const override { return length_; }
  [[nodiscard]] std::string cost() const override;
  void interrupt() override;
  [[nodiscard]] std::string end_reason() const override;
  [[nodiscard]] double speed() const;
  // The alert check of the current pass (after a seek: from the start to there).
  [[nodiscard]] AlertCheck check() const;

 private:
  const Recording& rec_;
  detect::DetectOptions detect_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Replayer> rp_;
  std::optional<model::Frame> pending_;  // the frame a seek landed on
  double speed_ = 1.0;
  double pos_ = 0, length_ = 0;
  uint64_t seeks_ = 0;
  bool interrupted_ = false;
  std::chrono::steady_clock::time_point last_{};
  bool have_last_ = false;
};

}  // namespace schedscope::record
