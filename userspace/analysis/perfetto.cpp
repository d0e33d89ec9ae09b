#include "analysis/perfetto.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "analysis/replay.h"
#include "annotations.h"
#include "model/frame_json.h"
#include "perfetto_trace.pb.h"
#include "probe/syscalls.h"
#include "util/hex.h"
#include "util/safe_file.h"

namespace schedscope::record {

namespace pp = perfetto::protos;

namespace {

// Track uuids: small fixed ones, then P tracks, then per-thread tracks.
constexpr uint64_t kProcessUuid = 1;
constexpr uint64_t kAlertsUuid = 2;
constexpr uint64_t kCounterThreads = 10, kCounterRunnable = 11, kCounterSyscalls = 12,
                   kCounterSwitches = 13;
uint64_t p_uuid(int32_t p) { return 0x1000 + uint64_t(uint32_t(p)); }
uint64_t thread_uuid(uint32_t tid) { return (1ull << 32) | tid; }
uint64_t syscall_track_uuid(uint32_t tid) { return (2ull << 32) | tid; }
// --annotations: a track per goroutine with annotations (regions nest there, logs are
// instants on it) and one per task (the task as one slice).
uint64_t annot_g_uuid(uint64_t goid) { return (5ull << 32) | (goid & 0xffffffffu); }
uint64_t annot_task_uuid(uint64_t id) { return (6ull << 32) | (id & 0xffffffffu); }

class TraceOut {
 public:
  explicit TraceOut(FILE* f) : f_(f) {}
  void write(pp::TracePacket& p) {
    p.set_trusted_packet_sequence_id(1);
    if (first_) {
      p.set_sequence_flags(pp::TracePacket::SEQ_INCREMENTAL_STATE_CLEARED);
      first_ = false;
    }
    std::string s;
    p.SerializeToString(&s);
    uint8_t hdr[11];
    size_t n = 0;
    hdr[n++] = 0x0A;  // Trace.packet: field 1, length-delimited
    uint64_t len = s.size();
    do {
      uint8_t b = len & 0x7F;
      len >>= 7;
      hdr[n++] = len ? (b | 0x80) : b;
    } while (len);
    if (std::fwrite(hdr, 1, n, f_) != n || std::fwrite(s.data(), 1, s.size(), f_) != s.size())
      ok_ = false;
    bytes_ += n + s.size();
    packets_++;
  }
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] uint64_t packets() const { return packets_; }
  [[nodiscard]] uint64_t bytes() const { return bytes_; }

 private:
  FILE* f_;
  bool first_ = true, ok_ = true;
  uint64_t packets_ = 0, bytes_ = 0;
};

void annotate(pp::TrackEvent* e, const std::string& name, const std::string& v) {
  auto* a = e->add_debug_annotations();
  a->set_name(name);
  a->set_string_value(v);
}
void annotate(pp::TrackEvent* e, const std::string& name, int64_t v) {
  auto* a = e->add_debug_annotations();
  a->set_name(name);
  a->set_int_value(v);
}

std::string comm_of(const char* c, size_t n) {
  size_t len = strnlen(c, n);
  return std::string(c, len);
}

struct Scan {
  std::map<uint32_t, std::string> threads;  // tid -> name
  std::set<int32_t> ps;
  std::set<uint32_t> slow_tids;  // threads with slow syscalls (-S)
  bool any_go = false;
};

// First pass: every thread and P, so descriptors can precede the events.
Scan scan(const Recording& rec) {
  Scan s;
  Item it;
  auto iter = rec.records();
  auto see = [&](uint32_t tid, const std::string& name) {
    auto& n = s.threads[tid];
    if (!name.empty()) n = name;
  };
  while (iter.next(&it)) {
    switch (it.kind) {
      case kRecRaw: {
        const ss_hdr* h = it.raw();
        if (h->type == SS_EV_THREAD_NEW && it.raw_size >= sizeof(ss_thread_new)) {
          const auto* e = reinterpret_cast<const ss_thread_new*>(h);
          if (!s.threads.count(e->tid)) see(e->tid, comm_of(e->comm, SS_COMM_LEN));
          see(e->parent_tid, "");
        } else if (h->type == SS_EV_OFFCPU && it.raw_size >= sizeof(ss_offcpu)) {
          see(reinterpret_cast<const ss_offcpu*>(h)->tid, "");
        } else if (h->type == SS_EV_SYSCALL_SLOW && it.raw_size >= sizeof(ss_syscall_slow)) {
          uint32_t tid = reinterpret_cast<const ss_syscall_slow*>(h)->tid;
          see(tid, "");
          s.slow_tids.insert(tid);
        } else if (h->type == SS_EV_THREAD_EXIT && it.raw_size >= sizeof(ss_thread_exit)) {
          see(reinterpret_cast<const ss_thread_exit*>(h)->tid, "");
        }
        break;
      }
      case kRecKernel:
        for (const auto& t : it.kernel.threads) {
          auto f = s.threads.find(t.tid);
          if (f == s.threads.end() || f->second.empty()) see(t.tid, comm_of(t.st.comm, SS_COMM_LEN));
        }
        break;
      case kRecName:
        see(it.tid, it.name);
        break;
      case kRecGo:
        s.any_go = true;
        for (const auto& p : it.go.ps)
          if (s.ps.size() < 4096) s.ps.insert(p.id);
        break;
      default:
        break;
    }
  }
  return s;
}

}  // namespace

ExportStats export_perfetto(const Recording& rec, const detect::DetectOptions& detect, FILE* f,
                            bool* write_ok) {
  TraceOut out(f);
  ExportStats st;
  model::TargetInfo target = target_from_json(rec.meta().value("target", nlohmann::json::object()));
  Scan sc = scan(rec);

  // ---- descriptors
  {
    pp::TracePacket p;
    auto* td = p.mutable_track_descriptor();
    td->set_uuid(kProcessUuid);
    td->set_name(target.comm.empty() ? "pid " + std::to_string(target.pid) : target.comm);
    auto* pd = td->mutable_process();
    pd->set_pid(target.pid);
    pd->set_process_name(target.comm);
    if (!target.exe.empty()) pd->add_cmdline(target.exe);
    out.write(p);
  }
  for (int32_t pid : sc.ps) {
    pp::TracePacket p;
    auto* td = p.mutable_track_descriptor();
    td->set_uuid(p_uuid(pid));
    td->set_parent_uuid(kProcessUuid);
    td->set_name("P" + std::to_string(pid));
    out.write(p);
    st.p_tracks++;
  }
  for (const auto& [tid, name] : sc.threads) {
    pp::TracePacket p;
    auto* td = p.mutable_track_descriptor();
    td->set_uuid(thread_uuid(tid));
    auto* th = td->mutable_thread();
    th->set_pid(target.pid);
    th->set_tid(int32_t(tid));
    if (!name.empty()) th->set_thread_name(name);
    out.write(p);
    st.thread_tracks++;
  }
  for (uint32_t tid : sc.slow_tids) {
    pp::TracePacket p;
    auto* td = p.mutable_track_descriptor();
    td->set_uuid(syscall_track_uuid(tid));
    td->set_parent_uuid(thread_uuid(tid));
    td->set_name("syscalls " + std::to_string(tid));
    out.write(p);
  }
  const char* sc_name = target.all_syscalls ? "syscalls/s" : "blocking syscalls/s";
  std::vector<std::pair<uint64_t, std::string>> counters = {
      {kCounterThreads, "threads"},
      {kCounterSwitches, "context switches/s"},
      {kCounterSyscalls, sc_name}};
  if (sc.any_go) counters.emplace_back(kCounterRunnable, "runnable Gs (sum of P run queues)");
  for (const auto& [uuid, name] : counters) {
    pp::TracePacket p;
    auto* td = p.mutable_track_descriptor();
    td->set_uuid(uuid);
    td->set_parent_uuid(kProcessUuid);
    td->set_name(name);
    td->mutable_counter()->set_unit(pp::CounterDescriptor::UNIT_COUNT);
    out.write(p);
    st.counter_tracks++;
  }
  {
    pp::TracePacket p;
    auto* td = p.mutable_track_descriptor();
    td->set_uuid(kAlertsUuid);
    td->set_parent_uuid(kProcessUuid);
    td->set_name("schedscope alerts");
    out.write(p);
  }

  // ---- events
  auto begin = [&](uint64_t ts, uint64_t track, const std::string& name, const char* cat) {
    pp::TracePacket p;
    p.set_timestamp(ts);
    auto* e = p.mutable_track_event();
    e->set_type(pp::TrackEvent::TYPE_SLICE_BEGIN);
    e->set_track_uuid(track);
    e->set_name(name);
    e->add_categories(cat);
    return p;
  };
  auto end = [&](uint64_t ts, uint64_t track) {
    pp::TracePacket p;
    p.set_timestamp(ts);
    auto* e = p.mutable_track_event();
    e->set_type(pp::TrackEvent::TYPE_SLICE_END);
    e->set_track_uuid(track);
    out.write(p);
  };
  auto counter = [&](uint64_t ts, uint64_t track, double v) {
    pp::TracePacket p;
    p.set_timestamp(ts);
    auto* e = p.mutable_track_event();
    e->set_type(pp::TrackEvent::TYPE_COUNTER);
    e->set_track_uuid(track);
    e->set_double_counter_value(v);
    out.write(p);
    st.counter_values++;
  };
  auto instant = [&](uint64_t ts, uint64_t track, const std::string& name, const char* cat) {
    pp::TracePacket p;
    p.set_timestamp(ts);
    auto* e = p.mutable_track_event();
    e->set_type(pp::TrackEvent::TYPE_INSTANT);
    e->set_track_uuid(track);
    e->set_name(name);
    e->add_categories(cat);
    return p;
  };

  // Open G slices per P: (goid, status) since ts.
  struct Open {
    uint64_t goid = 0;
    uint32_t status = 0;
    uint64_t since = 0;
  };
  std::map<int32_t, Open> open;
  std::map<uint32_t, uint64_t> last_end;  // per thread / per syscall track: no overlaps
  uint64_t last_go_ts = 0, last_ts = 0;

  // --annotations (docs/annotations.md): regions as slices on their goroutine's track
  // (ends matched as the tracker matches them), tasks as slices on their own track, logs
  // as instants; a track is described at its first use.
  std::set<uint64_t> annot_tracks;
  std::map<uint64_t, std::vector<std::string>> annot_stacks;  // goid -> open regions
  std::set<uint64_t> annot_tasks;                             // task ids with an open slice
  auto annot_track = [&](uint64_t uuid, const std::string& name) {
    if (!annot_tracks.insert(uuid).second) return;
    pp::TracePacket p;
    auto* td = p.mutable_track_descriptor();
    td->set_uuid(uuid);
    td->set_parent_uuid(kProcessUuid);
    td->set_name(name);
    out.write(p);
  };
  auto annot_event = [&](const ss_annot& e) {
    auto str = [](const char* s, size_t cap, uint32_t len) {
      return std::string(s, strnlen(s, std::min<size_t>(cap, len)));
    };
    const uint64_t gt = annot_g_uuid(e.goid);
    if (e.kind == SS_ANNOT_REGION || e.kind == SS_ANNOT_LOG)
      annot_track(gt, "G" + std::to_string(e.goid) + " annotations");
    if (e.kind == SS_ANNOT_TASK_CREATE) {
      std::string name = str(e.s1, SS_ANNOT_S1, e.len1);
      annot_track(annot_task_uuid(e.id), "task " + std::to_string(e.id) + " " + name);
      auto p = begin(e.h.ts, annot_task_uuid(e.id), name, "task");
      annotate(p.mutable_track_event(), "goid", int64_t(e.goid));
      out.write(p);
      annot_tasks.insert(e.id);
    } else if (e.kind == SS_ANNOT_TASK_END) {
      if (annot_tasks.erase(e.id)) end(e.h.ts, annot_task_uuid(e.id));
    } else if (e.kind == SS_ANNOT_REGION && e.arg == 0) {
      std::string name = str(e.s1, SS_ANNOT_S1, e.len1);
      auto p = begin(e.h.ts, gt, name, "region");
      annotate(p.mutable_track_event(), "task", int64_t(e.id));
      if (e.flags & SS_ANNOT_P) annotate(p.mutable_track_event(), "p", int64_t(e.p_id));
      out.write(p);
      annot_stacks[e.goid].push_back(name);
    } else if (e.kind == SS_ANNOT_REGION) {
      auto& open_regions = annot_stacks[e.goid];
      std::string name = str(e.s1, SS_ANNOT_S1, e.len1);
      size_t k = open_regions.size();
      while (k > 0 && open_regions[k - 1] != name) k--;
      if (k == 0) return;
      while (open_regions.size() >= k) {
        end(e.h.ts, gt);
        open_regions.pop_back();
      }
    } else if (e.kind == SS_ANNOT_LOG) {
      auto p = instant(e.h.ts, gt,
                       str(e.s1, SS_ANNOT_S1, e.len1) + ": " + str(e.s2, SS_ANNOT_S2, e.len2),
                       "annotation-log");
      annotate(p.mutable_track_event(), "task", int64_t(e.id));
      out.write(p);
      st.instants++;
    }
  };

  Replayer rp(rec, detect);
  rp.on_item = [&](const Item& it) {
    switch (it.kind) {
      case kRecRaw: {
        const ss_hdr* h = it.raw();
        last_ts = std::max(last_ts, h->ts);
        if (h->type == SS_EV_ANNOT && it.raw_size >= sizeof(ss_annot)) {  // --annotations
          ss_annot e;
          std::memcpy(&e, h, sizeof e);
          annot_event(e);
        } else if (h->type == SS_EV_OFFCPU && it.raw_size >= sizeof(ss_offcpu)) {
          const auto& e = *reinterpret_cast<const ss_offcpu*>(h);
          uint64_t start = std::max(e.start_ns, last_end[e.tid]);
          if (start >= e.h.ts) break;
          std::string name = e.syscall_nr >= 0 && e.reason != SS_OFF_PREEMPTED
                                 ? probe::syscall_name(e.syscall_nr)
                                 : std::string(model::offcpu_reason_name(e.reason));
          auto p = begin(start, thread_uuid(e.tid), name, "offcpu");
          auto* ev = p.mutable_track_event();
          annotate(ev, "reason", model::offcpu_reason_name(e.reason));
          if (e.syscall_nr >= 0) annotate(ev, "syscall", probe::syscall_name(e.syscall_nr));
          annotate(ev, "runqueue_us", int64_t(e.rq_ns / 1000));
          if (e.go.flags & SS_GO_VALID) {
            annotate(ev, "goid", int64_t(e.go.goid));
            annotate(ev, "m", e.go.m_id);
            annotate(ev, "p", e.go.p_id);
          }
          out.write(p);
          end(e.h.ts, thread_uuid(e.tid));
          last_end[e.tid] = e.h.ts;
          st.offcpu_slices++;
        } else if (h->type == SS_EV_SYSCALL_SLOW && it.raw_size >= sizeof(ss_syscall_slow)) {
          const auto& e = *reinterpret_cast<const ss_syscall_slow*>(h);
          if (e.start_ns >= e.h.ts) break;
          if (!sc.slow_tids.count(e.tid)) break;
          auto p = begin(e.start_ns, syscall_track_uuid(e.tid), probe::syscall_name(e.nr), "syscall");
          annotate(p.mutable_track_event(), "ret", e.ret);
          out.write(p);
          end(e.h.ts, syscall_track_uuid(e.tid));
          st.syscall_slices++;
        } else if (h->type == SS_EV_THREAD_NEW && it.raw_size >= sizeof(ss_thread_new)) {
          const auto& e = *reinterpret_cast<const ss_thread_new*>(h);
          auto p = instant(e.h.ts, thread_uuid(e.parent_tid), "new thread " + std::to_string(e.tid),
                           "threads");
          auto* ev = p.mutable_track_event();
          annotate(ev, "tid", int64_t(e.tid));
          if (e.go.flags & SS_GO_VALID) annotate(ev, "parent_goid", int64_t(e.go.goid));
          uint32_t n = std::min<uint32_t>(e.nframes, SS_MAX_STACK);
          std::string site, stack;
          for (uint32_t i = 0; i < n; i++) {
            std::string fr = rp.symbols().frame(e.stack[i]);
            if (fr.empty()) {
              fr = hex(e.stack[i]);
            } else if (site.empty() && !rp.symbols().is_runtime(e.stack[i])) {
              site = fr;
            }
            stack += (stack.empty() ? "" : "\n") + fr;
          }
          if (!site.empty()) annotate(ev, "site", site);
          if (!stack.empty()) annotate(ev, "stack", stack);
          out.write(p);
          st.instants++;
        } else if (h->type == SS_EV_THREAD_EXIT && it.raw_size >= sizeof(ss_thread_exit)) {
          const auto& e = *reinterpret_cast<const ss_thread_exit*>(h);
          auto p = instant(e.h.ts, thread_uuid(e.tid), "thread exit", "threads");
          out.write(p);
          st.instants++;
        }
        break;
      }
      case kRecGo: {
        const go::SchedSample& s = it.go;
        if (s.ts_ns <= last_go_ts) break;  // a repeated sample
        last_go_ts = s.ts_ns;
        last_ts = std::max(last_ts, s.ts_ns);
        uint64_t runnable = 0;
        for (const auto& p : s.ps) {
          runnable += p.runq;
          if (!sc.ps.count(p.id)) continue;
          bool holds = p.goid != 0 && (p.status == 1 || p.status == 2);
          auto& o = open[p.id];
          bool same = holds && o.goid == p.goid && o.status == p.status;
          if (same) continue;
          if (o.goid) {
            // End just before a slice that starts at the same sample (strict nesting).
            end(holds ? s.ts_ns - 1 : s.ts_ns, p_uuid(p.id));
            o = Open{};
          }
          if (holds) {
            std::string name = "G" + std::to_string(p.goid) + (p.func.empty() ? "" : " " + p.func) +
                               (p.status == 2 ? " (syscall)" : "");
            auto pk = begin(s.ts_ns, p_uuid(p.id), name, "goroutine");
            auto* ev = pk.mutable_track_event();
            annotate(ev, "goid", int64_t(p.goid));
            if (!p.func.empty()) annotate(ev, "func", p.func);
            if (!p.cur_func.empty()) annotate(ev, "pc_func", p.cur_func);
            annotate(ev, "m", p.m_id);
            annotate(ev, "tid", int64_t(p.tid));
            annotate(ev, "status", go::p_status_name(p.status));
            out.write(pk);
            o = Open{p.goid, p.status, s.ts_ns};
            st.g_slices++;
          }
        }
        counter(s.ts_ns, kCounterRunnable, double(runnable));
        break;
      }
      case kRecKernel:
        last_ts = std::max(last_ts, it.kernel.ts_ns);
        break;
      default:
        break;
    }
    // a --usdt hit (generic probe) with its arguments, on its thread's track.
    if (it.kind == kRecRaw && it.raw()->type == SS_EV_USDT && it.raw_size >= sizeof(ss_usdt_hit)) {
      const auto& e = *reinterpret_cast<const ss_usdt_hit*>(it.raw());
      const auto& probes = rp.model().usdt().probes();
      auto pit = probes.find(e.probe);
      if (pit == probes.end() || pit->second.role != SS_USDT_ROLE_GENERIC) return;
      if (!sc.threads.count(e.tid)) return;  // no track for it
      auto pk = instant(e.h.ts, thread_uuid(e.tid), pit->second.full_name(), "usdt");
      auto* ev = pk.mutable_track_event();
      for (uint32_t i = 0; i < std::min<uint32_t>(e.nargs, SS_USDT_MAX_ARGS); i++)
        annotate(ev, "arg" + std::to_string(i), int64_t(e.args[i]));
      out.write(pk);
      st.instants++;
      st.usdt_instants++;
    }
  };
  // GC tracks, described at the first frame with GC data: stop-the-world pauses
  // and mark phases as slices, MMU at 10 ms and the assist share as counters.
  constexpr uint64_t kGcStwUuid = 20, kGcMarkUuid = 21, kCounterMmu = 22, kCounterAssist = 23;
  bool gc_described = false;
  auto gc_frame = [&](const model::Frame& fr) {
    if (!fr.gc.enabled) return;
    if (!gc_described) {
      gc_described = true;
      for (auto [uuid, name, is_counter] :
           {std::tuple{kGcStwUuid, "GC stop-the-world", false},
            std::tuple{kGcMarkUuid, "GC mark phase", false},
            std::tuple{kCounterMmu, "GC MMU 10ms (min per interval)", true},
            std::tuple{kCounterAssist, "GC mark assist share of GOMAXPROCS", true}}) {
        pp::TracePacket p;
        auto* td = p.mutable_track_descriptor();
        td->set_uuid(uuid);
        td->set_parent_uuid(kProcessUuid);
        td->set_name(name);
        if (is_counter) td->mutable_counter()->set_unit(pp::CounterDescriptor::UNIT_COUNT);
        out.write(p);
        if (is_counter) st.counter_tracks++;
      }
    }
    for (const auto& gp : fr.gc.periods) {
      uint64_t track = gp.kind == "stw" ? kGcStwUuid : kGcMarkUuid;
      auto pk = begin(gp.start_ns, track, gp.what, "gc");
      annotate(pk.mutable_track_event(), "cycle", int64_t(gp.cycle));
      out.write(pk);
      end(std::max(gp.end_ns, gp.start_ns + 1), track);
    }
    if (fr.gc.mmu_10ms >= 0) counter(fr.ts_ns, kCounterMmu, fr.gc.mmu_10ms);
    counter(fr.ts_ns, kCounterAssist, fr.gc.assist_share);
  };
  // Goroutine scheduling latency: p99 of the goroutines scheduled in each interval.
  constexpr uint64_t kCounterGoLatency = 24;
  bool lat_described = false;
  auto lat_frame = [&](const model::Frame& fr) {
    if (!fr.go_latency.available || !fr.go_latency.lat.samples) return;
    if (!lat_described) {
      lat_described = true;
      pp::TracePacket p;
      auto* td = p.mutable_track_descriptor();
      td->set_uuid(kCounterGoLatency);
      td->set_parent_uuid(kProcessUuid);
      td->set_name("goroutine scheduling latency p99 (us)");
      td->mutable_counter()->set_unit(pp::CounterDescriptor::UNIT_COUNT);
      out.write(p);
      st.counter_tracks++;
    }
    counter(fr.ts_ns, kCounterGoLatency, fr.go_latency.lat.p99_us);
  };
  // Capacity: Ps running (_Prunning), the mean of the P sampler's 1 kHz samples of the
  // interval (docs/capacity.md).
  constexpr uint64_t kCounterPsRunning = 25;
  bool ps_described = false;
  auto ps_frame = [&](const model::Frame& fr) {
    if (!fr.capacity.present || fr.capacity.interval.ticks == 0) return;
    if (!ps_described) {
      ps_described = true;
      pp::TracePacket p;
      auto* td = p.mutable_track_descriptor();
      td->set_uuid(kCounterPsRunning);
      td->set_parent_uuid(kProcessUuid);
      td->set_name("Ps running (mean of 1 kHz samples)");
      td->mutable_counter()->set_unit(pp::CounterDescriptor::UNIT_COUNT);
      out.write(p);
      st.counter_tracks++;
    }
    counter(fr.ts_ns, kCounterPsRunning, fr.capacity.interval.procs_mean());
  };
  while (auto fr = rp.next()) {
    gc_frame(*fr);
    lat_frame(*fr);
    ps_frame(*fr);
    counter(fr->ts_ns, kCounterThreads, fr->threads_alive);
    counter(fr->ts_ns, kCounterSwitches, fr->switches_per_s);
    counter(fr->ts_ns, kCounterSyscalls, fr->syscalls_per_s);
  }
  model::Frame fin = rp.final_frame();
  uint64_t close_at = std::max(last_ts, fin.ts_ns);
  for (auto& [pid, o] : open)
    if (o.goid) end(std::max(close_at, o.since + 1), p_uuid(pid));
  // stop-the-world periods reported by a runtime adapter, one track per kind.
  {
    std::map<std::string, uint64_t> pause_track;
    uint64_t next_uuid = 3;
    for (const auto& ps : fin.usdt.pause_list) {
      auto [tit, fresh] = pause_track.emplace(ps.kind, next_uuid);
      if (fresh) {
        next_uuid++;
        pp::TracePacket p;
        auto* td = p.mutable_track_descriptor();
        td->set_uuid(tit->second);
        td->set_parent_uuid(kProcessUuid);
        td->set_name("stop-the-world: " + ps.kind + (ps.runtime.empty() ? "" : " (" + ps.runtime + ")"));
        out.write(p);
      }
      auto pk = begin(ps.start_ns, tit->second, ps.kind, "pause");
      auto* ev = pk.mutable_track_event();
      annotate(ev, "tid", int64_t(ps.tid));
      annotate(ev, "ms", int64_t(ps.ms() * 1000) / 1000);
      if (ps.kind == "gc") annotate(ev, "arg", ps.arg);
      out.write(pk);
      end(std::max(ps.end_ns, ps.start_ns + 1), tit->second);
      st.pause_slices++;
    }
  }
  for (const auto& a : fin.alerts) {
    auto p = instant(a.ts_ns, kAlertsUuid, a.kind + ": " + a.message, "alerts");
    auto* ev = p.mutable_track_event();
    annotate(ev, "kind", a.kind);
    annotate(ev, "severity", a.severity);
    annotate(ev, "message", a.message);
    if (a.p >= 0) annotate(ev, "p", a.p);
    if (a.m >= 0) annotate(ev, "m", a.m);
    if (a.tid) annotate(ev, "tid", int64_t(a.tid));
    if (a.goid) annotate(ev, "goid", int64_t(a.goid));
    if (!a.func.empty()) annotate(ev, "func", a.func);
    if (!a.syscall.empty()) annotate(ev, "syscall", a.syscall);
    std::string ev_lines;
    for (const auto& l : a.evidence) ev_lines += (ev_lines.empty() ? "" : "\n") + l;
    if (!ev_lines.empty()) annotate(ev, "evidence", ev_lines);
    out.write(p);
    st.instants++;
    st.alerts++;
  }
  st.packets = out.packets();
  st.bytes = out.bytes();
  *write_ok = out.ok();
  return st;
}

Expected<ExportStats> export_perfetto(const Recording& rec, const detect::DetectOptions& detect,
                                      const std::string& out_path,
                                      std::vector<std::string>* notices) {
  auto file = OutputFile::create(out_path);
  if (!file) return file.error();
  OutputFile& of = **file;
  if (notices) *notices = of.notices();
  int fd = ::fcntl(of.fd(), F_DUPFD_CLOEXEC,
                   3);  // the FILE owns this copy; `of` keeps its own (and the lock)
  FILE* f = fd < 0 ? nullptr : fdopen(fd, "wb");
  if (!f) {
    int saved = errno;
    if (fd >= 0) ::close(fd);
    of.discard();
    return make_error("cannot open " + of.temp_path() + ": " + strerror(saved));
  }
  bool wrote = false;
  ExportStats st = export_perfetto(rec, detect, f, &wrote);
  bool ok = wrote && std::fflush(f) == 0;
  int saved = errno;
  std::fclose(f);
  if (!ok) {
    of.discard();
    return make_error("cannot write " + of.temp_path() + ": " + strerror(saved));
  }
  if (Status s = of.sync(); !s) {
    of.discard();
    return s.error();
  }
  // The rename; when it fails the message names the temporary, which is kept.
  if (Status c = of.publish(); !c) return c.error();
  return st;
}

}  // namespace schedscope::record
