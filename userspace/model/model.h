// The scheduler model: threads (Ms), Ps, Gs, syscalls, histograms. Fed only by
// ring-buffer records, per-interval kernel snapshots and Go runtime samples — live from
// the kernel or replayed from a recording — and turned into one Frame per interval that
// the printers, the live view and the detectors read.
#pragma once
#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "annotations/tracker.h"
#include "capacity/tracker.h"
#include "gc/gc.h"
#include "go/runtime_reader.h"
#include "model/alert.h"
#include "probe/snapshot.h"
#include "schedscope.h"
#include "usdt/tracker.h"

namespace schedscope::model {

struct TargetInfo {
  int pid = 0;
  std::string comm;
  std::string exe;
  std::string go_version;   // "" for a non-Go target
  // The binary's stwReason names (go::BinaryInfo::stw_reasons), empty when not found.
  std::vector<std::string> stw_reasons;
  bool go_enabled = false;  // Go context (offsets validated)
  std::string go_note;      // why Go features are off, or the offsets source
  bool all_syscalls = false;
  int max_threads = 10000;  // the runtime's limit (sched.maxmcount) when known
  bool goroutines = false;  // --goroutines asked for (newproc1 RET uprobes)
  // Exits counted by the gdestroy/goexit0 uprobe (exact: --goroutine-exits, no census, or a
  // recording made before the census estimate); else estimated from the census.
  bool goroutine_exits = false;
  bool goroutines_attached = false;
  std::string goroutines_note;  // their state: attached (how many), or why not
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

// A thread's state in a frame, in the order the live view sorts them. Shown and written
// (JSON, recordings) by thread_state_name(): running | runnable | disk | sleeping |
// stopped | exited.
enum class ThreadState : uint8_t { kRunning, kRunnable, kDisk, kSleeping, kStopped, kExited };
const char* thread_state_name(ThreadState s);
// The state of a thread from its kernel-side record.
ThreadState thread_state(const ss_thread_state& st);
// Blocked in the kernel: asleep, in uninterruptible (disk) wait or stopped.
inline bool off_cpu_blocked(ThreadState s) {
  return s == ThreadState::kSleeping || s == ThreadState::kDisk || s == ThreadState::kStopped;
}

struct ThreadRow {
  uint32_t tid = 0;
  std::string name;
  ThreadState state = ThreadState::kRunning;
  std::string syscall;    // syscall it is blocked in (or in flight with -S), "" if none
  double syscall_ms = 0;  // how long in that syscall / state
  double state_ms = 0;    // time in the current state
  double oncpu_pct = 0;   // share of the interval on CPU
  OffCpu offcpu_ms;       // this interval
  double rq_p50_us = 0, rq_p99_us = 0;  // this interval
  double syscalls_per_s = 0;            // (-S)
  uint64_t switches = 0;                // this interval
  int64_t m = -1;
  int32_t p = -1;
  uint64_t goid = 0;
  bool p_from_oldp = false;  // P detached during a syscall (m.oldp)
  bool incgo = false;
  uint32_t created_by = 0;
  std::string go_func;  // function of the G it runs (from the runtime sample)
  std::map<std::string, BlockedIn> blocked_in;  // syscall -> long blocks (interval; final: total)
  uint64_t block_ip = 0, block_bp = 0;  // user IP/frame pointer where it blocked (0: unknown)
  std::vector<std::string> stack;       // symbolized user stack of a long block (live only)
};

struct SyscallRow {
  int nr = 0;
  std::string name;
  uint64_t count = 0;        // this interval (blocking episodes by default; calls with -S)
  uint64_t total_count = 0;  // since attach
  double time_ms = 0;        // this interval: time blocked / spent
  double calls_per_s = 0;
  double p50_us = 0, p99_us = 0, max_us = 0;  // this interval (max: since attach)
  int in_flight = 0;                          // threads currently in it
  // Since attach: time in it and its log2 latency histogram (bucket i: [2^i, 2^(i+1)) ns).
  uint64_t total_ns = 0;
  std::array<uint64_t, SS_HIST_BUCKETS> hist_total{};
};

// A creator's user stack, symbolized once and shared by every creation from it (a thread
// storm repeats a handful of stacks thousands of times a second). The model finds it by
// its raw PCs.
struct CreationStack {
  std::vector<std::string> frames;  // symbolized (when a symbolizer is set)
  std::string site;                 // the first non-runtime frame, the call site
};

struct Frame_Creation {
  uint64_t ts_ns = 0;
  uint32_t tid = 0, parent_tid = 0;
  uint64_t parent_goid = 0;
  int64_t parent_m = -1;
  std::shared_ptr<const CreationStack> where;  // null: no stack
  // Over the kernel's budget of creation details: no stack was taken and the creator's
  // goroutine was not read (parent_goid 0; parent_m from the creating thread's last context).
  bool stack_skipped = false;

  [[nodiscard]] const std::vector<std::string>& frames() const;
  [[nodiscard]] const std::string& site() const;
  // A stack made from its symbolized frames and call site (tests build frames so).
  void set_stack(std::vector<std::string> frames, std::string site);
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

// (--goroutines) goroutines by start function (g.startpc).
struct GoFuncRow {
  std::string func;
  uint64_t created = 0;
  // exit uprobe: exits of goroutines seen created since attach; census: created minus the
  // growth of the function's live count between the first and the last census (estimate)
  uint64_t exited = 0;
};

struct GoCreatorRow {
  uint64_t goid = 0;
  std::string func;  // its start function, when it was created since attach
  uint64_t count = 0;
};

struct GoroutineStats {
  bool enabled = false;                          // uprobes attached
  std::string note;                              // TargetInfo::goroutines_note
  uint64_t created = 0, exited = 0;              // this interval (final: since attach)
  uint64_t created_total = 0, exited_total = 0;  // since attach
  // (total) exit uprobe: exits of goroutines created before attach; census: exits of the
  // start functions that started no goroutine since attach
  uint64_t exited_unmatched = 0;
  double created_per_s = 0, exited_per_s = 0;
  // Where the exits come from: "uprobe" (exact) or "census" (an estimate: created minus the
  // growth of the live count between censuses, as of the last census; docs/goroutines.md).
  std::string exited_source;
  std::string exited_note;  // census: why the exits are not up to date, if they are not
  // exit uprobe: baseline count at attach + created - exited; census: the last census's
  std::optional<int64_t> live;
  std::vector<GoFuncRow> top;          // by created, this interval (final: since attach)
  std::vector<GoCreatorRow> creators;  // by goroutines created, same span
  uint64_t uprobe_hits = 0;            // this interval (final: since attach)
  double uprobe_hits_per_s = 0;
  double cost_us_per_hit = 0;   // the measured per-hit cost used for the estimate
  double est_cpu_ms_per_s = 0;  // uprobe_hits_per_s * cost_us_per_hit / 1000
  std::string cost;             // one line: hits/s and the CPU they cost the target
};

// Measured per-uprobe-hit cost on the development VM (docs/goroutines.md).
inline constexpr double kGoUprobeCostUs = 16.0;

// Goroutines created, from the runtime's own goroutine id generator (sched.goidgen, read
// with every Go sample): no uprobe, no cost in the target. goidgen moves in per-P batches
// of 16 ids (each P caches its next ids), so a count over any window is off by at most
// 16 x GOMAXPROCS (`error_max`); a cgo callback from a thread the runtime did not create
// takes one id once, too (docs/goroutines.md).
struct GoroutineCounts {
  bool available = false;         // at least two reads of goidgen
  uint64_t created = 0;           // this interval (final: since the first read)
  uint64_t created_total = 0;     // since the first read
  double created_per_s = 0;       // over the reads' own timestamps
  uint64_t error_max = 0;         // of `created` and `created_total`: 16 x GOMAXPROCS
  std::optional<int64_t> live;    // goroutines alive at the last census (allgs), if read
};

// Goroutine scheduling latency (runnable -> running), from the runtime's own histogram
// (sched.timeToRun, go/timehist.h): the external twin of /sched/latencies:seconds.
struct GoLatency {
  bool available = false;  // at least one read of the histogram
  std::string note;        // where it is read from, or why not
  go::LatencySummary lat;  // this interval (since the first read when final)
};

struct Frame {
  uint64_t ts_ns = 0;     // monotonic time of the snapshot
  double interval_s = 0;  // since the previous frame
  double elapsed_s = 0;   // since attach
  bool final = false;     // totals since attach (target exited or observer stopped)
  TargetInfo target;
  int threads_alive = 0;
  std::vector<ThreadRow> threads;
  std::vector<SyscallRow> syscalls;
  // (-S) the blocking episodes too (`syscalls` then has every call), as without -S.
  std::vector<SyscallRow> blocking_syscalls;
  std::vector<Frame_Creation> creations;  // this interval (all since attach when final)
  uint64_t creations_total = 0, exits_total = 0;
  double creations_per_s = 0;
  double switches_per_s = 0;
  double syscalls_per_s = 0;  // (-S) every syscall; else blocking episodes/s
  double rq_p50_us = 0, rq_p99_us = 0;
  uint64_t drops = 0, drops_interval = 0;
  Totals totals;
  std::optional<go::SchedSample> go;     // the P table and M list
  std::vector<Alert> alerts;             // filled by the detectors (active + cleared now)
  std::vector<Alert> notices;            // shown, not alerted: blocked Ms (P handed off)
  GoroutineStats goroutines;             // (--goroutines)
  GoroutineCounts goroutine_counts;      // created (sched.goidgen) and live, no uprobes
  usdt::UsdtStats usdt;                  // USDT probes, runtime threads and pauses
  gc::GcStats gc;                        // GC cycles, STW, worker/assist share, MMU
  std::optional<gc::Census> census;      // goroutines by status / wait reason (last read)
  double rq_p999_us = 0;                 // kernel run-queue latency p99.9 (this interval)
  std::vector<uint64_t> rq_hist;         // its log2 histogram (bucket i: [2^i, 2^(i+1)) ns)
  GoLatency go_latency;                  // goroutine runnable -> running (Go 1.17+)
  capacity::Section capacity;            // capacity decisions (capacity/tracker.h)
  std::optional<annotations::Stats> annotations;  // --annotations (annotations/tracker.h)
};

// Log2 histogram helpers (bucket i: [2^i, 2^(i+1)) ns).
double hist_percentile_ns(const uint64_t* buckets, int n, double q);


// The PCs of a record that the model symbolizes, as it looks them up (what a recording
// must carry the symbols of): a thread creation's stack, a stop-the-world's caller stack,
// and apart the start PC of a created goroutine (Symbolize::start_func).
struct RecordPcs {
  std::vector<uint64_t> frames;
  std::vector<uint64_t> start_funcs;
};
RecordPcs symbolized_pcs(const ss_hdr* rec, size_t size);
// A stop-the-world's caller stack as looked up: the frames after the first are return
// addresses, and pc - 1 is the line of the call.
std::vector<uint64_t> stw_caller_pcs(const ss_gc_stack& e);

class Symbolize {
 public:
  virtual ~Symbolize() = default;
  // A runtime PC -> "func file:line", or "" when unknown.
  virtual std::string frame(uint64_t pc) const = 0;
  // True for frames inside the Go runtime or libc thread plumbing (skipped for the site).
  virtual bool is_runtime(uint64_t pc) const = 0;
  // The function a goroutine starts in, from g.startpc: "func" only (default: frame()
  // without its file:line). "" when unknown.
  virtual std::string start_func(uint64_t pc) const {
    std::string f = frame(pc);
    if (auto sp = f.find(' '); sp != std::string::npos) f.resize(sp);
    return f;
  }
};

class Model {
 public:
  explicit Model(const TargetInfo& t) { set_target(t); }

  void set_symbolizer(const Symbolize* s) {
    sym_ = s;
    stacks_.clear();  // symbolized by the one before
  }
  // The target's identity; also tells the GC tracker the Go release and stop reasons.
  void set_target(const TargetInfo& t);
  [[nodiscard]] const TargetInfo& target() const { return target_; }

  // A ring-buffer record (already size-checked against its header).
  void on_record(const ss_hdr* rec, size_t size);
  void on_kernel(const probe::KernelSnapshot& snap);
  void on_go_sample(const go::SchedSample& s);
  // Name of a thread as seen in /proc (optional, live only).
  void set_thread_name(uint32_t tid, const std::string& name) { names_[tid] = name; }

  // Builds the frame for the interval ending at the last kernel snapshot.
  Frame frame(bool final = false);
  // Tids whose exit was consumed since the last call (the driver forgets what it keeps
  // per thread: names read, USDT counts).
  std::vector<uint32_t> take_exited();
  // The exit record of this thread was consumed in the current interval.
  [[nodiscard]] bool thread_exited(uint32_t tid) const {
    auto it = threads_.find(tid);
    return it != threads_.end() && it->second.dead;
  }

  // (--goroutines) the number of live goroutines now (read once from allgs): the base
  // of the live estimate, which then moves with the created/exited records after it.
  void set_goroutine_baseline(uint64_t live);

  // USDT probes: the probe table, counts, runtime thread names and pauses.
  [[nodiscard]] const usdt::Tracker& usdt() const { return usdt_; }
  // GC observation (gc/gc.h): the tracker the GC records feed, and the goroutine census.
  gc::Tracker& gc_tracker() { return gc_; }
  // --annotations: runtime/trace tasks, regions and logs (annotations/tracker.h).
  [[nodiscard]] const annotations::Tracker& annotations() const { return annot_; }
  void on_census(const gc::Census& c);
  // One read of the runtime's scheduling-latency histogram (cumulative counts).
  void on_sched_latency(const go::TimeHist& h);
  void set_sched_latency_note(const std::string& n) { lat_note_ = n; }

  [[nodiscard]] uint64_t start_ns() const { return start_ns_; }
  [[nodiscard]] uint64_t records() const { return records_; }
  [[nodiscard]] uint64_t bad_records() const { return bad_records_; }
  // Exited threads whose rows (totals, name, long blocks) the final frame keeps; past it,
  // an exited thread's bookkeeping is dropped at the next frame: memory stays flat under churn.
  static constexpr size_t kGoneMax = 10000;

 private:
  struct ThreadAcc {
    ss_thread_state cur{};
    // At the previous frame; null until the thread is in one. Apart from the entry: under
    // thread churn most threads live and die between two frames, and tens of thousands of
    // entries a second are made and dropped; the smaller they are, the less the heap
    // fragments around them (docs/performance.md, the observer's RSS).
    std::unique_ptr<ss_thread_state> prev;
    bool dead = false;
    uint64_t seen_ns = 0;
    uint64_t snap_seq = 0;  // the last kernel snapshot that had it (0: none yet)
  };
  // The kernel deletes a thread's entry when it exits, after sending the exit record with
  // its final totals: a thread a snapshot no longer has, yet whose exit was not consumed,
  // is gone with its record still to come (or lost). It leaves the rows at once, its
  // totals stay counted as last read, and after kLostExitSnapshots snapshots without its
  // record it counts as exited with those totals.
  static constexpr uint64_t kLostExitSnapshots = 2;
  [[nodiscard]] bool vanished(const ThreadAcc& t) const {
    return !t.dead && t.snap_seq && t.snap_seq != snap_seq_;
  }
  static void set_state(ThreadAcc& t, const ss_thread_state& st);
  void exit_thread(uint32_t tid, ThreadAcc& t, const ss_thread_state& final);
  TargetInfo target_;
  const Symbolize* sym_ = nullptr;
  // Creation stacks seen, by their PCs: each symbolized once (at most kStacksMax kept).
  std::map<std::vector<uint64_t>, std::shared_ptr<const CreationStack>> stacks_;
  static constexpr size_t kStacksMax = 4096;
  std::map<uint32_t, ThreadAcc> threads_;
  std::unordered_map<uint32_t, std::string> names_;
  ss_thread_state exited_{};                  // sums over exited threads
  // Final state of exited threads (a hash: under churn one exit each ~60 us looks here;
  // the final frame sorts them by tid).
  std::unordered_map<uint32_t, ss_thread_state> gone_;
  std::map<int, ss_sc_stat> sc_block_, sc_block_prev_, sc_all_, sc_all_prev_;
  uint64_t rq_hist_[SS_HIST_BUCKETS] = {}, rq_hist_prev_[SS_HIST_BUCKETS] = {};
  uint64_t drops_ = 0, drops_prev_ = 0;
  uint64_t snap_ns_ = 0, prev_frame_ns_ = 0, start_ns_ = 0;
  bool started_ = false;
  std::vector<Frame_Creation> creations_, all_creations_;
  uint64_t creations_total_ = 0, exits_total_ = 0;
  // tid -> its long blocks by syscall number, this interval's and since attach; named when
  // a frame is built (not per event). A thread blocks in few distinct syscalls: a short
  // vector scanned, kept across intervals (the interval's part zeroed, not freed).
  struct BlockedNr {
    int nr = 0;
    BlockedIn iv, total;
  };
  std::unordered_map<uint32_t, std::vector<BlockedNr>> blocked_;
  std::vector<uint32_t> exited_tids_;  // for take_exited()
  std::vector<uint32_t> dead_;         // exits since the last frame: forget_exited() drops them
  uint64_t snap_seq_ = 0;              // kernel snapshots fed
  std::optional<go::SchedSample> go_;
  // sched.goidgen: first read, at the previous frame, last read (value, time).
  struct GoidRead {
    uint64_t goidgen = 0, ts_ns = 0;
  };
  std::optional<GoidRead> goid_first_, goid_frame_, goid_last_;
  int32_t goid_maxprocs_ = 0;  // largest GOMAXPROCS seen over the reads
  void frame_goroutine_counts(Frame& f, bool final);
  std::optional<go::TimeHist> lat_first_, lat_last_, lat_at_frame_;
  std::string lat_note_;
  uint64_t records_ = 0, bad_records_ = 0;

  Frame_Creation make_creation(const ss_thread_new& e);
  // The sections of a frame, in the order frame() builds them.
  void frame_gc(Frame& f, uint64_t since, bool final);
  void frame_latency(Frame& f, bool final);
  std::map<int, int> frame_threads(Frame& f, uint64_t since, bool final);
  void frame_syscalls(Frame& f, bool final, std::map<int, int>& in_flight);
  static std::vector<SyscallRow> syscall_rows(const std::map<int, ss_sc_stat>& cur,
                                              std::map<int, ss_sc_stat>& prev, const Frame& f,
                                              bool final, std::map<int, int>& in_flight);
  void frame_runqueue(Frame& f, bool final);
  void frame_events(Frame& f, bool final);
  void frame_goroutines(Frame& f, bool final);
  void frame_goroutine_census_exits(GoroutineStats& g, bool final);
  void end_interval();
  void forget_exited();
  void frame_exited_threads(Frame& f);
  void frame_usdt(Frame& f, bool final);

  // --goroutines
  struct GoFuncAcc {
    std::string name;
    uint64_t created_iv = 0, exited_iv = 0, created = 0, exited = 0;
    // census exits: creations between the first and the last census, the estimate as of
    // the last census, and what the frames reported so far
    uint64_t created_cen = 0, created_pending = 0;
    int64_t exited_est = 0;
    uint64_t exited_shown = 0;
  };
  uint32_t go_func_index(uint64_t startpc, bool known);
  void on_go_create(const ss_go_create& e);
  void on_go_exit(const ss_go_exit& e);
  std::vector<GoFuncAcc> go_funcs_;
  std::unordered_map<uint64_t, uint32_t> go_func_by_pc_;
  std::unordered_map<std::string, uint32_t> go_func_by_name_;
  std::unordered_map<uint64_t, uint32_t>
      go_live_;  // goid -> go_funcs_ index (created since attach)
  std::unordered_map<uint64_t, uint64_t> go_creators_iv_, go_creators_;
  uint64_t go_created_iv_ = 0, go_exited_iv_ = 0, go_created_ = 0, go_exited_ = 0;
  uint64_t go_unmatched_ = 0;
  std::optional<uint64_t> go_baseline_;
  uint64_t go_base_created_ = 0, go_base_exited_ = 0;
  uint64_t go_hits_ = 0, go_hits_prev_ = 0;
  // --goroutines without the exit uprobe: exits = creations - growth of the live count,
  // between the first complete census after attach (the base) and the last one.
  void go_census_exits(const gc::Census& c);
  struct GoCensusLive {
    uint64_t ts = 0;
    int64_t live = 0;
    std::unordered_map<std::string, int64_t> by_func;
    bool funcs_all = true;  // every live start function listed (absent: none alive)
  };
  std::optional<GoCensusLive> go_cen_base_, go_cen_last_;
  // Creations after the last census (each function's in GoFuncAcc::created_pending): the
  // observer drains the ring buffer before it reads a census, so these all began before
  // the next census ends.
  uint64_t go_pending_ = 0;
  uint64_t go_created_cen_ = 0;  // creations between the base and the last census
  std::string go_cen_cut_;       // why the last census did not count (cut short), if so
  uint64_t go_exit_shown_ = 0;   // the exits the frames reported so far
  // Without exit events go_live_ cannot forget the exited: it keeps the goids of the last
  // kGoNamedMax creations (to name creators), oldest forgotten first.
  std::deque<uint64_t> go_named_;

  usdt::Tracker usdt_;
  gc::Tracker gc_;
  capacity::Tracker capacity_;  // SS_EV_CAP_SAMPLE records; fills Frame::capacity
  annotations::Tracker annot_;  // SS_EV_ANNOT(_STATE) records; fills Frame::annotations
};

}  // namespace schedscope::model
