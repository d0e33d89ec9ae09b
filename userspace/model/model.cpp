#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "probe/syscalls.h"
#include "util/hex.h"

namespace schedscope::model {

namespace {

// What the capacity decisions read of a frame's other sections (capacity/tracker.h).
capacity::FrameFacts capacity_facts(const Frame& f) {
  capacity::FrameFacts c;
  c.interval_s = f.interval_s;
  c.elapsed_s = f.elapsed_s;
  c.final = f.final;
  c.go_version = f.target.go_version;
  if (f.go) c.gomaxprocs = f.go->gomaxprocs;
  c.latency_available = f.go_latency.available;
  c.latency_samples = f.go_latency.lat.samples;
  c.latency_p99_us = f.go_latency.lat.p99_us;
  c.census = f.census ? &*f.census : nullptr;
  c.gc_share = f.gc.assist_share + f.gc.worker_share;
  c.stw_ms = f.gc.stw_ms;
  c.syscalls_per_s = f.syscalls_per_s;
  c.rq_p99_us = f.rq_p99_us;
  for (const auto& r : f.threads) c.cpu_cores += r.oncpu_pct / 100.0;
  return c;
}

}  // namespace

double hist_percentile_ns(const uint64_t* buckets, int n, double q) {
  uint64_t total = 0;
  for (int i = 0; i < n; i++) total += buckets[i];
  if (total == 0) return 0;
  // The rank of the q-quantile, then linear interpolation inside its log2 bucket.
  double rank = q * double(total);
  uint64_t seen = 0;
  for (int i = 0; i < n; i++) {
    if (buckets[i] == 0) continue;
    if (double(seen + buckets[i]) >= rank) {
      double lo = i == 0 ? 0 : std::ldexp(1.0, i);
      double hi = std::ldexp(1.0, i + 1);
      double frac = (rank - double(seen)) / double(buckets[i]);
      return lo + std::clamp(frac, 0.0, 1.0) * (hi - lo);
    }
    seen += buckets[i];
  }
  return std::ldexp(1.0, n);
}

ThreadState thread_state(const ss_thread_state& st) {
  if (st.state == SS_TS_ONCPU) return ThreadState::kRunning;
  if (st.wakeup_ns != 0) return ThreadState::kRunnable;
  switch (st.off_reason) {
    case SS_OFF_PREEMPTED:
      return ThreadState::kRunnable;
    case SS_OFF_SLEEP:
      return ThreadState::kSleeping;
    case SS_OFF_DISK:
      return ThreadState::kDisk;
    default:
      return ThreadState::kStopped;
  }
}

const char* thread_state_name(ThreadState s) {
  // In the enum's order.
  static constexpr const char* kNames[] = {"running", "runnable", "disk",
                                           "sleeping", "stopped", "exited"};
  const auto i = size_t(s);
  return i < sizeof kNames / sizeof kNames[0] ? kNames[i] : "stopped";
}

namespace {

void add_state(ss_thread_state& acc, const ss_thread_state& s) {
  acc.oncpu_ns += s.oncpu_ns;
  for (int r = 0; r < SS_OFF_REASONS; r++) {
    acc.offcpu_ns[r] += s.offcpu_ns[r];
    acc.offcpu_count[r] += s.offcpu_count[r];
  }
  acc.rq_ns += s.rq_ns;
  acc.rq_count += s.rq_count;
  for (int b = 0; b < SS_HIST_BUCKETS; b++) acc.rq_hist[b] += s.rq_hist[b];
  acc.sc_count += s.sc_count;
}

// A thread's long blocks by syscall name (two numbers of one name merge): the interval's
// or (total) those since attach; syscalls with none are left out.
template <typename V>
std::map<std::string, BlockedIn> blocks_by_name(const V& by_nr, bool total) {
  std::map<std::string, BlockedIn> out;
  for (const auto& e : by_nr) {
    const BlockedIn& b = total ? e.total : e.iv;
    if (b.count == 0) continue;
    BlockedIn& o = out[probe::syscall_name(e.nr)];
    o.count += b.count;
    o.ms += b.ms;
    o.max_ms = std::max(o.max_ms, b.max_ms);
  }
  return out;
}

uint64_t switches_of(const ss_thread_state& s) {
  uint64_t n = 0;
  for (int r = 0; r < SS_OFF_REASONS; r++) n += s.offcpu_count[r];
  return n;
}

}  // namespace

std::vector<uint64_t> stw_caller_pcs(const ss_gc_stack& e) {
  const uint32_t n = std::min<uint32_t>(e.nframes, SS_GC_STACK_MAX);
  std::vector<uint64_t> pcs;
  pcs.reserve(n);
  for (uint32_t i = 0; i < n; i++) pcs.push_back(i ? e.pcs[i] - 1 : e.pcs[i]);
  return pcs;
}

RecordPcs symbolized_pcs(const ss_hdr* rec, size_t size) {
  RecordPcs out;
  if (rec->type == SS_EV_THREAD_NEW && size >= sizeof(ss_thread_new)) {
    const auto* e = reinterpret_cast<const ss_thread_new*>(rec);
    uint32_t n = std::min<uint32_t>(e->nframes, SS_MAX_STACK);
    out.frames.assign(e->stack, e->stack + n);
  } else if (rec->type == SS_EV_GC_STACK && size >= sizeof(ss_gc_stack)) {
    ss_gc_stack e;
    std::memcpy(&e, rec, sizeof e);
    out.frames = stw_caller_pcs(e);
  } else if (rec->type == SS_EV_GO_CREATE && size >= sizeof(ss_go_create)) {
    const auto* e = reinterpret_cast<const ss_go_create*>(rec);
    if ((e->flags & SS_GOC_STARTPC) && e->startpc) out.start_funcs.push_back(e->startpc);
  }
  return out;
}

const std::vector<std::string>& Frame_Creation::frames() const {
  static const std::vector<std::string> kNone;
  return where ? where->frames : kNone;
}

const std::string& Frame_Creation::site() const {
  static const std::string kNone;
  return where ? where->site : kNone;
}

void Frame_Creation::set_stack(std::vector<std::string> frames, std::string site) {
  auto s = std::make_shared<CreationStack>();
  s->frames = std::move(frames);
  s->site = std::move(site);
  where = std::move(s);
}

Frame_Creation Model::make_creation(const ss_thread_new& e) {
  Frame_Creation c;
  c.ts_ns = e.h.ts;
  c.tid = e.tid;
  c.parent_tid = e.parent_tid;
  c.stack_skipped = (e.flags & SS_TN_DETAIL_SKIPPED) != 0;
  if (e.go.flags & SS_GO_VALID) {
    c.parent_goid = e.go.goid;
    c.parent_m = e.go.m_id;
  } else if (c.stack_skipped) {
    // Over the kernel's budget the creator's Go context is not read: its M is the one the
    // creating thread had at its last switch-out (a Go thread keeps its M for life).
    if (auto it = threads_.find(e.parent_tid);
        it != threads_.end() && !it->second.dead && (it->second.cur.go.flags & SS_GO_VALID))
      c.parent_m = it->second.cur.go.m_id;
  }
  uint32_t n = std::min<uint32_t>(e.nframes, SS_MAX_STACK);
  if (!n) return c;
  std::vector<uint64_t> pcs(e.stack, e.stack + n);
  if (auto it = stacks_.find(pcs); it != stacks_.end()) {
    c.where = it->second;
    return c;
  }
  auto s = std::make_shared<CreationStack>();
  if (sym_) {
    for (uint64_t pc : pcs) {
      std::string f = sym_->frame(pc);
      if (f.empty()) f = hex(pc);
      if (s->site.empty() && !sym_->is_runtime(pc) && f.rfind("0x", 0) != 0) s->site = f;
      s->frames.push_back(std::move(f));
    }
  }
  if (stacks_.size() >= kStacksMax) stacks_.clear();  // frames keep theirs: memory stays bounded
  stacks_.emplace(std::move(pcs), s);
  c.where = std::move(s);
  return c;
}

void Model::on_record(const ss_hdr* rec, size_t size) {
  records_++;
  if (size < sizeof(ss_hdr) || rec->size > size) {
    bad_records_++;
    return;
  }
  if (rec->type >= SS_EV_USDT && rec->type < SS_EV_USDT + 10) {  // 20..29
    usdt_.on_record(rec, size);
    return;
  }
  if (capacity_.on_record(rec, size)) return;  // SS_EV_CAP_SAMPLE
  switch (rec->type) {
    case SS_EV_THREAD_NEW: {
      if (size < sizeof(ss_thread_new)) break;
      const auto& e = *reinterpret_cast<const ss_thread_new*>(rec);
      creations_.push_back(make_creation(e));  // into all_creations_ when its frame is built
      creations_total_++;
      auto& t = threads_[e.tid];
      if (vanished(t)) {  // tid reused: the ring had no exit record of the one before (dropped)
        const ss_thread_state last = t.cur;
        exit_thread(e.tid, t, last);
      }
      if (t.dead) t = ThreadAcc{};  // tid reused
      if (!t.snap_seq) {
        // Not in a snapshot yet (created after the last read): as the kernel starts its
        // entry, runnable since its creation, until a snapshot has its state.
        t.cur.state = SS_TS_OFFCPU;
        t.cur.off_reason = SS_OFF_PREEMPTED;
        t.cur.last_switch_ns = e.h.ts;
        t.cur.sc_nr = t.cur.block_nr = t.cur.last_block_nr = SS_NO_SYSCALL;
        t.cur.go.m_id = -1;
        t.cur.go.p_id = -1;
      }
      t.cur.created_by = e.parent_tid;
      t.seen_ns = e.h.ts;
      if (names_.find(e.tid) == names_.end()) {
        char comm[SS_COMM_LEN + 1] = {};
        std::memcpy(comm, e.comm, SS_COMM_LEN);
        names_[e.tid] = comm;
      }
      return;
    }
    case SS_EV_THREAD_EXIT: {
      if (size < sizeof(ss_thread_exit)) break;
      const auto& e = *reinterpret_cast<const ss_thread_exit*>(rec);
      auto& t = threads_[e.tid];
      if (!t.dead) exit_thread(e.tid, t, e.final);
      return;
    }
    case SS_EV_OFFCPU: {
      if (size < sizeof(ss_offcpu)) break;
      const auto& e = *reinterpret_cast<const ss_offcpu*>(rec);
      annot_.on_offcpu(e);  // --annotations: the slow tasks' goroutines off-CPU
      if (e.syscall_nr >= 0 && e.reason != SS_OFF_PREEMPTED) {
        double ms = double(e.h.ts - e.start_ns) / 1e6;
        auto& v = blocked_[e.tid];
        auto it = std::find_if(v.begin(), v.end(),
                               [&](const BlockedNr& b) { return b.nr == e.syscall_nr; });
        if (it == v.end()) it = v.insert(v.end(), BlockedNr{e.syscall_nr, {}, {}});
        for (auto* m : {&it->iv, &it->total}) {
          m->count++;
          m->ms += ms;
          m->max_ms = std::max(m->max_ms, ms);
        }
      }
      return;
    }
    case SS_EV_SYSCALL_SLOW:
      if (size < sizeof(ss_syscall_slow)) break;
      return;
    case SS_EV_GO_CREATE:
      if (size < sizeof(ss_go_create)) break;
      on_go_create(*reinterpret_cast<const ss_go_create*>(rec));
      return;
    case SS_EV_GO_EXIT:
      if (size < sizeof(ss_go_exit)) break;
      on_go_exit(*reinterpret_cast<const ss_go_exit*>(rec));
      return;
    case SS_EV_GC_STACK: {
      if (size < sizeof(ss_gc_stack)) break;
      ss_gc_stack e;
      std::memcpy(&e, rec, sizeof e);
      if (gc_.is_markterm_stop(e.reason)) return;  // a recording from before the kernel skipped it
      std::string site;
      if (sym_)
        for (uint64_t pc : stw_caller_pcs(e))
          if (!sym_->is_runtime(pc)) {
            site = sym_->frame(pc);
            break;
          }
      gc_.on_stw_caller(site.empty() ? "?" : site);
      return;
    }
    default:
      if (rec->type == SS_EV_GC_SAMPLE && size >= sizeof(ss_gc_sample)) {
        ss_gc_sample e;
        std::memcpy(&e, rec, sizeof e);
        if (e.kind == SS_GCS_ASSIST)  // --annotations: the slow tasks' goroutines in assists
          annot_.on_gc_assist(e.goid, e.h.ts, gc_.sample_period_ns());
      }
      if (gc_.on_record(rec, size)) return;
      if (annot_.on_record(rec, size)) return;  // --annotations
      break;
  }
  bad_records_++;
}

// The kernel's state of a thread (a snapshot's or its exit record's). The kernel does not
// know the creator: the creation record does, and it stays. The count of calls (-S) never
// goes back for one thread: a snapshot adds the calls a CPU still holds to the entry read
// before, and a switch-out between the two reads moves them into the entry after it was
// read, so one snapshot can show fewer than the one before (the next shows them again).
// A tid reused by a new thread restarts its switch count, and its calls count from zero.
void Model::set_state(ThreadAcc& t, const ss_thread_state& st) {
  const uint32_t created_by = t.cur.created_by;
  const uint64_t sc_count = t.cur.sc_count;
  const bool same_thread = switches_of(st) >= switches_of(t.cur);
  t.cur = st;
  if (!t.cur.created_by) t.cur.created_by = created_by;
  if (same_thread && t.cur.sc_count < sc_count) t.cur.sc_count = sc_count;
}

// The thread's final totals move to exited_ (the live sum stops counting it) and it leaves
// the live rows; forget_exited() drops it at the next frame.
void Model::exit_thread(uint32_t tid, ThreadAcc& t, const ss_thread_state& final) {
  add_state(exited_, final);
  set_state(t, final);
  t.dead = true;
  exits_total_++;
  exited_tids_.push_back(tid);
  dead_.push_back(tid);
}

void Model::on_kernel(const probe::KernelSnapshot& snap) {
  if (!started_) {
    start_ns_ = prev_frame_ns_ = snap.ts_ns;
    started_ = true;
  }
  snap_ns_ = snap.ts_ns;
  snap_seq_++;
  size_t live_in_snap = 0;
  for (const auto& e : snap.threads) {
    auto& t = threads_[e.tid];
    if (t.dead) continue;  // exit consumed after the snapshot read it: the record's totals stand
    live_in_snap++;
    set_state(t, e.st);
    if (!t.seen_ns) t.seen_ns = snap.ts_ns;
    t.snap_seq = snap_seq_;
  }
  // Gone from the kernel's map without an exit record for kLostExitSnapshots snapshots:
  // the record was dropped (ring full). It exits with the totals last read.
  // (Only when threads_ holds more live threads than the snapshot: the exits since the
  // last frame are still in threads_, dead.)
  if (threads_.size() > live_in_snap + dead_.size())
    for (auto& [tid, t] : threads_)
      if (vanished(t) && snap_seq_ - t.snap_seq >= kLostExitSnapshots) {
        const ss_thread_state last = t.cur;
        exit_thread(tid, t, last);
      }
  for (const auto& s : snap.sc_block) sc_block_[s.nr] = s.stat;
  for (const auto& s : snap.sc_all) sc_all_[s.nr] = s.stat;
  std::memcpy(rq_hist_, snap.rq_hist, sizeof rq_hist_);
  drops_ = snap.drops;
  go_hits_ = snap.go_create_hits + snap.go_exit_hits;
}

void Model::on_go_sample(const go::SchedSample& s) {
  go_ = s;
  if (s.goidgen != 0) {
    GoidRead r{s.goidgen, s.ts_ns};
    if (goid_last_ && s.goidgen < goid_last_->goidgen) {  // another process image (exec)
      goid_first_.reset();
      goid_frame_.reset();
      goid_maxprocs_ = 0;
    }
    if (!goid_first_) goid_first_ = r;
    goid_last_ = r;
    goid_maxprocs_ = std::max(goid_maxprocs_, s.gomaxprocs);
  }
  gc_.set_gomaxprocs(s.gomaxprocs);
  gc_.set_gcphase(s.gcphase);
}

uint32_t Model::go_func_index(uint64_t startpc, bool known) {
  if (known) {
    if (auto it = go_func_by_pc_.find(startpc); it != go_func_by_pc_.end()) return it->second;
  }
  std::string name;
  if (known && sym_) name = sym_->start_func(startpc);
  if (name.empty()) {
    if (known && startpc) {
      name = hex(startpc);
    } else {
      name = "?";
    }
  }
  uint32_t idx;
  if (auto it = go_func_by_name_.find(name); it != go_func_by_name_.end()) {
    idx = it->second;
  } else {
    idx = uint32_t(go_funcs_.size());
    go_funcs_.push_back(GoFuncAcc{name});
    go_func_by_name_[name] = idx;
  }
  if (known) go_func_by_pc_[startpc] = idx;
  return idx;
}

namespace {
constexpr size_t kGoNamedMax = size_t{1} << 18;      // census mode: creators named among these
}  // namespace

void Model::on_go_create(const ss_go_create& e) {
  uint32_t idx = go_func_index(e.startpc, (e.flags & SS_GOC_STARTPC) && e.startpc);
  auto& fa = go_funcs_[idx];
  fa.created_iv++;
  fa.created++;
  go_created_iv_++;
  go_created_++;
  if (target_.goroutine_exits) {
    if (e.goid && go_live_.size() < 2'000'000) go_live_[e.goid] = idx;
  } else {
    if (e.goid && go_live_.emplace(e.goid, idx).second) {
      go_named_.push_back(e.goid);
      if (go_named_.size() > kGoNamedMax) {
        go_live_.erase(go_named_.front());
        go_named_.pop_front();
      }
    }
    if (go_cen_base_) {  // census exits: counted by the first census that ended after it
      if (e.h.ts <= go_cen_last_->ts) {
        if (e.h.ts > go_cen_base_->ts) {  // drained after that census was read
          go_created_cen_++;
          fa.created_cen++;
        }
      } else {
        go_pending_++;
        fa.created_pending++;
      }
    }
  }
  if (e.flags & SS_GOC_CREATOR) {
    go_creators_iv_[e.creator_goid]++;
    go_creators_[e.creator_goid]++;
  }
}

void Model::on_census(const gc::Census& c) {
  gc_.on_census(c);
  // Not waiting for the uprobes to be attached: a replay learns that at the first frame,
  // after the census it read live as the first.
  if (target_.goroutines && !target_.goroutine_exits) go_census_exits(c);
}

// A complete census (every G of allgs read within its budget) is a count of the live
// goroutines, in all and by start function, as its read ended: the base of the exit
// estimate (the first after attach) or its latest point. The creations that began before
// it ended are counted against it.
void Model::go_census_exits(const gc::Census& c) {
  if (c.allglen == 0 || c.read < c.allglen) {
    go_cen_cut_ = "the last census was cut short by its time budget (" + std::to_string(c.read) +
                  " of " + std::to_string(c.allglen) + " goroutines read): " +
                  (go_cen_base_ ? "exits as of the last complete one" : "no exits estimated yet");
    return;
  }
  go_cen_cut_.clear();
  GoCensusLive l;
  l.ts = c.ts_ns;
  l.live = int64_t(c.live());
  for (const auto& [f, n] : c.live_funcs) l.by_func[f] += int64_t(n);
  l.funcs_all = c.live_funcs.size() < gc::kCensusLiveFuncsMax;
  if (go_cen_base_) {
    go_created_cen_ += go_pending_;
    for (auto& fa : go_funcs_) fa.created_cen += fa.created_pending;
  }
  go_pending_ = 0;
  for (auto& fa : go_funcs_) fa.created_pending = 0;
  if (!go_cen_base_) go_cen_base_ = l;
  go_cen_last_ = std::move(l);
}

void Model::on_go_exit(const ss_go_exit& e) {
  go_exited_iv_++;
  go_exited_++;
  auto it = go_live_.find(e.goid);
  if (it == go_live_.end()) {
    go_unmatched_++;
    return;
  }
  auto& fa = go_funcs_[it->second];
  fa.exited_iv++;
  fa.exited++;
  go_live_.erase(it);
}

void Model::set_goroutine_baseline(uint64_t live) {
  go_baseline_ = live;
  go_base_created_ = go_created_;
  go_base_exited_ = go_exited_;
}

std::vector<uint32_t> Model::take_exited() {
  std::vector<uint32_t> out;
  out.swap(exited_tids_);
  return out;
}

void Model::on_sched_latency(const go::TimeHist& h) {
  if (!h.valid()) return;
  if (lat_last_ && (lat_last_->layout != h.layout || !go::time_hist_monotonic(h, *lat_last_))) {
    // Another process image (exec) or a reset: start over from this read.
    lat_first_.reset();
    lat_at_frame_.reset();
  }
  if (!lat_first_) lat_first_ = h;
  lat_last_ = h;
}

Frame Model::frame(bool final) {
  Frame f;
  f.ts_ns = snap_ns_;
  f.final = final;
  f.target = target_;
  const uint64_t since = final ? start_ns_ : prev_frame_ns_;
  f.interval_s = snap_ns_ > since ? double(snap_ns_ - since) / 1e9 : 0;
  f.elapsed_s = snap_ns_ > start_ns_ ? double(snap_ns_ - start_ns_) / 1e9 : 0;
  if (!final) forget_exited();  // the exits since the last frame: not walked by the rows
  frame_gc(f, since, final);
  frame_latency(f, final);
  std::map<int, int> in_flight = frame_threads(f, since, final);
  frame_syscalls(f, final, in_flight);
  frame_runqueue(f, final);
  frame_events(f, final);
  frame_goroutines(f, final);
  frame_goroutine_counts(f, final);
  if (!final) end_interval();
  if (final) frame_exited_threads(f);
  frame_usdt(f, final);
  if (annot_.asked()) f.annotations = annot_.frame(final, f.interval_s, f.ts_ns);
  f.capacity = capacity_.fill(capacity_facts(f));  // last: it reads the sections above
  return f;
}

// Goroutines created (sched.goidgen deltas) and alive (the last census).
void Model::frame_goroutine_counts(Frame& f, bool final) {
  GoroutineCounts& g = f.goroutine_counts;
  if (const auto* c = gc_.census()) g.live = int64_t(c->live());
  if (!goid_first_ || !goid_last_) return;
  const GoidRead& base = final ? *goid_first_ : goid_frame_ ? *goid_frame_ : *goid_first_;
  g.available = goid_last_->ts_ns > goid_first_->ts_ns;
  g.created = goid_last_->goidgen - base.goidgen;
  g.created_total = goid_last_->goidgen - goid_first_->goidgen;
  g.created_per_s = goid_last_->ts_ns > base.ts_ns
                        ? double(g.created) * 1e9 / double(goid_last_->ts_ns - base.ts_ns)
                        : 0;
  g.error_max = 16 * uint64_t(std::max(goid_maxprocs_, 1));
  if (!final) goid_frame_ = goid_last_;
}

void Model::set_target(const TargetInfo& t) {
  target_ = t;
  gc_.set_go_minor(go::go_minor(target_.go_version).value_or(0));
  gc_.set_stw_reasons(target_.stw_reasons);
}

// GC cycles, stop-the-world pauses, worker/assist share, MMU; the last goroutine census.
void Model::frame_gc(Frame& f, uint64_t since, bool final) {
  f.gc = gc_.take(since, snap_ns_, final);
  if (const auto* c = gc_.census()) f.census = *c;
}

// Goroutine scheduling latency from the runtime's histogram: this interval, or since the
// first read when final.
void Model::frame_latency(Frame& f, bool final) {
  f.go_latency.note = lat_note_;
  if (lat_last_) {
    f.go_latency.available = true;
    const go::TimeHist* base = final ? &*lat_first_ : lat_at_frame_ ? &*lat_at_frame_ : &*lat_first_;
    f.go_latency.lat = go::summarize(*lat_last_, base);
    if (!final) lat_at_frame_ = lat_last_;
  }
}

// The live threads' rows (state, syscall, on/off-CPU, run queue, Go columns) and the
// totals over every thread seen; returns the threads in flight per syscall.
std::map<int, int> Model::frame_threads(Frame& f, uint64_t since, bool final) {
  const double interval_ns = f.interval_s * 1e9;
  // Tid -> M/P/G/func from the runtime sample (authoritative for the Go columns).
  std::unordered_map<int32_t, const go::MSample*> m_by_tid;
  std::unordered_map<int64_t, const go::PSample*> p_by_m;
  if (go_) {
    for (const auto& m : go_->ms) m_by_tid[m.tid] = &m;
    for (const auto& p : go_->ps)
      if (p.m_id >= 0) p_by_m[p.m_id] = &p;
  }


  uint64_t proc_switches = 0;
  std::map<int, int> in_flight;
  for (auto& [tid, t] : threads_) {
    if (t.dead || vanished(t)) continue;  // (vanished: exited, its record still to come)
    const ss_thread_state& c = t.cur;
    ss_thread_state p0{};
    const ss_thread_state& p = (t.prev && !final) ? *t.prev : p0;
    ThreadRow r;
    r.tid = tid;
    auto nit = names_.find(tid);
    if (nit != names_.end()) {
      r.name = nit->second;
    } else {
      char comm[SS_COMM_LEN + 1] = {};
      std::memcpy(comm, c.comm, SS_COMM_LEN);
      r.name = comm;
    }
    r.state = thread_state(c);
    r.state_ms = c.last_switch_ns && snap_ns_ > c.last_switch_ns
                     ? double(snap_ns_ - c.last_switch_ns) / 1e6
                     : 0;
    // A thread blocked off-CPU: the merged block (a call restarted after a signal is one
    // block, also under -S where every restart re-enters sys_enter). Else, under -S, the
    // exact in-flight syscall of a thread on CPU or runnable.
    if (c.state == SS_TS_OFFCPU && c.block_nr >= 0) {
      r.syscall = probe::syscall_name(c.block_nr);
      r.block_ip = c.block_ip;
      r.block_bp = c.block_bp;
      uint64_t bsince = c.block_since_ns ? c.block_since_ns : c.last_switch_ns;
      r.syscall_ms = bsince && snap_ns_ > bsince ? double(snap_ns_ - bsince) / 1e6 : r.state_ms;
      in_flight[c.block_nr]++;
    } else if (c.sc_enter_ns && c.sc_nr >= 0) {
      r.syscall = probe::syscall_name(c.sc_nr);
      r.syscall_ms = snap_ns_ > c.sc_enter_ns ? double(snap_ns_ - c.sc_enter_ns) / 1e6 : 0;
      in_flight[c.sc_nr]++;
    }
    // On-CPU time in the interval: completed stretches plus the ongoing one, minus the
    // same quantity at the previous frame (so an ongoing stretch is never counted twice).
    auto with_ongoing = [](const ss_thread_state& s, uint64_t at) {
      uint64_t v = s.oncpu_ns;
      if (s.state == SS_TS_ONCPU && s.last_switch_ns && at > s.last_switch_ns)
        v += at - s.last_switch_ns;
      return v;
    };
    uint64_t on_now = with_ongoing(c, snap_ns_);
    uint64_t on_then = (t.prev && !final) ? with_ongoing(*t.prev, since) : 0;
    uint64_t on = on_now - std::min(on_now, on_then);
    r.oncpu_pct = interval_ns > 0 ? std::min(100.0, 100.0 * double(on) / interval_ns) : 0;
    auto d = [&](int i) {
      return double(c.offcpu_ns[i] - std::min(c.offcpu_ns[i], p.offcpu_ns[i])) / 1e6;
    };
    r.offcpu_ms.preempted = d(SS_OFF_PREEMPTED);
    r.offcpu_ms.sleep = d(SS_OFF_SLEEP);
    r.offcpu_ms.disk = d(SS_OFF_DISK);
    r.offcpu_ms.other = d(SS_OFF_OTHER);
    uint64_t hist[SS_HIST_BUCKETS];
    for (int b = 0; b < SS_HIST_BUCKETS; b++)
      hist[b] = c.rq_hist[b] - std::min(c.rq_hist[b], p.rq_hist[b]);
    r.rq_p50_us = hist_percentile_ns(hist, SS_HIST_BUCKETS, 0.5) / 1e3;
    r.rq_p99_us = hist_percentile_ns(hist, SS_HIST_BUCKETS, 0.99) / 1e3;
    r.switches = switches_of(c) - std::min(switches_of(c), switches_of(p));
    proc_switches += r.switches;
    if (f.interval_s > 0)
      r.syscalls_per_s = double(c.sc_count - std::min(c.sc_count, p.sc_count)) / f.interval_s;
    r.created_by = c.created_by;
    if (c.go.flags & SS_GO_VALID) {
      r.m = c.go.m_id;
      r.p = c.go.p_id;
      r.goid = c.go.goid;
      r.p_from_oldp = (c.go.flags & SS_GO_OLDP) != 0;
      r.incgo = (c.go.flags & SS_GO_INCGO) != 0;
    }
    if (auto it = m_by_tid.find(int32_t(tid)); it != m_by_tid.end()) {
      const go::MSample& m = *it->second;
      r.m = m.id;
      r.p = m.p >= 0 ? m.p : (m.oldp >= 0 && !r.syscall.empty() ? m.oldp : -1);
      r.p_from_oldp = m.p < 0 && r.p >= 0;
      r.goid = m.curg_goid;
      r.go_func = m.curg_func;
      r.incgo = m.incgo;
    }
    if (auto bit = blocked_.find(tid); bit != blocked_.end())
      r.blocked_in = blocks_by_name(bit->second, final);
    f.threads.push_back(std::move(r));
    if (!final) {
      if (t.prev)
        *t.prev = c;
      else
        t.prev = std::make_unique<ss_thread_state>(c);
    }
  }
  f.threads_alive = int(f.threads.size());
  {
    ss_thread_state sum = exited_;
    for (const auto& [tid, t] : threads_)
      if (!t.dead) add_state(sum, t.cur);
    f.totals.oncpu_ms = double(sum.oncpu_ns) / 1e6;
    f.totals.offcpu_ms = {
        double(sum.offcpu_ns[SS_OFF_PREEMPTED]) / 1e6, double(sum.offcpu_ns[SS_OFF_SLEEP]) / 1e6,
        double(sum.offcpu_ns[SS_OFF_DISK]) / 1e6, double(sum.offcpu_ns[SS_OFF_OTHER]) / 1e6};
    f.totals.switches = switches_of(sum);
    f.totals.rq_count = sum.rq_count;
    uint64_t h[SS_HIST_BUCKETS];
    for (int b = 0; b < SS_HIST_BUCKETS; b++) h[b] = sum.rq_hist[b];
    f.totals.rq_p50_us = hist_percentile_ns(h, SS_HIST_BUCKETS, 0.5) / 1e3;
    f.totals.rq_p99_us = hist_percentile_ns(h, SS_HIST_BUCKETS, 0.99) / 1e3;
    f.totals.syscalls = sum.sc_count;
  }
  f.switches_per_s = f.interval_s > 0 ? double(proc_switches) / f.interval_s : 0;
  return in_flight;
}

// Syscalls: the -S table (every call) or the blocking table (default); with -S the
// blocking table too, apart.
void Model::frame_syscalls(Frame& f, bool final, std::map<int, int>& in_flight) {
  const auto& cur = target_.all_syscalls ? sc_all_ : sc_block_;
  auto& prev = target_.all_syscalls ? sc_all_prev_ : sc_block_prev_;
  f.syscalls = syscall_rows(cur, prev, f, final, in_flight);
  uint64_t calls = 0;
  for (const auto& r : f.syscalls) calls += r.count;
  f.syscalls_per_s = f.interval_s > 0 ? double(calls) / f.interval_s : 0;
  if (target_.all_syscalls) {
    std::map<int, int> none;
    f.blocking_syscalls = syscall_rows(sc_block_, sc_block_prev_, f, final, none);
  }
}

std::vector<SyscallRow> Model::syscall_rows(const std::map<int, ss_sc_stat>& cur,
                                            std::map<int, ss_sc_stat>& prev, const Frame& f,
                                            bool final, std::map<int, int>& in_flight) {
  std::vector<SyscallRow> rows;
  for (const auto& [nr, s] : cur) {
    ss_sc_stat p0{};
    const ss_sc_stat& p = final ? p0 : (prev.count(nr) ? prev.at(nr) : p0);
    SyscallRow row;
    row.nr = nr;
    row.name = probe::syscall_name(nr);
    row.count = s.count - std::min(s.count, p.count);
    row.total_count = s.count;
    row.time_ms = double(s.total_ns - std::min(s.total_ns, p.total_ns)) / 1e6;
    row.calls_per_s = f.interval_s > 0 ? double(row.count) / f.interval_s : 0;
    uint64_t hist[SS_HIST_BUCKETS];
    for (int b = 0; b < SS_HIST_BUCKETS; b++) hist[b] = s.hist[b] - std::min(s.hist[b], p.hist[b]);
    row.p50_us = hist_percentile_ns(hist, SS_HIST_BUCKETS, 0.5) / 1e3;
    row.p99_us = hist_percentile_ns(hist, SS_HIST_BUCKETS, 0.99) / 1e3;
    row.max_us = double(s.max_ns) / 1e3;
    row.in_flight = in_flight.count(nr) ? in_flight[nr] : 0;
    row.total_ns = s.total_ns;
    for (int b = 0; b < SS_HIST_BUCKETS; b++) row.hist_total[size_t(b)] = s.hist[b];
    if (row.count || row.in_flight || final) rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end(), [&](const SyscallRow& a, const SyscallRow& b) {
    return a.time_ms != b.time_ms ? a.time_ms > b.time_ms : a.count > b.count;
  });
  if (!final) prev = cur;
  return rows;
}

// The kernel run-queue latency of the process.
void Model::frame_runqueue(Frame& f, bool final) {
  uint64_t hist[SS_HIST_BUCKETS];
  for (int b = 0; b < SS_HIST_BUCKETS; b++)
    hist[b] = rq_hist_[b] - (final ? 0 : std::min(rq_hist_[b], rq_hist_prev_[b]));
  f.rq_p50_us = hist_percentile_ns(hist, SS_HIST_BUCKETS, 0.5) / 1e3;
  f.rq_p99_us = hist_percentile_ns(hist, SS_HIST_BUCKETS, 0.99) / 1e3;
  f.rq_p999_us = hist_percentile_ns(hist, SS_HIST_BUCKETS, 0.999) / 1e3;
  f.rq_hist.assign(hist, hist + SS_HIST_BUCKETS);
  if (!final) std::memcpy(rq_hist_prev_, rq_hist_, sizeof rq_hist_);
}

// Thread creations, long off-CPU intervals, ring-buffer drops and the P table / M list.
void Model::frame_events(Frame& f, bool final) {
  f.creations_per_s = f.interval_s > 0 ? double(creations_.size()) / f.interval_s : 0;
  // The first kMaxCreationsKept since attach stay for the final frame; an interval's own
  // move into its frame (no copy once the kept ones are full).
  constexpr size_t kMaxCreationsKept = 10000;
  if (final) {
    f.creations = all_creations_;
    for (size_t i = 0; i < creations_.size() && f.creations.size() < kMaxCreationsKept; i++)
      f.creations.push_back(creations_[i]);
  } else {
    for (size_t i = 0; i < creations_.size() && all_creations_.size() < kMaxCreationsKept; i++)
      all_creations_.push_back(creations_[i]);
    const size_t n = creations_.size();
    f.creations = std::move(creations_);
    creations_.clear();
    creations_.reserve(n);  // the next interval's, without growing it push by push
  }
  f.creations_total = creations_total_;
  f.exits_total = exits_total_;
  f.drops = drops_;
  f.drops_interval = drops_ - std::min(drops_, drops_prev_);
  f.go = go_;
}

// (--goroutines, census exits) exits since the base census = creations since then - growth
// of the live count, as of the last complete census; per start function the same with the
// function's live count (known when the census listed it, or listed every function). An
// interval shows how much the estimate grew since the previous frame (never negative).
// Fills the exits of `g` and each function's `exited` (interval or, final, total).
void Model::frame_goroutine_census_exits(GoroutineStats& g, bool final) {
  g.exited_note = go_cen_cut_;
  if (!go_cen_last_) return;
  g.live = go_cen_last_->live;
  const GoCensusLive& b = *go_cen_base_;
  const GoCensusLive& l = *go_cen_last_;
  auto live_of = [](const GoCensusLive& c, const std::string& fn) -> std::optional<int64_t> {
    if (auto it = c.by_func.find(fn); it != c.by_func.end()) return it->second;
    if (c.funcs_all) return 0;
    return std::nullopt;
  };
  auto shown = [final](int64_t est, uint64_t& so_far) -> uint64_t {
    uint64_t total = uint64_t(std::max<int64_t>(est, 0));
    if (final) return total;
    uint64_t iv = total - std::min(total, so_far);
    so_far = std::max(so_far, total);
    return iv;
  };
  int64_t est = int64_t(go_created_cen_) - (l.live - b.live);
  g.exited_total = uint64_t(std::max<int64_t>(est, 0));
  g.exited = shown(est, go_exit_shown_);
  for (auto& fa : go_funcs_) {
    auto lb = live_of(b, fa.name), ll = live_of(l, fa.name);
    if (lb && ll) fa.exited_est = int64_t(fa.created_cen) - (*ll - *lb);
    uint64_t x = shown(fa.exited_est, fa.exited_shown);
    (final ? fa.exited : fa.exited_iv) = x;
  }
  // The live goroutines of start functions that started none since attach, fewer now.
  g.exited_unmatched = 0;
  auto unmatched = [&](const std::string& fn) {
    if (go_func_by_name_.count(fn)) return;
    auto lb = live_of(b, fn), ll = live_of(l, fn);
    if (lb && ll && *lb > *ll) g.exited_unmatched += uint64_t(*lb - *ll);
  };
  for (const auto& [fn, n] : b.by_func) unmatched(fn);
}

// (--goroutines) goroutines created and exited, by start function and by creator.
void Model::frame_goroutines(Frame& f, bool final) {
  GoroutineStats& g = f.goroutines;
  g.enabled = target_.goroutines && target_.goroutines_attached;
  g.note = target_.goroutines_note;
  g.created = final ? go_created_ : go_created_iv_;
  g.created_total = go_created_;
  if (target_.goroutine_exits) {
    g.exited_source = "uprobe";
    g.exited = final ? go_exited_ : go_exited_iv_;
    g.exited_total = go_exited_;
    g.exited_unmatched = go_unmatched_;
    if (go_baseline_) {
      int64_t live = int64_t(*go_baseline_) + int64_t(go_created_ - go_base_created_) -
                     int64_t(go_exited_ - go_base_exited_);
      g.live = std::max<int64_t>(live, 0);
    }
  } else {
    g.exited_source = "census";
    frame_goroutine_census_exits(g, final);
  }
  g.created_per_s = f.interval_s > 0 ? double(g.created) / f.interval_s : 0;
  g.exited_per_s = f.interval_s > 0 ? double(g.exited) / f.interval_s : 0;
  for (const auto& fa : go_funcs_) {
    uint64_t c = final ? fa.created : fa.created_iv, x = final ? fa.exited : fa.exited_iv;
    if (c || x) g.top.push_back({fa.name, c, x});
  }
  std::sort(g.top.begin(), g.top.end(), [](const GoFuncRow& a, const GoFuncRow& b) {
    return a.created != b.created
               ? a.created > b.created
               : (a.exited != b.exited ? a.exited > b.exited : a.func < b.func);
  });
  if (g.top.size() > 20) g.top.resize(20);
  for (const auto& [goid, n] : final ? go_creators_ : go_creators_iv_) {
    GoCreatorRow r{goid, "", n};
    if (auto it = go_live_.find(goid); it != go_live_.end()) r.func = go_funcs_[it->second].name;
    g.creators.push_back(std::move(r));
  }
  std::sort(g.creators.begin(), g.creators.end(),
            [](const GoCreatorRow& a, const GoCreatorRow& b) {
              return a.count != b.count ? a.count > b.count : a.goid < b.goid;
            });
  if (g.creators.size() > 10) g.creators.resize(10);
  g.uprobe_hits = go_hits_ - (final ? 0 : std::min(go_hits_, go_hits_prev_));
  g.uprobe_hits_per_s = f.interval_s > 0 ? double(g.uprobe_hits) / f.interval_s : 0;
  g.cost_us_per_hit = kGoUprobeCostUs;
  g.est_cpu_ms_per_s = g.uprobe_hits_per_s * kGoUprobeCostUs / 1000.0;
  if (g.enabled) {
    char buf[200];
    snprintf(buf, sizeof buf,
             "%.0f hits/s ~ %.0f x ~%.0fus = %.1f ms of target CPU/s on this VM (measured: "
             "see docs/goroutines.md)",
             g.uprobe_hits_per_s, g.uprobe_hits_per_s, kGoUprobeCostUs, g.est_cpu_ms_per_s);
    g.cost = buf;
  }
}

// The interval's accumulators start over.
void Model::end_interval() {
  go_hits_prev_ = go_hits_;
  go_created_iv_ = go_exited_iv_ = 0;
  go_creators_iv_.clear();
  for (auto& fa : go_funcs_) fa.created_iv = fa.exited_iv = 0;
  drops_prev_ = drops_;
  creations_.clear();
  for (auto& [tid, v] : blocked_)
    for (auto& b : v) b.iv = {};
  prev_frame_ns_ = snap_ns_;
}

// Threads that exited leave the live rows; their final totals stay for the final frame.
// Only the exits since the last frame are looked at (not every thread known).
void Model::forget_exited() {
  for (uint32_t tid : dead_) {
    auto it = threads_.find(tid);
    if (it == threads_.end() || !it->second.dead) continue;  // already dropped, or tid reused
    if (gone_.size() < kGoneMax) {
      gone_[tid] = it->second.cur;
    } else if (auto g = gone_.find(tid); g != gone_.end()) {
      g->second = it->second.cur;
    } else {
      names_.erase(tid);  // no exited row will show it: memory stays flat under churn
      blocked_.erase(tid);
    }
    threads_.erase(it);
  }
  dead_.clear();
}

// The final frame's rows of the threads that exited, with their totals.
void Model::frame_exited_threads(Frame& f) {
  std::vector<uint32_t> tids;
  tids.reserve(gone_.size());
  for (const auto& [tid, st] : gone_) tids.push_back(tid);
  std::sort(tids.begin(), tids.end());
  for (uint32_t tid : tids) {
    const ss_thread_state& st = gone_.at(tid);
    ThreadRow r;
    r.tid = tid;
    char comm[SS_COMM_LEN + 1] = {};
    std::memcpy(comm, st.comm, SS_COMM_LEN);
    auto nit = names_.find(tid);
    r.name = nit != names_.end() ? nit->second : comm;
    r.state = ThreadState::kExited;
    r.oncpu_pct = f.interval_s > 0
                      ? std::min(100.0, 100.0 * double(st.oncpu_ns) / (f.interval_s * 1e9))
                      : 0;
    r.offcpu_ms = {
        double(st.offcpu_ns[SS_OFF_PREEMPTED]) / 1e6, double(st.offcpu_ns[SS_OFF_SLEEP]) / 1e6,
        double(st.offcpu_ns[SS_OFF_DISK]) / 1e6, double(st.offcpu_ns[SS_OFF_OTHER]) / 1e6};
    uint64_t h[SS_HIST_BUCKETS];
    for (int b = 0; b < SS_HIST_BUCKETS; b++) h[b] = st.rq_hist[b];
    r.rq_p50_us = hist_percentile_ns(h, SS_HIST_BUCKETS, 0.5) / 1e3;
    r.rq_p99_us = hist_percentile_ns(h, SS_HIST_BUCKETS, 0.99) / 1e3;
    r.switches = switches_of(st);
    r.created_by = st.created_by;
    if (auto bit = blocked_.find(tid); bit != blocked_.end())
      r.blocked_in = blocks_by_name(bit->second, true);
    if (st.go.flags & SS_GO_VALID) {
      r.m = st.go.m_id;
      r.p = st.go.p_id;
      r.goid = st.go.goid;
    }
    f.threads.push_back(std::move(r));
  }
}

// USDT: probe counts, pauses, and the names the runtime gave its threads.
void Model::frame_usdt(Frame& f, bool final) {
  if (!usdt_.probes().empty()) {
    std::map<uint32_t, std::string> os_names(names_.begin(), names_.end());
    f.usdt = usdt_.frame(snap_ns_, f.interval_s, final, os_names);
    for (auto& r : f.threads)
      if (auto n = usdt_.name(r.tid)) r.name = *n;
  }
}

}  // namespace schedscope::model
