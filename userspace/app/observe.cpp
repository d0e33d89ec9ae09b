#include "app/observe.h"

#include <dirent.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>

#include "app/cli_checks.h"
#include "util/units.h"

namespace schedscope::app {

constexpr double kStackAfterMs = 500;  // walk the stack of threads blocked at least this long

namespace {
void on_stop(int) { g_stop = 1; }

int pidfd_open(int pid) { return int(syscall(SYS_pidfd_open, pid, 0)); }

std::string read_comm(int pid, uint32_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  std::string s;
  std::getline(in, s);
  return s;
}
// The state of the threads that exist at attach, from /proc: run state, and for a blocked
// thread the syscall it sits in (/proc/PID/task/TID/syscall). Their block started at some
// unknown time before attach; durations count from attach.
void seed_threads(probe::Session& s, int pid) {
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!d) return;
  uint64_t now = probe::monotonic_ns();
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    uint32_t tid = uint32_t(std::strtoul(e->d_name, nullptr, 10));
    std::string base = "/proc/" + std::to_string(pid) + "/task/" + e->d_name;
    ss_thread_state st{};
    st.tgid = uint32_t(pid);
    st.sc_nr = SS_NO_SYSCALL;
    st.block_nr = SS_NO_SYSCALL;
    st.last_block_nr = SS_NO_SYSCALL;
    st.go.m_id = -1;
    st.go.p_id = -1;
    st.last_switch_ns = now;
    std::string comm = read_comm(pid, tid);
    std::memcpy(st.comm, comm.c_str(), std::min(comm.size(), sizeof st.comm - 1));
    std::ifstream statf(base + "/stat");
    std::string stat;
    std::getline(statf, stat);
    char state = 'S';
    if (auto rp = stat.rfind(')'); rp != std::string::npos && rp + 2 < stat.size())
      state = stat[rp + 2];
    st.state = state == 'R' ? SS_TS_ONCPU : SS_TS_OFFCPU;
    st.off_reason = state == 'D' ? SS_OFF_DISK : (state == 'S' ? SS_OFF_SLEEP : SS_OFF_OTHER);
    if (st.state == SS_TS_OFFCPU) {
      std::ifstream scf(base + "/syscall");
      std::string nr;
      scf >> nr;
      if (!nr.empty() && nr[0] >= '0' && nr[0] <= '9') {
        st.block_nr = std::stoi(nr);
        for (auto& a : st.block_args) {
          std::string h;
          scf >> h;
          a = h.empty() ? 0 : std::strtoull(h.c_str(), nullptr, 16);
        }
        st.block_since_ns = now;
      }
    }
    s.seed_thread(tid, st);
    // Exiting as it was seeded: its exit (which deletes its entry) may have come first, and
    // the entry would outlive it. One that begins to exit after this finds its entry.
    if (thread_exiting(pid, tid)) s.forget_thread(tid);
  }
  closedir(d);
}

}  // namespace

void seed_thread_states(probe::Session& s, int pid) { seed_threads(s, pid); }

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: interrupt the ring-buffer poll
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

Expected<std::unique_ptr<Observer>> Observer::start(const ObserveOptions& opt, int* exit_code,
                                                    const std::function<void(Observer&)>& init) {
  *exit_code = kExitError;
  // Below a few ms the interval step rounds towards 0 ns and next() would never advance.
  if (!std::isfinite(opt.interval_s) || opt.interval_s < kIntervalRange.min_s * (1 - 1e-9) ||
      opt.interval_s > kIntervalRange.max_s * (1 + 1e-9)) {
    *exit_code = kExitUsage;
    return make_error("the interval must be " + format_duration(kIntervalRange.min_s) + " to " +
                      format_duration(kIntervalRange.max_s));
  }
  // The library checks what the CLI validators check (callers other than the CLI).
  if (auto e = check_ringbuf_size(std::to_string(opt.ringbuf_bytes)); !e.empty()) {
    *exit_code = kExitUsage;
    return make_error("--ringbuf-size " + e);
  }
  // PIDs are taken as this process's /proc shows them (a container's own, or the host's).
  if (auto ns = probe::observer_pid_namespace(); !ns) return ns.error();
  std::unique_ptr<Observer> o(new Observer(opt));
  int pid = opt.pid;
  if (!opt.user.empty() && opt.command.empty()) {
    *exit_code = kExitUsage;
    return make_error("-u/--user runs a launched command as that user: give the command after --");
  }
  if (!opt.command.empty()) {
    std::optional<RunAs> as;
    if (!opt.user.empty()) {
      auto ra = resolve_user(opt.user);
      if (!ra) {
        *exit_code = kExitUsage;
        return ra.error();
      }
      as = std::move(ra.value());
    }
    auto l = Launched::start(opt.command, as ? &*as : nullptr);
    if (!l) return l.error();
    pid = l->pid();
    o->child_.emplace(std::move(l.value()));
  } else {
    int code = 0;
    auto pi = probe_pid(pid, &code);
    if (!pi) {
      *exit_code = code;
      return pi.error();
    }
  }

  probe::SessionConfig cfg;
  cfg.tgid = uint32_t(pid);
  cfg.all_syscalls = opt.all_syscalls;
  cfg.ringbuf_bytes = opt.ringbuf_bytes;
  cfg.offcpu_min_ns = opt.offcpu_min_ns;
  cfg.slow_syscall_ns = opt.slow_syscall_ns;
  cfg.goroutines = opt.goroutines && opt.go;
  cfg.gc = opt.gc && opt.go;  // the GC programs are loaded only when GC observation is asked
  cfg.usdt = !opt.usdt.empty() || opt.runtime_probes;
  cfg.annotations = opt.annotations.on && opt.go;  // --annotations: load ss_annot
  auto s = probe::Session::open(cfg);
  if (!s) {
    *exit_code = kExitNoPrivilege;
    return s.error();
  }
  o->session_ = std::move(s.value());
  if (auto st = o->session_->attach(); !st) {
    *exit_code = kExitNoPrivilege;
    return st.error();
  }
  if (!o->child_) seed_threads(*o->session_, pid);
  if (o->child_) {
    if (auto st = o->child_->release(); !st) {
      *exit_code = kExitExec;
      return st.error();
    }
  }
  o->pidfd_ = pidfd_open(pid);

  model::TargetInfo t;
  t.pid = pid;
  t.all_syscalls = opt.all_syscalls;
  t.goroutines = opt.goroutines;
  // Exits: the census's live counts when it runs (GC observation on), else the exit uprobe.
  t.goroutine_exits = opt.goroutines && (opt.goroutine_exits || !opt.gc);
  if (opt.goroutines)
    t.goroutines_note =
        opt.go ? "waiting for the Go runtime offsets" : "needs Go awareness (--no-go given)";
  int code = 0;
  if (auto pi = probe_pid(pid, &code)) {
    t.comm = pi->comm;
    t.exe = pi->exe;
  }
  if (opt.go) {
    o->go_ = GoAttach::inspect(pid);
    if (o->go_->is_go()) {
      t.go_version = o->go_->binary().go_version;
      t.stw_reasons = o->go_->binary().stw_reasons;
    }
    t.go_note = o->go_->note();
    o->model_.set_symbolizer(o->go_.get());
    if (!o->go_->is_go() && opt.goroutines) t.goroutines_note = "not attached: " + o->go_->note();
  } else {
    t.go_note = "Go awareness off (--no-go)";
  }
  o->model_.set_target(t);
  o->capacity_ = std::make_unique<CapacityProbe>(pid);  // capacity: cgroup now, Ps once Go is known
  o->attach_gc();  // the GC uprobes need only the binary: attach before the runtime starts
  o->go_retry_until_ = probe::monotonic_ns() + 10'000'000'000ull;  // runtime may still be starting
  o->try_go();
  if (init) init(*o);
  o->annotations_init();  // --annotations: after init, so the recorder sees its records
  // USDT: after init so the recorder sees the probe table.
  {
    std::vector<UsdtWanted> generic;
    for (const auto& spec : opt.usdt) {
      auto pn = parse_usdt_spec(spec);
      if (!pn) {
        *exit_code = kExitUsage;
        return pn.error();
      }
      UsdtWanted w;
      w.provider = pn->first;
      w.name = pn->second;
      w.flags = opt.usdt_args ? SS_USDT_EMIT : 0;
      generic.push_back(w);
    }
    if (!generic.empty() || opt.runtime_probes) {
      o->usdt_ = std::make_unique<UsdtAttacher>(std::move(generic), opt.runtime_probes);
      o->usdt_scan();
      if (opt.verbose || (!opt.usdt.empty() && o->usdt_->probe_count() == 0))
        fprintf(stderr, "schedscope: usdt: %s\n", o->usdt_->note().c_str());
    }
  }
  // First snapshot: the baseline of every delta (what came before it is the first
  // interval's; a thread it lacks was never seen).
  if (auto snap = o->session_->snapshot()) {
    o->model_.on_kernel(*snap);
    for (auto* tap : o->taps_) tap->kernel(*snap);
    (void)o->model_.frame();
  }
  o->next_deadline_ = probe::monotonic_ns() + uint64_t(opt.interval_s * 1e9);
  o->maybe_ready();
  *exit_code = kExitOk;
  return o;
}

Observer::~Observer() {
  session_.reset();  // detach first
  if (pidfd_ >= 0) close(pidfd_);
  if (child_ && !child_->exited()) child_->terminate(2000);
}

int Observer::child_exit_status() const { return child_ ? child_->exit_status() : 0; }

// Ready once nothing this observation counts is still to come: a Go target whose offsets
// are still being resolved (the goroutine uprobes and the Go reads wait for them), or
// whose Go layer was not read yet, is not.
void Observer::maybe_ready() {
  if (ready_ || target_gone_) return;
  if (go_ && go_->is_go() && !go_pushed_) return;
  if (go_ && go_->ready() && !go_read_) return;
  ready_ = true;
  size_t n = attached_programs().size();
  if (on_ready)
    on_ready("attached to pid " + std::to_string(model_.target().pid) + " (" + std::to_string(n) +
             (n == 1 ? " BPF program)" : " BPF programs)"));
}

std::vector<std::string> Observer::attached_programs() const {
  return session_ ? session_->attached_programs() : std::vector<std::string>{};
}

void Observer::try_go() {
  if (!go_ || !go_->is_go() || go_->ready() || go_pushed_) return;
  if (go_->resolve()) {
    if (auto st = session_->set_go_offsets(go_->bpf_offsets()); !st) {
      auto t = model_.target();
      t.go_note = st.error().message;
      model_.set_target(t);
      go_pushed_ = true;
      return;
    }
    auto t = model_.target();
    t.go_enabled = true;
    t.go_note = go_->note();
    model_.set_target(t);
    go_pushed_ = true;
    attach_goroutines();
    annotations_attach();
    gc_offsets_ready();
    if (capacity_) capacity_->start_sampler(*go_);  // the P sampler (capacity/psampler.h)
  } else {
    auto t = model_.target();
    t.go_note = go_->note();
    if (probe::monotonic_ns() > go_retry_until_) {
      go_pushed_ = true;  // give up: kernel-only
      if (opt_.goroutines) t.goroutines_note = "not attached: Go runtime offsets did not validate";
      if (annot_)
        annot_->unavailable("Go runtime offsets did not validate",
                            [this](const ss_hdr* r, size_t n) { inject(r, n); });
    }
    model_.set_target(t);
  }
}

// --goroutines: entry uprobes at every RET of runtime.newproc1 and, for exact exits
// (--goroutine-exits, or no census), at runtime.gdestroy / goexit0, attached once the
// offsets they read are in the go_cfg map.
void Observer::attach_goroutines() {
  if (!opt_.goroutines || !go_ || !session_) return;
  auto t = model_.target();
  if (auto note = go_->attach_goroutine_uprobes(*session_, t.goroutine_exits); !note) {
    t.goroutines_note = "not attached: " + note.error().message;
  } else {
    t.goroutines_attached = true;
    t.goroutines_note = *note;
    if (auto n = go_->live_goroutines()) {
      model_.set_goroutine_baseline(*n);
      goroutine_baseline_ = *n;
      for (auto* tp : taps_) tp->goroutine_baseline(*n);
    }
  }
  if (opt_.verbose) fprintf(stderr, "schedscope: goroutines: %s\n", t.goroutines_note.c_str());
  model_.set_target(t);
}

// GC observation: entry uprobes on stop/startTheWorldWithSema and gcMarkTermination (a
// few hits per GC cycle) and the per-CPU sampler (gc.bpf.c); on by default for Go targets.
void Observer::attach_gc() {
  if (!opt_.gc || !go_ || !go_->is_go() || !session_) return;
  int pid = model_.target().pid;
  auto& tr = model_.gc_tracker();
  tr.set_sample_period_ns(opt_.gc_sample_period_ns);
  auto t = gc_probe_targets(*go_, pid, opt_.gc_sample_period_ns);
  std::string note;
  if (!t) {
    note = "GC probes not attached: " + t.error().message;
  } else {
    auto st = session_->attach_gc(pid, *t);
    note = std::to_string(session_->gc_uprobe_count()) + " GC uprobe(s)";
    if (session_->gc_sampler_period_ns())
      note += ", sampler every " + std::to_string(session_->gc_sampler_period_ns() / 1000) +
              " us inside mark phases";
    else
      note += ", no sampler (worker/assist share unknown)";
    if (!st) note += " (" + st.error().message + ")";
  }
  gc_note_ = note;
  tr.set_note(note + (go_->ready() ? "" : "; sampler waits for the runtime offsets"),
              session_->gc_uprobe_count() > 0);
  if (opt_.verbose) fprintf(stderr, "schedscope: gc: %s\n", note.c_str());
}

// Once the runtime offsets validated: the sampler's offsets and the goroutine census.
void Observer::gc_offsets_ready() {
  if (!opt_.gc || !go_ || !go_->ready() || !session_) return;
  int pid = model_.target().pid;
  census_ = std::make_unique<CensusReader>(pid, *go_);
  auto t = gc_probe_targets(*go_, pid, opt_.gc_sample_period_ns);
  if (!t) return;
  std::string note = gc_note_;
  if (!t->cfg.enabled)
    note += "; sampler off: g.atomicstatus/g.waitreason offsets unknown";
  else if (auto st = session_->set_gc_cfg(t->cfg); !st)
    note += "; sampler off: " + st.error().message;
  if (!t->cfg.p_gcmarkworkermode) note += "; p.gcMarkWorkerMode offset unknown (workers not seen)";
  model_.gc_tracker().set_note(note, session_->gc_uprobe_count() > 0);
}

void Observer::drain() {
  (void)session_->poll(0, [this](const ss_hdr* rec, size_t size) { inject(rec, size); });
}

Expected<probe::KernelSnapshot> Observer::snapshot_and_drain() {
  auto snap = session_->snapshot();
  if (snap) drain();
  return snap;
}

void Observer::poll_until(uint64_t deadline_ns) {
  probe::EventFn fn = [this](const ss_hdr* rec, size_t size) {
    for (auto* t : taps_) t->raw(rec, size);
    model_.on_record(rec, size);
  };
  while (!g_stop && !target_gone_) {
    uint64_t now = probe::monotonic_ns();
    if (now >= deadline_ns) break;
    int ms = int(std::min<uint64_t>((deadline_ns - now) / 1'000'000 + 1, 100));
    (void)session_->poll(ms, fn);
    bool gone = false;
    if (child_) {
      gone = child_->exited();
    } else if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      gone = ::poll(&p, 1, 0) > 0;
    } else {
      gone = !process_alive(model_.target().pid);
    }
    if (gone) {
      target_gone_ = true;
      (void)session_->poll(0, fn);  // drain what the exit produced
    }
  }
  (void)session_->poll(0, fn);
}

Expected<model::Frame> Observer::next() {
  poll_until(next_deadline_);
  uint64_t now = probe::monotonic_ns();
  uint64_t step = uint64_t(opt_.interval_s * 1e9);
  while (next_deadline_ <= now) next_deadline_ += step;
  usdt_scan();
  auto snap = snapshot_and_drain();
  if (!snap) return snap.error();
  usdt_counts();
  annotations_tick();
  if (capacity_ && !target_gone_) {  // capacity: sampler counts and cgroup, as a record
    ss_cap_sample c = capacity_->sample(snap->ts_ns);
    inject(&c.h, sizeof c);
  }
  model_.on_kernel(*snap);
  for (auto* t : taps_) t->kernel(*snap);
  try_go();
  if (go_ && go_->ready() && !target_gone_) {
    if (auto s = go_->sample()) {
      model_.on_go_sample(*s);
      for (auto* t : taps_) t->go(*s);
    }
    if (census_) {
      if (auto c = census_->read(opt_.census_budget_ms)) {
        model_.on_census(*c);
        for (auto* t : taps_) t->census(*c);
      }
    }
    if (auto h = go_->sched_latency()) {
      model_.on_sched_latency(*h);
      for (auto* t : taps_) t->sched_latency(*h);
    }
    model_.set_sched_latency_note(go_->sched_latency_note());
    go_read_ = true;
  }
  // Names of threads we have not named yet (live only; cheap: once per thread).
  for (const auto& e : snap->threads) {
    if (model_.thread_exited(e.tid)) continue;  // its exit is consumed: no /proc entry left
    if (named_.insert(e.tid).second) {
      std::string n = read_comm(model_.target().pid, e.tid);
      if (!n.empty()) {
        model_.set_thread_name(e.tid, n);
        for (auto* t : taps_) t->name(e.tid, n);
      }
    }
  }
  model::Frame f = model_.frame();
  // (Their kernel entries went at exit: what is forgotten here is the observer's own.)
  const std::vector<uint32_t> exited = model_.take_exited();
  for (uint32_t tid : exited) {
    named_.erase(tid);  // a reused tid is named again
    if (usdt_ && usdt_->probe_count()) {
      session_->forget_usdt_thread(tid, usdt_->probe_count());
      for (uint32_t p = 0; p < usdt_->probe_count(); p++) usdt_sent_.erase({tid, p});
    }
  }
  // The stacks of Go threads blocked for a while: the evidence a stuck P or a blocked M
  // alert names (a few frame-pointer walks through /proc/PID/mem, only for long blocks).
  if (go_ && go_->ready() && !target_gone_) {
    int walked = 0;
    for (auto& r : f.threads)
      if (r.block_ip && r.syscall_ms >= kStackAfterMs && walked++ < 64)
        r.stack = go_->walk_stack(r.block_ip, r.block_bp);
  }
  maybe_ready();
  return f;
}

model::Frame Observer::final_frame() {
  if (auto snap = snapshot_and_drain()) {
    usdt_counts();
    annotations_tick();
    model_.on_kernel(*snap);
    for (auto* t : taps_) t->kernel(*snap);
  }
  return model_.frame(true);
}

void Observer::add_tap(model::Inputs* t) {
  taps_.push_back(t);
  // Handed to the model before the tap existed (uprobes attached while starting).
  if (goroutine_baseline_) t->goroutine_baseline(*goroutine_baseline_);
}

void Observer::inject(const ss_hdr* rec, size_t size) {
  for (auto* t : taps_) t->raw(rec, size);
  model_.on_record(rec, size);
}

// Libraries mapped since the last scan (and the runtime, once recognisable) get their
// probes attached; an exited target is not scanned.
void Observer::usdt_scan() {
  if (!usdt_ || target_gone_ || !session_) return;
  uint32_t before = usdt_->probe_count();
  usdt_->scan(*session_, model_.target().pid, go_ && go_->is_go(),
              [this](const ss_hdr* rec, size_t size) { inject(rec, size); });
  if (opt_.verbose && usdt_->probe_count() != before)
    fprintf(stderr, "schedscope: usdt: %s\n", usdt_->note().c_str());
}

// The in-kernel hit counts, as SS_EV_USDT_COUNT records (only those that changed), so
// recordings carry them like every other record.
void Observer::usdt_counts() {
  if (!usdt_ || !usdt_->probe_count()) return;
  uint64_t now = probe::monotonic_ns();
  for (auto c : session_->usdt_counts()) {
    auto& sent = usdt_sent_[{c.tid, c.probe}];
    if (sent == c.count) continue;
    sent = c.count;
    c.h.ts = now;
    inject(&c.h, sizeof c);
  }
}

Expected<detect::Pulled> ObserverFeed::pull() {
  detect::Pulled out;
  if (o_.target_gone() || o_.stopped()) return out;
  auto f = o_.next();
  if (!f) return f.error();
  out.kind = o_.target_gone() || o_.stopped() ? detect::Pulled::kSkipped : detect::Pulled::kShown;
  out.frame = std::move(*f);
  return out;
}

std::string ObserverFeed::end_reason() const {
  return o_.target_gone() ? "target " + std::to_string(o_.target().pid) + " exited"
                          : std::string("stopped");
}

}  // namespace schedscope::app
