// The BPF session: open -> configure (rodata, ring size, map capacities, each feature's
// autoload) -> load -> add targets -> attach, ring-buffer consumption, and the
// per-interval reads of the in-kernel aggregates of each target. The features' programs
// and links belong to per-feature attachers (probe/attacher.h) the session composes.
// RAII: destroying the Session detaches and frees everything.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "probe/attacher.h"
#include "probe/snapshot.h"
#include "schedscope.h"
#include "util/expected.h"

struct schedscope_bpf;
struct ring_buffer;

namespace schedscope::probe {

// The PID namespace whose ids the observer works in (the one its /proc shows): tgid and
// every tid the BPF side reports are ids in it. ino 0 stands for the initial namespace.
struct PidNamespace {
  uint32_t ino = 0;
};
// The namespace of this process's /proc, or an error when it differs from the namespace
// this process lives in (pidfd_open and uprobes take ids of the latter).
Expected<PidNamespace> observer_pid_namespace();

// The most processes one session can observe (SessionConfig::max_targets): each target
// takes SS_MAX_SYSCALLS syscall aggregates per CPU in two maps.
constexpr uint32_t kMaxTargets = 64;

struct SessionConfig {
  // The first target (0: none yet, add_target() adds them), in the observer's PID
  // namespace (observer_pid_namespace()). The calls without a tgid are about it.
  uint32_t tgid = 0;
  // How many processes the session can observe at once: the capacity of the kernel's
  // target set and of every per-target map.
  uint32_t max_targets = 1;
  bool all_syscalls = false;          // -S: raw_syscalls enter/exit
  // With all_syscalls: every target is traced (top, record), or, per target (the node
  // agent), only those set_all_syscalls() asks for, the programs attached only while
  // there is one.
  bool syscalls_per_target = false;
  uint64_t ringbuf_bytes = 4u << 20;  // power of two, >= page size
  uint64_t offcpu_min_ns = 1'000'000;
  uint64_t slow_syscall_ns = 1'000'000;
  bool capture_stacks = true;
  bool goroutines = false;  // --goroutines: load the newproc1/gdestroy uprobe programs
  bool gc = false;          // load the GC uprobe and sampler programs (gc.bpf.c)
  bool usdt = true;         // load the USDT program (--usdt, runtime adapters)
  bool annotations = false; // --annotations: load the runtime/trace uprobe program
  bool exec_events = false; // the node agent: an SS_EV_EXEC record per execve (exec.bpf.c)
  // Per-thread state slots (a power of two): a thread's slot is its kernel tid modulo
  // this; a thread whose slot another holds has its entry in the threads hash map.
  uint32_t thread_slots = SS_THREAD_SLOTS;
};

// Called for every ring-buffer record (starts with ss_hdr; size already checked).
using EventFn = std::function<void(const ss_hdr* rec, size_t size)>;

class Session {
 public:
  static Expected<std::unique_ptr<Session>> open(const SessionConfig& cfg);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Adds a process to the kernel's target set (its tgid in the observer's PID namespace);
  // returns its slot in the per-target maps, whose entries start from zero. Error when
  // the session is full or the process is a target already.
  Expected<uint32_t> add_target(uint32_t tgid);
  // Takes a process out of the set at once. What was attached for it (its uprobes) is
  // detached on a thread of the session's (LinkReaper): wait_detached() waits for that,
  // add_target() of the same process too.
  Status remove_target(uint32_t tgid);
  void wait_detached(uint32_t tgid) { reaper_.wait(int(tgid)); }
  // (all_syscalls and syscalls_per_target) Traces every syscall of one target, or stops:
  // its SS_TGT_ALL_SYSCALLS flag in the kernel's target set; the raw_syscalls programs are
  // attached with the first such target and detached after the last.
  Status set_all_syscalls(uint32_t tgid, bool on);
  // Whether every syscall of this target is traced (its snapshots have sc_all).
  [[nodiscard]] bool all_syscalls(uint32_t tgid) const;
  // Whether the raw_syscalls programs are attached now.
  [[nodiscard]] bool syscalls_attached() const;
  [[nodiscard]] std::vector<uint32_t> targets() const;

  // Attaches the programs that attach by themselves (the scheduler tracepoints, -S).
  Status attach();
  // Consume ring-buffer records for at most timeout_ms (0: don't wait). Returns count.
  // Records of every target: their tid tells whose (the thread's tgid in snapshot()).
  Expected<int> poll(int timeout_ms, const EventFn& fn);
  // The aggregates of one target (its threads, syscalls, run-queue histogram, goroutine
  // uprobe hits) and the session's drops.
  Expected<KernelSnapshot> snapshot() { return snapshot(cfg_.tgid); }
  Expected<KernelSnapshot> snapshot(uint32_t tgid);
  // Snapshots of many targets in one interval (the node agent): one pass over the state
  // slots' holders finds every target's threads, where each snapshot(tgid) alone passes
  // over all of them. While the returned round lives, snapshot(tgid) reads the slots that
  // pass found for the target, each read only if a thread of the target still holds it; a
  // thread that took its slot since waits for the next round, as one created after a
  // snapshot does.
  class SnapshotRound {
   public:
    explicit SnapshotRound(Session& s) : s_(s) { s_.begin_round(); }
    ~SnapshotRound() { s_.end_round(); }
    SnapshotRound(const SnapshotRound&) = delete;
    SnapshotRound& operator=(const SnapshotRound&) = delete;

   private:
    Session& s_;
  };
  // Go offsets of a target for the in-kernel context reads (any time after open()).
  Status set_go_offsets(const ss_go_offsets& off) { return set_go_offsets(cfg_.tgid, off); }
  Status set_go_offsets(uint32_t tgid, const ss_go_offsets& off);
  // Seeds the state of a thread that existed before attach (no-op if BPF already has it).
  void seed_thread(uint32_t tid, const ss_thread_state& st);
  // Removes a thread's state. The kernel deletes it itself when the thread exits (after
  // the exit record with its final totals): this is for the entries no exit will delete,
  // those of a target no longer observed (a seeded thread that had already exited, a
  // thread that outlives its removal).
  void forget_thread(uint32_t tid);
  [[nodiscard]] const SessionConfig& config() const { return cfg_; }
  // The programs attached now, in the object's order.
  [[nodiscard]] std::vector<std::string> attached_programs() const;
  // (--goroutines) attaches the uprobe programs to `pid` at the given offsets. All or
  // nothing: on error no link stays.
  Status attach_go_uprobes(int pid, const GoUprobeTargets& t) {
    return goroutines_->attach_uprobes(pid, t);
  }
  [[nodiscard]] size_t go_uprobe_count() const { return goroutines_->uprobe_count(); }
  // GC observation (gc.bpf.c): uprobes at the given offsets and the per-CPU sampler's period.
  // Attaches what it can; the error names what failed (the rest stays attached).
  Status attach_gc(int pid, const GcProbeTargets& t);
  [[nodiscard]] size_t gc_uprobe_count() const { return gc_->uprobe_count(); }
  // The GC sampler's offsets (they may come after attach_gc, once calibration is done).
  Status set_gc_cfg(const ss_gc_cfg& cfg) { return set_gc_cfg(cfg_.tgid, cfg); }
  Status set_gc_cfg(uint32_t tgid, const ss_gc_cfg& cfg);
  // The GC sampler's period (0: none).
  [[nodiscard]] uint64_t gc_sampler_period_ns() const { return gc_->sampler_period_ns(); }
  // The GC sampler's gate of a target (gc.bpf.c; 0 for no target) and the open gates.
  [[nodiscard]] uint64_t gc_gate(uint32_t tgid) const;
  [[nodiscard]] uint64_t gc_gates_open() const { return gc_->gates_open(); }
  // Whether a CPU's sampler timer has a tick pending (only inside mark phases), and the
  // ticks so far, summed over CPUs.
  [[nodiscard]] bool gc_sampler_ticking() const { return gc_->sampler_ticking(); }
  [[nodiscard]] uint64_t gc_sampler_ticks() const { return gc_->sampler_ticks(); }

  // USDT: attaches the ss_usdt program to every location of provider:name in
  // `path` (libbpf resolves the notes and enables a semaphore), with `probe` as BPF
  // cookie and `cfg` as its usdt_cfg entry. Returns the number of links made.
  Expected<size_t> attach_usdt(int pid, const std::string& path, const std::string& provider,
                               const std::string& name, uint32_t probe, const ss_usdt_cfg& cfg) {
    return usdt_->attach_usdt(pid, path, provider, name, probe, cfg);
  }
  // --annotations (annotations.bpf.c): the ss_annot program at each file offset of
  // t.path in process `pid`, its SS_ANNOT_* kind as cookie. All or nothing.
  Status attach_annotations(int pid, const AnnotationProbeTargets& t) {
    return annotations_->attach_uprobes(pid, t);
  }
  // Drops the process's annotation links (the duty cycle, the ceiling); its hit counts stay.
  void detach_annotations(int pid) { annotations_->detach_pid(pid); }
  [[nodiscard]] size_t annotation_probe_count(int pid) const {
    return annotations_->uprobe_count(pid);
  }
  // Uprobe hits of one target since it was added, all kinds (0 when not loaded).
  [[nodiscard]] uint64_t annotation_hits(uint32_t tgid) const;

  // Hit counts per (thread, probe) since attach.
  [[nodiscard]] std::vector<ss_usdt_count> usdt_counts() const;
  // Forgets the counts of an exited thread.
  void forget_usdt_thread(uint32_t tid, uint32_t nprobes);

 private:
  explicit Session(SessionConfig cfg) : cfg_(cfg) {}
  Expected<uint32_t> slot_of(uint32_t tgid) const;
  void clear_slot(uint32_t slot);
  SessionConfig cfg_;
  schedscope_bpf* skel_ = nullptr;
  ::ring_buffer* rb_ = nullptr;
  const EventFn* cur_fn_ = nullptr;
  int ncpus_ = 1;
  uint32_t ns_ino_ = 0;                   // the observer's PID namespace (0: the initial one)
  std::map<uint32_t, uint32_t> targets_;  // tgid -> slot
  std::map<uint32_t, uint32_t> flags_;    // tgid -> its SS_TGT_* flags
  Status write_flags(uint32_t tgid, uint32_t flags);
  [[nodiscard]] bool any_traced() const;  // a target with SS_TGT_ALL_SYSCALLS
  std::vector<bool> slot_used_;           // slots that held a target before
  // The features; destroyed (detached) before the BPF object.
  std::vector<std::unique_ptr<Attacher>> attachers_;
  LinkReaper reaper_;  // the links of targets that left
  GoroutineAttacher* goroutines_ = nullptr;
  GcAttacher* gc_ = nullptr;
  UsdtProbeAttacher* usdt_ = nullptr;
  AnnotationsAttacher* annotations_ = nullptr;
  SyscallAttacher* syscalls_ = nullptr;
  bool attached_ = false;  // attach() done
  static int on_record(void* ctx, void* data, size_t size);
  // Per-interval reads in batches (BPF_MAP_LOOKUP_BATCH, kernel 5.6+): one syscall per
  // map instead of one or two per element. Off after the first refusal (older kernels):
  // then element by element as before.
  bool batch_ok_ = true;
  std::vector<uint32_t> batch_keys_;
  std::vector<ss_thread_state> batch_threads_;
  std::vector<uint8_t> batch_percpu_;
  bool read_threads_batch(uint32_t tgid, std::vector<ThreadEntry>& out);
  // The per-thread state slots (thread_ids, thread_slots), mapped into this process and
  // read in place: no syscall per snapshot.
  ss_thread_slot_id* slot_ids_ = nullptr;
  ss_thread_state* slot_states_ = nullptr;
  size_t slot_ids_bytes_ = 0, slot_states_bytes_ = 0;
  Status map_thread_slots();
  void read_thread_slots(uint32_t tgid, std::vector<ThreadEntry>& out) const;
  bool read_slot(uint32_t i, uint32_t tgid, std::vector<ThreadEntry>& out) const;
  // The slots each target's threads held at the start of a SnapshotRound (tgid -> slots).
  bool in_round_ = false;
  std::unordered_map<uint32_t, std::vector<uint32_t>> round_slots_;
  void begin_round();
  void end_round();
  [[nodiscard]] std::optional<uint32_t> slot_held_by(uint32_t tid) const;
  void delete_hash_thread(uint32_t tid);  // from `threads`, counted gone (hash_threads)
  void add_sc_cpu(std::vector<ThreadEntry>& threads);
  bool read_percpu_range(int fd, uint32_t first, uint32_t n, size_t value_size);
  void read_sc(int fd, uint32_t slot, const ss_sc_seen* seen, std::vector<SyscallAgg>& out);
};

// Monotonic clock in ns (the clock of bpf_ktime_get_ns).
uint64_t monotonic_ns();

}  // namespace schedscope::probe
