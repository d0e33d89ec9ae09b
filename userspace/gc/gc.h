// GC and netpoller observation: the GC timeline built from the gc.bpf.c
// records (stop-the-world pauses, mark terminations, sampled mark-worker and
// mark-assist ticks), minimum mutator utilisation over it, and the goroutine census
// (allgs counted by status and wait reason) the netpoller detector reads.
// Pure C++: fed by records live or from a recording; unit-tested on synthetic input.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "schedscope.h"

namespace schedscope::gc {

// ---- minimum mutator utilisation
// A span of time during which `frac` of the Ps (0..1) did GC work instead of running
// the program: 1 for a stop-the-world pause, 1/GOMAXPROCS for one sampled worker tick.
struct BusySpan {
  uint64_t start_ns = 0, end_ns = 0;
  double frac = 0;
};
// MMU(window) over [t0, t1): the lowest mean mutator utilisation 1 - lost(t) (lost
// clamped to 1) over every window of `window_ns` inside [t0, t1). A span shorter than
// the window gives the utilisation of the whole span. -1 when t1 <= t0.
double mmu(const std::vector<BusySpan>& spans, uint64_t t0, uint64_t t1, uint64_t window_ns);

// ---- names
// stwReason (1.21+) as the runtime prints it (the 1.21-1.26 enum); "for test" beyond it.
std::string stw_reason_name(uint64_t reason);
// The stwReason of the stop that starts a mark phase (stwGCSweepTerm).
inline constexpr uint32_t kStwGCSweepTerm = 2;
// Whether a stop's stwReason (RAX at runtime.stopTheWorldWithSema) can be trusted: the
// binary's own runtime.stwReasonStrings was found (go::BinaryInfo::stw_reasons, which
// anchors 0..2), or the release is one whose enum was checked (1.21-1.26). Else the
// register holds no reason (before 1.21) or one whose meaning is not known.
bool stw_reasons_known(int go_minor, bool table_found);
// waitReason as the runtime prints it, for the values stable in 1.17-1.27 (0..2),
// else "wait reason N". The fallback when the binary's own table is unknown.
std::string wait_reason_name(uint32_t reason);
// The binary's runtime.waitReasonStrings (go::BinaryInfo::wait_reasons; index = value),
// shared by every census of one target. Null or empty: unknown.
using WaitReasonNames = std::shared_ptr<const std::vector<std::string>>;
// names[reason] when the table has a non-empty name there, else wait_reason_name(reason).
std::string wait_reason_name(uint32_t reason, const WaitReasonNames& names);
inline constexpr uint32_t kWaitReasonGCAssistMarking = 1;
inline constexpr uint32_t kWaitReasonIOWait = 2;

// ---- the goroutine census (one read of runtime.allgs; recorded as kRecGoCensus)
inline constexpr size_t kCensusLiveFuncsMax = 256;  // Census::live_funcs kept
inline constexpr size_t kCensusLiveFuncsShown = 8;  // of them in the frame's JSON
struct Census {
  uint64_t ts_ns = 0;
  uint32_t allglen = 0;           // entries of allgs
  uint32_t read = 0;              // Gs read within the time budget (== allglen when complete)
  uint32_t by_status[16] = {};    // g.atomicstatus (scan bit cleared), 10+ folded into 15
  std::map<uint32_t, uint32_t> waiting_by_reason;  // _Gwaiting Gs by g.waitreason
  // The names of the reasons, from the binary live or the recording's Go metadata on
  // replay (not part of the census record). Null: wait_reason_name()'s fallback.
  WaitReasonNames reason_names;
  uint64_t rss_bytes = 0;         // /proc/PID/statm resident set, 0 unknown
  double read_ms = 0;             // what the census cost the observer
  // Start functions of the goroutines in IO wait, most first (at most 8).
  std::vector<std::pair<std::string, uint32_t>> io_wait_funcs;
  // Start functions (g.startpc, go-statement wrappers unwrapped) of the live goroutines,
  // most first, at most kCensusLiveFuncsMax (the frame's JSON shows the first 8): the
  // census's top start functions without uprobes, and with --goroutines the live counts
  // its exit estimate compares (recorded before that: at most 8).
  std::vector<std::pair<std::string, uint32_t>> live_funcs;
  [[nodiscard]] std::string reason_name(uint32_t reason) const {
    return wait_reason_name(reason, reason_names);
  }
  // The waiting goroutines by reason name, most first (ties in reason order).
  [[nodiscard]] std::vector<std::pair<std::string, uint32_t>> waiting_by_name() const;
  [[nodiscard]] uint32_t live() const {  // not _Gidle(0) / _Gdead(6)
    uint32_t n = 0;
    for (int s = 1; s < 16; s++)
      if (s != 6) n += by_status[s];
    return n;
  }
};

// ---- per-interval GC statistics, in model::Frame::gc
struct Period {
  uint64_t start_ns = 0, end_ns = 0;
  std::string kind;  // "stw" | "mark"
  std::string what;  // STW reason ("GC mark termination", ...) or "GC cycle N"
  uint64_t cycle = 0;
};

struct AssistRow {
  uint64_t goid = 0;
  double ms = 0;  // sampled CPU time in assists this interval
};

struct GcStats {
  bool enabled = false;  // GC probes attached (or records seen in a recording)
  std::string note;      // what is attached, or why not
  uint64_t cycles = 0, cycles_total = 0;  // mark terminations
  uint64_t stw_count = 0;
  double stw_ms = 0, stw_max_ms = 0;
  std::map<std::string, uint64_t> stw_reasons;
  // Who stopped the world: the first non-runtime frame of the sampled stacks at
  // stopTheWorldWithSema ("func file:line"), by count of samples.
  std::map<std::string, uint64_t> stw_callers;
  double worker_ms = 0, assist_ms = 0;          // sampled GC CPU time this interval
  double idle_worker_ms = 0;  // idle-priority mark workers (on otherwise idle Ps: not lost)
  double worker_share = 0, assist_share = 0;    // of GOMAXPROCS x interval
  double mmu_1ms = -1, mmu_10ms = -1, mmu_100ms = -1;  // -1 unknown
  int gomaxprocs = 0;
  uint32_t gcphase = 0;  // runtime.gcphase at the last sample (0 off, 1 mark, 2 mark term)
  bool in_cycle = false;
  uint64_t rss_bytes = 0;
  int64_t rss_delta_bytes = 0;  // since the previous census
  std::vector<AssistRow> top_assists;
  std::vector<Period> periods;  // this interval
  uint64_t samples = 0;         // GC sampler ticks this interval
};

class Tracker {
 public:
  // Returns true when the record was a GC record (consumed).
  bool on_record(const ss_hdr* rec, size_t size);
  void on_census(const Census& c);
  // A sampled stop-the-world stack, reduced to its first frame outside the runtime.
  void on_stw_caller(const std::string& site) { callers_iv_[site]++; }
  // Whether a stop's stwReason is the mark termination's (known only where reasons are):
  // its stack is the background mark worker's, all runtime, and names no caller.
  [[nodiscard]] bool is_markterm_stop(uint64_t reason) const;
  void set_gomaxprocs(int n) {
    if (n > 0) gomaxprocs_ = n;
  }
  void set_gcphase(uint32_t p) { gcphase_ = p; }
  void set_sample_period_ns(uint64_t ns) { period_ns_ = ns; }
  [[nodiscard]] uint64_t sample_period_ns() const { return period_ns_; }
  void set_note(const std::string& n, bool attached) {
    note_ = n;
    attached_ = attached;
  }
  void set_go_minor(int minor) { go_minor_ = minor; }
  // The binary's stwReason names (index = value), empty when not found.
  void set_stw_reasons(const std::vector<std::string>& names) { stw_names_ = names; }
  // Statistics for [t0, t1); `final` summarises since attach without resetting.
  GcStats take(uint64_t t0, uint64_t t1, bool final);
  [[nodiscard]] const Census* census() const { return have_census_ ? &census_ : nullptr; }

 private:
  struct Stw {
    uint64_t start_ns = 0, end_ns = 0;
    uint64_t reason = 0;
    bool markterm = false;
  };
  struct Sample {
    uint64_t ts_ns;
    uint32_t kind;
    uint64_t goid;
  };
  void close_stw(uint64_t end_ns);
  std::string stw_label(const Stw& s) const;

  int gomaxprocs_ = 1;
  uint32_t gcphase_ = 0;
  uint64_t period_ns_ = 1'000'000;
  int go_minor_ = 0;
  std::vector<std::string> stw_names_;
  std::string note_;
  bool attached_ = false;
  bool seen_records_ = false;
  bool in_stw_ = false;
  Stw cur_stw_;
  std::vector<Stw> stws_;            // closed, this interval
  std::vector<Sample> samples_;      // this interval
  std::vector<Period> periods_;      // this interval
  uint64_t last_markterm_ns_ = 0;
  uint64_t mark_start_ns_ = 0;       // end of the sweep-termination STW of the current cycle
  uint64_t cycles_iv_ = 0, cycles_total_ = 0;
  // since attach (final frame)
  uint64_t stw_count_total_ = 0;
  double stw_ms_total_ = 0, stw_max_total_ = 0;
  std::map<std::string, uint64_t> reasons_total_;
  std::map<std::string, uint64_t> callers_iv_, callers_total_;
  double worker_ms_total_ = 0, assist_ms_total_ = 0, idle_worker_ms_total_ = 0;
  double min_mmu_[3] = {-1, -1, -1};
  std::map<uint64_t, double> assists_total_;
  uint64_t first_ns_ = 0;
  Census census_, prev_census_;
  bool have_census_ = false, have_prev_census_ = false;
  uint64_t first_rss_ = 0;
};

}  // namespace schedscope::gc
