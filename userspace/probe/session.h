// The BPF session: open -> configure (rodata, ring size, autoload) -> load -> attach,
// ring-buffer consumption, and the per-interval reads of the in-kernel aggregates.
// RAII: destroying the Session detaches and frees everything.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "probe/snapshot.h"
#include "schedscope.h"
#include "util/expected.h"

struct schedscope_bpf;
struct ring_buffer;
struct bpf_link;

namespace schedscope::probe {

// The PID namespace whose ids the observer works in (the one its /proc shows): tgid and
// every tid the BPF side reports are ids in it. ino 0 stands for the initial namespace.
struct PidNamespace {
  uint32_t ino = 0;
};
// The namespace of this process's /proc, or an error when it differs from the namespace
// this process lives in (pidfd_open and uprobes take ids of the latter).
Expected<PidNamespace> observer_pid_namespace();

struct SessionConfig {
  uint32_t tgid = 0;                  // in the observer's PID namespace (observer_pid_namespace())
  bool all_syscalls = false;          // -S: raw_syscalls enter/exit
  uint64_t ringbuf_bytes = 4u << 20;  // power of two, >= page size
  uint64_t offcpu_min_ns = 1'000'000;
  uint64_t slow_syscall_ns = 1'000'000;
  bool capture_stacks = true;
  bool goroutines = false;  // --goroutines: load the newproc1/gdestroy uprobe programs
};

// Where the --goroutines uprobes go: file offsets inside `path` (an ELF the kernel can
// resolve: /proc/PID/exe works).
struct GoUprobeTargets {
  std::string path;
  std::vector<uint64_t> create_offsets;  // every RET of runtime.newproc1
  uint64_t exit_offset = 0;              // entry of runtime.gdestroy / runtime.goexit0
};

// Where the GC uprobes go (file offsets inside `path`; 0 = function not found) and how
// the GC sampler is configured (gc.bpf.c).
struct GcProbeTargets {
  std::string path;
  uint64_t stw_stop = 0;                  // runtime.stopTheWorldWithSema entry
  uint64_t stw_start = 0;                 // runtime.startTheWorldWithSema entry
  uint64_t markterm = 0;                  // runtime.gcMarkTermination entry
  uint64_t sample_period_ns = 1'000'000;  // GC sampler: cpu-clock period per CPU (0: off)
  ss_gc_cfg cfg{};
};

// Called for every ring-buffer record (starts with ss_hdr; size already checked).
using EventFn = std::function<void(const ss_hdr* rec, size_t size)>;

class Session {
 public:
  static Expected<std::unique_ptr<Session>> open(const SessionConfig& cfg);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Status attach();
  // Consume ring-buffer records for at most timeout_ms (0: don't wait). Returns count.
  Expected<int> poll(int timeout_ms, const EventFn& fn);
  Expected<KernelSnapshot> snapshot();
  // Go offsets for the in-kernel context reads (may be set any time after open()).
  Status set_go_offsets(const ss_go_offsets& off);
  // Seeds the state of a thread that existed before attach (no-op if BPF already has it).
  void seed_thread(uint32_t tid, const ss_thread_state& st);
  // Remove a thread's state once its exit has been consumed.
  void forget_thread(uint32_t tid);
  [[nodiscard]] const SessionConfig& config() const { return cfg_; }
  [[nodiscard]] std::vector<std::string> attached_programs() const;
  // (--goroutines) attaches the uprobe programs to `pid` at the given offsets. All or
  // nothing: on error every link made so far is destroyed.
  Status attach_go_uprobes(int pid, const GoUprobeTargets& t);
  [[nodiscard]] size_t go_uprobe_count() const { return go_links_.size(); }
  // GC observation (gc.bpf.c): uprobes at the given offsets and the per-CPU sampler.
  // Attaches what it can; the error names what failed (the rest stays attached).
  Status attach_gc(int pid, const GcProbeTargets& t);
  [[nodiscard]] size_t gc_uprobe_count() const { return gc_uprobes_; }
  // The GC sampler's offsets (they may come after attach_gc, once calibration is done).
  Status set_gc_cfg(const ss_gc_cfg& cfg);
  [[nodiscard]] size_t gc_sampler_cpus() const { return gc_perf_fds_.size(); }

  // USDT: attaches the ss_usdt program to every location of provider:name in
  // `path` (libbpf resolves the notes and enables a semaphore), with `probe` as BPF
  // cookie and `cfg` as its usdt_cfg entry. Returns the number of links made.
  Expected<size_t> attach_usdt(int pid, const std::string& path, const std::string& provider,
                               const std::string& name, uint32_t probe, const ss_usdt_cfg& cfg);
  // Hit counts per (thread, probe) since attach.
  [[nodiscard]] std::vector<ss_usdt_count> usdt_counts() const;
  // Forgets the counts of an exited thread.
  void forget_usdt_thread(uint32_t tid, uint32_t nprobes);

 private:
  explicit Session(SessionConfig cfg) : cfg_(cfg) {}
  SessionConfig cfg_;
  schedscope_bpf* skel_ = nullptr;
  ::ring_buffer* rb_ = nullptr;
  const EventFn* cur_fn_ = nullptr;
  int ncpus_ = 1;
  std::vector<struct bpf_link*> go_links_;
  std::vector<struct bpf_link*> usdt_links_;
  std::vector<struct bpf_link*> gc_links_;  // GC uprobes and sampler links
  std::vector<int> gc_perf_fds_;            // owned (closed) by their links
  size_t gc_uprobes_ = 0;
  static int on_record(void* ctx, void* data, size_t size);
};

// Monotonic clock in ns (the clock of bpf_ktime_get_ns).
uint64_t monotonic_ns();

}  // namespace schedscope::probe
