#include "probe/session.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "annotations.h"
#include "schedscope.skel.h"
#include "util/units.h"

namespace schedscope::probe {

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

namespace {

// libbpf's own lines only with SCHEDSCOPE_LIBBPF_DEBUG=1: every failure is reported by
// the caller as one line of its own (no privileges, no BTF, a bad uprobe target).
int quiet_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG || getenv("SCHEDSCOPE_LIBBPF_DEBUG") == nullptr) return 0;
  return vfprintf(stderr, fmt, args);
}

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

}  // namespace

Expected<PidNamespace> observer_pid_namespace() {
  // Inode of the initial PID namespace (PROC_PID_INIT_INO): a fixed value in every kernel.
  constexpr uint32_t kInitPidNsIno = 0xEFFFFFFCu;
  // /proc/self resolves in /proc's namespace: it names our own pid only when /proc is ours.
  char self[32] = {};
  ssize_t n = readlink("/proc/self", self, sizeof self - 1);
  if (n <= 0 || std::to_string(getpid()) != std::string(self, size_t(n)))
    return make_error(
        "/proc belongs to another PID namespace than schedscope's (a container without its own "
        "/proc?): mount one for this namespace (unshare --pid --fork --mount-proc) or run "
        "schedscope outside the namespace");
  struct stat own {};
  if (stat("/proc/self/ns/pid", &own) != 0)
    return make_error(std::string("cannot read the PID namespace from /proc: ") + strerror(errno));
  PidNamespace ns;
  if (own.st_ino != kInitPidNsIno) ns.ino = uint32_t(own.st_ino);
  return ns;
}

Expected<std::unique_ptr<Session>> Session::open(const SessionConfig& cfg) {
  static bool once = [] {
    libbpf_set_print(quiet_print);
    // Not needed on kernels with memcg-based BPF accounting (5.11+), and it fails without
    // CAP_SYS_RESOURCE: best effort only.
    rlimit r{RLIM_INFINITY, RLIM_INFINITY};
    (void)setrlimit(RLIMIT_MEMLOCK, &r);
    return true;
  }();
  (void)once;
  // The kernel wants a power of two multiple of the page size; max_entries is 32 bits.
  if (auto e = check_ringbuf_size(std::to_string(cfg.ringbuf_bytes)); !e.empty())
    return make_error("ring buffer size " + e);
  if (cfg.max_targets < 1 || cfg.max_targets > kMaxTargets)
    return make_error("a session observes 1 to " + std::to_string(kMaxTargets) + " processes");
  if (cfg.thread_slots < 1 || cfg.thread_slots > (1u << 22) ||
      (cfg.thread_slots & (cfg.thread_slots - 1)))
    return make_error("per-thread state slots must be a power of two from 1 to 4194304");
  std::unique_ptr<Session> s(new Session(cfg));
  s->ncpus_ = libbpf_num_possible_cpus();
  if (s->ncpus_ <= 0) s->ncpus_ = 1;
  s->skel_ = schedscope_bpf__open();
  if (!s->skel_) return make_error("cannot open BPF object: " + errstr(errno));
  auto* skel = s->skel_;
  auto ns = observer_pid_namespace();
  if (!ns) return ns.error();
  s->ns_ino_ = ns->ino;
  skel->rodata->ns_ino = ns->ino;
  skel->rodata->offcpu_min_ns = cfg.offcpu_min_ns;
  skel->rodata->slow_syscall_ns = cfg.slow_syscall_ns;
  skel->rodata->capture_stacks = cfg.capture_stacks ? 1 : 0;
  skel->rodata->all_syscalls = cfg.all_syscalls ? 1 : 0;
  skel->rodata->thread_slot_mask = cfg.thread_slots - 1;
  bpf_map__set_max_entries(skel->maps.thread_ids, cfg.thread_slots);
  bpf_map__set_max_entries(skel->maps.thread_slots, cfg.thread_slots);
  bpf_map__set_max_entries(skel->maps.events, uint32_t(s->cfg_.ringbuf_bytes));
  // The target set and the per-target maps: one target's entries times the capacity.
  const uint32_t n = cfg.max_targets;
  bpf_map__set_max_entries(skel->maps.targets, n);
  bpf_map__set_max_entries(skel->maps.targets_ns, n);
  bpf_map__set_max_entries(skel->maps.go_cfg, n);
  bpf_map__set_max_entries(skel->maps.gc_cfg, n);
  bpf_map__set_max_entries(skel->maps.gc_gate, n);
  bpf_map__set_max_entries(skel->maps.gc_timers, uint32_t(s->ncpus_));
  bpf_map__set_max_entries(skel->maps.sc_block, n * SS_MAX_SYSCALLS);
  bpf_map__set_max_entries(skel->maps.sc_all, n * SS_MAX_SYSCALLS);
  bpf_map__set_max_entries(skel->maps.sc_seen, n);
  bpf_map__set_max_entries(skel->maps.rq_hist, n * SS_HIST_BUCKETS);
  bpf_map__set_max_entries(skel->maps.go_hits, n * SS_GOHIT_SLOTS);
  bpf_map__set_max_entries(skel->maps.annot_hits, n * SS_ANNOT_KINDS);
  s->slot_used_.assign(n, false);

  auto add = [&](auto a) {
    auto* raw = a.get();
    s->attachers_.push_back(std::move(a));
    return raw;
  };
  add(std::make_unique<SchedAttacher>(*skel));
  s->syscalls_ = add(std::make_unique<SyscallAttacher>(*skel, cfg.all_syscalls,
                                                       cfg.all_syscalls && cfg.syscalls_per_target));
  add(std::make_unique<ExecAttacher>(*skel, cfg.exec_events));
  s->goroutines_ = add(std::make_unique<GoroutineAttacher>(*skel, cfg.goroutines));
  s->gc_ = add(std::make_unique<GcAttacher>(*skel, cfg.gc, s->ncpus_));
  s->usdt_ = add(std::make_unique<UsdtProbeAttacher>(*skel, cfg.usdt));
  s->annotations_ = add(std::make_unique<AnnotationsAttacher>(*skel, cfg.annotations));
  for (auto& a : s->attachers_) a->configure();
  if (int err = schedscope_bpf__load(skel); err) {
    std::string hint;
    if (err == -EPERM || errno == EPERM)
      hint = " (need root, or CAP_BPF + CAP_PERFMON; run `schedscope doctor`)";
    return make_error("cannot load BPF programs: " + errstr(err) + hint);
  }
  if (Status st = s->map_thread_slots(); !st) return st.error();
  if (cfg.tgid)
    if (auto slot = s->add_target(cfg.tgid); !slot) return slot.error();
  return s;
}

Session::~Session() {
  // Detach every feature first, every link at once (destroy_links); the targets that left
  // before have theirs destroyed by the reaper, waited for here.
  reaper_.wait_all();
  std::vector<Link> links;
  for (auto& a : attachers_) a->take_links(-1, links);
  destroy_links(std::move(links));
  attachers_.clear();
  if (rb_) ring_buffer__free(rb_);
  if (slot_ids_) munmap(slot_ids_, slot_ids_bytes_);
  if (slot_states_) munmap(slot_states_, slot_states_bytes_);
  if (skel_) schedscope_bpf__destroy(skel_);
}

Status Session::attach() {
  for (auto& a : attachers_)
    if (Status st = a->attach(); !st) return make_error("cannot attach BPF programs: " + st.error().message);
  rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &Session::on_record, this, nullptr);
  if (!rb_) return make_error("cannot create ring buffer consumer: " + errstr(errno));
  attached_ = true;
  if (any_traced())  // per target: targets that asked before attach
    if (Status st = syscalls_->need(true); !st) return make_error("cannot attach BPF programs: " + st.error().message);
  return {};
}

// Writes a target's flags into every entry of the kernel's target set that names it.
Status Session::write_flags(uint32_t tgid, uint32_t flags) {
  auto slot = slot_of(tgid);
  if (!slot) return slot.error();
  ss_target v{*slot, tgid, flags};
  if (ns_ino_) {
    int nfd = bpf_map__fd(skel_->maps.targets_ns);
    if (bpf_map_update_elem(nfd, &tgid, &v, BPF_EXIST) != 0)
      return make_error("cannot update process " + std::to_string(tgid) + " in the targets map: " + errstr(errno));
    // The kernel tgids the BPF side entered for it (resolve_target).
    int fd = bpf_map__fd(skel_->maps.targets);
    uint32_t key = 0, next = 0;
    uint32_t* prev = nullptr;
    std::vector<uint32_t> keys;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      ss_target cur{};
      if (bpf_map_lookup_elem(fd, &next, &cur) == 0 && cur.tgid == tgid) keys.push_back(next);
      key = next;
      prev = &key;
    }
    for (uint32_t k : keys) bpf_map_update_elem(fd, &k, &v, BPF_EXIST);
  } else if (bpf_map_update_elem(bpf_map__fd(skel_->maps.targets), &tgid, &v, BPF_EXIST) != 0) {
    return make_error("cannot update process " + std::to_string(tgid) + " in the targets map: " + errstr(errno));
  }
  flags_[tgid] = flags;
  return {};
}

Status Session::set_all_syscalls(uint32_t tgid, bool on) {
  if (!cfg_.all_syscalls || !cfg_.syscalls_per_target)
    return make_error("the session traces syscalls of every target or of none");
  auto f = flags_.find(tgid);
  if (f == flags_.end()) return make_error("process " + std::to_string(tgid) + " is no target");
  const uint32_t flags = on ? f->second | SS_TGT_ALL_SYSCALLS : f->second & ~SS_TGT_ALL_SYSCALLS;
  if (flags == f->second) return {};
  if (on && attached_)  // the programs first: the flag then takes effect at once
    if (Status st = syscalls_->need(true); !st) return st;
  Status st = write_flags(tgid, flags);
  if (!any_traced()) (void)syscalls_->need(false);  // off, or on but not written
  return st;
}

bool Session::any_traced() const {
  for (const auto& [t, fl] : flags_)
    if (fl & SS_TGT_ALL_SYSCALLS) return true;
  return false;
}

bool Session::all_syscalls(uint32_t tgid) const {
  auto f = flags_.find(tgid);
  return f != flags_.end() && (f->second & SS_TGT_ALL_SYSCALLS) != 0;
}

bool Session::syscalls_attached() const {
  return syscalls_->live();
}

Expected<uint32_t> Session::slot_of(uint32_t tgid) const {
  auto it = targets_.find(tgid);
  if (it == targets_.end()) return make_error("process " + std::to_string(tgid) + " is no target");
  return it->second;
}

// Zeroes a slot's entries in the per-target maps (a slot reused by another process).
void Session::clear_slot(uint32_t slot) {
  auto zero_percpu = [&](bpf_map* m, uint32_t per_target, size_t value_size) {
    std::vector<uint8_t> z(value_size * size_t(ncpus_), 0);
    int fd = bpf_map__fd(m);
    for (uint32_t i = 0; i < per_target; i++) {
      uint32_t k = slot * per_target + i;
      bpf_map_update_elem(fd, &k, z.data(), BPF_ANY);
    }
  };
  // Per-CPU values are rounded up to 8 bytes per CPU.
  auto round8 = [](size_t n) { return (n + 7) & ~size_t(7); };
  zero_percpu(skel_->maps.sc_block, SS_MAX_SYSCALLS, round8(sizeof(ss_sc_stat)));
  zero_percpu(skel_->maps.sc_all, SS_MAX_SYSCALLS, round8(sizeof(ss_sc_stat)));
  zero_percpu(skel_->maps.rq_hist, SS_HIST_BUCKETS, sizeof(uint64_t));
  zero_percpu(skel_->maps.go_hits, SS_GOHIT_SLOTS, sizeof(uint64_t));
  zero_percpu(skel_->maps.annot_hits, SS_ANNOT_KINDS, sizeof(uint64_t));
  ss_sc_seen none{};
  bpf_map_update_elem(bpf_map__fd(skel_->maps.sc_seen), &slot, &none, BPF_ANY);
  ss_go_offsets go{};
  bpf_map_update_elem(bpf_map__fd(skel_->maps.go_cfg), &slot, &go, BPF_ANY);
  ss_gc_cfg gc{};
  bpf_map_update_elem(bpf_map__fd(skel_->maps.gc_cfg), &slot, &gc, BPF_ANY);
  gc_->close_gate(slot);
}

// bpf/common.bpf.h: SS_TARGET_BITS, the bits of target_bits.
constexpr uint32_t kTargetBits = 65536;
static_assert(sizeof(static_cast<schedscope_bpf*>(nullptr)->bss->target_bits) * 8 == kTargetBits);

Expected<uint32_t> Session::add_target(uint32_t tgid) {
  if (!tgid) return make_error("no process id");
  if (targets_.count(tgid)) return make_error("process " + std::to_string(tgid) + " is a target already");
  reaper_.wait(int(tgid));  // back soon after it left: its old uprobes go first
  uint32_t slot = 0;
  while (slot < cfg_.max_targets) {
    bool taken = false;
    for (const auto& [t, sl] : targets_) taken |= sl == slot;
    if (!taken) break;
    slot++;
  }
  if (slot >= cfg_.max_targets)
    return make_error("the session observes " + std::to_string(cfg_.max_targets) +
                      " process(es) already");
  if (slot_used_[slot]) clear_slot(slot);
  slot_used_[slot] = true;
  // -S of top and record: every target; per target (the agent): set_all_syscalls().
  const uint32_t flags = cfg_.all_syscalls && !cfg_.syscalls_per_target ? SS_TGT_ALL_SYSCALLS : 0;
  ss_target v{slot, tgid, flags};
  // In the initial PID namespace the kernel's tgid is ours; in a child namespace the BPF
  // side finds the kernel's tgid itself, at the target's first event (resolve_target).
  bpf_map* m = ns_ino_ ? skel_->maps.targets_ns : skel_->maps.targets;
  if (bpf_map_update_elem(bpf_map__fd(m), &tgid, &v, BPF_NOEXIST) != 0)
    return make_error("cannot add process " + std::to_string(tgid) + " to the targets map: " +
                      errstr(errno));
  if (ns_ino_) {
    __atomic_fetch_add(&skel_->bss->targets_unresolved, 1, __ATOMIC_SEQ_CST);
  } else {  // the filter's Bloom bit (common.bpf.h: maybe_target); in a namespace BPF sets it
    const uint32_t i = tgid % kTargetBits;
    __atomic_fetch_or(&skel_->bss->target_bits[i / 64], uint64_t(1) << (i % 64), __ATOMIC_SEQ_CST);
  }
  targets_[tgid] = slot;
  flags_[tgid] = flags;
  return slot;
}

Status Session::remove_target(uint32_t tgid) {
  auto slot = slot_of(tgid);
  if (!slot) return slot.error();
  if (ns_ino_) bpf_map_delete_elem(bpf_map__fd(skel_->maps.targets_ns), &tgid);
  // Every kernel tgid entered for it (the one key in the initial namespace).
  int fd = bpf_map__fd(skel_->maps.targets);
  std::vector<uint32_t> keys;
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    ss_target v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0 && v.tgid == tgid) keys.push_back(next);
    key = next;
    prev = &key;
  }
  for (uint32_t k : keys) bpf_map_delete_elem(fd, &k);
  if (ns_ino_ && keys.empty())  // never seen by the BPF side: no longer looked for
    __atomic_fetch_sub(&skel_->bss->targets_unresolved, 1, __ATOMIC_SEQ_CST);
  std::vector<Link> links;  // what was attached for it, destroyed on the reaper's thread
  for (auto& a : attachers_) a->take_links(int(tgid), links);
  reaper_.later(int(tgid), std::move(links));
  // Its entries are gone: its programs, still attached a moment, return at the filter and
  // leave the gate alone (clear_slot closes it again when the slot is taken).
  gc_->close_gate(*slot);
  targets_.erase(tgid);
  const bool traced = all_syscalls(tgid);
  flags_.erase(tgid);
  if (traced && !any_traced()) (void)syscalls_->need(false);  // the last one traced (on demand)
  return {};
}

std::vector<uint32_t> Session::targets() const {
  std::vector<uint32_t> out;
  for (const auto& [t, slot] : targets_) out.push_back(t);
  return out;
}

int Session::on_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<Session*>(ctx);
  if (size < sizeof(ss_hdr) || !self->cur_fn_) return 0;
  (*self->cur_fn_)(static_cast<const ss_hdr*>(data), size);
  return 0;
}

Expected<int> Session::poll(int timeout_ms, const EventFn& fn) {
  cur_fn_ = &fn;
  int n = timeout_ms > 0 ? ring_buffer__poll(rb_, timeout_ms) : ring_buffer__consume(rb_);
  // The BPF side submits without waking us (submit() in common.bpf.h): a poll that timed
  // out still drains what arrived meanwhile.
  if (timeout_ms > 0 && n >= 0) {
    int m = ring_buffer__consume(rb_);
    n = m < 0 ? m : n + m;
  }
  cur_fn_ = nullptr;
  if (n < 0 && n != -EINTR) return make_error("ring buffer poll failed: " + errstr(n));
  return n < 0 ? 0 : n;
}

namespace {

ss_sc_stat sum_sc(const ss_sc_stat* per, int ncpus) {
  ss_sc_stat sum{};
  for (int c = 0; c < ncpus; c++) {
    const ss_sc_stat& p = per[c];
    sum.count += p.count;
    sum.total_ns += p.total_ns;
    sum.max_ns = std::max(sum.max_ns, p.max_ns);
    for (int b = 0; b < SS_HIST_BUCKETS; b++) sum.hist[b] += p.hist[b];
  }
  return sum;
}

// A batch operation the kernel does not have (before 5.6) or refuses for this map type.
// (ENOTSUPP, 524, is the kernel's own "not supported", not in the userspace headers.)
bool batch_unsupported(int err) { return err == -EINVAL || err == -524 || err == -EOPNOTSUPP || err == -ENOSYS; }

// The bytes the kernel maps of an mmapable array: its elements (8-byte aligned), whole pages.
size_t array_map_bytes(const bpf_map* m) {
  const size_t elem = (size_t(bpf_map__value_size(m)) + 7) / 8 * 8;
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return (elem * bpf_map__max_entries(m) + page - 1) / page * page;
}

}  // namespace

Status Session::map_thread_slots() {
  auto map = [](bpf_map* m, size_t& bytes) -> void* {
    bytes = array_map_bytes(m);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);
    return p == MAP_FAILED ? nullptr : p;
  };
  slot_ids_ = static_cast<ss_thread_slot_id*>(map(skel_->maps.thread_ids, slot_ids_bytes_));
  if (!slot_ids_) return make_error("cannot map the per-thread state slots: " + errstr(errno));
  slot_states_ = static_cast<ss_thread_state*>(map(skel_->maps.thread_slots, slot_states_bytes_));
  if (!slot_states_) return make_error("cannot map the per-thread state slots: " + errstr(errno));
  return {};
}

// Slot i, read in place into `out` when a thread of `tgid` holds it. A slot taken or freed
// meanwhile is read as it was before or after; one being taken (holder set, tid not yet)
// waits for the next snapshot. False when no thread of `tgid` holds it.
bool Session::read_slot(uint32_t i, uint32_t tgid, std::vector<ThreadEntry>& out) const {
  const uint64_t id = __atomic_load_n(&slot_ids_[i].id, __ATOMIC_ACQUIRE);
  if (!id) return false;
  const uint32_t tid = __atomic_load_n(&slot_ids_[i].tid, __ATOMIC_ACQUIRE);
  if (!tid || __atomic_load_n(&slot_states_[i].tgid, __ATOMIC_RELAXED) != tgid) return false;
  ThreadEntry e{tid, {}};
  std::memcpy(&e.st, &slot_states_[i], sizeof e.st);
  if (e.st.tgid != tgid || __atomic_load_n(&slot_ids_[i].id, __ATOMIC_ACQUIRE) != id) return false;
  out.push_back(e);
  return true;
}

// Every thread of `tgid` that holds a slot: in a round, of the slots its pass found; else
// of all of them.
void Session::read_thread_slots(uint32_t tgid, std::vector<ThreadEntry>& out) const {
  if (in_round_) {
    auto it = round_slots_.find(tgid);
    if (it != round_slots_.end())
      for (uint32_t i : it->second) (void)read_slot(i, tgid, out);
    return;
  }
  for (uint32_t i = 0; i < cfg_.thread_slots; i++) (void)read_slot(i, tgid, out);
}

void Session::begin_round() {
  for (auto& [tgid, slots] : round_slots_) slots.clear();  // (their capacity stays)
  for (uint32_t i = 0; i < cfg_.thread_slots; i++) {
    if (!__atomic_load_n(&slot_ids_[i].id, __ATOMIC_ACQUIRE) ||
        !__atomic_load_n(&slot_ids_[i].tid, __ATOMIC_ACQUIRE))
      continue;
    const uint32_t tgid = __atomic_load_n(&slot_states_[i].tgid, __ATOMIC_RELAXED);
    if (targets_.count(tgid)) round_slots_[tgid].push_back(i);
  }
  for (auto it = round_slots_.begin(); it != round_slots_.end();)  // (targets removed since)
    it = targets_.count(it->first) ? std::next(it) : round_slots_.erase(it);
  in_round_ = true;
}

void Session::end_round() { in_round_ = false; }

// Every thread of `tgid` in the threads hash map, a few hundred entries per syscall. False
// when the kernel has no batch lookup (the caller then iterates).
bool Session::read_threads_batch(uint32_t tgid, std::vector<ThreadEntry>& out) {
  const int fd = bpf_map__fd(skel_->maps.threads);
  size_t cap = std::max<size_t>(batch_keys_.size(), 256);
  uint32_t token = 0;
  bool first = true;
  for (;;) {
    if (batch_keys_.size() < cap) batch_keys_.resize(cap);
    if (batch_threads_.size() < cap) batch_threads_.resize(cap);
    __u32 count = uint32_t(cap);
    uint32_t next = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &token, &next, batch_keys_.data(),
                                   batch_threads_.data(), &count, &opts);
    if (err < 0 && err != -ENOENT) {
      if (err == -ENOSPC) {  // one hash bucket holds more than the buffer: a bigger one
        cap *= 2;
        continue;
      }
      if (first && batch_unsupported(err)) return false;
      break;  // a failed read in between: what was read so far
    }
    for (__u32 i = 0; i < count; i++)
      if (batch_threads_[i].tgid == tgid) out.push_back({batch_keys_[i], batch_threads_[i]});
    if (err == -ENOENT) break;  // the end of the map
    token = next;
    first = false;
  }
  return true;
}

// Keys first .. first + n - 1 of a per-CPU array into batch_percpu_ (n x ncpus values of
// value_size bytes, 8-byte aligned per CPU). False when the kernel has no batch lookup.
bool Session::read_percpu_range(int fd, uint32_t first, uint32_t n, size_t value_size) {
  const size_t stride = (value_size + 7) / 8 * 8;
  batch_percpu_.assign(size_t(n) * size_t(ncpus_) * stride, 0);
  if (batch_keys_.size() < n) batch_keys_.resize(n);
  uint32_t token = first ? first - 1 : 0, next = 0;  // the batch starts after the token's key
  uint32_t done = 0;
  while (done < n) {
    __u32 count = n - done;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first + done ? &token : nullptr, &next, batch_keys_.data() + done,
                                   batch_percpu_.data() + size_t(done) * size_t(ncpus_) * stride,
                                   &count, &opts);
    if (err < 0 && err != -ENOENT) return done == 0 && batch_unsupported(err) ? false : true;
    done += count;
    if (err == -ENOENT || count == 0) break;
    token = next;
  }
  return true;
}

// The syscalls of the target in `slot` (keys slot * SS_MAX_SYSCALLS + nr) that `seen`
// has (all of them when null): each run of consecutive numbers in one batch.
void Session::read_sc(int fd, uint32_t slot, const ss_sc_seen* seen, std::vector<SyscallAgg>& out) {
  const uint32_t base = slot * SS_MAX_SYSCALLS;
  static_assert(sizeof(ss_sc_stat) % 8 == 0, "per-CPU values are 8-byte aligned");
  auto has = [seen](uint32_t nr) { return !seen || (seen->bits[nr / 64] >> (nr % 64) & 1); };
  const size_t had = out.size();
  uint32_t first = 0;
  while (batch_ok_ && first < SS_MAX_SYSCALLS) {
    if (!has(first)) {
      first++;
      continue;
    }
    uint32_t n = 1;
    while (first + n < SS_MAX_SYSCALLS && has(first + n)) n++;
    if (!read_percpu_range(fd, base + first, n, sizeof(ss_sc_stat))) {
      batch_ok_ = false;  // element by element below, from the start
      out.resize(had);
      break;
    }
    const auto* all = reinterpret_cast<const ss_sc_stat*>(batch_percpu_.data());
    for (uint32_t i = 0; i < n; i++) {
      ss_sc_stat sum = sum_sc(all + size_t(i) * size_t(ncpus_), ncpus_);
      if (sum.count) out.push_back({int(first + i), sum});
    }
    first += n;
  }
  if (batch_ok_) return;
  std::vector<ss_sc_stat> per(ncpus_);
  for (uint32_t nr = 0; nr < SS_MAX_SYSCALLS; nr++) {
    uint32_t k = base + nr;
    if (!has(nr) || bpf_map_lookup_elem(fd, &k, per.data()) != 0) continue;
    ss_sc_stat sum = sum_sc(per.data(), ncpus_);
    if (sum.count) out.push_back({int(nr), sum});
  }
}

// (-S) What each CPU still holds of the calls of the thread on it (struct ss_sc_cpu: the
// calls it completed since its last switch-out, and the one in flight), added to the
// entries read before: a thread that stays on its CPU is counted at every snapshot. Read
// after the entries, so that a switch-out in between delays calls by one snapshot and
// never counts them twice (the model keeps a thread's count from going back meanwhile).
// A CPU whose thread left without its switch-out taking the calls keeps them until the
// next call there: they are the same thread's, added too.
void Session::add_sc_cpu(std::vector<ThreadEntry>& threads) {
  std::vector<ss_sc_cpu> per(static_cast<size_t>(ncpus_));
  static_assert(sizeof(ss_sc_cpu) % 8 == 0, "per-CPU values are 8-byte aligned");
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.sc_cpu), &zero, per.data()) != 0) return;
  std::unordered_map<uint32_t, ss_sc_cpu> on_cpu;
  for (const auto& c : per) {
    if (!c.tid) continue;
    auto [it, fresh] = on_cpu.try_emplace(c.tid, c);
    if (fresh) continue;
    it->second.pending += c.pending;
    if (c.enter_ns > it->second.enter_ns) {  // the latest call in flight
      it->second.enter_ns = c.enter_ns;
      it->second.nr = c.nr;
    }
  }
  if (on_cpu.empty()) return;
  for (auto& t : threads) {
    auto it = on_cpu.find(t.tid);
    if (it == on_cpu.end()) continue;
    const ss_sc_cpu& c = it->second;
    t.st.sc_count += c.pending;
    if (c.enter_ns && !t.st.sc_enter_ns) {
      t.st.sc_nr = c.nr;
      t.st.sc_enter_ns = c.enter_ns;
    }
  }
}

Expected<KernelSnapshot> Session::snapshot(uint32_t tgid) {
  auto slot = slot_of(tgid);
  if (!slot) return slot.error();
  KernelSnapshot snap;
  snap.ts_ns = monotonic_ns();
  // The hash holds nothing while its count (never fewer than its entries) is 0: an entry
  // made after this load is one made after the snapshot.
  const bool hash_empty = __atomic_load_n(&skel_->bss->hash_threads, __ATOMIC_ACQUIRE) <= 0;
  if (!hash_empty && (!batch_ok_ || !read_threads_batch(tgid, snap.threads))) {
    batch_ok_ = false;
    int tfd = bpf_map__fd(skel_->maps.threads);
    uint32_t key = 0, next = 0;
    uint32_t* prev = nullptr;
    while (bpf_map_get_next_key(tfd, prev, &next) == 0) {
      ThreadEntry e{next, {}};
      if (bpf_map_lookup_elem(tfd, &next, &e.st) == 0 && e.st.tgid == tgid) snap.threads.push_back(e);
      key = next;
      prev = &key;
    }
  }
  // Then the slots. A thread in both: its entry moved from the hash to its slot since, or
  // (another PID namespace) was seeded into the hash as the kernel made its slot's. The
  // slot's is the newer, and the hash's goes.
  const size_t in_hash = snap.threads.size();
  read_thread_slots(tgid, snap.threads);
  snap.threads_in_slots = uint32_t(snap.threads.size() - in_hash);
  if (in_hash && snap.threads.size() > in_hash) {
    std::unordered_set<uint32_t> slotted;
    for (size_t i = in_hash; i < snap.threads.size(); i++) slotted.insert(snap.threads[i].tid);
    std::vector<ThreadEntry> merged;
    merged.reserve(snap.threads.size());
    for (size_t i = 0; i < snap.threads.size(); i++) {
      const uint32_t tid = snap.threads[i].tid;
      if (i < in_hash && slotted.count(tid)) {
        delete_hash_thread(tid);
        continue;
      }
      merged.push_back(snap.threads[i]);
    }
    snap.threads = std::move(merged);
  }
  if (all_syscalls(tgid)) add_sc_cpu(snap.threads);
  // The numbers seen first: a number noted after this read waits for the next snapshot.
  ss_sc_seen seen{};
  const bool seen_ok = bpf_map_lookup_elem(bpf_map__fd(skel_->maps.sc_seen), &*slot, &seen) == 0;
  read_sc(bpf_map__fd(skel_->maps.sc_block), *slot, seen_ok ? &seen : nullptr, snap.sc_block);
  if (all_syscalls(tgid))
    read_sc(bpf_map__fd(skel_->maps.sc_all), *slot, seen_ok ? &seen : nullptr, snap.sc_all);
  std::vector<uint64_t> per(ncpus_);
  int hfd = bpf_map__fd(skel_->maps.rq_hist);
  if (batch_ok_ && read_percpu_range(hfd, *slot * SS_HIST_BUCKETS, SS_HIST_BUCKETS, sizeof(uint64_t))) {
    const auto* all = reinterpret_cast<const uint64_t*>(batch_percpu_.data());
    for (uint32_t b = 0; b < SS_HIST_BUCKETS; b++)
      for (int c = 0; c < ncpus_; c++) snap.rq_hist[b] += all[size_t(b) * size_t(ncpus_) + size_t(c)];
  } else {
    batch_ok_ = false;
    for (uint32_t b = 0; b < SS_HIST_BUCKETS; b++) {
      uint32_t k = *slot * SS_HIST_BUCKETS + b;
      if (bpf_map_lookup_elem(hfd, &k, per.data()) != 0) continue;
      for (auto v : per) snap.rq_hist[b] += v;
    }
  }
  uint32_t zero = 0;
  snap.drops_per_cpu.assign(ncpus_, 0);
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.drops), &zero, snap.drops_per_cpu.data()) == 0)
    for (auto v : snap.drops_per_cpu) snap.drops += v;
  if (cfg_.goroutines) {
    int gfd = bpf_map__fd(skel_->maps.go_hits);
    for (uint32_t w = 0; w < SS_GOHIT_SLOTS; w++) {
      uint32_t k = *slot * SS_GOHIT_SLOTS + w;
      if (bpf_map_lookup_elem(gfd, &k, per.data()) != 0) continue;
      uint64_t sum = 0;
      for (auto v : per) sum += v;
      (w == SS_GOHIT_CREATE ? snap.go_create_hits : snap.go_exit_hits) = sum;
    }
  }
  return snap;
}

Status Session::set_go_offsets(uint32_t tgid, const ss_go_offsets& off) {
  auto slot = slot_of(tgid);
  if (!slot) return slot.error();
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.go_cfg), &*slot, &off, BPF_ANY) != 0)
    return make_error("cannot write Go offsets map: " + errstr(errno));
  return {};
}

void Session::seed_thread(uint32_t tid, const ss_thread_state& st) {
  // An entry the kernel made since attach (the thread switched) is newer: it stays.
  const uint32_t mask = cfg_.thread_slots - 1;
  if (!ns_ino_) {
    // The ids are the kernel's: into the thread's slot, when no other thread holds it.
    const uint32_t i = tid & mask;
    const uint64_t id = uint64_t(st.tgid) << 32 | tid;
    uint64_t free_id = 0;
    if (__atomic_load_n(&slot_ids_[i].id, __ATOMIC_ACQUIRE) == id) return;
    if (__atomic_compare_exchange_n(&slot_ids_[i].id, &free_id, id, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST)) {
      std::memcpy(&slot_states_[i], &st, sizeof st);
      __atomic_store_n(&slot_ids_[i].tid, tid, __ATOMIC_RELEASE);
      return;
    }
  } else if (slot_held_by(tid)) {
    return;
  }
  __atomic_fetch_add(&skel_->bss->hash_threads, 1, __ATOMIC_SEQ_CST);  // before: never fewer
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.threads), &tid, &st, BPF_NOEXIST) != 0)
    __atomic_fetch_sub(&skel_->bss->hash_threads, 1, __ATOMIC_SEQ_CST);
}

void Session::delete_hash_thread(uint32_t tid) {
  if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.threads), &tid) == 0)
    __atomic_fetch_sub(&skel_->bss->hash_threads, 1, __ATOMIC_SEQ_CST);
}

// The slot thread `tid` (as the observer names it) holds: in the initial PID namespace the
// tid is the kernel's, which names the slot; in another one, whichever slot holds that tid.
std::optional<uint32_t> Session::slot_held_by(uint32_t tid) const {
  const uint32_t mask = cfg_.thread_slots - 1;
  const uint32_t first = ns_ino_ ? 0 : tid & mask, last = ns_ino_ ? mask : tid & mask;
  for (uint32_t i = first; i <= last; i++)
    if (__atomic_load_n(&slot_ids_[i].tid, __ATOMIC_ACQUIRE) == tid) return i;
  return std::nullopt;
}

void Session::forget_thread(uint32_t tid) {
  delete_hash_thread(tid);
  if (auto i = slot_held_by(tid)) {
    __atomic_store_n(&slot_ids_[*i].tid, 0u, __ATOMIC_RELEASE);
    __atomic_store_n(&slot_ids_[*i].id, uint64_t(0), __ATOMIC_RELEASE);
  }
}

std::vector<std::string> Session::attached_programs() const {
  std::vector<std::string> out;
  bpf_program* p = nullptr;
  bpf_object__for_each_program(p, skel_->obj) {
    for (const auto& a : attachers_)
      if (a->attached(p)) {
        out.emplace_back(bpf_program__name(p));
        break;
      }
  }
  return out;
}

Status Session::attach_gc(int pid, const GcProbeTargets& t) {
  auto slot = slot_of(uint32_t(pid));
  if (!slot) return slot.error();
  return gc_->attach_gc(pid, *slot, t);
}

uint64_t Session::gc_gate(uint32_t tgid) const {
  auto slot = slot_of(tgid);
  return slot ? gc_->gate(*slot) : 0;
}

Status Session::set_gc_cfg(uint32_t tgid, const ss_gc_cfg& cfg) {
  auto slot = slot_of(tgid);
  if (!slot) return slot.error();
  return gc_->set_cfg(*slot, cfg);
}

uint64_t Session::annotation_hits(uint32_t tgid) const {
  auto slot = slot_of(tgid);
  if (!cfg_.annotations || !slot) return 0;
  int fd = bpf_map__fd(skel_->maps.annot_hits);
  uint64_t sum = 0;
  std::vector<uint64_t> v(static_cast<size_t>(ncpus_));
  for (uint32_t kind = 1; kind < SS_ANNOT_KINDS; kind++) {
    uint32_t k = *slot * SS_ANNOT_KINDS + kind;
    if (bpf_map_lookup_elem(fd, &k, v.data()) != 0) continue;
    for (uint64_t x : v) sum += x;
  }
  return sum;
}

std::vector<ss_usdt_count> Session::usdt_counts() const {
  std::vector<ss_usdt_count> out;
  if (!usdt_->any()) return out;
  int fd = bpf_map__fd(skel_->maps.usdt_counts);
  ss_usdt_key key{}, next{};
  ss_usdt_key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    uint64_t v = 0;
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) {
      ss_usdt_count c{};
      c.h.type = SS_EV_USDT_COUNT;
      c.h.size = sizeof c;
      c.tid = next.tid;
      c.probe = next.probe;
      c.count = v;
      out.push_back(c);
    }
    key = next;
    prev = &key;
  }
  return out;
}

void Session::forget_usdt_thread(uint32_t tid, uint32_t nprobes) {
  if (!usdt_->any()) return;
  int fd = bpf_map__fd(skel_->maps.usdt_counts);
  for (uint32_t p = 0; p < nprobes; p++) {
    ss_usdt_key k{tid, p};
    bpf_map_delete_elem(fd, &k);
  }
}

}  // namespace schedscope::probe
