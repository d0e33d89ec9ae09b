// The scheduler model: threads (Ms), Ps, Gs, syscalls, histograms. Fed only by
// ring-buffer records, per-interval kernel snapshots and Go runtime samples — live from
// the kernel or replayed from a recording — and turned into one Frame per interval that
// the printers, the live view and the detectors read.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "detect/alert.h"
#include "go/runtime_reader.h"
#include "probe/session.h"
#include "schedscope.h"

namespace schedscope::model {

struct TargetInfo {
  int pid = 0;
  std::string comm;
  std::string exe;
  std::string go_version;  // "" for a non-Go target
  bool go_enabled = false; // Go context (offsets validated)
  std::string go_note;     // why Go features are off, or the offsets source
  bool all_syscalls = false;
  int max_threads = 10000; // the runtime's limit (sched.maxmcount) when known
};

// Off-CPU breakdown in ms for one interval.
struct OffCpu {
  double preempted = 0, sleep = 0, disk = 0, other = 0;
  [[nodiscard]] double total() const { return preempted + sleep + disk + other; }
};

// Off-CPU intervals of at least --offcpu-min spent blocked in one syscall.
struct BlockedIn {
  uint64_t count = 0;
  double ms = 0;
  double max_ms = 0;
};

struct ThreadRow {
  uint32_t tid = 0;
  std::string name;
  std::string state;       // running | runnable | sleeping | disk | stopped
  std::string syscall;     // syscall it is blocked in (or in flight with -S), "" if none
  double syscall_ms = 0;   // how long in that syscall / state
  double state_ms = 0;     // time in the current state
  double oncpu_pct = 0;    // share of the interval on CPU
  OffCpu offcpu_ms;        // this interval
  double rq_p50_us = 0, rq_p99_us = 0;  // this interval
  double syscalls_per_s = 0;            // (-S)
  uint64_t switches = 0;                // this interval
  int64_t m = -1;
  int32_t p = -1;
  uint64_t goid = 0;
  bool p_from_oldp = false;  // P detached during a syscall (m.oldp)
  bool incgo = false;
  uint32_t created_by = 0;
  std::string go_func;       // function of the G it runs (from the runtime sample)
  std::map<std::string, BlockedIn> blocked_in;  // syscall -> long blocks (interval; final: total)
};

struct SyscallRow {
  int nr = 0;
  std::string name;
  uint64_t count = 0;         // this interval (blocking episodes by default; calls with -S)
  uint64_t total_count = 0;   // since attach
  double time_ms = 0;         // this interval: time blocked / spent
  double calls_per_s = 0;
  double p50_us = 0, p99_us = 0, max_us = 0;  // this interval (max: since attach)
  int in_flight = 0;          // threads currently in it
};

struct Frame_Creation {
  uint64_t ts_ns = 0;
  uint32_t tid = 0, parent_tid = 0;
  uint64_t parent_goid = 0;
  int64_t parent_m = -1;
  std::vector<uint64_t> stack;      // raw user PCs
  std::vector<std::string> frames;  // symbolized (when a symbolizer is set)
  std::string site;                 // the first non-runtime frame, the call site
};

struct OffCpuEvent {
  uint64_t start_ns = 0, end_ns = 0;
  uint32_t tid = 0;
  uint32_t reason = 0;
  int syscall_nr = -1;
  uint64_t goid = 0;
  int32_t p = -1;
  int64_t m = -1;
};

// Totals since attach over every thread seen (alive and exited).
struct Totals {
  double oncpu_ms = 0;
  OffCpu offcpu_ms;
  uint64_t switches = 0;
  uint64_t rq_count = 0;
  double rq_p50_us = 0, rq_p99_us = 0;
  uint64_t syscalls = 0;  // (-S) completed calls
};

struct Frame {
  uint64_t ts_ns = 0;        // monotonic time of the snapshot
  double interval_s = 0;     // since the previous frame
  double elapsed_s = 0;      // since attach
  bool final = false;        // totals since attach (target exited or observer stopped)
  TargetInfo target;
  int threads_alive = 0;
  std::vector<ThreadRow> threads;
  std::vector<SyscallRow> syscalls;
  std::vector<Frame_Creation> creations;  // this interval (all since attach when final)
  uint64_t creations_total = 0, exits_total = 0;
  double creations_per_s = 0;
  double switches_per_s = 0;
  double syscalls_per_s = 0;      // (-S) every syscall; else blocking episodes/s
  double rq_p50_us = 0, rq_p99_us = 0;
  uint64_t drops = 0, drops_interval = 0;
  Totals totals;
  std::vector<OffCpuEvent> long_offcpu;   // this interval, from SS_EV_OFFCPU
  std::optional<go::SchedSample> go;      // the P table and M list
  std::vector<detect::Alert> alerts;       // filled by the detectors (active + cleared now)
  std::vector<detect::Alert> notices;      // shown, not alerted: blocked Ms (P handed off)
};

// Log2 histogram helpers (bucket i: [2^i, 2^(i+1)) ns).
double hist_percentile_ns(const uint64_t* buckets, int n, double q);

std::string state_name(const ss_thread_state& st);

class Symbolize {
 public:
  virtual ~Symbolize() = default;
  // A runtime PC -> "func file:line", or "" when unknown.
  virtual std::string frame(uint64_t pc) const = 0;
  // True for frames inside the Go runtime or libc thread plumbing (skipped for the site).
  virtual bool is_runtime(uint64_t pc) const = 0;
};

class Model {
 public:
  explicit Model(TargetInfo t) : target_(std::move(t)) {}

  void set_symbolizer(const Symbolize* s) { sym_ = s; }
  void set_target(const TargetInfo& t) { target_ = t; }
  [[nodiscard]] const TargetInfo& target() const { return target_; }

  // A ring-buffer record (already size-checked against its header).
  void on_record(const ss_hdr* rec, size_t size);
  void on_kernel(const probe::KernelSnapshot& snap);
  void on_go_sample(const go::SchedSample& s);
  // Name of a thread as seen in /proc (optional, live only).
  void set_thread_name(uint32_t tid, const std::string& name) { names_[tid] = name; }

  // Builds the frame for the interval ending at the last kernel snapshot.
  Frame frame(bool final = false);
  // Tids whose exit was consumed since the last call (the driver forgets their BPF state).
  std::vector<uint32_t> take_exited();

  [[nodiscard]] uint64_t start_ns() const { return start_ns_; }
  [[nodiscard]] uint64_t records() const { return records_; }
  [[nodiscard]] uint64_t bad_records() const { return bad_records_; }

 private:
  struct ThreadAcc {
    ss_thread_state cur{};
    ss_thread_state prev{};  // at the previous frame
    bool have_prev = false;
    bool dead = false;
    uint64_t seen_ns = 0;
  };
  TargetInfo target_;
  const Symbolize* sym_ = nullptr;
  std::map<uint32_t, ThreadAcc> threads_;
  std::unordered_map<uint32_t, std::string> names_;
  ss_thread_state exited_{};  // sums over exited threads
  std::map<uint32_t, ss_thread_state> gone_;  // final state of exited threads
  std::map<int, ss_sc_stat> sc_block_, sc_block_prev_, sc_all_, sc_all_prev_;
  uint64_t rq_hist_[SS_HIST_BUCKETS] = {}, rq_hist_prev_[SS_HIST_BUCKETS] = {};
  uint64_t drops_ = 0, drops_prev_ = 0;
  uint64_t snap_ns_ = 0, prev_frame_ns_ = 0, start_ns_ = 0;
  bool started_ = false;
  std::vector<Frame_Creation> creations_, all_creations_;
  uint64_t creations_total_ = 0, exits_total_ = 0;
  std::vector<OffCpuEvent> offcpu_;
  std::map<uint32_t, std::map<std::string, BlockedIn>> blocked_iv_, blocked_total_;
  std::vector<uint32_t> exited_tids_;
  std::optional<go::SchedSample> go_;
  uint64_t records_ = 0, bad_records_ = 0;

  Frame_Creation make_creation(const ss_thread_new& e) const;
};

}  // namespace schedscope::model
