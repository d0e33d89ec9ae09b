// The node agent: every Go process of the machine (or those the filters keep), observed
// at once through one BPF session, each with its own model and detectors, exposed to
// Prometheus (/metrics), with /healthz and /targets. docs/agent.md describes it.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/alerts_log.h"
#include "agent/discovery.h"
#include "agent/metrics.h"
#include "agent/opt_in.h"
#include "app/flight.h"
#include "app/gc_attach.h"
#include "app/go_attach.h"
#include "detect/pipeline.h"
#include "model/model.h"
#include "probe/session.h"
#include "util/expected.h"

namespace schedscope::agent {

// The agent's flight-recorder defaults: off; when on, 1 GiB of recordings on disk and
// 32 MiB of history in memory per target.
inline app::FlightRecorderOptions agent_flight_defaults() {
  app::FlightRecorderOptions f;
  f.window_s = 0;
  f.max_bytes = uint64_t(1) << 30;
  f.memory_bytes = size_t(32) << 20;
  f.kind_in_name = true;
  return f;
}

struct AgentOptions {
  std::string listen = "127.0.0.1:9464";  // ADDR:PORT, ":PORT" (every address), [V6]:PORT
  Filter filter;
  OptIn opt_in;  // the costly options of `top`, per target (--all-syscalls-for, ...)
  double interval_s = 10;  // how often every target is read and its detectors run
  double scan_s = 3;      // how often /proc is scanned for new targets
  uint32_t max_targets = probe::kMaxTargets;
  size_t top_syscalls = 10;  // syscall names exported per target (the rest: "other")
  bool gc = true;            // GC uprobes + sampler + goroutine census
  int census_every = 5;      // intervals between two goroutine censuses of a target
  uint64_t ringbuf_bytes = 8u << 20;
  detect::DetectOptions detect;
  std::string alerts_log;  // --alerts-log FILE: one JSON line per alert raised
  uint64_t alerts_log_max_bytes = 16u << 20;
  // --flight-recorder DUR --dir DIR: per target, the last DUR in memory, written as a
  // recording on each of its alerts; the recordings of DIR capped by --flight-max-bytes.
  app::FlightRecorderOptions flight = agent_flight_defaults();
  bool verbose = false;
};

// A process the agent found: observed, observed at the kernel level only (its Go
// runtime offsets did not validate), or not observed, with why.
struct TargetStatus {
  int pid = 0;
  std::string exe, comm, cgroup, container, pod, go_version;
  std::string state;   // observed | kernel_only | starting | unobservable
  std::string reason;  // why not (fully) observed; the offsets' source when observed
  double since_s = 0;  // seconds since it was found
  std::string gc;      // what GC observation is attached, or why not
  uint64_t flight_recordings = 0;  // files its flight recorder wrote
  std::string flight_last;         // the last one, or its last error
  // The per-target options asked for it (OptInFlag::key): on now, and what is attached
  // or why not.
  struct Option {
    bool on = false;
    std::string note;
  };
  std::map<std::string, Option> options;
  // (the agent traces syscalls for some target) the completed syscalls of this target's
  // threads the kernel counted since attach: 0 for a target that did not ask.
  std::optional<uint64_t> syscalls_counted;
};

class Target;

// "ADDR:PORT" -> (host, port); ":9464" listens on every address. Error for a bad port.
Expected<std::pair<std::string, int>> parse_listen(const std::string& spec);

class Agent {
 public:
  static Expected<std::unique_ptr<Agent>> open(const AgentOptions& opt);
  ~Agent();

  // One step: scans when due, consumes ring-buffer records for up to `max_ms`, notices
  // exits, and at each interval deadline reads every target and renders the series.
  void step(int max_ms = 100);
  // Until g_stop.
  void run();

  // What /metrics, /targets and /healthz serve (thread-safe: the HTTP threads read them).
  [[nodiscard]] std::string metrics() const;
  [[nodiscard]] std::string targets_json() const;
  [[nodiscard]] bool healthy() const;

 private:
  explicit Agent(AgentOptions o);
  void scan();
  void consider(ProcEntry p, bool execd);
  void look_at_execs();
  void add(ProcEntry p, const GoVerdict& v);
  void drop(int pid, const char* why);
  void route(const ss_hdr* rec, size_t size);
  uint32_t owner_of(uint32_t tid);
  void check_exits();
  void interval();
  void publish();

  AgentOptions opt_;
  std::unique_ptr<probe::Session> session_;
  GoRecognizer recognizer_;
  std::map<int, std::unique_ptr<Target>> targets_;  // observed (and kernel_only, starting)
  std::map<int, TargetStatus> unobservable_;          // found, not observed, and why
  std::map<int, std::string> known_;                  // pid -> exe at the last scan
  std::unordered_map<uint32_t, uint32_t> owner_;      // tid -> tgid of a target
  std::unique_ptr<AlertsLog> alerts_log_;
  uint64_t next_scan_ns_ = 0, next_interval_ns_ = 0;
  uint64_t records_ = 0, unrouted_ = 0, scans_ = 0, intervals_ = 0;
  std::vector<uint32_t> execd_;  // SS_EV_EXEC pids not looked at yet
  uint64_t exec_found_ = 0;      // processes looked at because they exec'd
  double last_work_s_ = 0;
  uint64_t drops_ = 0;

  mutable std::mutex mu_;  // guards the published texts
  std::string metrics_text_, targets_text_;
  std::map<std::string, int> target_counts_;
  std::atomic<uint64_t> last_step_ns_{0};
};

}  // namespace schedscope::agent
