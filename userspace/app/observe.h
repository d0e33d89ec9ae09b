// One live observation of one process: the BPF session, the Go layer and the model,
// stepped one interval at a time. Shared by `top` (batch, JSON, live view) and `record`.
#pragma once
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "app/annotations_attach.h"
#include "app/capacity_attach.h"
#include "app/gc_attach.h"
#include "app/go_attach.h"
#include "app/target.h"
#include "app/usdt_attach.h"
#include "detect/pipeline.h"
#include "model/inputs.h"
#include "model/model.h"
#include "probe/session.h"
#include "util/stop.h"

namespace schedscope::app {

struct ObserveOptions {
  int pid = 0;                       // attach to this process, or
  std::vector<std::string> command;  // launch this one (observed from its first instruction)
  std::string user;                  // -u/--user: run the launched command as this user
  bool all_syscalls = false;
  uint64_t ringbuf_bytes = 8u << 20;
  uint64_t offcpu_min_ns = 1'000'000;
  uint64_t slow_syscall_ns = 1'000'000;
  double interval_s = 1.0;
  bool go = true;           // Go awareness (inspect, offsets, P table)
  bool goroutines = false;  // --goroutines: newproc1 RET uprobes (costly, opt-in)
  // --goroutine-exits: also the gdestroy/goexit0 uprobe (exact exits, a second trap per
  // goroutine); without it exits come from the census (docs/goroutines.md).
  bool goroutine_exits = false;
  bool verbose = false;
  // USDT
  std::vector<std::string> usdt;  // --usdt PROVIDER:NAME, counted per thread
  bool usdt_args = false;         // ship every hit of those with its arguments (record)
  bool runtime_probes = true;     // attach the detected runtime's adapter (HotSpot, CPython)
  bool gc = true;                 // GC uprobes + sampler + goroutine census (Go targets)
  uint64_t gc_sample_period_ns = 1'000'000;  // GC sampler period per CPU (1 kHz)
  double census_budget_ms = 20;              // time budget of one allgs pass
  AnnotationsOptions annotations;            // --annotations (app/annotations_attach.h)
};

// Set by signal handlers (util/stop.h); the observer stops at the next poll.
using schedscope::g_stop;
void install_stop_handlers();

// Seeds the session's state of every thread `pid` has now, from /proc (run state, the
// syscall a blocked thread sits in), for a target added after attach.
void seed_thread_states(probe::Session& s, int pid);

// What a recorder (app/recorder.h) and the flight recorder (app/flight.h) read of one
// observed process: the Observer of `top`/`record`, or one target of the node agent.
class Observed {
 public:
  virtual ~Observed() = default;
  [[nodiscard]] virtual const model::TargetInfo& target() const = 0;
  virtual GoAttach* go() = 0;  // null: no Go layer
  // A tap receives every input the process's model consumes, in order (model/inputs.h).
  virtual void add_tap(model::Inputs* t) = 0;
  [[nodiscard]] virtual bool target_gone() const = 0;
  [[nodiscard]] virtual bool stopped() const = 0;
};

class Observer : public Observed {
 public:
  // Errors carry the CLI exit code in *exit_code. `init` (optional) runs once the target
  // is known and before the baseline snapshot, so hooks set there see everything.
  static Expected<std::unique_ptr<Observer>> start(
      const ObserveOptions& opt, int* exit_code,
      const std::function<void(Observer&)>& init = nullptr);
  ~Observer() override;

  // Polls events until the interval deadline (or stop/target exit), then builds a frame.
  Expected<model::Frame> next();
  // Totals since attach.
  model::Frame final_frame();
  [[nodiscard]] bool target_gone() const override { return target_gone_; }
  [[nodiscard]] bool stopped() const override { return g_stop != 0; }
  [[nodiscard]] const model::TargetInfo& target() const override { return model_.target(); }
  [[nodiscard]] GoAttach* go() override { return go_.get(); }
  model::Model& model() { return model_; }
  [[nodiscard]] int child_exit_status() const;
  // Names of the BPF programs attached (the live view's cost line).
  [[nodiscard]] std::vector<std::string> attached_programs() const;

  // A tap (a recorder) receives every input the model consumes, in the order the model
  // consumes it (model/inputs.h): raw records, kernel snapshots (final_frame()'s too), Go
  // samples, /proc thread names, the goroutine baseline (at once when it is already
  // known), censuses and scheduling-latency reads. Without taps nothing is copied.
  void add_tap(model::Inputs* t) override;
  [[nodiscard]] std::optional<uint64_t> goroutine_baseline() const { return goroutine_baseline_; }
  // Called once with "attached to pid N (K BPF programs)" when everything this
  // observation counts is in place: the BPF programs attached and the kernel baseline
  // taken; on a Go target also the runtime offsets resolved (or given up on), the
  // goroutine uprobes attached and the Go layer read once (the baseline of its deltas:
  // the P table, the census, the scheduling-latency histogram). Set it from start()'s
  // init: the line may be due before start() returns.
  std::function<void(const std::string& line)> on_ready;
  [[nodiscard]] bool ready() const { return ready_; }

 private:
  explicit Observer(ObserveOptions o) : opt_(std::move(o)), model_(model::TargetInfo{}) {}
  void poll_until(uint64_t deadline_ns);
  // Consumes what the ring buffer holds now (no wait), into the taps and the model.
  void drain();
  // A kernel snapshot, then the records that came before its end: the kernel deletes a
  // thread's entry after it sent its exit record, so a thread the snapshot lacks either
  // exited with its record consumed here or was never seen (docs/kernel-side.md).
  Expected<probe::KernelSnapshot> snapshot_and_drain();
  void try_go();
  void attach_goroutines();
  void usdt_scan();
  void usdt_counts();
  void inject(const ss_hdr* rec, size_t size);
  void attach_gc();
  void gc_offsets_ready();
  void maybe_ready();
  // --annotations (app/annotations_attach.cpp)
  void annotations_init();
  void annotations_attach();
  void annotations_tick();
  std::unique_ptr<AnnotationsControl> annot_;
  bool annot_tried_ = false;
  bool ready_ = false;
  bool go_read_ = false;  // the Go layer was read once since its offsets resolved
  std::string gc_note_;
  std::unique_ptr<CensusReader> census_;
  ObserveOptions opt_;
  std::unique_ptr<probe::Session> session_;
  std::optional<Launched> child_;
  std::unique_ptr<GoAttach> go_;
  model::Model model_;
  int pidfd_ = -1;
  bool target_gone_ = false;
  uint64_t next_deadline_ = 0;
  uint64_t go_retry_until_ = 0;
  bool go_pushed_ = false;
  std::unordered_set<uint32_t> named_;
  std::optional<uint64_t> goroutine_baseline_;
  std::unique_ptr<UsdtAttacher> usdt_;
  std::unique_ptr<CapacityProbe> capacity_;  // capacity data, one record per interval
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> usdt_sent_;  // (tid, probe) -> count injected
  std::vector<model::Inputs*> taps_;

 public:
  // The USDT attachment state (null when neither --usdt nor a runtime adapter is active).
  [[nodiscard]] const UsdtAttacher* usdt() const { return usdt_.get(); }
};

// The live observation as the frame source of a detect::Pipeline. A frame built while
// the target exited or a stop signal arrived is not shown: the final frame covers it.
class ObserverFeed : public detect::FrameFeed {
 public:
  explicit ObserverFeed(Observer& o) : o_(o) {}
  Expected<detect::Pulled> pull() override;
  model::Frame final_frame() override { return o_.final_frame(); }
  [[nodiscard]] std::string end_reason() const override;

 private:
  Observer& o_;
};

}  // namespace schedscope::app
