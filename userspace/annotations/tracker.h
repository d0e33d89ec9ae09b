// --annotations: runtime/trace tasks, regions and logs of a live program, built from
// the SS_EV_ANNOT records of bpf/annotations.bpf.c (one per call of userTaskCreate,
// userTaskEnd, userRegion, userLog) and the SS_EV_ANNOT_STATE records the observer
// injects (probe state and hit count). Pure: fed the same records, a recording's replay
// builds the same tables as the live run. docs/annotations.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "annotations.h"

namespace schedscope::annotations {

// Measured per-uprobe-hit cost on the development VM (docs/annotations.md).
inline constexpr double kAnnotUprobeCostUs = 16.0;

struct RegionRow {
  std::string name;  // the region type
  std::string path;  // its nesting on its goroutine: "parse/validate"
  uint64_t count = 0;
  double total_ms = 0, avg_ms = 0, p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::map<int, uint64_t> ps;  // P that began them -> count (-1: unknown)
  uint64_t threads = 0;        // distinct threads that began them
};

struct TaskRow {
  std::string type;  // the task name with its ids (runs of >= 8 hex digits) made "<id>"
  uint64_t started = 0, ended = 0, in_flight = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;  // of the tasks that ended
};

struct LogRow {
  std::string category, message;
  uint64_t count = 0;
};

struct TreeRegion {
  std::string name;
  uint64_t goid = 0;
  double start_ms = 0;  // since the task's start
  double ms = 0;
  int depth = 0;  // 0: directly under the task
  int p = -1;     // P that began it
};

struct TaskLog {
  std::string category, message;
  uint64_t goid = 0;
  double at_ms = 0;  // since the task's start
};

// What a task's goroutines did off-CPU while it was in flight, from the off-CPU
// intervals of their threads (bpf: ss_offcpu, the goroutine on the M at switch-out):
// per (reason, syscall) the time inside the task's span, and the run-queue wait part.
struct OffCpuRow {
  uint32_t reason = 0;     // SS_OFF_*
  int32_t syscall_nr = -1; // SS_NO_SYSCALL (-1): not in a syscall
  uint64_t count = 0;
  double ms = 0;           // of the interval inside the task's span
  double rq_ms = 0;        // of which runnable, waiting for a CPU
};

struct SlowTask {
  uint64_t id = 0;
  std::string type, name;
  uint64_t goid = 0;  // the goroutine that created it
  uint64_t start_ns = 0, end_ns = 0;
  double ms = 0;
  std::vector<TreeRegion> regions;  // in tree order (a parent before its children)
  std::vector<TaskLog> logs;        // in order
  std::vector<OffCpuRow> offcpu;    // most time first
};

struct LastLog {
  uint64_t ts_ns = 0;
  uint64_t task = 0;
  std::string task_name;
  uint64_t goid = 0;
  std::string category, message;
};

// One goroutine's region in flight (or a task's), for alerts.
struct InFlight {
  uint64_t goid = 0;
  std::vector<std::string> regions;  // outermost first
  uint64_t task = 0;
  std::string task_name;
  double region_ms = 0;  // age of the innermost region
};

struct Tables {
  std::vector<RegionRow> regions;
  std::vector<TaskRow> tasks;
  std::vector<LogRow> logs;
};

struct Stats {
  bool asked = false;    // an SS_EV_ANNOT_STATE was seen: --annotations is on
  uint32_t state = SS_ANNOT_STATE_OFF;
  std::string note;      // how many probes where, or why not attached / detached
  uint32_t nprobes = 0;
  Tables interval;       // this interval (since attach in the final frame)
  Tables total;          // since attach
  std::vector<SlowTask> slowest;  // since attach, slowest first
  std::vector<LastLog> last_logs;  // most recent last
  uint64_t hits = 0;               // uprobe hits this interval (since attach when final)
  double hits_per_s = 0;
  double on_s = 0;                 // time attached since the first attach
  std::string cost;                // one line: hits/s and the CPU they cost the target
  double est_cpu_ms_per_s = 0;
  uint64_t region_ends_unmatched = 0;  // ends without a begin seen (began before attach)
  uint64_t task_ends_unmatched = 0;    // task ends without a create seen
  uint64_t truncated = 0;              // strings longer than kept
  // At the frame's time: goroutines with regions open (at most kInFlightShown, those with
  // the oldest innermost region first) and the oldest tasks in flight (at most 5), for
  // the alerts (annotate_alerts).
  std::vector<InFlight> open_regions;
  std::vector<InFlight> oldest_tasks;
};

// Task type from a task name: each run of 8 or more hex digits becomes "<id>", so tasks
// named after span ids ("handleRequest span=00f067aa0ba902b7") group by kind.
std::string task_type(const std::string& name);

// Percentile q (0..1) of `v` (sorted in place), nearest rank.
double percentile(std::vector<double>& v, double q);

class Tracker {
 public:
  static constexpr size_t kSlowest = 10;
  static constexpr size_t kLastLogs = 20;
  static constexpr size_t kMaxSamples = 200000;  // per region path / task type
  static constexpr size_t kMaxInFlight = 100000; // tasks / goroutine stacks kept
  static constexpr size_t kMaxTaskRegions = 512; // regions kept per task for its tree

  // True when the record was one of ours (consumed).
  bool on_record(const ss_hdr* rec, size_t size);
  [[nodiscard]] bool asked() const { return asked_; }
  static constexpr size_t kInFlightShown = 256;
  // The frame's tables; interval_s for the rates, now_ns for the ages of what is in
  // flight. Resets the interval unless final.
  Stats frame(bool final, double interval_s, uint64_t now_ns = 0);
  // Regions and tasks in flight on a goroutine now (alerts).
  [[nodiscard]] InFlight in_flight(uint64_t goid, uint64_t now_ns) const;
  // Tasks in flight on any of their goroutines, oldest first (at most n).
  [[nodiscard]] std::vector<InFlight> oldest_in_flight(size_t n, uint64_t now_ns) const;

  void on_annot(const ss_annot& e);
  void on_state(const ss_annot_state& s);
  // An off-CPU interval of a thread whose M ran goroutine `goid` at switch-out: counted
  // for the tasks in flight that goroutine works for (a region of the task open on it, or
  // the task's creator), clipped to each task's span.
  void on_offcpu(const ss_offcpu& e);

 private:
  struct Open {
    std::string name;
    uint64_t task = 0;
    uint64_t begin_ns = 0;
    int p = -1;
    uint32_t tid = 0;
  };
  struct Task {
    std::string name, type;
    uint64_t goid = 0;
    uint64_t start_ns = 0;
    struct R {
      std::string name;
      uint64_t goid, begin_ns, end_ns;
      int gdepth;  // depth on its goroutine
      int p;
    };
    std::vector<R> regions;
    std::vector<TaskLog> logs;
    std::map<std::pair<uint32_t, int32_t>, OffCpuRow> offcpu;  // (reason, syscall)
  };
  struct RegionAgg {
    std::string name;
    uint64_t count = 0;
    double total_ms = 0, max_ms = 0;
    std::vector<double> samples;
    std::map<int, uint64_t> ps;
    std::unordered_map<uint32_t, bool> tids;
  };
  struct TaskAgg {
    uint64_t started = 0, ended = 0;
    double max_ms = 0;
    std::vector<double> samples;
  };
  struct Agg {
    std::map<std::string, RegionAgg> regions;  // by path
    std::map<std::string, TaskAgg> tasks;      // by type
    std::map<std::pair<std::string, std::string>, uint64_t> logs;
  };
  void region_end(uint64_t goid, const std::string& name, uint64_t ts, int p, uint32_t tid);
  void add_region(const std::string& path, const std::string& name, double ms, int p,
                  uint32_t tid);
  Tables tables(const Agg& a) const;
  SlowTask tree(uint64_t id, const Task& t, uint64_t end_ns) const;

  bool asked_ = false;
  ss_annot_state state_{};
  std::string note_;
  uint64_t hits_prev_ = 0;
  Agg iv_, total_;
  std::unordered_map<uint64_t, std::vector<Open>> stacks_;  // goid -> open regions
  std::unordered_map<uint64_t, Task> tasks_;                // task id -> in flight
  std::map<std::string, uint64_t> in_flight_by_type_;
  std::vector<SlowTask> slowest_;
  std::deque<LastLog> last_logs_;
  uint64_t region_ends_unmatched_ = 0, task_ends_unmatched_ = 0, truncated_ = 0;
  uint64_t last_ts_ = 0;
};

}  // namespace schedscope::annotations
