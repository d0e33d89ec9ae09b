// Per-feature attachers: each owns the BPF programs of one feature of the kernel side
// (docs/kernel-side.md), decides before load whether they are loaded at all, and owns the
// links that attach them (RAII: destroying the attacher detaches them). probe::Session
// composes them; a new feature is a new attacher.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "schedscope.h"
#include "util/expected.h"

struct bpf_link;
struct bpf_program;
struct schedscope_bpf;

namespace schedscope::probe {

struct LinkDeleter {
  void operator()(bpf_link* l) const;
};
// One attachment of a program; detached when destroyed.
using Link = std::unique_ptr<bpf_link, LinkDeleter>;

// Destroys the links from several threads at once. Closing a uprobe's perf event takes
// 50 to 130 ms on the development VM (a 6.18 kernel); the kernel serialises the closes,
// so threads save the time between them, not the closes (docs/kernel-side.md).
void destroy_links(std::vector<Link> links);

// Destroys links on a thread of its own, for a caller that must not wait for them: a
// target leaving a session (the agent drops one whenever a process exits) has its GC
// uprobes, ~80 ms each to close, and the observation loop would stall that long without
// draining the ring. While they are pending the programs still run for that process, and
// return at once: its entry in `targets` is gone first.
class LinkReaper {
 public:
  LinkReaper() = default;
  ~LinkReaper();  // waits for every pending link
  LinkReaper(const LinkReaper&) = delete;
  LinkReaper& operator=(const LinkReaper&) = delete;
  // Destroys `links` of process `pid` later (now, on this thread, if no thread can start).
  void later(int pid, std::vector<Link> links);
  // Returns once no link of `pid` is pending (a process that comes back as a target must
  // not have its old uprobes beside its new ones).
  void wait(int pid);
  void wait_all();

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<int, std::vector<Link>>> queue_;
  std::multiset<int> pending_;  // a pid per batch queued or being destroyed
  bool stop_ = false;
  std::thread worker_;
};

class Attacher {
 public:
  explicit Attacher(schedscope_bpf& skel) : skel_(skel) {}
  virtual ~Attacher() = default;
  Attacher(const Attacher&) = delete;
  Attacher& operator=(const Attacher&) = delete;

  // Before load: which of the feature's programs the kernel gets
  // (bpf_program__set_autoload). A program not loaded costs nothing and is never attached.
  virtual void configure() = 0;
  // After load, at Session::attach(): the programs that attach by themselves (the
  // tracepoints). Features attached by hand (uprobes, USDT, perf events) do it through
  // their own calls, once the session knows where.
  virtual Status attach() { return {}; }
  // Hands over the links of one process (pid < 0: every link, the session ends), for the
  // caller to destroy (destroy_links: all at once).
  virtual void take_links(int pid, std::vector<Link>& out) {
    (void)pid;
    (void)out;
  }
  // Detaches whatever was attached for one process (a target that leaves the session).
  void detach_pid(int pid) {
    std::vector<Link> links;
    take_links(pid, links);
    destroy_links(std::move(links));
  }
  // Whether p is one of its programs and attached now.
  [[nodiscard]] virtual bool attached(const bpf_program* p) const = 0;

 protected:
  schedscope_bpf& skel_;
};

// Programs that attach by themselves to kernel tracepoints, all or none.
class TracepointAttacher : public Attacher {
 public:
  TracepointAttacher(schedscope_bpf& skel, bool enabled) : Attacher(skel), enabled_(enabled) {}
  void configure() override;
  Status attach() override;
  [[nodiscard]] bool attached(const bpf_program* p) const override;
  void take_links(int pid, std::vector<Link>& out) override;

 protected:
  [[nodiscard]] virtual std::vector<bpf_program*> programs() const = 0;
  // Attaches every program (all or none; no-op when attached or not loaded).
  Status attach_all();
  void detach_all() { links_.clear(); }
  [[nodiscard]] bool any_attached() const { return !links_.empty(); }

 private:
  bool enabled_;
  std::vector<std::pair<const bpf_program*, Link>> links_;
};

// sched.bpf.c: sched_switch, sched_wakeup(_new), task_newtask, sched_process_exit. Always.
class SchedAttacher : public TracepointAttacher {
 public:
  explicit SchedAttacher(schedscope_bpf& skel) : TracepointAttacher(skel, true) {}

 protected:
  [[nodiscard]] std::vector<bpf_program*> programs() const override;
};

// exec.bpf.c: sched_process_exec, loaded only for the node agent (SS_EV_EXEC records:
// discovery on exec).
class ExecAttacher : public TracepointAttacher {
 public:
  ExecAttacher(schedscope_bpf& skel, bool enabled) : TracepointAttacher(skel, enabled) {}

 protected:
  [[nodiscard]] std::vector<bpf_program*> programs() const override;
};

// syscalls.bpf.c: raw_syscalls sys_enter/sys_exit, loaded only with -S (every syscall of
// the machine goes through the tracing slow path while they are attached). On demand (the
// node agent): attached only while at least one target asks for them (need()).
class SyscallAttacher : public TracepointAttacher {
 public:
  SyscallAttacher(schedscope_bpf& skel, bool enabled, bool on_demand)
      : TracepointAttacher(skel, enabled), on_demand_(on_demand) {}
  Status attach() override { return on_demand_ ? Status{} : attach_all(); }
  // On demand: attached while `wanted`, detached when not.
  Status need(bool wanted) {
    if (!on_demand_) return {};
    if (!wanted) {
      detach_all();
      return {};
    }
    return attach_all();
  }
  [[nodiscard]] bool on_demand() const { return on_demand_; }
  [[nodiscard]] bool live() const { return any_attached(); }

 protected:
  [[nodiscard]] std::vector<bpf_program*> programs() const override;

 private:
  bool on_demand_;
};

// Where the --goroutines uprobes go: file offsets inside `path` (an ELF the kernel can
// resolve: /proc/PID/exe works).
struct GoUprobeTargets {
  std::string path;
  std::vector<uint64_t> create_offsets;  // every RET of runtime.newproc1
  uint64_t exit_offset = 0;  // entry of runtime.gdestroy / runtime.goexit0; 0: not probed
};

// goroutines.bpf.c (--goroutines): uprobes at the RETs of runtime.newproc1 and (exact exits
// asked for) at the entry of runtime.gdestroy/goexit0, per process. Loaded only when asked.
class GoroutineAttacher : public Attacher {
 public:
  GoroutineAttacher(schedscope_bpf& skel, bool enabled) : Attacher(skel), enabled_(enabled) {}
  void configure() override;
  void take_links(int pid, std::vector<Link>& out) override;
  [[nodiscard]] bool attached(const bpf_program* p) const override;
  // All or nothing: on error no link of this call stays. A second call for the same
  // process does nothing.
  Status attach_uprobes(int pid, const GoUprobeTargets& t);
  [[nodiscard]] size_t uprobe_count() const;

 private:
  bool enabled_;
  std::map<int, std::vector<std::pair<const bpf_program*, Link>>> links_;  // by pid
};

// Where the GC uprobes go (file offsets inside `path`; 0 = function not found) and how
// the GC sampler is configured (gc.bpf.c).
struct GcProbeTargets {
  std::string path;
  uint64_t stw_stop = 0;                  // runtime.stopTheWorldWithSema entry
  uint64_t stw_start = 0;                 // runtime.startTheWorldWithSema entry
  uint64_t markterm = 0;                  // runtime.gcMarkTermination entry
  uint64_t sample_period_ns = 1'000'000;  // GC sampler: timer period per CPU (0: off)
  ss_gc_cfg cfg{};
};

// gc.bpf.c: entry uprobes on the stop/start-the-world functions and gcMarkTermination (per
// process), and the sampler's period for the per-CPU BPF timers the scheduler programs arm
// inside mark phases (gc_sampler.bpf.h; shared by every target: the BPF side filters).
// Loaded only when GC observation is asked.
class GcAttacher : public Attacher {
 public:
  GcAttacher(schedscope_bpf& skel, bool enabled, int ncpus)
      : Attacher(skel), enabled_(enabled), ncpus_(ncpus) {}
  void configure() override;
  void take_links(int pid, std::vector<Link>& out) override;
  [[nodiscard]] bool attached(const bpf_program* p) const override;
  // Writes the target's gc_cfg entry (slot), attaches the uprobes for `pid` and, once per
  // session, sets the sampler's period. Attaches what it can; the error names what failed.
  Status attach_gc(int pid, uint32_t slot, const GcProbeTargets& t);
  Status set_cfg(uint32_t slot, const ss_gc_cfg& cfg);
  // The sampler's gate of a slot (gc.bpf.c): closed for a slot reused by another process.
  void close_gate(uint32_t slot);
  // A slot's gate (0 closed, 1 in a mark phase, SS_GC_GATE_ALWAYS) and how many are open.
  [[nodiscard]] uint64_t gate(uint32_t slot) const;
  [[nodiscard]] uint64_t gates_open() const;
  [[nodiscard]] size_t uprobe_count() const;
  // The sampler's period (0: no sampler: not loaded, not asked, or detached). Its timers,
  // one per CPU, start and stop by themselves in the kernel (gc_sampler.bpf.h).
  [[nodiscard]] uint64_t sampler_period_ns() const;
  // Each CPU's timer entry: its ticks and their run time so far, and whether one is pending.
  [[nodiscard]] std::vector<ss_gc_timer> sampler_timers() const;
  [[nodiscard]] uint64_t sampler_ticks() const;   // summed over CPUs
  [[nodiscard]] bool sampler_ticking() const;     // some CPU has a tick pending

 private:
  bool enabled_;
  int ncpus_;
  std::map<int, std::vector<std::pair<const bpf_program*, Link>>> uprobes_;  // by pid
  void open_gate_always(uint32_t slot);
};

// Where the --annotations uprobes go: file offsets inside `path`, each with the
// SS_ANNOT_* kind of its function (the BPF cookie; bpf/annotations.h).
struct AnnotationProbeTargets {
  std::string path;
  std::vector<std::pair<uint64_t, uint32_t>> offset_kinds;
};

// annotations.bpf.c (--annotations): one program, entry uprobes on the runtime/trace
// functions past their stack check, per process. Loaded only when asked. Detached and
// attached again by the duty cycle and the hit-rate ceiling (app/annotations_attach.h).
class AnnotationsAttacher : public Attacher {
 public:
  AnnotationsAttacher(schedscope_bpf& skel, bool enabled) : Attacher(skel), enabled_(enabled) {}
  void configure() override;
  void take_links(int pid, std::vector<Link>& out) override;
  [[nodiscard]] bool attached(const bpf_program* p) const override;
  // All or nothing: on error no link of this call stays. A second call for a process
  // that has its links does nothing.
  Status attach_uprobes(int pid, const AnnotationProbeTargets& t);
  // The links of one process (its probes now attached).
  [[nodiscard]] size_t uprobe_count(int pid) const;

 private:
  bool enabled_;
  std::map<int, std::vector<Link>> links_;  // by pid
};

// usdt.bpf.c: one program attached per probe and file, with the probe's index as cookie.
class UsdtProbeAttacher : public Attacher {
 public:
  UsdtProbeAttacher(schedscope_bpf& skel, bool enabled) : Attacher(skel), enabled_(enabled) {}
  void configure() override;
  void take_links(int pid, std::vector<Link>& out) override;
  [[nodiscard]] bool attached(const bpf_program* p) const override;
  Expected<size_t> attach_usdt(int pid, const std::string& path, const std::string& provider,
                               const std::string& name, uint32_t probe, const ss_usdt_cfg& cfg);
  [[nodiscard]] bool any() const;

 private:
  bool enabled_;
  std::map<int, std::vector<Link>> links_;  // by pid
};

}  // namespace schedscope::probe
