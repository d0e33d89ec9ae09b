// Reads the live scheduler state of a Go process from /proc/PID/mem:
// the P table (runtime.allp), the M list (runtime.allm) and runtime.sched.
// Racy by nature (no stop), cheap, zero cost to the target per event.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "go/binary.h"
#include "go/timehist.h"
#include "go/offsets.h"
#include "go/pidns.h"
#include "util/expected.h"

namespace schedscope::go {

// P status names used in JSON: idle|running|syscall|gcstop|dead
const char* p_status_name(uint32_t status);

struct PSample {
  int32_t id = -1;
  uint32_t status = 0;
  uint64_t addr = 0;
  uint64_t m_addr = 0;
  int64_t m_id = -1;
  int32_t tid = 0;         // procid of the M holding it (0 if none)
  uint64_t goid = 0;       // the G running on it (m.curg), 0 if none
  uint64_t g_startpc = 0;  // runtime address (PIE-relocated) of the G's start function
  uint64_t g_pc = 0;       // current PC of the G (g.sched.pc, or syscallpc in a syscall)
  std::string func;        // start function of that G (see RuntimeReader::start_func)
  std::string cur_func;    // symbolized current PC
  uint32_t schedtick = 0, syscalltick = 0;
  uint32_t runq = 0;  // runqtail - runqhead (+1 if runnext)
  // For a _Psyscall P (≤1.25: p.m == 0 while its M is in the syscall), tid/goid/func
  // come from the M whose m.oldp is this P; m_addr/m_id stay 0/-1 and this is true.
  bool via_oldp = false;
};

struct MSample {
  int64_t id = -1;
  uint64_t addr = 0;
  int32_t tid = 0;    // m.procid
  int32_t p = -1;     // id of m.p
  int32_t oldp = -1;  // id of m.oldp
  uint64_t curg_goid = 0;
  std::string curg_func;
  bool spinning = false, blocked = false, incgo = false, sysmon = false;
  uint64_t lockedg_goid = 0;
  uint32_t curg_status = 0;  // g.atomicstatus of curg (0 when unknown / no curg)
};

// One goroutine, from runtime.allgs (RuntimeReader::goroutines) or reached from an M/P.
struct GSample {
  uint64_t addr = 0;
  uint64_t goid = 0;
  uint32_t status = 0;     // g.atomicstatus (with the _Gscan bit 0x1000 cleared)
  uint8_t waitreason = 0;  // g.waitreason (0 when unknown)
  uint64_t startpc = 0;    // runtime address
  std::string func;        // start function (RuntimeReader::start_func)
  uint64_t m_addr = 0;     // g.m
};

struct SchedSample {
  uint64_t ts_ns = 0;  // CLOCK_MONOTONIC at sampling
  int32_t gomaxprocs = 0;
  uint64_t goidgen = 0;
  int64_t lastpoll = 0;
  int32_t nmidle = 0, npidle = 0, nmspinning = 0, maxmcount = 0;
  uint32_t gcwaiting = 0;
  uint32_t gcphase = 0;
  std::vector<PSample> ps;
  std::vector<MSample> ms;
};

// One of many reads made together (MemReader::read_many).
struct ReadSpan {
  uint64_t addr = 0;
  void* buf = nullptr;
  size_t len = 0;
  bool ok = false;
};

class MemReader {
 public:
  virtual ~MemReader() = default;
  virtual bool read(uint64_t addr, void* buf, size_t len) = 0;
  // Many reads at once; each span's `ok` says whether it was read in full. The default
  // reads them one by one; the process reader makes one process_vm_readv per 1024 spans.
  virtual void read_many(std::vector<ReadSpan>& spans) {
    for (auto& s : spans) s.ok = read(s.addr, s.buf, s.len);
  }
  template <typename T>
  std::optional<T> get(uint64_t addr) {
    T v{};
    if (!read(addr, &v, sizeof v)) return std::nullopt;
    return v;
  }
};

// /proc/PID/mem reader (pread), falling back to process_vm_readv.
std::unique_ptr<MemReader> open_process_memory(int pid, std::string* err);

class RuntimeReader {
 public:
  // load_bias: runtime address - link-time address (non-zero for PIE).
  RuntimeReader(std::unique_ptr<MemReader> mem, const BinaryInfo& bin, Offsets off,
                uint64_t load_bias);
  // One racy snapshot of sched, allp (each P and its M's curg) and the allm list.
  // Error when allp/allm are unknown or unreadable (process gone).
  Expected<SchedSample> sample();
  // All goroutines of runtime.allgs (needs Globals::allgs/allglen and g_goid), at most
  // `max` of them; dead ones included (status 6).
  Expected<std::vector<GSample>> goroutines(size_t max = 100000);
  // The goroutine with this goid, searched in allgs (if known), else among the curgs of
  // all Ms. nullopt when not found.
  std::optional<GSample> find_goroutine(uint64_t goid);
  // One read of sched.timeToRun (BinaryInfo::time_to_run); error when it is not located
  // or not readable. Callers validate successive reads with time_hist_monotonic().
  Expected<TimeHist> time_to_run();
  [[nodiscard]] const Offsets& offsets() const { return off_; }
  [[nodiscard]] uint64_t load_bias() const { return bias_; }
  // Symbolized function name of a runtime PC ("" when unknown).
  [[nodiscard]] std::string symbolize(uint64_t runtime_pc) const;
  // The start function of a goroutine from g.startpc. `go f(x)` compiles to a wrapper
  // closure (1.22+: "main.main.gowrap1"; ≤1.21: "main.main.func1") that calls f; the
  // wrapped function is reported instead, found by decoding the wrapper's direct calls:
  // only when the wrapper (a .funcN closure: also small) makes exactly one direct call
  // outside runtime.*; otherwise the wrapper's own name is kept.
  std::string start_func(uint64_t runtime_startpc);
  // Samples name threads by the observer's tids even when the process runs in a PID
  // namespace of its own (m.procid holds the namespace's tid): call once with its pid.
  void map_namespace_tids(int pid);

 private:
  int32_t host_tid(int32_t ns_tid, bool& refreshed);
  int ns_pid_src_ = 0;  // the process whose namespace tids are mapped (0: not nested)
  NsTids ns_;
  std::optional<GSample> read_g(uint64_t addr);
  GSample g_from_block(uint64_t addr, const uint8_t* b, size_t len);
  std::map<uint64_t, std::string> start_cache_;
  // The M list of the previous sample: its blocks are read in one batch and the walk
  // checks them (new Ms are read one by one).
  std::vector<uint64_t> last_ms_;
  // m.mstartfn value -> "is runtime.sysmon" (the funcval is read once per value).
  std::unordered_map<uint64_t, bool> sysmon_fv_;

  std::unique_ptr<MemReader> mem_;
  const BinaryInfo& bin_;
  Offsets off_;
  uint64_t bias_;
  uint64_t sysmon_entry_ = 0;
};

// Load bias of the main executable of pid (from /proc/PID/maps), 0 for non-PIE.
Expected<uint64_t> load_bias(int pid, const BinaryInfo& bin);

// Validation/calibration against the live invariants:
// m.procid == tid for threads of the process, m.curg.m == m, p.m == m and m.p == p,
// p.id == index within gomaxprocs, g0.goid == 0.
struct Validation {
  bool ok = false;
  std::vector<std::string> checks;  // human-readable, e.g. "m.procid==tid for 7/7 Ms"
};
// Live: the thread ids are read from /proc/PID/task. Up to 3 fresh snapshots are tried
// (the first that passes every check wins; otherwise the one passing most is reported).
// Check lines start with "ok: " or "FAIL: " (informational ones with "note: ").
Validation validate(MemReader& mem, const BinaryInfo& bin, const Offsets& off, uint64_t load_bias,
                    int pid);
// Same with a given thread-id source (tests on synthetic memory use a fixed list).
using TidSource = std::function<std::vector<int>()>;
Validation validate(MemReader& mem, const BinaryInfo& bin, const Offsets& off, uint64_t load_bias,
                    int pid, const TidSource& tids);

struct CalibrateOptions {
  int rounds = 3;         // independent calibrations; each field needs a majority
  int snapshots = 12;     // snapshots per round (running Ps, curgs seen over time)
  int interval_ms = 5;    // between snapshots
  int max_wait_ms = 500;  // per round: how long to wait for a running P if none was seen
  std::vector<std::string>* log = nullptr;  // if set: what was found and why (first round)
};
// Searches for offsets that satisfy the invariants when no table/DWARF source validates.
// Needs Globals::allm and allp (sched, gomaxprocs, allgs and a symbolizer improve it).
// No version knowledge is used beyond the fields documented stable in every release
// (g.m=48, g.sched.sp/pc=56/64, p.id/status/link/schedtick/syscalltick/sysmontick,
// sched.goidgen/lastpoll); everything else is found from live data and cross-checked.
// Fields with no evidence stay 0 (features using them degrade). source = "calibrated".
Expected<Offsets> calibrate(MemReader& mem, const BinaryInfo& bin, uint64_t load_bias, int pid);
Expected<Offsets> calibrate(MemReader& mem, const BinaryInfo& bin, uint64_t load_bias, int pid,
                            const TidSource& tids, const CalibrateOptions& opts = {});

// Offsets for a live process: DWARF, else the table for a known version (17..26); each
// validated on live memory; calibration when none validates or the version is unknown
// or newer than the table. The returned Offsets.source says which; Validation.checks
// holds a "source: ..." line per attempt followed by the checks of the chosen one.
// Error only when nothing could be tried (allp/allm unknown and no static source) or
// calibration failed outright.
Expected<std::pair<Offsets, Validation>> resolve_offsets(MemReader& mem, const BinaryInfo& bin,
                                                         uint64_t load_bias, int pid);
// Same with a given thread-id source and calibration options (tests).
Expected<std::pair<Offsets, Validation>> resolve_offsets(MemReader& mem, const BinaryInfo& bin,
                                                         uint64_t load_bias, int pid,
                                                         const TidSource& tids,
                                                         CalibrateOptions opts = {});

// Thread ids of a process (/proc/PID/task), sorted; empty when the process is gone.
std::vector<int> process_tids(int pid);

}  // namespace schedscope::go
