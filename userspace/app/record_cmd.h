// `record`, `report`, `replay` and `export`: recordings for later analysis
// (docs/recording.md, docs/recording-format.md). `record` drives an Observer exactly as
// `top` does and writes everything it consumes; the others feed a recording through
// the same Model and Detectors.
#pragma once
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "app/observe.h"
#include "detect/detectors.h"

namespace CLI {
class App;
}

namespace schedscope::app {

struct RecordOptions {
  ObserveOptions observe;
  detect::DetectOptions detect;
  double duration_s = 0;   // -d: each capture this long (0: until the target exits / SIGINT)
  std::string output;      // -o FILE
  std::string dir;         // --dir DIR (default name inside it)
  double every_s = 0;      // --every: a capture of duration_s every every_s, until SIGINT
  uint64_t max_bytes = 0;  // --max-bytes: cap of the recordings in dir (oldest deleted)
  bool quiet = false;      // no progress line
};

struct AnalyzeOptions {  // report, replay, export
  std::string path;
  bool json = false;
  // Thresholds: the recorded ones, except the flags given on the command line.
  detect::DetectOptions detect;
  std::set<std::string> detect_given;
  // replay
  double speed = 1.0;
  bool speed_given = false;
  bool batch = false;
  // export
  std::string format = "perfetto";
  std::string output;
};

// Which of add_detector_flags()'s options were given on the command line of `app`.
std::set<std::string> given_detector_flags(const CLI::App& app);

// The command-line side of record/report/replay/export (CLI11), so that main() only
// wires it in: add() declares the subcommands, run() executes the one parsed.
class RecordingCli {
 public:
  void add(CLI::App& app);
  // The exit code of the subcommand that was parsed; nullopt when none of these was.
  std::optional<int> run();

 private:
  CLI::App* record_ = nullptr;
  CLI::App* report_ = nullptr;
  CLI::App* replay_ = nullptr;
  CLI::App* export_ = nullptr;
  RecordOptions rec_;
  AnalyzeOptions report_opt_, replay_opt_, export_opt_;
  std::string duration_, every_, max_bytes_;
};

int cmd_record(const RecordOptions& opt);
int cmd_report(const AnalyzeOptions& opt);
int cmd_replay(const AnalyzeOptions& opt);
int cmd_export(const AnalyzeOptions& opt);

}  // namespace schedscope::app
