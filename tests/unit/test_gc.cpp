// GC observation: MMU against hand-computed cases, the GC timeline tracker fed with
// synthetic gc.bpf.c records, the census encoding, and the gc_stall /
// netpoll_saturation detectors on synthetic frames (with healthy negatives).
#include <gtest/gtest.h>

#include "detect/detectors.h"
#include "gc/gc.h"
#include "model/frame_json.h"
#include "model/model.h"
#include "record/census_format.h"

using namespace schedscope;

namespace {

constexpr uint64_t kMs = 1'000'000;

TEST(Mmu, NoGcIsFullUtilisation) {
  EXPECT_DOUBLE_EQ(gc::mmu({}, 0, 100 * kMs, 1 * kMs), 1.0);
  EXPECT_DOUBLE_EQ(gc::mmu({}, 0, 100 * kMs, 100 * kMs), 1.0);
}

TEST(Mmu, EmptyRangeIsUnknown) { EXPECT_LT(gc::mmu({}, 5, 5, kMs), 0); }

TEST(Mmu, OneStwPause) {
  // 2 ms stop-the-world at 10..12 ms of a 100 ms span.
  std::vector<gc::BusySpan> s{{10 * kMs, 12 * kMs, 1.0}};
  EXPECT_DOUBLE_EQ(gc::mmu(s, 0, 100 * kMs, 1 * kMs), 0.0);    // a window inside the pause
  EXPECT_NEAR(gc::mmu(s, 0, 100 * kMs, 10 * kMs), 0.8, 1e-9);  // 2 of 10 ms lost
  EXPECT_NEAR(gc::mmu(s, 0, 100 * kMs, 100 * kMs), 0.98, 1e-9);
  // A 4 ms window: the pause fits whole: 1 - 2/4.
  EXPECT_NEAR(gc::mmu(s, 0, 100 * kMs, 4 * kMs), 0.5, 1e-9);
}

TEST(Mmu, WorkerPlusStwClampsAtOne) {
  // Half the Ps in mark workers for 0..50 ms, a 1 ms STW at 20..21 ms (lost capped at 1).
  std::vector<gc::BusySpan> s{{0, 50 * kMs, 0.5}, {20 * kMs, 21 * kMs, 1.0}};
  EXPECT_DOUBLE_EQ(gc::mmu(s, 0, 100 * kMs, 1 * kMs), 0.0);
  // Worst 10 ms window holds the STW: 1 ms x 1 + 9 ms x 0.5 = 5.5 ms lost.
  EXPECT_NEAR(gc::mmu(s, 0, 100 * kMs, 10 * kMs), 0.45, 1e-9);
  // Whole span: 49 ms x 0.5 + 1 ms = 25.5 ms lost of 100.
  EXPECT_NEAR(gc::mmu(s, 0, 100 * kMs, 100 * kMs), 0.745, 1e-9);
}

TEST(Mmu, OverlappingSamplesAddUp) {
  // Two Ps' sampled ticks overlapping (GOMAXPROCS=2): 0.5 + 0.5 on 5..6 ms.
  std::vector<gc::BusySpan> s{{4 * kMs, 6 * kMs, 0.5}, {5 * kMs, 7 * kMs, 0.5}};
  EXPECT_DOUBLE_EQ(gc::mmu(s, 0, 20 * kMs, 1 * kMs), 0.0);
  EXPECT_NEAR(gc::mmu(s, 0, 20 * kMs, 2 * kMs), 0.25, 1e-9);  // [5,7): 1 + 0.5 lost
}

TEST(Mmu, WindowLongerThanSpanUsesTheSpan) {
  std::vector<gc::BusySpan> s{{0, 1 * kMs, 1.0}};
  EXPECT_NEAR(gc::mmu(s, 0, 4 * kMs, 10 * kMs), 0.75, 1e-9);
}

TEST(Mmu, SpansOutsideTheRangeAreClipped) {
  std::vector<gc::BusySpan> s{{0, 10 * kMs, 1.0}};
  EXPECT_NEAR(gc::mmu(s, 5 * kMs, 25 * kMs, 10 * kMs), 0.5, 1e-9);  // only 5..10 ms lost
  EXPECT_NEAR(gc::mmu(s, 5 * kMs, 25 * kMs, 20 * kMs), 0.75, 1e-9);
}

ss_gc_event ev(uint64_t ts, uint32_t what, uint64_t arg = 0) {
  ss_gc_event e{};
  e.h.type = SS_EV_GC;
  e.h.size = sizeof e;
  e.h.ts = ts;
  e.what = what;
  e.arg = arg;
  return e;
}

ss_gc_sample smp(uint64_t ts, uint32_t kind, uint64_t goid) {
  ss_gc_sample e{};
  e.h.type = SS_EV_GC_SAMPLE;
  e.h.size = sizeof e;
  e.h.ts = ts;
  e.kind = kind;
  e.goid = goid;
  return e;
}

template <typename T>
void feed(gc::Tracker& t, const T& e) {
  ASSERT_TRUE(t.on_record(&e.h, sizeof e));
}

TEST(GcTracker, CycleStwAssistsAndMmu) {
  gc::Tracker t;
  t.set_go_minor(21);
  t.set_gomaxprocs(2);
  t.set_sample_period_ns(kMs);
  feed(t, ev(10 * kMs, SS_GC_STW_STOP, 2));  // sweep termination
  feed(t, ev(11 * kMs, SS_GC_STW_START));
  for (int i = 0; i < 10; i++) feed(t, smp((20 + i) * kMs, SS_GCS_ASSIST, 7));
  feed(t, smp(30 * kMs, SS_GCS_ASSIST, 9));
  feed(t, smp(40 * kMs, SS_GCS_WORKER, 3));
  feed(t, ev(50 * kMs, SS_GC_STW_STOP, 1));  // mark termination
  feed(t, ev(50 * kMs + 100, SS_GC_MARKTERM));
  feed(t, ev(50 * kMs + 200, SS_GC_MARKTERM));  // prologue double fire: ignored
  feed(t, ev(50 * kMs + kMs / 2, SS_GC_STW_START));
  gc::GcStats g = t.take(0, 100 * kMs, false);
  EXPECT_TRUE(g.enabled);
  EXPECT_EQ(g.cycles, 1u);
  EXPECT_EQ(g.stw_count, 2u);
  EXPECT_NEAR(g.stw_ms, 1.5, 1e-9);
  EXPECT_NEAR(g.stw_max_ms, 1.0, 1e-9);
  EXPECT_EQ(g.stw_reasons["GC sweep termination"], 1u);
  EXPECT_EQ(g.stw_reasons["GC mark termination"], 1u);
  EXPECT_NEAR(g.assist_ms, 11, 1e-9);
  EXPECT_NEAR(g.worker_ms, 1, 1e-9);
  EXPECT_NEAR(g.assist_share, 11.0 / 200, 1e-9);
  EXPECT_DOUBLE_EQ(g.mmu_1ms, 0.0);
  // Worst 10 ms: ten assist ticks of one P in two (0.5 each) = 5 ms lost.
  EXPECT_NEAR(g.mmu_10ms, 0.5, 1e-9);
  ASSERT_FALSE(g.top_assists.empty());
  EXPECT_EQ(g.top_assists[0].goid, 7u);
  EXPECT_NEAR(g.top_assists[0].ms, 10, 1e-9);
  // Periods: sweep-term STW, the mark phase between the two STWs, mark-term STW.
  int stw = 0, mark = 0;
  for (const auto& p : g.periods) {
    if (p.kind == "stw") stw++;
    if (p.kind == "mark") {
      mark++;
      EXPECT_EQ(p.start_ns, 11 * kMs);
      EXPECT_EQ(p.end_ns, 50 * kMs);
    }
  }
  EXPECT_EQ(stw, 2);
  EXPECT_EQ(mark, 1);
  // The next interval starts clean; the final frame sums since attach.
  gc::GcStats g2 = t.take(100 * kMs, 200 * kMs, false);
  EXPECT_EQ(g2.cycles, 0u);
  EXPECT_EQ(g2.stw_count, 0u);
  EXPECT_DOUBLE_EQ(g2.mmu_10ms, 1.0);
  gc::GcStats fin = t.take(0, 200 * kMs, true);
  EXPECT_EQ(fin.cycles, 1u);
  EXPECT_EQ(fin.stw_count, 2u);
  EXPECT_NEAR(fin.assist_ms, 11, 1e-9);
  EXPECT_DOUBLE_EQ(fin.mmu_1ms, 0.0);  // the lowest of the intervals
}

TEST(GcTracker, OldGoLabelsStwByMarkTermination) {
  gc::Tracker t;
  t.set_go_minor(19);  // no stwReason argument before 1.21
  feed(t, ev(1 * kMs, SS_GC_STW_STOP, 12345));
  feed(t, ev(2 * kMs, SS_GC_STW_START));
  feed(t, ev(5 * kMs, SS_GC_STW_STOP, 999));
  feed(t, ev(5 * kMs + 10, SS_GC_MARKTERM));
  feed(t, ev(6 * kMs, SS_GC_STW_START));
  auto g = t.take(0, 10 * kMs, false);
  EXPECT_EQ(g.cycles, 1u);
  EXPECT_EQ(g.stw_reasons["GC mark termination"], 1u);
  EXPECT_EQ(g.stw_reasons["stop the world"], 1u);
}

// A stop's reason is trusted where the binary's own stwReason table was found (any
// version, none), else on the releases whose enum was checked; elsewhere every stop but
// the mark termination's is "stop the world" and taken to start a mark phase.
TEST(GcTracker, StwReasonsFromTheBinarysTableElseTheCheckedReleases) {
  EXPECT_TRUE(gc::stw_reasons_known(27, true));
  EXPECT_TRUE(gc::stw_reasons_known(0, true));
  EXPECT_TRUE(gc::stw_reasons_known(21, false));
  EXPECT_TRUE(gc::stw_reasons_known(26, false));
  EXPECT_FALSE(gc::stw_reasons_known(20, false));
  EXPECT_FALSE(gc::stw_reasons_known(27, false));
  EXPECT_FALSE(gc::stw_reasons_known(0, false));
  // One cycle and a read-mem-stats stop in the middle of its mark phase.
  auto run = [](int minor, const std::vector<std::string>& table) {
    gc::Tracker t;
    t.set_go_minor(minor);
    t.set_stw_reasons(table);
    feed(t, ev(1 * kMs, SS_GC_STW_STOP, gc::kStwGCSweepTerm));
    feed(t, ev(2 * kMs, SS_GC_STW_START));
    feed(t, ev(4 * kMs, SS_GC_STW_STOP, 7));
    feed(t, ev(5 * kMs, SS_GC_STW_START));
    feed(t, ev(8 * kMs, SS_GC_STW_STOP, 1));
    feed(t, ev(8 * kMs + 10, SS_GC_MARKTERM));
    feed(t, ev(9 * kMs, SS_GC_STW_START));
    return t.take(0, 10 * kMs, false);
  };
  auto mark_start = [](const gc::GcStats& g) {
    for (const auto& p : g.periods)
      if (p.kind == "mark") return p.start_ns;
    return uint64_t{0};
  };
  // A table whose 7 differs from the built-in list: the binary's names win.
  std::vector<std::string> table = {"unknown", "GC mark termination", "GC sweep termination",
                                    "3", "4", "5", "6", "read mem stats (this binary)"};
  auto g = run(27, table);
  EXPECT_EQ(g.stw_reasons["GC sweep termination"], 1u);
  EXPECT_EQ(g.stw_reasons["read mem stats (this binary)"], 1u);
  EXPECT_EQ(g.stw_reasons["GC mark termination"], 1u);
  EXPECT_EQ(mark_start(g), 2 * kMs);  // the mark phase starts after the sweep termination
  g = run(23, {});  // a checked release without the table: the built-in list
  EXPECT_EQ(g.stw_reasons["read mem stats"], 1u);
  EXPECT_EQ(mark_start(g), 2 * kMs);
  g = run(27, {});  // unchecked, no table: not named, each stop may start a mark phase
  EXPECT_EQ(g.stw_reasons["stop the world"], 2u);
  EXPECT_EQ(g.stw_reasons["GC mark termination"], 1u);
  EXPECT_EQ(mark_start(g), 5 * kMs);
}

TEST(GcTracker, IgnoresOtherRecords) {
  gc::Tracker t;
  ss_hdr h{};
  h.type = SS_EV_OFFCPU;
  h.size = sizeof h;
  EXPECT_FALSE(t.on_record(&h, sizeof h));
  ss_gc_event e = ev(1, SS_GC_STW_STOP);
  EXPECT_FALSE(t.on_record(&e.h, sizeof(ss_hdr)));  // truncated
}

TEST(Census, RoundTrip) {
  gc::Census c;
  c.ts_ns = 42;
  c.allglen = 300;
  c.read = 290;
  c.by_status[4] = 250;
  c.by_status[6] = 10;
  c.waiting_by_reason[2] = 200;
  c.waiting_by_reason[9] = 50;
  c.rss_bytes = 1 << 20;
  c.read_ms = 1.5;
  record::ByteWriter w;
  record::encode_census(w, c);
  record::ByteReader r(w.data().data(), w.size());
  gc::Census d;
  ASSERT_TRUE(record::decode_census(r, &d));
  EXPECT_EQ(d.allglen, 300u);
  EXPECT_EQ(d.read, 290u);
  EXPECT_EQ(d.live(), 250u);
  EXPECT_EQ(d.waiting_by_reason[2], 200u);
  EXPECT_EQ(d.waiting_by_reason[9], 50u);
  EXPECT_EQ(d.rss_bytes, uint64_t(1) << 20);
  EXPECT_NEAR(d.read_ms, 1.5, 1e-6);
  record::ByteReader shortr(w.data().data(), w.size() - 3);
  EXPECT_FALSE(record::decode_census(shortr, &d));
}

TEST(Census, LiveStartFunctionsRoundTripAndOlderRecordsHaveNone) {
  gc::Census c;
  c.allglen = 3000;
  c.read = 3000;
  c.by_status[4] = 2990;
  c.io_wait_funcs = {{"net/http.(*conn).serve", 5}};
  c.live_funcs = {{"main.spawned", 2980}, {"main.main", 1}};
  record::ByteWriter w;
  record::encode_census(w, c);
  record::ByteReader r(w.data().data(), w.size());
  gc::Census d;
  ASSERT_TRUE(record::decode_census(r, &d));
  EXPECT_EQ(d.io_wait_funcs, c.io_wait_funcs);
  EXPECT_EQ(d.live_funcs, c.live_funcs);
  // A recording made before the live start functions ends after the IO-wait ones.
  gc::Census old = c;
  old.live_funcs.clear();
  record::ByteWriter wo;
  record::encode_census(wo, old);
  record::ByteReader ro(wo.data().data(), wo.size() - 4);  // without the trailing count
  ASSERT_TRUE(record::decode_census(ro, &d));
  EXPECT_EQ(d.io_wait_funcs, c.io_wait_funcs);
  EXPECT_TRUE(d.live_funcs.empty());
  // And the frame JSON lists them, most first.
  auto j = model::census_json(c);
  ASSERT_EQ(j["live_funcs"].size(), 2u);
  EXPECT_EQ(j["live_funcs"][0]["func"], "main.spawned");
  EXPECT_EQ(j["live_funcs"][0]["count"], 2980);
  // The census keeps every function (up to kCensusLiveFuncsMax) for the --goroutines exit
  // estimate, records them all, and the JSON shows the first kCensusLiveFuncsShown.
  c.live_funcs.clear();
  for (uint32_t i = 0; i < 20; i++) c.live_funcs.emplace_back("f" + std::to_string(i), 100 - i);
  record::ByteWriter wm;
  record::encode_census(wm, c);
  record::ByteReader rm(wm.data().data(), wm.size());
  ASSERT_TRUE(record::decode_census(rm, &d));
  EXPECT_EQ(d.live_funcs, c.live_funcs);
  j = model::census_json(c);
  ASSERT_EQ(j["live_funcs"].size(), gc::kCensusLiveFuncsShown);
  EXPECT_EQ(j["live_funcs"][7]["func"], "f7");
}

model::Frame gc_frame(double mmu10, double mmu100) {
  model::Frame f;
  f.ts_ns = 5'000'000'000ull;
  f.interval_s = 1;
  f.gc.enabled = true;
  f.gc.gomaxprocs = 2;
  f.gc.mmu_1ms = 0;
  f.gc.mmu_10ms = mmu10;
  f.gc.mmu_100ms = mmu100;
  f.gc.cycles = 3;
  f.gc.cycles_total = 17;
  f.gc.assist_share = 0.4;
  f.gc.rss_bytes = 300u << 20;
  f.gc.rss_delta_bytes = 12 << 20;
  f.gc.top_assists = {{41, 120.0}, {42, 80.0}};
  return f;
}

TEST(GcStall, RaisedWithEvidence) {
  detect::Detectors d;
  auto f = gc_frame(0.05, 0.3);
  detect::attach(f, d.evaluate(f));
  ASSERT_EQ(f.alerts.size(), 1u);
  const auto& a = f.alerts[0];
  EXPECT_EQ(a.kind, "gc_stall");
  EXPECT_EQ(a.goid, 41u);
  std::string all = a.message;
  for (const auto& e : a.evidence) all += "\n" + e;
  EXPECT_NE(all.find("cycle #17"), std::string::npos) << all;
  EXPECT_NE(all.find("G41"), std::string::npos) << all;
  EXPECT_NE(all.find("heap growth"), std::string::npos) << all;
  EXPECT_NE(all.find("mark assists 40%"), std::string::npos) << all;
}

TEST(GcStall, LongPauseWithoutAssistsIsNoAlert) {
  detect::Detectors d;
  auto f = gc_frame(0.0, 0.79);  // a GC's two pauses stretched to 20 ms by an overloaded host
  f.gc.assist_share = 0.0005;
  f.gc.stw_count = 2;
  f.gc.stw_ms = 21;
  f.gc.stw_max_ms = 20;
  f.gc.stw_reasons = {{"GC sweep termination", 1}, {"GC mark termination", 1}};
  detect::attach(f, d.evaluate(f));
  EXPECT_TRUE(f.alerts.empty());
  // Even a quarter of the time in a handful of long pauses: not a stop-the-world loop.
  f.gc.stw_count = 5;
  f.gc.stw_ms = 250;
  detect::attach(f, d.evaluate(f));
  EXPECT_TRUE(f.alerts.empty());
}

// A ReadMemStats loop: thousands of short pauses, no assist, no GC cycle.
model::Frame stw_loop_frame() {
  auto f = gc_frame(0.02, 0.45);
  f.gc.assist_share = 0;
  f.gc.cycles = 0;
  f.gc.top_assists.clear();
  f.gc.stw_count = 3000;
  f.gc.stw_ms = 240;
  f.gc.stw_max_ms = 3;
  f.gc.stw_reasons = {{"read mem stats", 2990}, {"GOMAXPROCS", 10}};
  f.gc.stw_callers = {{"main.exporter.collect /src/exporter.go:42", 78}, {"main.main /src/main.go:9", 2}};
  return f;
}

TEST(StwStall, ReadMemStatsLoopNamedWithAdvice) {
  detect::Detectors d;
  auto f = stw_loop_frame();
  detect::attach(f, d.evaluate(f));
  ASSERT_EQ(f.alerts.size(), 1u);
  const auto& a = f.alerts[0];
  EXPECT_EQ(a.kind, "stw_stall");
  EXPECT_EQ(a.severity, "critical");
  EXPECT_EQ(a.func, "main.exporter.collect");  // the caller, from the sampled stacks
  std::string all = a.message;
  for (const auto& e : a.evidence) all += "\n" + e;
  for (const char* needle : {"24% of the time", "3000 stop-the-world pauses/s", "read mem stats 2990",
                             "GOMAXPROCS 10", "mean 80 us", "runtime/metrics", "not the GC",
                             "stopped by (80 sampled stacks): main.exporter.collect /src/exporter.go:42 78; main.main"})
    EXPECT_NE(all.find(needle), std::string::npos) << needle << "\n" << all;
}

TEST(StwStall, ThresholdsAndTheGcCase) {
  // Under the share, under the rate, MMU fine: nothing.
  for (auto tweak : {+[](model::Frame& f) { f.gc.stw_ms = 50; },
                     +[](model::Frame& f) { f.gc.stw_count = 10; },
                     +[](model::Frame& f) { f.gc.mmu_10ms = 0.5, f.gc.mmu_100ms = 0.9; }}) {
    detect::Detectors d;
    auto f = stw_loop_frame();
    tweak(f);
    detect::attach(f, d.evaluate(f));
    EXPECT_TRUE(f.alerts.empty()) << f.alerts.front().kind;
  }
  // With mark assists it is the GC's pacing: gc_stall, not stw_stall.
  detect::Detectors d;
  auto f = stw_loop_frame();
  f.gc.assist_share = 0.3;
  detect::attach(f, d.evaluate(f));
  ASSERT_EQ(f.alerts.size(), 1u);
  EXPECT_EQ(f.alerts[0].kind, "gc_stall");
  // Before Go 1.21 there is no reason: generic advice.
  detect::Detectors d2;
  auto g = stw_loop_frame();
  g.gc.stw_reasons = {{"stop the world", 3000}};
  g.gc.stw_callers.clear();  // and no stack: the reason stands in for the function
  detect::attach(g, d2.evaluate(g));
  ASSERT_EQ(g.alerts.size(), 1u);
  EXPECT_EQ(g.alerts[0].func, "stop the world");
  EXPECT_NE(g.alerts[0].evidence.back().find("runtime.ReadMemStats, runtime.GC"), std::string::npos);
}

TEST(GcStall, HealthyGcIsNoAlert) {
  detect::Detectors d;
  auto f = gc_frame(0.6, 0.8);
  detect::attach(f, d.evaluate(f));
  EXPECT_TRUE(f.alerts.empty());
  auto off = gc_frame(0.05, 0.3);
  off.gc.enabled = false;
  detect::attach(off, d.evaluate(off));
  EXPECT_TRUE(off.alerts.empty());
}

model::Frame net_frame(uint32_t io_wait, uint32_t live, uint32_t runq, double cpu_pct) {
  model::Frame f;
  f.ts_ns = 5'000'000'000ull;
  f.interval_s = 1;
  go::SchedSample s;
  s.gomaxprocs = 2;
  s.lastpoll = 0;
  for (int i = 0; i < 2; i++) {
    go::PSample p;
    p.id = i;
    p.status = 0;
    p.runq = runq / 2;
    s.ps.push_back(p);
  }
  f.go = s;
  model::ThreadRow r;
  r.tid = 10;
  r.state = model::ThreadState::kSleeping;
  r.syscall = "epoll_wait";
  r.oncpu_pct = cpu_pct;
  f.threads.push_back(r);
  gc::Census c;
  c.allglen = live + 5;
  c.read = live + 5;
  c.by_status[4] = live;
  c.by_status[6] = 5;
  c.waiting_by_reason[gc::kWaitReasonIOWait] = io_wait;
  if (live > io_wait) c.waiting_by_reason[9] = live - io_wait;
  f.census = c;
  return f;
}

TEST(NetpollSaturation, RaisedWithCounts) {
  detect::Detectors d;
  auto f = net_frame(900, 1000, 0, 20);
  detect::attach(f, d.evaluate(f));
  ASSERT_EQ(f.alerts.size(), 1u);
  const auto& a = f.alerts[0];
  EXPECT_EQ(a.kind, "netpoll_saturation");
  EXPECT_NE(a.message.find("900 goroutines parked on network I/O"), std::string::npos) << a.message;
  EXPECT_NE(a.message.find("not a scheduler problem"), std::string::npos);
  std::string all;
  for (const auto& e : a.evidence) all += e + "\n";
  EXPECT_NE(all.find("IO wait 900"), std::string::npos) << all;
  EXPECT_NE(all.find("epoll_wait"), std::string::npos) << all;
}

TEST(NetpollSaturation, NotWhenBusyQueuedOrFew) {
  detect::Detectors d;
  auto busy = net_frame(900, 1000, 0, 180);  // 1.8 CPUs of 2: the Ps are busy
  detect::attach(busy, d.evaluate(busy));
  EXPECT_TRUE(busy.alerts.empty());
  auto queued = net_frame(900, 1000, 40, 20);  // runnable work queued: a scheduler matter
  detect::attach(queued, d.evaluate(queued));
  EXPECT_TRUE(queued.alerts.empty());
  auto few = net_frame(10, 12, 0, 5);  // an idle server with a few connections
  detect::attach(few, d.evaluate(few));
  EXPECT_TRUE(few.alerts.empty());
  auto minority = net_frame(100, 1000, 0, 5);  // most goroutines wait on something else
  detect::attach(minority, d.evaluate(minority));
  EXPECT_TRUE(minority.alerts.empty());
}

}  // namespace

// The model reduces a sampled stop-the-world stack to its first frame outside the
// runtime, looked up at pc - 1 for return addresses (the line of the call).
namespace {
class StwSymbols : public model::Symbolize {
 public:
  std::string frame(uint64_t pc) const override {
    if (pc == 0x4000) return "runtime.stopTheWorldWithSema /go/src/runtime/proc.go:1300";
    if (pc == 0x4fff) return "runtime.ReadMemStats /go/src/runtime/mstats.go:360";
    if (pc == 0x5fff) return "main.exporter.collect /src/exporter.go:42";
    return "";
  }
  bool is_runtime(uint64_t pc) const override { return pc < 0x5000; }
};

// A sampled stop-the-world stack record with this stop's reason, fed to the model.
void feed_stw_stack(model::Model& m, uint64_t reason, std::initializer_list<uint64_t> pcs) {
  ss_gc_stack e{};
  e.h.type = SS_EV_GC_STACK;
  e.h.size = sizeof e;
  e.h.ts = 1000;
  e.reason = reason;
  e.nframes = uint32_t(pcs.size());
  size_t i = 0;
  for (uint64_t pc : pcs) e.pcs[i++] = pc;
  m.on_record(&e.h, sizeof e);
}
}  // namespace

TEST(StwStall, SampledStacksNameTheCaller) {
  model::Model m(model::TargetInfo{});
  StwSymbols sym;
  m.set_symbolizer(&sym);
  auto stack = [&](std::initializer_list<uint64_t> pcs) { feed_stw_stack(m, 0, pcs); };
  for (int i = 0; i < 3; i++) stack({0x4000, 0x5000, 0x6000});  // ReadMemStats <- collect
  stack({0x4000});                                               // nothing outside the runtime
  auto f = m.frame();
  EXPECT_EQ(f.gc.stw_callers["main.exporter.collect /src/exporter.go:42"], 3u);
  EXPECT_EQ(f.gc.stw_callers["?"], 1u);
  EXPECT_EQ(m.bad_records(), 0u);
  // Per interval, and since attach in the final frame.
  stack({0x4000, 0x5000, 0x6000});
  EXPECT_EQ(m.frame().gc.stw_callers.size(), 1u);
  EXPECT_EQ(m.frame(true).gc.stw_callers["main.exporter.collect /src/exporter.go:42"], 4u);
}

// The mark termination's stop is the background mark worker's, all runtime: where the
// stop's reason is known its stack names no caller and is not counted (a GC loop would be
// half "?"); where it is not known, every stack counts.
TEST(StwStall, MarkTerminationStacksAreNotCallersWhereTheReasonIsKnown) {
  for (const char* version : {"go1.23.4", "go1.19.13"}) {
    SCOPED_TRACE(version);
    model::TargetInfo t;
    t.go_version = version;
    model::Model m(t);
    StwSymbols sym;
    m.set_symbolizer(&sym);
    feed_stw_stack(m, gc::kStwGCSweepTerm, {0x4000, 0x5000, 0x6000});  // runtime.GC <- collect
    feed_stw_stack(m, SS_GC_STW_MARKTERM, {0x4000});                   // the mark worker's
    auto f = m.frame();
    EXPECT_EQ(f.gc.stw_callers["main.exporter.collect /src/exporter.go:42"], 1u);
    const bool known = std::string(version) == "go1.23.4";
    EXPECT_EQ(f.gc.stw_callers.count("?"), known ? 0u : 1u);
    EXPECT_EQ(m.bad_records(), 0u);
  }
}
