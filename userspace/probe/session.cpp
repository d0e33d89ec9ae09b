#include "probe/session.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
  std::unique_ptr<Session> s(new Session(cfg));
  s->ncpus_ = libbpf_num_possible_cpus();
  if (s->ncpus_ <= 0) s->ncpus_ = 1;
  s->skel_ = schedscope_bpf__open();
  if (!s->skel_) return make_error("cannot open BPF object: " + errstr(errno));
  auto* skel = s->skel_;
  skel->rodata->targ_tgid = cfg.tgid;
  auto ns = observer_pid_namespace();
  if (!ns) return ns.error();
  skel->rodata->ns_ino = ns->ino;
  skel->rodata->offcpu_min_ns = cfg.offcpu_min_ns;
  skel->rodata->slow_syscall_ns = cfg.slow_syscall_ns;
  skel->rodata->capture_stacks = cfg.capture_stacks ? 1 : 0;
  bpf_map__set_max_entries(skel->maps.events, uint32_t(s->cfg_.ringbuf_bytes));
  bpf_program__set_autoload(skel->progs.ss_sys_enter, cfg.all_syscalls);
  bpf_program__set_autoload(skel->progs.ss_sys_exit, cfg.all_syscalls);
  // Attached by hand (attach_go_uprobes), never by the skeleton.
  bpf_program__set_autoload(skel->progs.ss_go_newproc1_ret, cfg.goroutines);
  bpf_program__set_autoload(skel->progs.ss_go_exit, cfg.goroutines);
  bpf_program__set_autoattach(skel->progs.ss_go_newproc1_ret, false);
  bpf_program__set_autoattach(skel->progs.ss_go_exit, false);
  bpf_program__set_autoattach(skel->progs.ss_usdt, false);  // attach_usdt()
  // GC uprobes and sampler: attached by hand (attach_gc, gc_session.cpp).
  for (auto* p : {skel->progs.ss_gc_stw_stop, skel->progs.ss_gc_stw_start,
                  skel->progs.ss_gc_markterm, skel->progs.ss_gc_sampler})
    bpf_program__set_autoattach(p, false);
  if (int err = schedscope_bpf__load(skel); err) {
    std::string hint;
    if (err == -EPERM || errno == EPERM)
      hint = " (need root, or CAP_BPF + CAP_PERFMON; run `schedscope doctor`)";
    return make_error("cannot load BPF programs: " + errstr(err) + hint);
  }
  return s;
}

Session::~Session() {
  for (auto* l : go_links_) bpf_link__destroy(l);
  for (auto* l : usdt_links_) bpf_link__destroy(l);
  for (auto* l : gc_links_) bpf_link__destroy(l);
  // (the perf event fds are owned and closed by their links)
  if (rb_) ring_buffer__free(rb_);
  if (skel_) schedscope_bpf__destroy(skel_);
}

Status Session::attach() {
  if (int err = schedscope_bpf__attach(skel_); err)
    return make_error("cannot attach BPF programs: " + errstr(err));
  rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &Session::on_record, this, nullptr);
  if (!rb_) return make_error("cannot create ring buffer consumer: " + errstr(errno));
  return {};
}

Status Session::attach_go_uprobes(int pid, const GoUprobeTargets& t) {
  if (!cfg_.goroutines) return make_error("goroutine uprobes were not loaded (--goroutines)");
  if (!go_links_.empty()) return {};
  if (t.create_offsets.empty() || t.exit_offset == 0)
    return make_error("no probe offsets for runtime.newproc1 / gdestroy");
  auto one = [&](bpf_program* prog, uint64_t off) -> Status {
    LIBBPF_OPTS(bpf_uprobe_opts, o);
    o.retprobe = false;
    bpf_link* l = bpf_program__attach_uprobe_opts(prog, pid, t.path.c_str(), size_t(off), &o);
    if (!l) {
      int err = errno;
      char buf[64];
      snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(off));
      return make_error(std::string("cannot attach uprobe ") + bpf_program__name(prog) + " at " +
                        t.path + "+" + buf + ": " + errstr(err));
    }
    go_links_.push_back(l);
    return {};
  };
  Status st = one(skel_->progs.ss_go_exit, t.exit_offset);
  for (size_t i = 0; st && i < t.create_offsets.size(); i++)
    st = one(skel_->progs.ss_go_newproc1_ret, t.create_offsets[i]);
  if (!st) {
    for (auto* l : go_links_) bpf_link__destroy(l);
    go_links_.clear();
  }
  return st;
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

void read_sc_array(int fd, int ncpus, std::vector<SyscallAgg>& out) {
  std::vector<ss_sc_stat> per(ncpus);
  for (uint32_t k = 0; k < SS_MAX_SYSCALLS; k++) {
    if (bpf_map_lookup_elem(fd, &k, per.data()) != 0) continue;
    ss_sc_stat sum{};
    for (const auto& p : per) {
      sum.count += p.count;
      sum.total_ns += p.total_ns;
      sum.max_ns = std::max(sum.max_ns, p.max_ns);
      for (int b = 0; b < SS_HIST_BUCKETS; b++) sum.hist[b] += p.hist[b];
    }
    if (sum.count) out.push_back({int(k), sum});
  }
}

}  // namespace

Expected<KernelSnapshot> Session::snapshot() {
  KernelSnapshot snap;
  snap.ts_ns = monotonic_ns();
  int tfd = bpf_map__fd(skel_->maps.threads);
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(tfd, prev, &next) == 0) {
    ThreadEntry e{next, {}};
    if (bpf_map_lookup_elem(tfd, &next, &e.st) == 0) snap.threads.push_back(e);
    key = next;
    prev = &key;
  }
  read_sc_array(bpf_map__fd(skel_->maps.sc_block), ncpus_, snap.sc_block);
  if (cfg_.all_syscalls) read_sc_array(bpf_map__fd(skel_->maps.sc_all), ncpus_, snap.sc_all);
  std::vector<uint64_t> per(ncpus_);
  int hfd = bpf_map__fd(skel_->maps.rq_hist);
  for (uint32_t b = 0; b < SS_HIST_BUCKETS; b++) {
    if (bpf_map_lookup_elem(hfd, &b, per.data()) != 0) continue;
    for (auto v : per) snap.rq_hist[b] += v;
  }
  uint32_t zero = 0;
  snap.drops_per_cpu.assign(ncpus_, 0);
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.drops), &zero, snap.drops_per_cpu.data()) == 0)
    for (auto v : snap.drops_per_cpu) snap.drops += v;
  if (cfg_.goroutines) {
    int gfd = bpf_map__fd(skel_->maps.go_hits);
    for (uint32_t k = 0; k < SS_GOHIT_SLOTS; k++) {
      if (bpf_map_lookup_elem(gfd, &k, per.data()) != 0) continue;
      uint64_t sum = 0;
      for (auto v : per) sum += v;
      (k == SS_GOHIT_CREATE ? snap.go_create_hits : snap.go_exit_hits) = sum;
    }
  }
  return snap;
}

Status Session::set_go_offsets(const ss_go_offsets& off) {
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.go_cfg), &zero, &off, BPF_ANY) != 0)
    return make_error("cannot write Go offsets map: " + errstr(errno));
  return {};
}

void Session::seed_thread(uint32_t tid, const ss_thread_state& st) {
  bpf_map_update_elem(bpf_map__fd(skel_->maps.threads), &tid, &st, BPF_NOEXIST);
}

void Session::forget_thread(uint32_t tid) {
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.threads), &tid);
}

std::vector<std::string> Session::attached_programs() const {
  std::vector<std::string> out;
  bpf_program* p = nullptr;
  bpf_object__for_each_program(p, skel_->obj) {
    if (p == skel_->progs.ss_usdt && usdt_links_.empty()) continue;  // nothing attached
    if (bpf_program__autoload(p)) out.emplace_back(bpf_program__name(p));
  }
  return out;
}

Expected<size_t> Session::attach_usdt(int pid, const std::string& path, const std::string& provider,
                                      const std::string& name, uint32_t probe,
                                      const ss_usdt_cfg& cfg) {
  if (probe >= SS_USDT_MAX_PROBES)
    return make_error("too many USDT probes (at most " + std::to_string(SS_USDT_MAX_PROBES) + ")");
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.usdt_cfg), &probe, &cfg, BPF_ANY) != 0)
    return make_error("cannot write usdt_cfg: " + errstr(errno));
  LIBBPF_OPTS(bpf_usdt_opts, o);
  o.usdt_cookie = probe;
  bpf_link* l = bpf_program__attach_usdt(skel_->progs.ss_usdt, pid, path.c_str(), provider.c_str(),
                                         name.c_str(), &o);
  if (!l) {
    int err = errno;
    return make_error("cannot attach USDT " + provider + ":" + name + " in " + path + ": " +
                      errstr(err));
  }
  usdt_links_.push_back(l);
  return size_t(1);
}

std::vector<ss_usdt_count> Session::usdt_counts() const {
  std::vector<ss_usdt_count> out;
  if (usdt_links_.empty()) return out;
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
  if (usdt_links_.empty()) return;
  int fd = bpf_map__fd(skel_->maps.usdt_counts);
  for (uint32_t p = 0; p < nprobes; p++) {
    ss_usdt_key k{tid, p};
    bpf_map_delete_elem(fd, &k);
  }
}

}  // namespace schedscope::probe
