#include "probe/attacher.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <thread>
#include <type_traits>

#include "schedscope.skel.h"
#include "util/hex.h"

namespace schedscope::probe {

void LinkDeleter::operator()(bpf_link* l) const { bpf_link__destroy(l); }

void destroy_links(std::vector<Link> links) {
  // Up to 64 threads, each destroying every n-th link: they wait in the kernel, not on a CPU.
  const size_t n = std::min<size_t>(links.size(), 64);
  if (n <= 1) return;  // one link (or none): destroyed on return
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n; t++) {
    try {
      threads.emplace_back([&links, t, n] {
        for (size_t i = t; i < links.size(); i += n) links[i].reset();
      });
    } catch (const std::system_error&) {  // no thread: the rest goes on return, in order
      for (size_t i = t; i < links.size(); i += n) links[i].reset();
    }
  }
  for (auto& th : threads) th.join();
}

LinkReaper::~LinkReaper() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void LinkReaper::later(int pid, std::vector<Link> links) {
  if (links.empty()) return;
  std::unique_lock<std::mutex> lk(mu_);
  if (!worker_.joinable()) {
    try {
      worker_ = std::thread([this] { run(); });
    } catch (const std::system_error&) {  // no thread: the caller waits, as before
      lk.unlock();
      destroy_links(std::move(links));
      return;
    }
  }
  pending_.insert(pid);
  queue_.emplace_back(pid, std::move(links));
  lk.unlock();
  cv_.notify_all();
}

void LinkReaper::run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    auto [pid, links] = std::move(queue_.front());
    queue_.pop_front();
    lk.unlock();
    destroy_links(std::move(links));
    lk.lock();
    pending_.erase(pending_.find(pid));
    cv_.notify_all();
  }
}

void LinkReaper::wait(int pid) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return pending_.count(pid) == 0; });
}

void LinkReaper::wait_all() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return pending_.empty(); });
}

namespace {
// Moves the links of `pid` (pid < 0: of every process) out of a per-process table.
template <typename ByPid>
void take_from(ByPid& by_pid, int pid, std::vector<Link>& out) {
  for (auto it = by_pid.begin(); it != by_pid.end();) {
    if (pid >= 0 && it->first != pid) {
      ++it;
      continue;
    }
    for (auto& e : it->second) {
      if constexpr (std::is_same_v<std::decay_t<decltype(e)>, Link>) out.push_back(std::move(e));
      else out.push_back(std::move(e.second));
    }
    it = by_pid.erase(it);
  }
}
}  // namespace

namespace {

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

// An entry uprobe of `prog` at file offset `off` of `path`, in process `pid`.
Expected<Link> uprobe(bpf_program* prog, int pid, const std::string& path, uint64_t off) {
  LIBBPF_OPTS(bpf_uprobe_opts, o);
  o.retprobe = false;
  bpf_link* l = bpf_program__attach_uprobe_opts(prog, pid, path.c_str(), size_t(off), &o);
  if (!l) return make_error(errstr(errno));
  return Link(l);
}

template <typename Links>
bool holds(const Links& by_pid, const bpf_program* p) {
  for (const auto& [pid, links] : by_pid)
    for (const auto& [prog, link] : links)
      if (prog == p) return true;
  return false;
}

}  // namespace

// ---------------------------------------------------------------- tracepoints

void TracepointAttacher::configure() {
  for (bpf_program* p : programs()) bpf_program__set_autoload(p, enabled_);
}

Status TracepointAttacher::attach() { return attach_all(); }

Status TracepointAttacher::attach_all() {
  if (!enabled_ || !links_.empty()) return {};
  for (bpf_program* p : programs()) {
    bpf_link* l = bpf_program__attach(p);
    if (!l) {
      int err = errno;
      links_.clear();
      return make_error(std::string("cannot attach ") + bpf_program__name(p) + ": " + errstr(err));
    }
    links_.emplace_back(p, Link(l));
  }
  return {};
}

void TracepointAttacher::take_links(int pid, std::vector<Link>& out) {
  if (pid >= 0) return;  // attached for every process
  for (auto& [p, l] : links_) out.push_back(std::move(l));
  links_.clear();
}

bool TracepointAttacher::attached(const bpf_program* p) const {
  for (const auto& [prog, link] : links_)
    if (prog == p) return true;
  return false;
}

std::vector<bpf_program*> SchedAttacher::programs() const {
  return {skel_.progs.ss_sched_switch, skel_.progs.ss_sched_wakeup, skel_.progs.ss_task_newtask,
          skel_.progs.ss_sched_process_exit};
}

std::vector<bpf_program*> SyscallAttacher::programs() const {
  return {skel_.progs.ss_sys_enter, skel_.progs.ss_sys_exit};
}

std::vector<bpf_program*> ExecAttacher::programs() const { return {skel_.progs.ss_sched_process_exec}; }

// ---------------------------------------------------------------- goroutines

void GoroutineAttacher::configure() {
  bpf_program__set_autoload(skel_.progs.ss_go_newproc1_ret, enabled_);
  bpf_program__set_autoload(skel_.progs.ss_go_exit, enabled_);
}

bool GoroutineAttacher::attached(const bpf_program* p) const { return holds(links_, p); }

void GoroutineAttacher::take_links(int pid, std::vector<Link>& out) { take_from(links_, pid, out); }

size_t GoroutineAttacher::uprobe_count() const {
  size_t n = 0;
  for (const auto& [pid, links] : links_) n += links.size();
  return n;
}

Status GoroutineAttacher::attach_uprobes(int pid, const GoUprobeTargets& t) {
  if (!enabled_) return make_error("goroutine uprobes were not loaded (--goroutines)");
  if (links_.count(pid)) return {};
  if (t.create_offsets.empty()) return make_error("no probe offsets for runtime.newproc1");
  std::vector<std::pair<const bpf_program*, Link>> made;  // destroyed on error
  auto one = [&](bpf_program* prog, uint64_t off) -> Status {
    auto l = uprobe(prog, pid, t.path, off);
    if (!l)
      return make_error(std::string("cannot attach uprobe ") + bpf_program__name(prog) + " at " +
                        t.path + "+" + hex(off) + ": " + l.error().message);
    made.emplace_back(prog, std::move(l.value()));
    return {};
  };
  if (t.exit_offset)  // exact exits asked for: the second trap per goroutine
    if (Status st = one(skel_.progs.ss_go_exit, t.exit_offset); !st) return st;
  for (uint64_t off : t.create_offsets)
    if (Status st = one(skel_.progs.ss_go_newproc1_ret, off); !st) return st;
  links_[pid] = std::move(made);
  return {};
}

// ---------------------------------------------------------------- GC

void GcAttacher::configure() {
  for (auto* p :
       {skel_.progs.ss_gc_stw_stop, skel_.progs.ss_gc_stw_start, skel_.progs.ss_gc_markterm})
    bpf_program__set_autoload(p, enabled_);
}

bool GcAttacher::attached(const bpf_program* p) const { return holds(uprobes_, p); }

void GcAttacher::take_links(int pid, std::vector<Link>& out) {
  take_from(uprobes_, pid, out);
  // Every target detached: each CPU's sampler timer stops at its next tick.
  if (pid < 0 && enabled_) __atomic_store_n(&skel_.bss->gc_sample_period_ns, 0, __ATOMIC_SEQ_CST);
}

uint64_t GcAttacher::sampler_period_ns() const {
  return enabled_ ? __atomic_load_n(&skel_.bss->gc_sample_period_ns, __ATOMIC_SEQ_CST) : 0;
}

std::vector<ss_gc_timer> GcAttacher::sampler_timers() const {
  std::vector<ss_gc_timer> out;
  const int fd = bpf_map__fd(skel_.maps.gc_timers);
  for (uint32_t cpu = 0; fd >= 0 && cpu < uint32_t(ncpus_); cpu++) {
    ss_gc_timer v{};
    if (bpf_map_lookup_elem(fd, &cpu, &v) == 0) out.push_back(v);
  }
  return out;
}

uint64_t GcAttacher::sampler_ticks() const {
  uint64_t n = 0;
  for (const auto& t : sampler_timers()) n += t.ticks;
  return n;
}

bool GcAttacher::sampler_ticking() const {
  for (const auto& t : sampler_timers())
    if (t.armed) return true;
  return false;
}

size_t GcAttacher::uprobe_count() const {
  size_t n = 0;
  for (const auto& [pid, links] : uprobes_) n += links.size();
  return n;
}

Status GcAttacher::set_cfg(uint32_t slot, const ss_gc_cfg& cfg) {
  if (!enabled_) return make_error("the GC programs were not loaded");
  if (bpf_map_update_elem(bpf_map__fd(skel_.maps.gc_cfg), &slot, &cfg, BPF_ANY) != 0)
    return make_error("cannot write gc_cfg: " + errstr(errno));
  return {};
}

// gc_gate holds 0 (closed), 1 (a mark phase, moved by the uprobes) or SS_GC_GATE_ALWAYS;
// gc_gates_open counts the slots whose gate is not 0. Userspace changes a slot's gate only
// when no uprobe of that slot can (before they are attached, or after its process went).
void GcAttacher::close_gate(uint32_t slot) {
  int fd = bpf_map__fd(skel_.maps.gc_gate);
  uint64_t v = 0;
  if (fd < 0 || bpf_map_lookup_elem(fd, &slot, &v) != 0 || !v) return;
  uint64_t zero = 0;
  if (bpf_map_update_elem(fd, &slot, &zero, BPF_ANY) == 0)
    __atomic_fetch_sub(&skel_.bss->gc_gates_open, uint64_t{1}, __ATOMIC_SEQ_CST);
}

void GcAttacher::open_gate_always(uint32_t slot) {
  int fd = bpf_map__fd(skel_.maps.gc_gate);
  uint64_t v = 0;
  if (fd < 0 || bpf_map_lookup_elem(fd, &slot, &v) != 0) return;
  uint64_t always = SS_GC_GATE_ALWAYS;
  if (bpf_map_update_elem(fd, &slot, &always, BPF_ANY) == 0 && !v)
    __atomic_fetch_add(&skel_.bss->gc_gates_open, uint64_t{1}, __ATOMIC_SEQ_CST);
}

uint64_t GcAttacher::gate(uint32_t slot) const {
  uint64_t v = 0;
  (void)bpf_map_lookup_elem(bpf_map__fd(skel_.maps.gc_gate), &slot, &v);
  return v;
}

uint64_t GcAttacher::gates_open() const {
  return __atomic_load_n(&skel_.bss->gc_gates_open, __ATOMIC_SEQ_CST);
}

Status GcAttacher::attach_gc(int pid, uint32_t slot, const GcProbeTargets& t) {
  if (!enabled_) return make_error("the GC programs were not loaded");
  if (uprobes_.count(pid)) return {};
  std::string errors;
  auto add_err = [&](const std::string& e) { errors += (errors.empty() ? "" : "; ") + e; };

  if (Status st = set_cfg(slot, t.cfg); !st) add_err(st.error().message);

  struct Probe {
    bpf_program* prog;
    uint64_t off;
    const char* what;
  };
  // No uprobe of this process is attached (a first attach, or a retry after none took):
  // the gate starts closed. Without both ends of a mark phase the sampler cannot be gated:
  // it reads the target at every tick. Decided before the uprobes can move the gate.
  close_gate(slot);
  if (!t.stw_stop || !t.markterm) open_gate_always(slot);
  auto& mine = uprobes_[pid];
  bool phase_ends_lost = false;
  for (const Probe& p : {Probe{skel_.progs.ss_gc_stw_stop, t.stw_stop, "stopTheWorldWithSema"},
                         Probe{skel_.progs.ss_gc_stw_start, t.stw_start, "startTheWorldWithSema"},
                         Probe{skel_.progs.ss_gc_markterm, t.markterm, "gcMarkTermination"}}) {
    if (!p.off) {
      add_err(std::string("runtime.") + p.what + " not found");
      continue;
    }
    auto l = uprobe(p.prog, pid, t.path, p.off);
    if (!l) {
      add_err(std::string("uprobe runtime.") + p.what + " at " + hex(p.off) + ": " +
              l.error().message);
      if (p.prog != skel_.progs.ss_gc_stw_start) phase_ends_lost = true;
      continue;
    }
    mine.emplace_back(p.prog, std::move(l.value()));
  }

  // One timer per CPU serves every target (gc_sampler.bpf.h); the first attach sets their
  // period, and a target is read once its gc_cfg is enabled (set_cfg).
  std::remove_reference_t<decltype(skel_.bss->gc_sample_period_ns)> none = 0;
  if (t.sample_period_ns)
    __atomic_compare_exchange_n(&skel_.bss->gc_sample_period_ns, &none, t.sample_period_ns, false,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  if (phase_ends_lost) open_gate_always(slot);
  if (mine.empty()) uprobes_.erase(pid);  // nothing attached: a later call tries again
  if (!errors.empty()) return make_error(errors);
  return {};
}

// ---------------------------------------------------------------- annotations

void AnnotationsAttacher::configure() { bpf_program__set_autoload(skel_.progs.ss_annot, enabled_); }

bool AnnotationsAttacher::attached(const bpf_program* p) const {
  if (p != skel_.progs.ss_annot) return false;
  for (const auto& [pid, links] : links_)
    if (!links.empty()) return true;
  return false;
}

void AnnotationsAttacher::take_links(int pid, std::vector<Link>& out) { take_from(links_, pid, out); }
void UsdtProbeAttacher::take_links(int pid, std::vector<Link>& out) { take_from(links_, pid, out); }

size_t AnnotationsAttacher::uprobe_count(int pid) const {
  auto it = links_.find(pid);
  return it == links_.end() ? 0 : it->second.size();
}

Status AnnotationsAttacher::attach_uprobes(int pid, const AnnotationProbeTargets& t) {
  if (!enabled_) return make_error("the annotation uprobe program was not loaded (--annotations)");
  if (links_.count(pid)) return {};
  if (t.offset_kinds.empty()) return make_error("no annotation functions to probe");
  std::vector<Link> made;  // destroyed on error
  for (const auto& [off, kind] : t.offset_kinds) {
    LIBBPF_OPTS(bpf_uprobe_opts, o);
    o.retprobe = false;
    o.bpf_cookie = kind;
    bpf_link* l = bpf_program__attach_uprobe_opts(skel_.progs.ss_annot, pid, t.path.c_str(),
                                                  size_t(off), &o);
    if (!l)
      return make_error("cannot attach the annotation uprobe at " + t.path + "+" + hex(off) + ": " +
                        errstr(errno));
    made.emplace_back(l);
  }
  links_[pid] = std::move(made);
  return {};
}

// ---------------------------------------------------------------- USDT

void UsdtProbeAttacher::configure() { bpf_program__set_autoload(skel_.progs.ss_usdt, enabled_); }

bool UsdtProbeAttacher::any() const {
  for (const auto& [pid, links] : links_)
    if (!links.empty()) return true;
  return false;
}

bool UsdtProbeAttacher::attached(const bpf_program* p) const {
  return p == skel_.progs.ss_usdt && any();
}

Expected<size_t> UsdtProbeAttacher::attach_usdt(int pid, const std::string& path,
                                                const std::string& provider,
                                                const std::string& name, uint32_t probe,
                                                const ss_usdt_cfg& cfg) {
  if (!enabled_) return make_error("the USDT program was not loaded");
  if (probe >= SS_USDT_MAX_PROBES)
    return make_error("too many USDT probes (at most " + std::to_string(SS_USDT_MAX_PROBES) + ")");
  if (bpf_map_update_elem(bpf_map__fd(skel_.maps.usdt_cfg), &probe, &cfg, BPF_ANY) != 0)
    return make_error("cannot write usdt_cfg: " + errstr(errno));
  LIBBPF_OPTS(bpf_usdt_opts, o);
  o.usdt_cookie = probe;
  bpf_link* l = bpf_program__attach_usdt(skel_.progs.ss_usdt, pid, path.c_str(), provider.c_str(),
                                         name.c_str(), &o);
  if (!l) {
    int err = errno;
    return make_error("cannot attach USDT " + provider + ":" + name + " in " + path + ": " +
                      errstr(err));
  }
  links_[pid].emplace_back(l);
  return size_t(1);
}

}  // namespace schedscope::probe
