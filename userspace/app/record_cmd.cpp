#include "app/record_cmd.h"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "app/cli_checks.h"
#include "app/commands.h"
#include "app/output_watch.h"
#include "app/recorder.h"
#include "detect/options.h"
#include "go/runtime_json.h"
#include "model/frame_json.h"
#include "analysis/perfetto.h"
#include "record/reader.h"
#include "analysis/replay.h"
#include "analysis/report.h"
#include "record/rotate.h"
#include "record/writer.h"
#include "ui/live.h"
#include "ui/print.h"
#include "util/safe_file.h"
#include "util/json_out.h"
#include "util/printable.h"
#include "util/units.h"

namespace schedscope::app {

using nlohmann::json;

namespace {

struct CaptureResult {
  int code = kExitOk;
  std::string path;
  bool target_gone = false;
  uint64_t bytes = 0;
};

class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}
  void update(const std::string& line) {
    if (quiet_) return;
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      dirty_ = true;
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }
  // A line of its own (alerts, the result), keeping the progress line below it.
  void say(const std::string& line) {
    clear();
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  }
  void clear() {
    if (tty_ && dirty_) std::fprintf(stderr, "\r\033[K");
    dirty_ = false;
  }

 private:
  bool quiet_, tty_, dirty_ = false;
};

// What `record` does with each frame: its marker (with the live alerts) into the
// recording, the Go metadata once the runtime offsets resolved, new alerts and the
// progress line on stderr.
class CaptureSink : public detect::FrameSink {
 public:
  CaptureSink(const RecordOptions& opt, Observer& o, record::RecordingWriter& w, Recorder& rec,
              Progress& progress)
      : opt_(opt), o_(o), w_(w), rec_(rec), progress_(progress), go_info_(o.go() && o.go()->ready()) {}

  void on_skipped(const model::Frame& f) override {
    rec_.marker(record::FrameMode::kSkipped, o_, &f, nullptr);
  }
  void on_shown(const model::Frame& f, const detect::Pipeline& p) override {
    rec_.marker(record::FrameMode::kShown, o_, &f, &f.alerts);
    if (!go_info_ && o_.go() && o_.go()->ready()) {
      json info = {{"go", go_meta(*o_.go())}};
      if (f.go) info["gomaxprocs"] = f.go->gomaxprocs;
      w_.info(info);
      go_info_ = true;
    }
    for (const auto& a : f.alerts) {
      if (!a.active) continue;
      std::string key = a.kind + ":" + std::to_string(a.p) + ":" + std::to_string(a.tid);
      if (announced_[key] == a.ts_ns) continue;
      announced_[key] = a.ts_ns;
      progress_.say("schedscope: ALERT [" + a.severity + "] " + a.kind + ": " + a.message);
    }
    werr_ = w_.error();
    if (!werr_.empty()) return;
    const double elapsed = p.elapsed_s();
    char line[256];
    std::string left = opt_.duration_s > 0
                           ? std::to_string(int(std::ceil(std::max(0.0, opt_.duration_s - elapsed)))) + "s left"
                           : "until Ctrl-C or exit";
    snprintf(line, sizeof line, "recording pid %d: %.0fs, %s, %s, %llu events, %llu drops",
             o_.target().pid, elapsed, left.c_str(), format_bytes(w_.bytes_written()).c_str(),
             static_cast<unsigned long long>(w_.raw_records()),
             static_cast<unsigned long long>(rec_.drops()));
    progress_.update(line);
  }
  void on_final(const model::Frame& f, const detect::Pipeline&) override {
    rec_.marker(record::FrameMode::kFinal, o_, &f, &f.alerts);
  }
  [[nodiscard]] bool failed() const override { return !werr_.empty(); }
  [[nodiscard]] const std::string& write_error() const { return werr_; }

 private:
  const RecordOptions& opt_;
  Observer& o_;
  record::RecordingWriter& w_;
  Recorder& rec_;
  Progress& progress_;
  bool go_info_;
  std::map<std::string, uint64_t> announced_;  // alert key -> ts raised
  std::string werr_;
};

CaptureResult capture(const RecordOptions& opt, const std::string& dir, int index, Progress& progress) {
  CaptureResult res;
  std::unique_ptr<record::RecordingWriter> writer;
  std::unique_ptr<Recorder> rec;
  std::string init_err;
  std::string host = hostname();
  json start_time = wall_now();
  auto init = [&](Observer& o) {
    const model::TargetInfo& t = o.target();
    std::string path = !opt.output.empty()
                           ? opt.output
                           : record::unique_recording_path(dir, host, t.pid, std::time(nullptr));
    json meta = recording_meta(o, opt.observe, opt.detect, host, start_time);
    meta["capture"] = {{"kind", opt.every_s > 0 ? "sampled" : "single"},
                       {"duration_s", opt.duration_s},
                       {"every_s", opt.every_s},
                       {"index", index}};
    auto w = record::RecordingWriter::create(path, meta);
    if (!w) {
      init_err = w.error().message;
      return;
    }
    writer = std::move(w.value());
    rec = std::make_unique<Recorder>(*writer, o.go());
    rec->set_target(meta["target"]);
    rec->hook(o);
    o.on_ready = [&progress](const std::string& line) { progress.say("schedscope: " + line); };
  };
  int code = 0;
  auto obs = Observer::start(opt.observe, &code, init);
  if (!obs) {
    if (writer) writer->abandon();
    std::cerr << "schedscope: " << obs.error().message << "\n";
    res.code = code;
    return res;
  }
  Observer& o = **obs;
  if (!writer) {
    std::cerr << "schedscope: " << init_err << "\n";
    res.code = kExitError;
    return res;
  }
  for (const auto& n : writer->notices()) progress.say("schedscope: " + n);
  const auto& t = o.target();
  if (opt.observe.verbose) {
    std::fprintf(stderr, "schedscope: recording pid %d (%s)%s%s to %s\n", t.pid, t.comm.c_str(),
                 t.go_version.empty() ? "" : (", " + t.go_version).c_str(),
                 t.go_note.empty() ? "" : ("; " + t.go_note).c_str(), writer->path().c_str());
    if (o.go())
      for (const auto& c : o.go()->checks()) std::fprintf(stderr, "  validated: %s\n", c.c_str());
  }
  rec->marker(record::FrameMode::kBaseline, o, nullptr, nullptr);

  CaptureSink sink(opt, o, *writer, *rec, progress);
  ObserverFeed feed(o);
  detect::Pipeline pipe(feed, opt.detect, {0, opt.duration_s});
  pipe.add_sink(&sink);
  for (;;) {
    auto f = pipe.step();
    if (!f) {
      progress.say("schedscope: " + f.error().message);
      res.code = kExitError;
      break;
    }
    if (!*f) break;
  }
  const model::Frame& fin = pipe.finish();
  const uint64_t frames = pipe.frames();
  const std::string werr = sink.write_error();
  res.target_gone = o.target_gone();
  progress.clear();
  if (!werr.empty()) {
    std::cerr << "schedscope: " << werr << "; the partial recording stays in "
              << writer->temp_path() << "\n";
    res.code = kExitError;
    return res;  // the writer's destructor keeps what was written
  }
  json trailer = {{"end", wall_now()},
                  {"duration_s", fin.elapsed_s},
                  {"frames", frames},
                  {"events", writer->raw_records()},
                  {"records", writer->records()},
                  {"drops", rec->drops()},
                  {"alerts", fin.alerts.size()},
                  {"target_exited", o.target_gone()},
                  {"stopped", o.stopped()}};
  if (fin.go) trailer["gomaxprocs"] = fin.go->gomaxprocs;
  auto done = writer->finish(trailer);
  if (!done) {
    std::cerr << "schedscope: " << done.error().message << "\n";
    res.code = kExitError;
    return res;
  }
  res.path = *done;
  struct stat st {};
  if (stat(res.path.c_str(), &st) == 0) res.bytes = uint64_t(st.st_size);
  char line[512];
  snprintf(line, sizeof line,
           "schedscope: wrote %s (%.1fs, %s, %llu events, %llu drops, %zu alert%s)%s", res.path.c_str(),
           fin.elapsed_s, format_bytes(res.bytes).c_str(),
           static_cast<unsigned long long>(writer->raw_records()),
           static_cast<unsigned long long>(rec->drops()), fin.alerts.size(),
           fin.alerts.size() == 1 ? "" : "s", o.target_gone() ? "; the target exited" : "");
  progress.say(line);
  return res;
}

// Rotation's lines for stderr: what it deleted, and (once per file) what it left alone.
void report_rotation(const record::RotateResult& rot, Progress& progress,
                     std::set<std::string>& told) {
  for (const auto& d : rot.deleted) progress.say("schedscope: deleted " + d + " (--max-bytes)");
  for (const auto& k : rot.skipped)
    if (told.insert(k).second) progress.say("schedscope: --max-bytes leaves " + k + " alone");
  if (!rot.error.empty()) progress.say("schedscope: " + rot.error);
}

// Sleeps until `until`, waking early on a stop signal.
void sleep_until(std::chrono::steady_clock::time_point until) {
  while (!g_stop) {
    auto now = std::chrono::steady_clock::now();
    if (now >= until) return;
    auto step = std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(100));
    std::this_thread::sleep_for(step);
  }
}

Expected<record::Recording> open_recording(const std::string& path) {
  auto r = record::Recording::open(path);
  if (r)
    for (const auto& w : r->warnings()) std::fprintf(stderr, "schedscope: warning: %s\n", w.c_str());
  return r;
}

detect::DetectOptions effective_thresholds(const record::Recording& rec, const AnalyzeOptions& opt) {
  detect::DetectOptions d = detect::DetectOptions{};
  if (rec.meta().contains("thresholds")) d = record::detect_from_json(rec.meta()["thresholds"], d);
  for (const auto& spec : detect::threshold_specs())
    if (spec.flag && opt.detect_given.count(spec.flag)) detect::copy_threshold(spec, d, opt.detect);
  return d;
}

}  // namespace

std::set<std::string> given_detector_flags(const CLI::App& app) {
  std::set<std::string> out;
  for (const auto& spec : detect::threshold_specs()) {
    if (!spec.flag) continue;
    try {
      if (app.count(spec.flag) > 0) out.insert(spec.flag);
    } catch (const CLI::Error&) {
    }
  }
  return out;
}

int cmd_record(const RecordOptions& opt) {
  if (!opt.output.empty() && !opt.dir.empty()) {
    std::cerr << "schedscope record: give either -o FILE or --dir DIR\n";
    return kExitUsage;
  }
  if (opt.every_s > 0) {
    if (!opt.observe.command.empty()) {
      std::cerr << "schedscope record: --every samples a running process: give -p PID\n";
      return kExitUsage;
    }
    if (!opt.output.empty()) {
      std::cerr << "schedscope record: --every writes one file per capture: use --dir DIR\n";
      return kExitUsage;
    }
    if (!(opt.duration_s > 0)) {
      std::cerr << "schedscope record: --every needs --duration (the length of each capture)\n";
      return kExitUsage;
    }
  }
  std::string dir = opt.dir;
  if (dir.empty() && opt.output.empty()) dir = ".";
  std::string check_dir = dir;
  if (!opt.output.empty()) {
    // -o DIR, or a file in a missing directory, fails now rather than after the capture.
    if (std::string why = output_path_problem(opt.output); !why.empty()) {
      std::cerr << "schedscope record: " << why << "\n";
      return kExitUsage;
    }
    check_dir = dir_of_path(opt.output);
  }
  struct stat st {};
  if (stat(check_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::cerr << "schedscope record: no such directory: " << check_dir << "\n";
    return kExitUsage;
  }
  if (access(check_dir.c_str(), W_OK) != 0) {
    std::cerr << "schedscope record: cannot write into " << check_dir << ": " << strerror(errno) << "\n";
    return kExitError;
  }
  install_stop_handlers();
  Progress progress(opt.quiet);
  std::set<std::string> told;
  if (opt.every_s <= 0) {
    CaptureResult r = capture(opt, dir, 0, progress);
    if (r.code == kExitOk && opt.max_bytes > 0 && opt.output.empty())
      report_rotation(record::rotate_recordings(dir, opt.max_bytes, r.path), progress, told);
    return r.code;
  }
  if (opt.duration_s >= opt.every_s)
    progress.say("schedscope: note: --duration is not shorter than --every: captures run back to back");
  for (int i = 0; !g_stop; i++) {
    auto t0 = std::chrono::steady_clock::now();
    CaptureResult r = capture(opt, dir, i, progress);
    if (r.code != kExitOk) return r.code;
    if (opt.max_bytes > 0) {
      auto rot = record::rotate_recordings(dir, opt.max_bytes, r.path);
      report_rotation(rot, progress, told);
      if (rot.total_after > opt.max_bytes)
        progress.say("schedscope: warning: the newest recording alone exceeds --max-bytes");
    }
    if (r.target_gone) return kExitOk;
    if (g_stop) break;
    auto next = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(opt.every_s));
    if (!opt.quiet) {
      double wait = std::chrono::duration<double>(next - std::chrono::steady_clock::now()).count();
      if (wait > 0) {
        char line[96];
        snprintf(line, sizeof line, "schedscope: next capture in %.0fs (Ctrl-C stops)", wait);
        progress.update(line);
      }
    }
    sleep_until(next);
    progress.clear();
  }
  return kExitOk;
}

int cmd_report(const AnalyzeOptions& opt) {
  auto rec = open_recording(opt.path);
  if (!rec) {
    std::cerr << "schedscope: " << rec.error().message << "\n";
    return kExitError;
  }
  json r = record::build_report(*rec, effective_thresholds(*rec, opt));
  if (opt.json) {
    std::cout << dump_json(r, 2) << "\n";
  } else {
    write_printable(stdout, [&](FILE* m) { record::print_report(r, m); });
  }
  return kExitOk;
}

int cmd_replay(const AnalyzeOptions& opt) {
  auto rec = open_recording(opt.path);
  if (!rec) {
    std::cerr << "schedscope: " << rec.error().message << "\n";
    return kExitError;
  }
  record::RecordingSource src(*rec, effective_thresholds(*rec, opt));
  bool live = !opt.batch && !opt.json && isatty(STDOUT_FILENO) != 0 && isatty(STDIN_FILENO) != 0;
  if (live) {
    src.set_speed(opt.speed);
    ui::LiveOptions lo;
    lo.title = "schedscope replay " + opt.path;
    return ui::run_live(src, lo);
  }
  install_stop_handlers();
  src.set_speed(opt.speed_given ? opt.speed : 0);  // batch: as fast as it prints, unless asked
  OutputWatch watch(stdout, "standard output");
  FramePrinter printer(stdout, opt.json, watch);
  while (!g_stop) {
    auto f = src.next();
    if (!f) break;
    if (!printer.print(*f)) break;
  }
  if (watch.gone()) return kExitPipe;  // the reader went away (| head)
  if (!watch.failed())
    if (auto fin = src.final_frame()) (void)printer.print(*fin);
  if (watch.gone()) return kExitPipe;
  if (!watch.error().empty()) {
    std::fprintf(stderr, "schedscope: %s\n", watch.error().c_str());
    return kExitError;
  }
  auto chk = src.check();
  if (!chk.ok())
    for (const auto& d : chk.diffs) std::fprintf(stderr, "schedscope: warning: alerts differ from live: %s\n", d.c_str());
  return kExitOk;
}

int cmd_export(const AnalyzeOptions& opt) {
  if (opt.format != "perfetto") {
    std::cerr << "schedscope export: unknown format '" << opt.format << "' (supported: perfetto)\n";
    return kExitUsage;
  }
  std::string out = opt.output;
  if (out.empty()) {
    out = opt.path;
    if (out.size() > 6 && out.compare(out.size() - 6, 6, ".sched") == 0) out.resize(out.size() - 6);
    out += ".pftrace";
  }
  if (std::string why = output_path_problem(out); !why.empty()) {
    std::cerr << "schedscope export: " << why << "\n";
    return kExitUsage;
  }
  auto rec = open_recording(opt.path);
  if (!rec) {
    std::cerr << "schedscope: " << rec.error().message << "\n";
    return kExitError;
  }
  std::vector<std::string> notices;
  auto st = record::export_perfetto(*rec, effective_thresholds(*rec, opt), out, &notices);
  for (const auto& n : notices) std::fprintf(stderr, "schedscope: %s\n", n.c_str());
  if (!st) {
    std::cerr << "schedscope: " << st.error().message << "\n";
    return kExitError;
  }
  std::fprintf(stderr,
               "schedscope: wrote %s (%s): %llu P tracks, %llu thread tracks, %llu G slices, %llu "
               "off-CPU slices, %llu counter values, %llu alerts; open it in ui.perfetto.dev\n",
               out.c_str(), format_bytes(st->bytes).c_str(), static_cast<unsigned long long>(st->p_tracks),
               static_cast<unsigned long long>(st->thread_tracks),
               static_cast<unsigned long long>(st->g_slices),
               static_cast<unsigned long long>(st->offcpu_slices),
               static_cast<unsigned long long>(st->counter_values),
               static_cast<unsigned long long>(st->alerts));
  return kExitOk;
}

// ---------------------------------------------------------------- CLI
void RecordingCli::add(CLI::App& app) {
  record_ = app.add_subcommand(
      "record",
      "record a process for later analysis (report, replay, export): -d 10s -o FILE, or a "
      "sampled loop: --every 5m -d 2s --dir DIR --max-bytes 500M");
  auto* r = record_;
  app::add_observe_flags(*r, rec_.observe, /*target=*/true);
  r->add_option("-d,--duration", duration_,
                "record this long (default: until the target exits or Ctrl-C; 10ms to 8760h)")
      ->check(duration_flag(kDurationRange));
  r->add_option("-o,--output", rec_.output,
                "the recording file (default: schedscope-HOST-PID-TIME.sched in --dir or here)");
  r->add_option("--dir", rec_.dir, "write recordings with default names into this directory");
  r->add_option("--every", every_,
                "sampled production loop: a capture of --duration every PERIOD, each its own file, "
                "until Ctrl-C (1s to 8760h)")
      ->check(duration_flag(kEveryRange));
  r->add_option("--max-bytes", max_bytes_,
                "after each capture delete the oldest recordings in --dir to stay under this size")
      ->check(size_flag(kMaxBytesRange));
  app::add_observe_flags(*r, rec_.observe, /*target=*/false);
  r->add_flag("-q,--quiet", rec_.quiet, "no progress line on stderr");
  add_detector_flags(*r, rec_.detect);

  report_ = app.add_subcommand(
      "report", "summarize a recording: Ps, threads, syscalls, thread creations and alerts");
  report_->add_option("file", report_opt_.path, "the recording")->required();
  report_->add_flag("--json", report_opt_.json, "machine-readable output");
  add_detector_flags(*report_, report_opt_.detect);

  replay_ = app.add_subcommand(
      "replay", "the live view driven by a recording: pause, step, seek, speed (batch output "
                "without a terminal)");
  replay_->add_option("file", replay_opt_.path, "the recording")->required();
  replay_->add_option("--speed", replay_opt_.speed, "playback speed (default 1: real time)");
  replay_->add_flag("-b,--batch", replay_opt_.batch, "print text frames instead of the live view");
  replay_->add_flag("--json", replay_opt_.json, "print one JSON object per frame (implies --batch)");
  add_detector_flags(*replay_, replay_opt_.detect);

  export_ = app.add_subcommand("export", "convert a recording for other tools (Perfetto: ui.perfetto.dev)");
  export_->add_option("file", export_opt_.path, "the recording")->required();
  export_->add_option("--format", export_opt_.format, "output format (perfetto)")->capture_default_str();
  export_->add_option("-o,--output", export_opt_.output, "output file (default: FILE.pftrace)");
  add_detector_flags(*export_, export_opt_.detect);
}

std::optional<int> RecordingCli::run() {
  if (record_ && record_->parsed()) {
    if ((rec_.observe.pid != 0) == !rec_.observe.command.empty()) {
      std::cerr << "schedscope record: give either -p PID or a command after --\n";
      return kExitUsage;
    }
    if (!rec_.observe.user.empty() && rec_.observe.command.empty()) {
      std::cerr << "schedscope record: -u/--user runs a launched command as that user: give the "
                   "command after --\n";
      return kExitUsage;
    }
    if (!rec_.observe.user.empty())
      if (auto ra = resolve_user(rec_.observe.user); !ra) {
        std::cerr << "schedscope record: " << ra.error().message << "\n";
        return kExitUsage;
      }
    if (!duration_.empty()) rec_.duration_s = *parse_duration(duration_);
    if (!every_.empty()) {
      rec_.every_s = *parse_duration(every_);
    }
    if (!max_bytes_.empty()) rec_.max_bytes = *parse_size(max_bytes_);
    rec_.observe.usdt_args = true;  // recordings carry each --usdt hit with its arguments
    return cmd_record(rec_);
  }
  if (report_ && report_->parsed()) {
    report_opt_.detect_given = given_detector_flags(*report_);
    return cmd_report(report_opt_);
  }
  if (replay_ && replay_->parsed()) {
    replay_opt_.detect_given = given_detector_flags(*replay_);
    replay_opt_.speed_given = replay_->count("--speed") > 0;
    if (replay_opt_.json) replay_opt_.batch = true;
    return cmd_replay(replay_opt_);
  }
  if (export_ && export_->parsed()) {
    export_opt_.detect_given = given_detector_flags(*export_);
    return cmd_export(export_opt_);
  }
  return std::nullopt;
}

}  // namespace schedscope::app
