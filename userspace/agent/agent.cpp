#include "agent/agent.h"

#include <dirent.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/annotations_attach.h"
#include "app/observe.h"
#include "util/json_out.h"
#include "util/stop.h"

namespace schedscope::agent {

namespace {

constexpr uint64_t kSec = 1'000'000'000;

uint64_t now_ns() { return probe::monotonic_ns(); }

// The thread a ring-buffer record is about (0: none).
uint32_t record_tid(const ss_hdr* rec, size_t size) {
  auto at = [&](size_t off) -> uint32_t {
    if (size < off + sizeof(uint32_t)) return 0;
    uint32_t v;
    std::memcpy(&v, reinterpret_cast<const char*>(rec) + off, sizeof v);
    return v;
  };
  switch (rec->type) {
    case SS_EV_THREAD_NEW: return at(offsetof(ss_thread_new, parent_tid));  // the creator's process
    case SS_EV_THREAD_EXIT: return at(offsetof(ss_thread_exit, tid));
    case SS_EV_OFFCPU: return at(offsetof(ss_offcpu, tid));
    case SS_EV_SYSCALL_SLOW: return at(offsetof(ss_syscall_slow, tid));
    case SS_EV_GO_CREATE: return at(offsetof(ss_go_create, tid));
    case SS_EV_GO_EXIT: return at(offsetof(ss_go_exit, tid));
    case SS_EV_GC: return at(offsetof(ss_gc_event, tid));
    case SS_EV_GC_SAMPLE: return at(offsetof(ss_gc_sample, tid));
    case SS_EV_GC_STACK: return at(offsetof(ss_gc_stack, tid));
    case SS_EV_USDT: return at(offsetof(ss_usdt_hit, tid));
    case SS_EV_USDT_COUNT: return at(offsetof(ss_usdt_count, tid));
    case SS_EV_ANNOT: return at(offsetof(ss_annot, tid));
    default: return 0;
  }
}

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// Tgid of a thread from /proc/TID/status (0 when gone).
uint32_t tgid_of(uint32_t tid) {
  std::ifstream in("/proc/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, 5, "Tgid:") == 0) return uint32_t(std::strtoul(line.c_str() + 5, nullptr, 10));
  return 0;
}

std::vector<uint32_t> task_tids(int pid) {
  std::vector<uint32_t> out;
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!d) return out;
  while (dirent* e = readdir(d))
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.push_back(uint32_t(std::strtoul(e->d_name, nullptr, 10)));
  closedir(d);
  return out;
}

// What /targets says of a process before its state: who it is and where.
TargetStatus status_of(const ProcEntry& p, const ContainerLabels& l) {
  TargetStatus st;
  st.pid = p.pid;
  st.exe = p.exe;
  st.comm = p.comm;
  st.cgroup = p.cgroup;
  st.container = l.container;
  st.pod = l.pod;
  return st;
}

}  // namespace

// One observed process: its Go layer, model and detectors over the shared session. It is
// the frame source of its own pipeline (a frame built by interval() is pulled at once),
// the sink that turns the detected frames into its series, and an observed process its
// flight recorder taps (every input its model consumes goes to the taps too).
class Target : public detect::FrameFeed, public detect::FrameSink, public app::Observed {
 public:
  Target(ProcEntry p, ContainerLabels labels, const AgentOptions& opt, probe::Session& s,
         AlertsLog* log)
      : proc_(std::move(p)), labels_(std::move(labels)), opt_(opt), s_(s), log_(log),
        model_(model::TargetInfo{}), pipe_(*this, opt.detect) {
    pipe_.add_sink(this);
    found_ns_ = now_ns();
  }
  ~Target() override {
    if (pidfd_ >= 0) close(pidfd_);
  }

  Status start() {
    const int pid = proc_.pid;
    if (auto slot = s_.add_target(uint32_t(pid)); !slot) return slot.error();
    added_ = true;
    pidfd_ = int(syscall(SYS_pidfd_open, pid, 0));
    app::seed_thread_states(s_, pid);
    go_ = app::GoAttach::inspect(pid);
    model::TargetInfo t;
    t.pid = pid;
    t.comm = proc_.comm;
    t.exe = proc_.exe;
    if (go_->is_go()) {
      t.go_version = go_->binary().go_version;
      t.stw_reasons = go_->binary().stw_reasons;
    }
    t.go_note = go_->note();
    want_ = wanted(opt_.opt_in, proc_);
    if (want_.all_syscalls) {  // in the kernel: this target's flag in the target set
      auto st = s_.set_all_syscalls(uint32_t(pid), true);
      t.all_syscalls = st.ok();
      sc_note_ = st ? "every syscall traced (raw_syscalls): counts and latencies"
                    : "not traced: " + st.error().message;
    }
    if (want_.goroutines) {
      t.goroutines = true;
      // As top --goroutines: exits from the census when it runs, else the exit uprobe.
      t.goroutine_exits = !opt_.gc;
      t.goroutines_note = go_->is_go() ? "waiting for the Go runtime offsets" : "not attached: " + go_->note();
    }
    model_.set_symbolizer(go_.get());
    model_.set_target(t);
    attach_gc();
    // The recorder first: it sees what the options attach from the start.
    if (opt_.flight.window_s > 0) start_flight();
    if (want_.annotations) {
      app::AnnotationsOptions ao;
      ao.on = true;
      annot_ = std::make_unique<app::AnnotationsControl>(ao);
      if (!go_->is_go()) annot_->unavailable(go_->note(), inject_fn());
      else annot_->unavailable("waiting for the Go runtime offsets", inject_fn());
    }
    go_retry_until_ = now_ns() + 10 * kSec;  // the runtime may still be starting
    try_go();
    if (auto snap = s_.snapshot(uint32_t(pid))) {
      model_.on_kernel(*snap);
      for (auto* tp : taps_) tp->kernel(*snap);
      (void)model_.frame();
    }
    return {};
  }

  void on_record(const ss_hdr* rec, size_t size) {
    for (auto* tp : taps_) tp->raw(rec, size);
    model_.on_record(rec, size);
  }

  // The target is gone (exit, exec, dropped): its flight recorder writes the dump it
  // still owes.
  void end() {
    gone_ = true;
    if (!fr_) return;
    (void)fr_->finish(*this, pipe_.detectors().all());
    tell_flight();
    relog_owed();
  }

  // app::Observed
  [[nodiscard]] const model::TargetInfo& target() const override { return model_.target(); }
  app::GoAttach* go() override { return go_.get(); }
  void add_tap(model::Inputs* t) override { taps_.push_back(t); }
  [[nodiscard]] bool target_gone() const override { return gone_; }
  [[nodiscard]] bool stopped() const override { return g_stop != 0; }

  // Reads the target once and runs its detectors. `drain` consumes the ring buffer (every
  // target's records) after the snapshot read: the kernel deletes a thread's entry after
  // its exit record, so a thread the snapshot lacks exited with its record consumed, or
  // was never seen. Returns the threads whose exit the model consumed (their routing is
  // forgotten) and, in `tids`, every thread it has.
  std::vector<uint32_t> interval(std::vector<uint32_t>& tids, const std::function<void()>& drain) {
    const int pid = proc_.pid;
    auto snap = s_.snapshot(uint32_t(pid));
    if (!snap) return {};
    drain();
    drops_ = snap->drops;
    if (annot_ && !gone_) annot_->tick(s_, pid, now_ns(), inject_fn());
    model_.on_kernel(*snap);
    for (auto* tp : taps_) tp->kernel(*snap);
    try_go();
    if (go_ && go_->ready()) {
      if (auto smp = go_->sample()) {
        model_.on_go_sample(*smp);
        for (auto* tp : taps_) tp->go(*smp);
      }
      // Every census_every intervals, and at the first interval after the goroutine
      // uprobes were attached if the census read then failed (the exit estimate's base).
      const bool census_due = census_base_wanted_ || intervals_ % uint64_t(std::max(1, opt_.census_every)) == 0;
      if (census_ && census_due)
        if (auto c = census_->read(5)) {
          census_base_wanted_ = false;
          model_.on_census(*c);
          for (auto* tp : taps_) tp->census(*c);
        }
      if (auto h = go_->sched_latency()) {
        model_.on_sched_latency(*h);
        for (auto* tp : taps_) tp->sched_latency(*h);
      }
      model_.set_sched_latency_note(go_->sched_latency_note());
    }
    for (const auto& e : snap->threads) {
      tids.push_back(e.tid);
      if (named_.insert(e.tid).second) {
        std::string n = read_line("/proc/" + std::to_string(pid) + "/task/" + std::to_string(e.tid) + "/comm");
        if (!n.empty()) {
          model_.set_thread_name(e.tid, n);
          for (auto* tp : taps_) tp->name(e.tid, n);
        }
      }
    }
    pending_ = model_.frame();
    intervals_++;
    (void)pipe_.step();
    auto gone = model_.take_exited();
    for (uint32_t t : gone) named_.erase(t);
    return gone;
  }

  // detect::FrameFeed
  Expected<detect::Pulled> pull() override {
    detect::Pulled out;
    if (pending_) {
      out.kind = detect::Pulled::kShown;
      out.frame = std::move(*pending_);
      pending_.reset();
    }
    return out;
  }
  model::Frame final_frame() override { return model_.frame(true); }
  [[nodiscard]] std::string end_reason() const override { return "target exited"; }

  // detect::FrameSink
  void on_shown(const model::Frame& f, const detect::Pipeline& p) override {
    if (fr_) {  // first: the file it writes is named in the log lines
      fr_->on_shown(f, p);
      tell_flight();
    }
    auto all = p.detectors().all();
    update(series_, f, all, opt_.top_syscalls);
    series_.container = labels_.container;
    series_.pod = labels_.pod;
    gc_note_ = f.gc.note;
    if (f.annotations) annot_note_ = f.annotations->note;
    syscalls_counted_ = f.totals.syscalls;
    have_frame_ = true;
    if (!log_) {
      written_now_.clear();
      return;
    }
    for (const auto& a : all) {
      auto key = std::make_tuple(a.kind, a.since_ns, a.ts_ns, a.tid, a.p);
      if (!logged_.insert(key).second) continue;
      std::string file = covered_by(a);
      log_line(a, file);
      // Raised less than a window after this target's previous recording: the file
      // comes later, and its line with it.
      if (fr_ && file.empty() && a.active) owed_.push_back(a);
    }
    relog_owed();
  }

  [[nodiscard]] TargetStatus status() const {
    TargetStatus st = status_of(proc_, labels_);
    st.go_version = model_.target().go_version;
    st.since_s = double(now_ns() - found_ns_) / 1e9;
    st.gc = gc_note_;
    st.flight_recordings = flight_count_;
    st.flight_last = flight_last_;
    const auto& t = model_.target();
    if (want_.all_syscalls) st.options["all_syscalls"] = {t.all_syscalls, sc_note_};
    if (s_.config().all_syscalls) st.syscalls_counted = syscalls_counted_;
    if (want_.goroutines) st.options["goroutines"] = {t.goroutines_attached, t.goroutines_note};
    if (want_.annotations) {
      st.options["annotations"] = {annot_ && annot_->attached(), annot_note_};
    }
    if (t.go_enabled) {
      st.state = "observed";
      st.reason = t.go_note;
    } else if (go_pushed_ || !go_ || !go_->is_go()) {
      st.state = "kernel_only";
      st.reason = t.go_note.empty() ? "Go runtime offsets did not validate" : t.go_note;
    } else {
      st.state = "starting";
      st.reason = "resolving the Go runtime offsets: " + t.go_note;
    }
    return st;
  }

  [[nodiscard]] int pid() const { return proc_.pid; }
  [[nodiscard]] int pidfd() const { return pidfd_; }
  [[nodiscard]] bool added() const { return added_; }
  [[nodiscard]] bool have_frame() const { return have_frame_; }
  [[nodiscard]] const TargetSeries& series() const { return series_; }
  [[nodiscard]] uint64_t drops() const { return drops_; }

 private:
  void try_go() {
    if (!go_ || !go_->is_go() || go_->ready() || go_pushed_) return;
    auto t = model_.target();
    if (go_->resolve()) {
      go_pushed_ = true;
      if (auto st = s_.set_go_offsets(uint32_t(proc_.pid), go_->bpf_offsets()); !st) {
        t.go_note = st.error().message;
        model_.set_target(t);
        return;
      }
      t.go_enabled = true;
      t.go_note = go_->note();
      model_.set_target(t);
      gc_offsets_ready();
      attach_goroutines();
      if (annot_) annot_->attach(s_, proc_.pid, go_->binary(), inject_fn());
      return;
    }
    t.go_note = go_->note();
    if (now_ns() > go_retry_until_) {  // give up: kernel-level only
      go_pushed_ = true;
      if (want_.goroutines) t.goroutines_note = "not attached: Go runtime offsets did not validate";
      if (annot_) annot_->unavailable("Go runtime offsets did not validate", inject_fn());
    }
    model_.set_target(t);
  }

  // Records made here (the annotations' state) go where the kernel's go.
  std::function<void(const ss_hdr*, size_t)> inject_fn() {
    return [this](const ss_hdr* r, size_t n) { on_record(r, n); };
  }

  // --goroutines-for: entry uprobes at every RET of runtime.newproc1 of this process (and,
  // without the census, at runtime.gdestroy / goexit0), as `top --goroutines`, once the
  // offsets they read are in the kernel; detached when the target leaves the session.
  void attach_goroutines() {
    if (!want_.goroutines || !go_) return;
    auto t = model_.target();
    if (auto note = go_->attach_goroutine_uprobes(s_, t.goroutine_exits); !note) {
      t.goroutines_note = "not attached: " + note.error().message;
    } else {
      t.goroutines_attached = true;
      census_base_wanted_ = !t.goroutine_exits;
      t.goroutines_note = *note;
      if (auto n = go_->live_goroutines()) {
        model_.set_goroutine_baseline(*n);
        for (auto* tp : taps_) tp->goroutine_baseline(*n);
      }
    }
    if (opt_.verbose) fprintf(stderr, "schedscope agent: pid %d: goroutines: %s\n", proc_.pid, t.goroutines_note.c_str());
    model_.set_target(t);
    // The base of the exit estimate, now: the creations the uprobes see from here on are
    // counted against it (those drained before any census are not), and the next interval
    // may be a second away. The interval reads one more if this one fails.
    if (census_base_wanted_ && census_)
      if (auto c = census_->read(5)) {
        census_base_wanted_ = false;
        model_.on_census(*c);
        for (auto* tp : taps_) tp->census(*c);
      }
  }

  void start_flight() {
    obs_.pid = proc_.pid;
    obs_.interval_s = opt_.interval_s;
    obs_.ringbuf_bytes = opt_.ringbuf_bytes;
    obs_.gc = opt_.gc;
    obs_.goroutines = want_.goroutines;
    obs_.goroutine_exits = model_.target().goroutine_exits;
    obs_.all_syscalls = model_.target().all_syscalls;
    obs_.annotations.on = want_.annotations;
    obs_.runtime_probes = false;
    fr_ = std::make_unique<app::FlightRecorder>(opt_.flight, obs_, opt_.detect);
    fr_->on_written = [this](const std::string& path, const std::vector<detect::Alert>& triggers) {
      flight_count_++;
      flight_last_ = path;
      written_now_.emplace_back(path, triggers);
    };
    fr_->attach(*this);
  }

  static bool same_alert(const detect::Alert& a, const detect::Alert& b) {
    return a.kind == b.kind && a.p == b.p && a.tid == b.tid && a.ts_ns == b.ts_ns;
  }

  // The file just written whose triggers include `a`, or "".
  std::string covered_by(const detect::Alert& a) const {
    for (const auto& [path, triggers] : written_now_)
      for (const auto& t : triggers)
        if (same_alert(a, t)) return path;
    return "";
  }

  void log_line(const detect::Alert& a, const std::string& file) {
    if (!log_) return;
    AlertOrigin o{proc_.pid, proc_.exe, proc_.comm, labels_.container, labels_.pod};
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    log_->write(o, a, double(ts.tv_sec) + double(ts.tv_nsec) / 1e9, file);
  }

  // The alerts logged before their recording was written, again with the file.
  void relog_owed() {
    for (auto it = owed_.begin(); it != owed_.end();) {
      std::string file = covered_by(*it);
      if (file.empty()) {
        ++it;
        continue;
      }
      log_line(*it, file);
      it = owed_.erase(it);
    }
    written_now_.clear();
  }

  // What the flight recorder has to say (files written, deleted, errors) goes to stderr
  // (the journal); its last word is in /targets.
  void tell_flight() {
    for (const auto& l : fr_->take_lines()) {
      fprintf(stderr, "schedscope agent: pid %d: %s\n", proc_.pid, l.c_str());
      if (l.find("cannot write") != std::string::npos) flight_last_ = l;
    }
  }
  void attach_gc() {
    if (!opt_.gc || !go_ || !go_->is_go()) return;
    auto& tr = model_.gc_tracker();
    tr.set_sample_period_ns(kGcPeriodNs);
    auto t = app::gc_probe_targets(*go_, proc_.pid, kGcPeriodNs);
    if (!t) {
      tr.set_note("GC probes not attached: " + t.error().message, false);
      return;
    }
    auto st = s_.attach_gc(proc_.pid, *t);
    tr.set_note(st ? "GC uprobes attached" : "GC probes: " + st.error().message, st.ok());
    gc_attached_ = true;
  }

  void gc_offsets_ready() {
    if (!opt_.gc || !go_ || !go_->ready()) return;
    census_ = std::make_unique<app::CensusReader>(proc_.pid, *go_);
    if (!gc_attached_) return;
    auto t = app::gc_probe_targets(*go_, proc_.pid, kGcPeriodNs);
    if (t && t->cfg.enabled) (void)s_.set_gc_cfg(uint32_t(proc_.pid), t->cfg);
  }

  static constexpr uint64_t kGcPeriodNs = 1'000'000;
  ProcEntry proc_;
  ContainerLabels labels_;
  const AgentOptions& opt_;
  probe::Session& s_;
  AlertsLog* log_;
  std::unique_ptr<app::GoAttach> go_;
  std::unique_ptr<app::CensusReader> census_;
  bool census_base_wanted_ = false;  // a census now: the base of the goroutine exit estimate
  Wanted want_;        // the per-target options asked for this process
  std::string sc_note_;  // --all-syscalls-for: traced, or why not
  std::unique_ptr<app::AnnotationsControl> annot_;  // --annotations-for
  std::string annot_note_ = "waiting for the Go runtime offsets";
  uint64_t syscalls_counted_ = 0;  // the kernel's count of this target's completed syscalls
  model::Model model_;
  detect::Pipeline pipe_;
  std::optional<model::Frame> pending_;
  TargetSeries series_;
  std::set<std::tuple<std::string, uint64_t, uint64_t, uint32_t, int32_t>> logged_;
  std::unordered_set<uint32_t> named_;
  std::string gc_note_;
  std::vector<model::Inputs*> taps_;
  app::ObserveOptions obs_;  // what the flight recordings' metadata says of the observation
  std::unique_ptr<app::FlightRecorder> fr_;
  std::vector<std::pair<std::string, std::vector<detect::Alert>>> written_now_;
  std::vector<detect::Alert> owed_;  // logged without their file, which is still owed
  uint64_t flight_count_ = 0;
  std::string flight_last_;
  int pidfd_ = -1;
  bool added_ = false, go_pushed_ = false, gc_attached_ = false, have_frame_ = false, gone_ = false;
  uint64_t go_retry_until_ = 0, found_ns_ = 0, intervals_ = 0, drops_ = 0;
};

Expected<std::pair<std::string, int>> parse_listen(const std::string& spec) {
  auto colon = spec.rfind(':');
  if (colon == std::string::npos) return make_error("--listen wants ADDR:PORT or :PORT, got \"" + spec + "\"");
  std::string host = spec.substr(0, colon);
  std::string port = spec.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end || p < 1 || p > 65535)
    return make_error("--listen: the port must be 1 to 65535, got \"" + port + "\"");
  return std::make_pair(host, int(p));
}

Agent::Agent(AgentOptions o) : opt_(std::move(o)) {}
Agent::~Agent() {
  for (auto& [pid, t] : targets_) t->end();  // the flight recordings still owed
  targets_.clear();  // their GoAttach/census readers before the session
  session_.reset();
}

Expected<std::unique_ptr<Agent>> Agent::open(const AgentOptions& opt) {
  if (!std::isfinite(opt.interval_s) || opt.interval_s < 0.1 || opt.interval_s > 3600)
    return make_error("--interval must be 100ms to 1h");
  if (opt.max_targets < 1 || opt.max_targets > probe::kMaxTargets)
    return make_error("--max-targets must be 1 to " + std::to_string(probe::kMaxTargets));
  if (auto ns = probe::observer_pid_namespace(); !ns) return ns.error();
  if (opt.flight.window_s > 0) {
    if (!std::isfinite(opt.flight.window_s) || opt.flight.window_s < 1 || opt.flight.window_s > 24 * 3600)
      return make_error("--flight-recorder must be 1s to 24h");
  }
  std::unique_ptr<Agent> a(new Agent(opt));
  if (!opt.alerts_log.empty()) {
    auto l = AlertsLog::open(opt.alerts_log, opt.alerts_log_max_bytes);
    if (!l) return l.error();
    a->alerts_log_ = std::move(l.value());
  }
  probe::SessionConfig cfg;
  cfg.tgid = 0;
  cfg.max_targets = opt.max_targets;
  cfg.ringbuf_bytes = opt.ringbuf_bytes;
  cfg.gc = opt.gc;
  cfg.usdt = false;
  // The costly options' programs are loaded only when some target may ask for them, and
  // attached per target (the raw_syscalls ones only while a target asks).
  cfg.goroutines = !opt.opt_in.goroutines.empty();
  cfg.annotations = !opt.opt_in.annotations.empty();
  cfg.all_syscalls = !opt.opt_in.all_syscalls.empty();
  cfg.syscalls_per_target = true;
  cfg.exec_events = true;  // discovery on exec; the scan stays the fallback
  auto s = probe::Session::open(cfg);
  if (!s) return s.error();
  a->session_ = std::move(s.value());
  if (auto st = a->session_->attach(); !st) return st.error();
  a->next_interval_ns_ = now_ns() + uint64_t(opt.interval_s * 1e9);
  a->scan();
  a->publish();
  return a;
}

// A process of the scan, or one that just exec'd (`execd`: a new program even when its
// executable path is the one known).
void Agent::consider(ProcEntry p, bool execd) {
  const bool narrowed = !opt_.filter.exe.empty() || !opt_.filter.comm.empty() || !opt_.filter.cgroup.empty();
  auto k = known_.find(p.pid);
  if (k != known_.end() && k->second == p.exe && !execd) return;
  if (k != known_.end()) {  // exec'd since it was seen: a new program
    drop(p.pid, "exec");
    unobservable_.erase(p.pid);
  }
  known_[p.pid] = p.exe;
  read_details(p);
  if (!keep(opt_.filter, p)) return;
  GoVerdict v = recognizer_.check(p.pid);
  if (!v.is_go) {
    if (narrowed && v.note != "gone") {  // asked for by name: say why it is not observed
      TargetStatus st = status_of(p, container_of(p.cgroup));
      st.state = "unobservable";
      st.reason = v.note;
      unobservable_[p.pid] = st;
    }
    return;
  }
  add(std::move(p), v);
}

// The processes the kernel said exec'd (SS_EV_EXEC) since the last call.
void Agent::look_at_execs() {
  if (execd_.empty()) return;
  std::vector<uint32_t> pids;
  pids.swap(execd_);
  const int self = int(getpid());
  for (uint32_t pid : pids) {
    ProcEntry p;
    if (int(pid) == self || !process_entry(int(pid), p)) continue;
    consider(std::move(p), true);
    exec_found_++;
  }
  publish();
}

void Agent::scan() {
  scans_++;
  std::set<int> alive;
  for (auto& p : list_processes(int(getpid()))) {
    alive.insert(p.pid);
    consider(std::move(p), false);
  }
  for (auto it = known_.begin(); it != known_.end();) {
    if (alive.count(it->first)) {
      ++it;
      continue;
    }
    drop(it->first, "exited");
    unobservable_.erase(it->first);
    it = known_.erase(it);
  }
  next_scan_ns_ = now_ns() + uint64_t(opt_.scan_s * 1e9);
}

void Agent::add(ProcEntry p, const GoVerdict& v) {
  const int pid = p.pid;
  auto labels = container_of(p.cgroup);
  TargetStatus st = status_of(p, labels);
  st.go_version = v.go_version;
  if (targets_.size() >= opt_.max_targets) {
    st.state = "unobservable";
    st.reason = "the agent observes " + std::to_string(opt_.max_targets) + " processes already (--max-targets)";
    unobservable_[pid] = st;
    return;
  }
  auto t = std::make_unique<Target>(std::move(p), labels, opt_, *session_, alerts_log_.get());
  if (auto s = t->start(); !s) {
    if (t->added()) (void)session_->remove_target(uint32_t(pid));
    st.state = "unobservable";
    st.reason = s.error().message;
    unobservable_[pid] = st;
    if (opt_.verbose) fprintf(stderr, "schedscope agent: pid %d not observed: %s\n", pid, st.reason.c_str());
    return;
  }
  for (uint32_t tid : task_tids(pid)) owner_[tid] = uint32_t(pid);
  unobservable_.erase(pid);
  if (opt_.verbose) fprintf(stderr, "schedscope agent: observing pid %d (%s)\n", pid, st.exe.c_str());
  targets_[pid] = std::move(t);
}

void Agent::drop(int pid, const char* why) {
  auto it = targets_.find(pid);
  if (it == targets_.end()) return;
  it->second->end();
  (void)session_->remove_target(uint32_t(pid));
  // The kernel deleted the entries of the threads that exited while it was a target; what
  // stays is deleted here: a thread that outlives it (exec, dropped while running) or was
  // seeded from /proc as it exited.
  for (auto o = owner_.begin(); o != owner_.end();) {
    if (o->second == uint32_t(pid)) {
      session_->forget_thread(o->first);
      o = owner_.erase(o);
    } else {
      ++o;
    }
  }
  targets_.erase(it);
  if (opt_.verbose) fprintf(stderr, "schedscope agent: pid %d dropped (%s)\n", pid, why);
}

uint32_t Agent::owner_of(uint32_t tid) {
  if (auto it = owner_.find(tid); it != owner_.end()) return it->second;
  if (targets_.count(int(tid))) return owner_[tid] = tid;
  uint32_t tgid = tgid_of(tid);
  if (tgid && targets_.count(int(tgid))) return owner_[tid] = tgid;
  return 0;
}

void Agent::route(const ss_hdr* rec, size_t size) {
  records_++;
  if (rec->type == SS_EV_EXEC) {
    if (size >= sizeof(ss_exec)) {
      ss_exec e;
      std::memcpy(&e, rec, sizeof e);
      execd_.push_back(e.pid);
    }
    return;
  }
  uint32_t tid = record_tid(rec, size);
  uint32_t tgid = tid ? owner_of(tid) : 0;
  auto it = tgid ? targets_.find(int(tgid)) : targets_.end();
  if (it == targets_.end()) {
    unrouted_++;
    return;
  }
  if (rec->type == SS_EV_THREAD_NEW && size >= sizeof(ss_thread_new)) {
    ss_thread_new e;
    std::memcpy(&e, rec, sizeof e);
    owner_[e.tid] = tgid;
  }
  it->second->on_record(rec, size);
}

void Agent::check_exits() {
  std::vector<pollfd> fds;
  std::vector<int> pids;
  for (const auto& [pid, t] : targets_) {
    if (t->pidfd() < 0) continue;
    fds.push_back({t->pidfd(), POLLIN, 0});
    pids.push_back(pid);
  }
  if (fds.empty() || ::poll(fds.data(), fds.size(), 0) <= 0) return;
  bool any = false;
  for (size_t i = 0; i < fds.size(); i++) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    if (!any) (void)session_->poll(0, [this](const ss_hdr* r, size_t n) { route(r, n); });
    any = true;
    drop(pids[i], "exited");
    known_.erase(pids[i]);
  }
  if (any) publish();
}

void Agent::interval() {
  const uint64_t t0 = now_ns();
  const std::function<void()> drain = [this] {
    (void)session_->poll(0, [this](const ss_hdr* r, size_t n) { route(r, n); });
  };
  const probe::Session::SnapshotRound round(*session_);  // one pass over the state slots
  for (auto& [pid, t] : targets_) {
    std::vector<uint32_t> tids;
    // (The kernel deleted their entries at exit: only the routing is forgotten.)
    for (uint32_t tid : t->interval(tids, drain)) owner_.erase(tid);
    for (uint32_t tid : tids) owner_.emplace(tid, uint32_t(pid));
    drops_ = std::max(drops_, t->drops());
  }
  intervals_++;
  last_work_s_ = double(now_ns() - t0) / 1e9;
  publish();
}

void Agent::publish() {
  std::vector<TargetSeries> series;
  std::map<std::string, int> counts = {{"observed", 0}, {"kernel_only", 0}, {"starting", 0}, {"unobservable", 0}};
  nlohmann::json arr = nlohmann::json::array();
  auto add_json = [&arr](const TargetStatus& s) {
    nlohmann::json j;
    j["pid"] = s.pid;
    j["exe"] = s.exe;
    j["comm"] = s.comm;
    j["go_version"] = s.go_version;
    j["cgroup"] = s.cgroup;
    j["container"] = s.container;
    j["pod"] = s.pod;
    j["state"] = s.state;
    j["reason"] = s.reason;
    if (!s.gc.empty()) j["gc"] = s.gc;
    if (s.flight_recordings || !s.flight_last.empty()) {
      j["flight_recordings"] = s.flight_recordings;
      j["flight_last"] = s.flight_last;
    }
    if (!s.options.empty()) {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, v] : s.options) o[k] = {{"on", v.on}, {"note", v.note}};
      j["options"] = std::move(o);
    }
    if (s.syscalls_counted) j["syscalls_counted"] = *s.syscalls_counted;
    j["found_s_ago"] = std::round(s.since_s * 10) / 10;
    arr.push_back(std::move(j));
  };
  for (const auto& [pid, t] : targets_) {
    auto st = t->status();
    counts[st.state]++;
    add_json(st);
    if (t->have_frame()) series.push_back(t->series());
  }
  for (const auto& [pid, st] : unobservable_) {
    counts[st.state]++;
    add_json(st);
  }
  AgentSeries ag;
  ag.targets = counts;
  ag.drops_total = drops_;
  ag.records_total = records_;
  ag.scans_total = scans_;
  ag.exec_lookups_total = exec_found_;
  ag.intervals_total = intervals_;
  ag.last_interval_seconds = last_work_s_;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  ag.cpu_seconds_total = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  {
    std::ifstream statm("/proc/self/statm");
    uint64_t size = 0, resident = 0;
    statm >> size >> resident;
    ag.resident_memory_bytes = resident * uint64_t(sysconf(_SC_PAGESIZE));
  }
  nlohmann::json doc;
  doc["targets"] = std::move(arr);
  doc["counts"] = counts;
  std::string m = render(series, ag);
  std::string j = dump_json(doc, 2) + "\n";
  std::lock_guard<std::mutex> lk(mu_);
  metrics_text_ = std::move(m);
  targets_text_ = std::move(j);
  target_counts_ = counts;
}

void Agent::step(int max_ms) {
  uint64_t now = now_ns();
  last_step_ns_ = now;
  if (now >= next_scan_ns_) {
    scan();
    publish();
  }
  now = now_ns();
  int ms = max_ms;
  if (next_interval_ns_ > now)
    ms = int(std::min<uint64_t>((next_interval_ns_ - now) / 1'000'000 + 1, uint64_t(max_ms)));
  else
    ms = 0;
  (void)session_->poll(ms, [this](const ss_hdr* r, size_t n) { route(r, n); });
  look_at_execs();
  check_exits();
  now = now_ns();
  if (now >= next_interval_ns_) {
    const uint64_t step = uint64_t(opt_.interval_s * 1e9);
    while (next_interval_ns_ <= now) next_interval_ns_ += step;
    interval();
  }
}

void Agent::run() {
  while (!g_stop) step();
}

std::string Agent::metrics() const {
  std::lock_guard<std::mutex> lk(mu_);
  return metrics_text_;
}
std::string Agent::targets_json() const {
  std::lock_guard<std::mutex> lk(mu_);
  return targets_text_;
}
bool Agent::healthy() const {
  // The loop steps at least every 100 ms; a loop stuck for 10 s is not healthy.
  uint64_t last = last_step_ns_.load();
  return last && now_ns() - last < 10 * kSec;
}

}  // namespace schedscope::agent
