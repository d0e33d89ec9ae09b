// Recordings without root: the writer and reader on synthetic records (round trip,
// truncation at every offset, corruption, garbage, versions, crash leftovers), replay
// equal to feeding the model directly (frames and alerts), rotation, and the Perfetto
// export decoded with the generated protobuf classes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "detect/detectors.h"
#include "model/frame_json.h"
#include "model/model.h"
#include "perfetto_trace.pb.h"
#include "go/runtime_json.h"
#include "synthetic.h"
#include "record/format.h"
#include "analysis/perfetto.h"
#include "record/reader.h"
#include "analysis/replay.h"
#include "analysis/report.h"
#include "record/rotate.h"
#include "record/writer.h"
#include "ui/print.h"

using namespace schedscope;
using nlohmann::json;

namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kT0 = 5000 * kSec;  // a monotonic start time

struct TempDir {
  std::string path;
  TempDir() {
    char buf[] = "/tmp/schedscope-rec-XXXXXX";
    path = mkdtemp(buf);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  [[nodiscard]] std::string file(const std::string& n) const { return path + "/" + n; }
};

std::vector<uint8_t> slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

ss_thread_state thread_state() { return synthetic::kernel_thread(); }

model::TargetInfo target() {
  model::TargetInfo t;
  t.pid = 100;
  t.comm = "svc";
  t.exe = "/srv/svc";
  t.go_version = "go1.19.8";
  t.go_enabled = true;
  t.go_note = "offsets: dwarf";
  return t;
}

// A symbolizer the "live" side uses; the recording carries its answers.
class FakeSymbols : public model::Symbolize {
 public:
  std::string frame(uint64_t pc) const override {
    if (pc == 0x401000) return "runtime.newm /go/src/runtime/proc.go:2100";
    if (pc == 0x402000) return "main.spawner /src/main.go:42";
    return "";
  }
  bool is_runtime(uint64_t pc) const override { return pc != 0x402000; }
};

// One step of a synthetic live session: what the observer consumed, in order.
struct Step {
  std::vector<std::vector<uint64_t>> raws;  // aligned raw records
  std::vector<size_t> raw_sizes;
  std::optional<probe::KernelSnapshot> kernel;
  std::optional<go::SchedSample> go;
  std::vector<std::pair<uint32_t, std::string>> names;
  record::FrameMode mode = record::FrameMode::kShown;
};

template <typename T>
void add_raw(Step& s, const T& rec) {
  std::vector<uint64_t> b((sizeof rec + 7) / 8);
  std::memcpy(b.data(), &rec, sizeof rec);
  s.raws.push_back(std::move(b));
  s.raw_sizes.push_back(sizeof rec);
}

// The recorder's P samples also carry the current function and a start PC to symbolize.
go::PSample RP(int id, uint32_t status, int64_t m, int tid, uint64_t goid, uint32_t sched, uint32_t sys,
               const char* func, uint32_t runq = 0) {
  go::PSample p = synthetic::P(id, status, m, tid, goid, sched, sys, func, runq);
  p.cur_func = func;
  p.g_startpc = 0x402000;
  return p;
}

// A stuck P: P1's M (tid 103) sits in read() from t0+0.5s with schedtick frozen while
// P0 carries on; a new thread is created, off-CPU intervals come and go.
std::vector<Step> stuck_p_session(int frames = 6) {
  std::vector<Step> steps;
  auto ts = [](int i) { return kT0 + uint64_t(i) * kSec; };
  for (int i = 0; i <= frames; i++) {
    Step s;
    s.mode = i == 0 ? record::FrameMode::kBaseline
                    : (i == frames ? record::FrameMode::kFinal : record::FrameMode::kShown);
    if (i == 2) {
      ss_thread_new e{};
      e.h = {SS_EV_THREAD_NEW, sizeof e, ts(2) - 300 * kMs};
      e.tid = 104;
      e.parent_tid = 102;
      e.go = {7, 0, 0, 2, 0, SS_GO_VALID};
      e.nframes = 2;
      e.stack[0] = 0x401000;
      e.stack[1] = 0x402000;
      std::strcpy(e.comm, "svc");
      add_raw(s, e);
    }
    if (i >= 1) {
      ss_offcpu o{};
      o.h = {SS_EV_OFFCPU, sizeof o, ts(i) - 100 * kMs};
      o.start_ns = ts(i) - 300 * kMs;
      o.tid = 102;
      o.reason = SS_OFF_SLEEP;
      o.syscall_nr = 202;  // futex
      o.go = {7, 0, 0, 2, 0, SS_GO_VALID};
      add_raw(s, o);
    }
    if (i == 4) {
      ss_thread_exit x{};
      x.h = {SS_EV_THREAD_EXIT, sizeof x, ts(4) - 10 * kMs};
      x.tid = 104;
      x.final = thread_state();
      x.final.oncpu_ns = 5 * kMs;
      add_raw(s, x);
    }
    probe::KernelSnapshot k;
    k.ts_ns = ts(i);
    auto t102 = thread_state();
    t102.state = SS_TS_ONCPU;
    t102.last_switch_ns = ts(i) - 50 * kMs;
    t102.oncpu_ns = uint64_t(i) * 600 * kMs;
    t102.offcpu_ns[SS_OFF_SLEEP] = uint64_t(i) * 300 * kMs;
    t102.offcpu_count[SS_OFF_SLEEP] = uint64_t(i);
    auto t103 = thread_state();
    t103.state = SS_TS_OFFCPU;
    t103.off_reason = SS_OFF_SLEEP;
    t103.block_nr = 0;  // read
    t103.last_switch_ns = kT0 + 500 * kMs;
    t103.block_since_ns = kT0 + 500 * kMs;
    t103.oncpu_ns = 400 * kMs;
    k.threads = {{102, t102}, {103, t103}};
    if (i >= 2 && i < 4) {
      auto t104 = thread_state();
      t104.created_by = 102;
      k.threads.push_back({104, t104});
    }
    ss_sc_stat st{};
    st.count = uint64_t(i) * 3;
    st.total_ns = uint64_t(i) * 900 * kMs;
    st.max_ns = 300 * kMs;
    st.hist[28] = uint32_t(i) * 3;
    k.sc_block = {{202, st}};
    k.rq_hist[12] = uint64_t(i) * 10;
    k.drops_per_cpu = {0, 0};
    s.kernel = k;
    if (i >= 1) {
      go::SchedSample g;
      g.ts_ns = ts(i) + 1000;
      g.gomaxprocs = 2;
      g.maxmcount = 10000;
      g.goidgen = 40;
      g.ps = {RP(0, 1, 2, 102, i % 2 ? 7 : 9, uint32_t(100 * i), 5, i % 2 ? "main.worker" : "main.other", 2),
              RP(1, 1, 3, 103, 18, 50, 4, "main.rawBlocker")};
      g.ms = {synthetic::M(2, 102, 0, -1, i % 2 ? 7 : 9, "main.worker"),
              synthetic::M(3, 103, 1, -1, 18, "main.rawBlocker")};
      s.go = g;
    }
    if (i == 1) s.names = {{102, "svc-worker"}, {103, "svc-blocked"}};
    steps.push_back(std::move(s));
  }
  return steps;
}

struct Live {
  std::vector<json> frames;  // frame_to_json of every shown frame (alerts included)
  json final;
  std::vector<detect::Alert> all;
};

// Plays the steps into a Model + Detectors exactly as Observer/cmd_record do, and writes
// the recording (as the Recorder would) when `w` is given.
Live play(const std::vector<Step>& steps, record::RecordingWriter* w, const model::Symbolize* sym) {
  model::Model m(target());
  m.set_symbolizer(sym);
  detect::Detectors det;
  Live live;
  for (const auto& s : steps) {
    for (size_t i = 0; i < s.raws.size(); i++) {
      const auto* h = reinterpret_cast<const ss_hdr*>(s.raws[i].data());
      if (w && sym && h->type == SS_EV_THREAD_NEW) {
        const auto* e = reinterpret_cast<const ss_thread_new*>(h);
        std::vector<record::SymbolEntry> syms;
        for (uint32_t k = 0; k < e->nframes; k++)
          syms.push_back({e->stack[k], sym->is_runtime(e->stack[k]), sym->frame(e->stack[k]), false, ""});
        w->symbols(syms);
      }
      if (w) w->raw(h, s.raw_sizes[i]);
      m.on_record(h, s.raw_sizes[i]);
    }
    if (s.kernel) {
      m.on_kernel(*s.kernel);
      if (w) w->kernel(*s.kernel);
    }
    if (s.go) {
      m.on_go_sample(*s.go);
      if (w) w->go(*s.go);
    }
    for (const auto& [tid, n] : s.names) {
      m.set_thread_name(tid, n);
      if (w) w->name(tid, n);
    }
    json marker = {{"mode", record::frame_mode_name(s.mode)}};
    if (s.mode == record::FrameMode::kBaseline || s.mode == record::FrameMode::kSkipped) {
      (void)m.frame();
    } else if (s.mode == record::FrameMode::kShown) {
      model::Frame f = m.frame();
      detect::attach(f, det.evaluate(f));
      live.frames.push_back(model::frame_to_json(f));
      marker["ts_ns"] = f.ts_ns;
      marker["elapsed_s"] = f.elapsed_s;
      if (!f.alerts.empty()) marker["alerts"] = record::alerts_to_json(f.alerts);
    } else {
      model::Frame f = m.frame(true);
      f.alerts = det.all();
      live.all = f.alerts;
      live.final = model::frame_to_json(f);
      marker["ts_ns"] = f.ts_ns;
      marker["elapsed_s"] = f.elapsed_s;
      if (!f.alerts.empty()) marker["alerts"] = record::alerts_to_json(f.alerts);
    }
    if (w) w->frame(marker);
  }
  return live;
}

json meta_json(bool symbolizer = true) {
  return {{"format_version", 1},
          {"host", "testhost"},
          {"target", record::target_to_json(target())},
          {"interval_s", 1.0},
          {"symbolizer", symbolizer},
          {"thresholds", record::detect_to_json(detect::DetectOptions{})},
          {"start", {{"wall", "2024-01-01T00:00:00Z"}, {"monotonic_ns", kT0}}}};
}

record::WriterOptions sync_opts(size_t chunk = 2048) {
  record::WriterOptions o;
  o.background = false;
  o.chunk_bytes = chunk;  // small chunks: many chunk boundaries to cut at
  return o;
}

// Writes the stuck-P session; returns the live side.
Live write_session(const std::string& path, size_t chunk = 2048, bool finish = true) {
  FakeSymbols sym;
  auto w = record::RecordingWriter::create(path, meta_json(), sync_opts(chunk));
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  Live live = play(stuck_p_session(), w->get(), &sym);
  if (finish) {
    auto done = (*w)->finish({{"duration_s", 6.0}});
    EXPECT_TRUE(done.ok());
  }
  return live;
}

std::vector<json> replay_frames(const record::Recording& r, json* final = nullptr,
                                record::AlertCheck* chk = nullptr) {
  record::Replayer rp(r, detect::DetectOptions{});
  std::vector<json> out;
  while (auto f = rp.next()) out.push_back(model::frame_to_json(*f));
  model::Frame fin = rp.final_frame();
  if (final) *final = model::frame_to_json(fin);
  if (chk) *chk = rp.check();
  return out;
}

// A recording of what `write` puts in it and one shown frame a second after the start,
// replayed: that frame (null when there is none).
json replay_one_frame(const json& meta, const std::function<void(record::RecordingWriter&)>& write) {
  TempDir d;
  std::string path = d.file("one.sched");
  auto w = record::RecordingWriter::create(path, meta, sync_opts());
  EXPECT_TRUE(w.ok());
  if (!w.ok()) return json();
  write(**w);
  (*w)->frame({{"mode", "shown"}, {"ts_ns", kT0 + kSec}, {"elapsed_s", 1.0}});
  EXPECT_TRUE((*w)->finish({{"duration_s", 1.0}}).ok());
  auto r = record::Recording::open(path);
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return json();
  auto frames = replay_frames(*r);
  EXPECT_EQ(frames.size(), 1u);
  return frames.empty() ? json() : frames[0];
}

}  // namespace

// ---------------------------------------------------------------- format

TEST(RecordingFormat, Crc32IsTheZlibOne) {
  EXPECT_EQ(record::crc32("123456789", 9), 0xCBF43926u);
  EXPECT_EQ(record::crc32("", 0), 0u);
}

TEST(RecordingFormat, KernelSnapshotAndGoSampleRoundTripExactly) {
  auto steps = stuck_p_session();
  const auto& k = *steps[3].kernel;
  record::ByteWriter b;
  record::encode_kernel(b, k);
  record::ByteReader c(b.data().data(), b.size());
  probe::KernelSnapshot k2;
  ASSERT_TRUE(record::decode_kernel(c, &k2));
  EXPECT_EQ(c.left(), 0u);
  EXPECT_EQ(k2.ts_ns, k.ts_ns);
  ASSERT_EQ(k2.threads.size(), k.threads.size());
  for (size_t i = 0; i < k.threads.size(); i++) {
    EXPECT_EQ(k2.threads[i].tid, k.threads[i].tid);
    EXPECT_EQ(std::memcmp(&k2.threads[i].st, &k.threads[i].st, sizeof(ss_thread_state)), 0);
  }
  ASSERT_EQ(k2.sc_block.size(), 1u);
  EXPECT_EQ(std::memcmp(&k2.sc_block[0].stat, &k.sc_block[0].stat, sizeof(ss_sc_stat)), 0);
  EXPECT_EQ(k2.rq_hist[12], k.rq_hist[12]);
  EXPECT_EQ(k2.drops_per_cpu, k.drops_per_cpu);

  go::SchedSample g = *steps[3].go;
  g.ps[0].via_oldp = true;
  g.ms[1].incgo = true;
  g.ms[1].sysmon = true;
  g.ms[1].lockedg_goid = 18;
  record::ByteWriter gb;
  record::encode_go(gb, g);
  record::ByteReader gc(gb.data().data(), gb.size());
  go::SchedSample g2;
  ASSERT_TRUE(record::decode_go(gc, &g2));
  EXPECT_EQ(go::sample_to_json(g2), go::sample_to_json(g));
  EXPECT_TRUE(g2.ps[0].via_oldp);
  EXPECT_EQ(g2.ps[0].g_startpc, g.ps[0].g_startpc);
  EXPECT_EQ(g2.ps[1].cur_func, g.ps[1].cur_func);
  EXPECT_TRUE(g2.ms[1].incgo && g2.ms[1].sysmon && !g2.ms[1].spinning);
  // Every prefix is rejected, never over-read.
  for (size_t n = 0; n < gb.size(); n++) {
    record::ByteReader p(gb.data().data(), n);
    go::SchedSample x;
    EXPECT_FALSE(record::decode_go(p, &x));
  }
}

TEST(RecordingFormat, AlertsRoundTripThroughJson) {
  detect::Alert a;
  a.kind = "stuck_p";
  a.severity = "critical";
  a.ts_ns = 123456789012345ull;
  a.since_ns = 123456000000000ull;
  a.p = 1;
  a.m = 3;
  a.tid = 103;
  a.goid = 18;
  a.func = "main.rawBlocker";
  a.stack = {"main.rawBlocker /src/main.go:10"};
  a.syscall = "read";
  a.duration_ms = 1234.5678901234;
  a.threads = 7;
  a.message = "P1 stuck";
  a.evidence = {"a", "b"};
  json j = json::parse(record::alert_to_json(a).dump());
  EXPECT_EQ(record::alert_to_json(record::alert_from_json(j)).dump(), record::alert_to_json(a).dump());
  // Hostile values never throw or overflow.
  json bad = {{"p", 1e300}, {"tid", -5}, {"kind", 3}, {"stack", "x"}, {"duration_ms", "slow"}};
  detect::Alert b = record::alert_from_json(bad);
  EXPECT_EQ(b.p, -1);
  EXPECT_EQ(b.tid, 0u);
}

// ---------------------------------------------------------------- writer / reader

TEST(Recording, WriterReaderRoundTrip) {
  TempDir d;
  std::string path = d.file("a.sched");
  write_session(path);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(access((path + ".tmp-" + std::to_string(getpid())).c_str(), F_OK), 0) << "temp file left";

  auto r = record::Recording::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->complete());
  EXPECT_TRUE(r->warnings().empty());
  EXPECT_EQ(r->format_version(), record::kFormatVersion);
  EXPECT_EQ(r->abi_version(), SS_ABI_VERSION);
  EXPECT_EQ(r->meta()["host"], "testhost");
  EXPECT_GT(r->data_chunks(), 3u) << "small chunk size: several chunks";

  auto steps = stuck_p_session();
  std::map<int, int> kinds;
  record::Item it;
  auto iter = r->records();
  size_t kernel_i = 0, raw_i = 0;
  std::vector<const std::vector<uint64_t>*> raws;
  std::vector<size_t> raw_sizes;
  for (const auto& s : steps)
    for (size_t i = 0; i < s.raws.size(); i++) {
      raws.push_back(&s.raws[i]);
      raw_sizes.push_back(s.raw_sizes[i]);
    }
  while (iter.next(&it)) {
    kinds[it.kind]++;
    if (it.kind == record::kRecKernel) {
      EXPECT_EQ(it.kernel.ts_ns, steps[kernel_i].kernel->ts_ns);
      EXPECT_EQ(it.kernel.threads.size(), steps[kernel_i].kernel->threads.size());
      kernel_i++;
    } else if (it.kind == record::kRecRaw) {
      ASSERT_LT(raw_i, raws.size());
      EXPECT_EQ(it.raw_size, raw_sizes[raw_i]);
      EXPECT_EQ(std::memcmp(it.raw(), raws[raw_i]->data(), it.raw_size), 0);
      raw_i++;
    } else if (it.kind == record::kRecName) {
      EXPECT_TRUE(it.name == "svc-worker" || it.name == "svc-blocked");
    } else if (it.kind == record::kRecSymbols) {
      ASSERT_EQ(it.symbols.size(), 2u);
      EXPECT_EQ(it.symbols[1].frame, "main.spawner /src/main.go:42");
      EXPECT_FALSE(it.symbols[1].is_runtime);
    }
  }
  EXPECT_TRUE(iter.warning().empty()) << iter.warning();
  EXPECT_EQ(kinds[record::kRecKernel], 7);
  EXPECT_EQ(kinds[record::kRecGo], 6);
  EXPECT_EQ(kinds[record::kRecFrame], 7);
  EXPECT_EQ(kinds[record::kRecName], 2);
  EXPECT_EQ(kinds[record::kRecSymbols], 1);
  EXPECT_EQ(size_t(kinds[record::kRecRaw]), raws.size());
}

TEST(Recording, ReplayEqualsTheLiveFramesAndAlerts) {
  TempDir d;
  std::string path = d.file("stuck.sched");
  Live live = write_session(path);
  ASSERT_FALSE(live.all.empty());
  EXPECT_EQ(live.all[0].kind, "stuck_p");

  auto r = record::Recording::open(path);
  ASSERT_TRUE(r.ok());
  json final;
  record::AlertCheck chk;
  auto frames = replay_frames(*r, &final, &chk);
  ASSERT_EQ(frames.size(), live.frames.size());
  for (size_t i = 0; i < frames.size(); i++) EXPECT_EQ(frames[i], live.frames[i]) << "frame " << i;
  EXPECT_EQ(final, live.final);
  EXPECT_TRUE(chk.ok()) << (chk.diffs.empty() ? "" : chk.diffs[0]);
  EXPECT_TRUE(chk.final_recorded && chk.final_match);
  EXPECT_EQ(chk.frames, frames.size());
  // Creation sites are symbolized from the recording alone.
  bool site = false;
  for (const auto& c : final["creations"]) site |= c["site"] == "main.spawner /src/main.go:42";
  EXPECT_TRUE(site);
  // Thread names from /proc came along.
  bool named = false;
  for (const auto& t : final["threads"]) named |= t["name"] == "svc-blocked";
  EXPECT_TRUE(named);
}

// The census carries wait reason numbers; the names travel in the Go metadata
// ("go"."wait_reasons", or a later info record), so a replay elsewhere names them.
TEST(Recording, ReplayNamesWaitReasonsFromTheGoMetadata) {
  auto census = [] {
    gc::Census c;
    c.ts_ns = kT0 + kSec;
    c.allglen = c.read = 12;
    c.by_status[4] = 12;
    c.waiting_by_reason[2] = 2;
    c.waiting_by_reason[14] = 10;
    return c;
  };
  auto replay_census = [&](const json& meta, const json& info) {
    json f = replay_one_frame(meta, [&](record::RecordingWriter& w) {
      if (!info.is_null()) w.info(info);
      w.census(census());
    });
    return f.is_null() ? json() : f["census"]["waiting_by_reason"];
  };
  std::vector<std::string> names = {"", "GC assist marking", "IO wait"};
  for (int i = 3; i < 27; i++) names.push_back(i == 14 ? "chan receive" : "r" + std::to_string(i));
  json meta = meta_json();
  meta["go"] = {{"version", "go1.19.8"}, {"wait_reasons", names}, {"wait_reasons_source", "data+code"}};
  json wr = replay_census(meta, nullptr);
  EXPECT_EQ(wr, json({{"IO wait", 2}, {"chan receive", 10}})) << wr;
  // From an info record (the Go metadata written once the offsets resolved).
  wr = replay_census(meta_json(), {{"go", meta["go"]}});
  EXPECT_EQ(wr, json({{"IO wait", 2}, {"chan receive", 10}})) << wr;
  // A recording without the table (older, or not found in the binary): the fallback.
  wr = replay_census(meta_json(), nullptr);
  EXPECT_EQ(wr, json({{"IO wait", 2}, {"wait reason 14", 10}})) << wr;
}

// A stop-the-world's reason is named from the binary's table the recording carries in its
// target; a recording without it (older, or a binary without the table) names the stops
// of a release whose enum is not known "stop the world".
TEST(Recording, ReplayNamesStopsFromTheRecordedStwTable) {
  auto replay_stws = [&](const model::TargetInfo& t) {
    json meta = meta_json();
    meta["target"] = record::target_to_json(t);
    json f = replay_one_frame(meta, [](record::RecordingWriter& w) {
      for (uint64_t at : {kT0 + kSec / 4, kT0 + kSec / 2}) {  // two GOMAXPROCS stops
        ss_gc_event e{};
        e.h.type = SS_EV_GC;
        e.h.size = sizeof e;
        e.h.ts = at;
        e.what = SS_GC_STW_STOP;
        e.arg = 9;
        w.raw(&e.h, sizeof e);
        e.h.ts += 1000;
        e.what = SS_GC_STW_START;
        e.arg = 0;
        w.raw(&e.h, sizeof e);
      }
    });
    return f.is_null() ? json() : f["gc"]["stw_reasons"];
  };
  model::TargetInfo t = target();
  t.go_version = "go1.27.0";
  t.stw_reasons = {"unknown", "GC mark termination", "GC sweep termination"};
  for (int i = 3; i < 17; i++) t.stw_reasons.push_back(i == 9 ? "GOMAXPROCS" : "r" + std::to_string(i));
  EXPECT_EQ(record::target_from_json(record::target_to_json(t)).stw_reasons, t.stw_reasons);
  json by = replay_stws(t);
  EXPECT_EQ(by, json({{"GOMAXPROCS", 2}})) << by;
  t.stw_reasons.clear();
  by = replay_stws(t);
  EXPECT_EQ(by, json({{"stop the world", 2}})) << by;
}

TEST(Recording, ReportSummarizesAndChecksAlerts) {
  TempDir d;
  std::string path = d.file("stuck.sched");
  Live live = write_session(path);
  auto r = record::Recording::open(path);
  ASSERT_TRUE(r.ok());
  json rep = record::build_report(*r, detect::DetectOptions{});
  EXPECT_TRUE(rep["complete"]);
  EXPECT_EQ(rep["target"]["pid"], 100);
  EXPECT_EQ(rep["target"]["host"], "testhost");
  EXPECT_EQ(rep["ps"].size(), 2u);
  const json& p1 = rep["ps"][1];
  EXPECT_EQ(p1["id"], 1);
  EXPECT_EQ(p1["schedticks_per_s"], 0) << "P1 is frozen";
  EXPECT_EQ(p1["top_gs"][0]["goid"], 18);
  EXPECT_EQ(p1["top_gs"][0]["func"], "main.rawBlocker");
  EXPECT_GT(rep["ps"][0]["schedticks_per_s"].get<double>(), 90);
  EXPECT_EQ(rep["ps"][0]["gs_seen"], 2);
  EXPECT_EQ(rep["creations"]["total"], 1);
  EXPECT_EQ(rep["creations"]["sites"][0]["site"], "main.spawner /src/main.go:42");
  // Counted once: from its interval's frame, not again from the final frame's.
  EXPECT_EQ(rep["creations"]["sites"][0]["count"], 1);
  ASSERT_GE(rep["alerts"].size(), 1u);
  EXPECT_EQ(rep["alerts"][0]["kind"], "stuck_p");
  EXPECT_EQ(rep["alerts"][0]["tid"], 103);
  EXPECT_EQ(rep["alerts"][0]["func"], "main.rawBlocker");
  EXPECT_TRUE(rep["alerts_check"]["match"]);
  EXPECT_EQ(rep["alerts_check"]["live_alerts"], record::alerts_to_json(live.all));
  EXPECT_EQ(rep["final"], live.final);
  // Per thread: the futex blocks of 102, counted from the off-CPU records.
  bool found = false;
  for (const auto& t : rep["threads"])
    if (t["tid"] == 102) {
      found = true;
      EXPECT_EQ(t["blocking"][0]["syscall"], "futex");
      EXPECT_EQ(t["blocking"][0]["count"], 6);
    }
  EXPECT_TRUE(found);
  // The text form renders without surprises.
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  record::print_report(rep, f);
  fclose(f);
  std::string text(buf, len);
  free(buf);
  EXPECT_NE(text.find("stuck_p"), std::string::npos);
  EXPECT_NE(text.find("same as raised live"), std::string::npos);
}

TEST(Recording, DifferentThresholdsAreReportedAsADifference) {
  TempDir d;
  std::string path = d.file("stuck.sched");
  write_session(path);
  auto r = record::Recording::open(path);
  ASSERT_TRUE(r.ok());
  detect::DetectOptions strict;
  strict.stuck_ms = 1e9;  // nothing is ever stuck that long
  json rep = record::build_report(*r, strict);
  EXPECT_TRUE(rep["alerts"].empty());
  EXPECT_FALSE(rep["alerts_check"]["match"]);
  EXPECT_FALSE(rep["alerts_check"]["diffs"].empty());
}

TEST(Recording, TruncatedAtEveryOffsetReadsAPrefixWithAWarning) {
  TempDir d;
  std::string path = d.file("t.sched");
  write_session(path, 1024);
  auto full = slurp(path);
  auto whole = record::Recording::parse(full);
  ASSERT_TRUE(whole.ok());
  std::vector<json> all = replay_frames(*whole);
  size_t prev_frames = 0;
  int errors = 0, ok = 0;
  for (size_t n = 0; n < full.size(); n++) {
    auto r = record::Recording::parse(full.data(), n, "cut");
    if (!r) {
      errors++;
      // Only a cut inside the header or the metadata chunk is fatal, with a clear message.
      EXPECT_NE(r.error().message.find("cut"), std::string::npos);
      EXPECT_EQ(ok, 0) << "an error after a readable prefix at " << n;
      continue;
    }
    ok++;
    EXPECT_FALSE(r->complete());
    if (r->bytes_skipped() > 0) {
      ASSERT_FALSE(r->warnings().empty());
      EXPECT_NE(r->warnings()[0].find("bytes skipped"), std::string::npos);
    }
    std::vector<json> frames = replay_frames(*r);
    ASSERT_LE(frames.size(), all.size());
    for (size_t i = 0; i < frames.size(); i++) ASSERT_EQ(frames[i], all[i]) << "cut " << n;
    EXPECT_GE(frames.size(), prev_frames) << "cut " << n;
    prev_frames = frames.size();
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(ok, 0);
  EXPECT_EQ(prev_frames, all.size());
}

TEST(Recording, CorruptedChunksStopThereWithAWarning) {
  TempDir d;
  std::string path = d.file("c.sched");
  write_session(path, 1024);
  auto full = slurp(path);
  auto whole = record::Recording::parse(full);
  ASSERT_TRUE(whole.ok());
  size_t chunks = whole->data_chunks();
  int warned = 0;
  for (size_t pos = record::kFileHeaderSize; pos < full.size(); pos += 7) {
    auto b = full;
    b[pos] ^= 0x5A;
    auto r = record::Recording::parse(b, "flip");
    if (!r) {
      EXPECT_NE(r.error().message.find("metadata"), std::string::npos) << r.error().message;
      continue;
    }
    ASSERT_LE(r->data_chunks(), chunks);
    if (!r->warnings().empty()) {
      warned++;
      EXPECT_TRUE(r->warnings()[0].find("checksum") != std::string::npos ||
                  r->warnings()[0].find("damaged") != std::string::npos)
          << r->warnings()[0];
    }
    (void)replay_frames(*r);  // never crashes
  }
  EXPECT_GT(warned, 10);
}

TEST(Recording, GarbageAndVersionsGiveClearErrors) {
  std::vector<uint8_t> junk(100, 'x');
  auto r = record::Recording::parse(junk, "junk");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a schedscope recording"), std::string::npos);
  EXPECT_FALSE(record::Recording::parse(std::vector<uint8_t>{}, "empty").ok());

  TempDir d;
  std::string path = d.file("v.sched");
  write_session(path);
  auto b = slurp(path);
  auto newer = b;
  newer[8] = 9;  // format version 9
  uint32_t crc = record::crc32(newer.data(), 12);
  std::memcpy(&newer[12], &crc, 4);
  r = record::Recording::parse(newer, "newer");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("format version 9"), std::string::npos);
  auto abi = b;
  abi[10] = 77;
  crc = record::crc32(abi.data(), 12);
  std::memcpy(&abi[12], &crc, 4);
  r = record::Recording::parse(abi, "abi");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ABI version 77"), std::string::npos);
  auto hdr = b;
  hdr[9] ^= 1;  // header checksum
  EXPECT_FALSE(record::Recording::parse(hdr, "hdr").ok());
  EXPECT_FALSE(record::Recording::open(d.file("missing.sched")).ok());
  // Struct sizes in the metadata that differ from this build: refused, clearly.
  json meta = meta_json();
  meta["abi"] = {{"ss_thread_state", sizeof(ss_thread_state) + 16}};
  auto w = record::RecordingWriter::create(d.file("abi.sched"), meta, sync_opts());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->finish(json::object()).ok());
  r = record::Recording::open(d.file("abi.sched"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ss_thread_state"), std::string::npos) << r.error().message;
}

TEST(Recording, ACrashLeavesAReadableTemporaryFile) {
  TempDir d;
  std::string path = d.file("crash.sched");
  std::string tmp;
  {
    FakeSymbols sym;
    auto w = record::RecordingWriter::create(path, meta_json(), sync_opts());
    ASSERT_TRUE(w.ok());
    tmp = (*w)->temp_path();
    auto steps = stuck_p_session();
    steps.pop_back();  // no final frame
    play(steps, w->get(), &sym);
    // Destroyed without finish(): what a kill leaves behind.
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  auto r = record::Recording::open(tmp);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->complete());
  record::AlertCheck chk;
  json final;
  auto frames = replay_frames(*r, &final, &chk);
  EXPECT_EQ(frames.size(), 5u);
  EXPECT_FALSE(chk.final_recorded);
  EXPECT_TRUE(chk.ok());
  EXPECT_TRUE(final["final"]);
  json rep = record::build_report(*r, detect::DetectOptions{});
  EXPECT_FALSE(rep["complete"]);
  EXPECT_FALSE(rep["warnings"].empty());
}

TEST(Recording, BackgroundFlushWritesAChunkWithinTheInterval) {
  TempDir d;
  std::string path = d.file("bg.sched");
  record::WriterOptions o;
  o.flush_interval_s = 0.05;
  auto w = record::RecordingWriter::create(path, meta_json(), o);
  ASSERT_TRUE(w.ok());
  uint64_t before = (*w)->bytes_written();
  (*w)->name(1, "one");
  for (int i = 0; i < 100 && (*w)->chunks() < 2; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE((*w)->chunks(), 2u) << "metadata + one data chunk, without flush()";
  EXPECT_GT((*w)->bytes_written(), before);
  auto r = record::Recording::open((*w)->temp_path());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data_chunks(), 1u);
  ASSERT_TRUE((*w)->finish(json::object()).ok());
  EXPECT_TRUE(record::Recording::open(path)->complete());
}

// ---------------------------------------------------------------- replay source

TEST(Recording, SourceSeeksAndPlaysTheSameFrames) {
  TempDir d;
  std::string path = d.file("s.sched");
  Live live = write_session(path);
  auto r = record::Recording::open(path);
  ASSERT_TRUE(r.ok());
  record::RecordingSource src(*r, detect::DetectOptions{});
  src.set_speed(0);
  EXPECT_TRUE(src.can_seek());
  EXPECT_FALSE(src.live());
  EXPECT_DOUBLE_EQ(src.length_s(), 6.0);
  std::vector<json> got;
  while (auto f = src.next()) got.push_back(model::frame_to_json(*f));
  EXPECT_EQ(got, live.frames);
  EXPECT_EQ(model::frame_to_json(*src.final_frame()), live.final);
  src.seek(3.0);
  auto f = src.next();
  ASSERT_TRUE(f);
  EXPECT_NEAR(f->elapsed_s, 3.0, 1e-9);
  EXPECT_EQ(model::frame_to_json(*f), live.frames[2]);
  EXPECT_NEAR(src.position_s(), 3.0, 1e-9);
  // Pacing: at speed 20 a 1 s interval takes about 50 ms.
  src.set_speed(20);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(src.next());
  ASSERT_TRUE(src.next());
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(el, 0.04);
  EXPECT_LT(el, 1.0);
  // interrupt() ends a paced wait.
  src.seek(1.0);
  ASSERT_TRUE(src.next());
  src.set_speed(0.001);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    src.interrupt();
  });
  EXPECT_FALSE(src.next());
  stopper.join();
}

// ---------------------------------------------------------------- rotation


// N recordings with default names, 5 minutes apart in name and mtime, oldest first.
template <typename Dir>
std::vector<std::string> dated_recordings(const Dir& d, int n) {
  std::vector<std::string> files;
  for (int i = 0; i < n; i++) {
    std::string p = d.file(record::default_recording_name("h", 7, 1700000000 + i * 300));
    write_session(p);
    utimbuf t{time_t(1700000000 + i * 300), time_t(1700000000 + i * 300)};
    utime(p.c_str(), &t);
    files.push_back(p);
  }
  return files;
}

TEST(Recording, NamesAndRotation) {
  std::string n = record::default_recording_name("web-1.prod", 4242, 1700000000);
  EXPECT_EQ(n, "schedscope-web-1.prod-4242-20231114T221320Z.sched");
  EXPECT_TRUE(record::is_recording_name(n));
  EXPECT_EQ(record::default_recording_name("a/b c", 1, 0), "schedscope-a_b_c-1-19700101T000000Z.sched");
  // The agent's flight recordings carry the alert kinds; rotation counts them as recordings.
  std::string k = record::default_recording_name("h", 9, 0, "stuck_p+gc stall");
  EXPECT_EQ(k, "schedscope-h-9-stuck_p+gc_stall-19700101T000000Z.sched");
  EXPECT_TRUE(record::is_recording_name(k));
  EXPECT_FALSE(record::is_recording_name("notes.txt"));
  EXPECT_FALSE(record::is_recording_name("schedscope-x.sched.tmp-12"));

  TempDir d;
  std::vector<std::string> files = dated_recordings(d, 5);
  uint64_t one = slurp(files[0]).size();
  // Not recordings: a matching name without the magic, an unrelated file, a temp file.
  spit(d.file("schedscope-fake-1-20200101T000000Z.sched"), std::vector<uint8_t>(5000, 'x'));
  spit(d.file("other.bin"), std::vector<uint8_t>(5000, 'y'));
  spit(files[0] + ".tmp-99", std::vector<uint8_t>(10, 'z'));
  auto list = record::list_recordings(d.path);
  ASSERT_EQ(list.size(), 5u);
  EXPECT_EQ(list.front().path, files[0]);

  auto res = record::rotate_recordings(d.path, 3 * one + one / 2, files[4]);
  EXPECT_EQ(res.deleted.size(), 2u);
  EXPECT_EQ(res.deleted[0], files[0]);
  EXPECT_EQ(res.deleted[1], files[1]);
  EXPECT_LE(res.total_after, 3 * one + one / 2);
  EXPECT_NE(access(files[0].c_str(), F_OK), 0);
  EXPECT_EQ(access(files[4].c_str(), F_OK), 0);
  EXPECT_EQ(access(d.file("other.bin").c_str(), F_OK), 0);
  EXPECT_EQ(access(d.file("schedscope-fake-1-20200101T000000Z.sched").c_str(), F_OK), 0);
  // A cap below one file keeps the newest anyway.
  res = record::rotate_recordings(d.path, 1, files[4]);
  EXPECT_EQ(record::list_recordings(d.path).size(), 1u);
  EXPECT_EQ(access(files[4].c_str(), F_OK), 0);
  // Unique names when one already exists.
  std::string u = record::unique_recording_path(d.path, "h", 7, 1700000000 + 4 * 300);
  EXPECT_NE(u, files[4]);
  EXPECT_TRUE(record::is_recording_name(u.substr(u.rfind('/') + 1)));
}

// Rotation in a shared directory: only our own regular files count and are deleted.
TEST(Recording, RotationDeletesOnlyOurOwnRecordings) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown a file to another user";
  TempDir d;
  std::vector<std::string> files = dated_recordings(d, 4);
  uint64_t one = slurp(files[0]).size();
  // The oldest was planted by another user (uid 65534): rotation must leave it alone.
  ASSERT_EQ(chown(files[0].c_str(), 65534, 65534), 0);
  auto res = record::rotate_recordings(d.path, 2 * one, files[3]);
  ASSERT_EQ(res.deleted.size(), 1u);
  EXPECT_EQ(res.deleted[0], files[1]) << "our oldest goes, not theirs";
  EXPECT_EQ(access(files[0].c_str(), F_OK), 0);
  EXPECT_EQ(access(files[2].c_str(), F_OK), 0);
  ASSERT_EQ(res.skipped.size(), 1u);
  EXPECT_EQ(res.skipped[0], files[0] + " (owned by uid 65534, not by uid 0)");
  EXPECT_EQ(res.total_before, 3 * one) << "only our recordings count toward the cap";
  // A symlink with a recording's name, pointing at one of ours: neither counted nor followed.
  std::string link = d.file(record::default_recording_name("h", 8, 1600000000));
  ASSERT_EQ(symlink(files[2].c_str(), link.c_str()), 0);
  res = record::rotate_recordings(d.path, 1, files[3]);
  EXPECT_EQ(res.deleted, std::vector<std::string>{files[2]});
  struct stat st {};
  EXPECT_EQ(lstat(link.c_str(), &st), 0) << "the link itself is not ours to delete either";
  EXPECT_EQ(access(files[0].c_str(), F_OK), 0);
  EXPECT_EQ(access(files[3].c_str(), F_OK), 0);
}

// ---------------------------------------------------------------- Perfetto export

TEST(Recording, PerfettoExportDecodesWithTracksSlicesAndCounters) {
  TempDir d;
  std::string path = d.file("e.sched");
  Live live = write_session(path);
  auto r = record::Recording::open(path);
  ASSERT_TRUE(r.ok());
  std::string out = d.file("e.pftrace");
  auto st = record::export_perfetto(*r, detect::DetectOptions{}, out);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto bytes = slurp(out);
  perfetto::protos::Trace trace;
  ASSERT_TRUE(trace.ParseFromArray(bytes.data(), int(bytes.size())));
  EXPECT_EQ(uint64_t(trace.packet_size()), st->packets);

  std::map<uint64_t, std::string> track_name;
  std::map<uint64_t, int> thread_tid;
  std::set<uint64_t> counters;
  uint64_t process = 0;
  std::map<uint64_t, std::vector<std::pair<uint64_t, std::string>>> begins;  // track -> (ts, name)
  std::map<uint64_t, int> depth, ends;
  std::map<uint64_t, std::vector<double>> values;
  std::vector<std::string> instants;
  for (int i = 0; i < trace.packet_size(); i++) {
    const auto& p = trace.packet(i);
    EXPECT_EQ(p.trusted_packet_sequence_id(), 1u);
    if (i == 0) {
      EXPECT_EQ(p.sequence_flags(), 1u);
    }
    if (p.has_track_descriptor()) {
      const auto& td = p.track_descriptor();
      track_name[td.uuid()] = td.name();
      if (td.has_process()) {
        process = td.uuid();
        EXPECT_EQ(td.process().pid(), 100);
      }
      if (td.has_thread()) {
        thread_tid[td.uuid()] = td.thread().tid();
        EXPECT_EQ(td.thread().pid(), 100);
      }
      if (td.has_counter()) counters.insert(td.uuid());
      continue;
    }
    ASSERT_TRUE(p.has_track_event());
    const auto& e = p.track_event();
    ASSERT_TRUE(track_name.count(e.track_uuid()) || thread_tid.count(e.track_uuid()))
        << "event on an undeclared track " << e.track_uuid();
    switch (e.type()) {
      case perfetto::protos::TrackEvent::TYPE_SLICE_BEGIN:
        begins[e.track_uuid()].push_back({p.timestamp(), e.name()});
        EXPECT_EQ(++depth[e.track_uuid()], 1) << "slices never nest on our tracks";
        break;
      case perfetto::protos::TrackEvent::TYPE_SLICE_END:
        ends[e.track_uuid()]++;
        --depth[e.track_uuid()];
        break;
      case perfetto::protos::TrackEvent::TYPE_COUNTER:
        EXPECT_TRUE(counters.count(e.track_uuid()));
        values[e.track_uuid()].push_back(e.double_counter_value());
        break;
      case perfetto::protos::TrackEvent::TYPE_INSTANT:
        instants.push_back(e.name());
        break;
      default:
        ADD_FAILURE() << "unexpected event type";
    }
  }
  EXPECT_NE(process, 0u);
  // A track per P, named P0/P1, with G slices from consecutive samples.
  uint64_t p0 = 0, p1 = 0;
  for (const auto& [u, n] : track_name) {
    if (n == "P0") p0 = u;
    if (n == "P1") p1 = u;
  }
  ASSERT_NE(p0, 0u);
  ASSERT_NE(p1, 0u);
  EXPECT_EQ(st->p_tracks, 2u);
  // P1 runs G18 the whole time: one slice. P0 alternates G7/G9 every sample: 6 slices.
  ASSERT_EQ(begins[p1].size(), 1u);
  EXPECT_EQ(begins[p1][0].second, "G18 main.rawBlocker");
  EXPECT_EQ(begins[p0].size(), 6u);
  EXPECT_EQ(begins[p0][0].second, "G7 main.worker");
  EXPECT_EQ(begins[p0][1].second, "G9 main.other");
  EXPECT_EQ(ends[p0], 6);
  EXPECT_EQ(ends[p1], 1);
  // A track per thread with its off-CPU slices (tid 102: 6 futex blocks).
  std::set<int> tids;
  uint64_t t102 = 0;
  for (const auto& [u, tid] : thread_tid) {
    tids.insert(tid);
    if (tid == 102) t102 = u;
  }
  EXPECT_EQ(tids, (std::set<int>{102, 103, 104}));
  ASSERT_EQ(begins[t102].size(), 6u);
  EXPECT_EQ(begins[t102][0].second, "futex");
  EXPECT_EQ(st->offcpu_slices, 6u);
  // Counters: threads, runnable Gs (sum of runq: 2 per sample), syscalls/s.
  uint64_t threads_c = 0, runnable_c = 0;
  for (uint64_t u : counters) {
    if (track_name[u] == "threads") threads_c = u;
    if (track_name[u].rfind("runnable Gs", 0) == 0) runnable_c = u;
  }
  ASSERT_NE(threads_c, 0u);
  ASSERT_NE(runnable_c, 0u);
  EXPECT_EQ(values[threads_c].size(), live.frames.size());
  EXPECT_EQ(values[threads_c][1], live.frames[1]["target"]["threads"].get<double>());
  EXPECT_EQ(values[runnable_c].size(), 6u);
  EXPECT_EQ(values[runnable_c][0], 2.0);
  // Alert instants and the thread creation instant.
  bool alert = false, created = false;
  for (const auto& n : instants) {
    alert |= n.rfind("stuck_p: ", 0) == 0;
    created |= n == "new thread 104";
  }
  EXPECT_TRUE(alert);
  EXPECT_TRUE(created);
  EXPECT_EQ(st->alerts, live.all.size());
}
