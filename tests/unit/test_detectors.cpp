// Detectors driven by synthetic frames: the definitions of README.md "Alerts", edge cases
// (P handed off, M exits, target exits mid-alert), and no alarms on healthy shapes.
#include <gtest/gtest.h>

#include "detect/detectors.h"
#include "synthetic.h"

using namespace schedscope;
using namespace schedscope::synthetic;

namespace {

constexpr uint64_t kSec = 1'000'000'000;

const detect::Alert* find(const model::Frame& f, const std::string& kind) {
  for (const auto& a : f.alerts)
    if (a.kind == kind && a.active) return &a;
  for (const auto& a : f.notices)
    if (a.kind == kind) return &a;
  return nullptr;
}

}  // namespace

TEST(StuckP, RawSyscallKeepsPRunningWithFrozenTicks) {
  detect::Detectors d;
  // P1 runs G18 on M3 (tid 103) whose thread sits in read() — schedtick frozen at 50.
  auto mk = [](uint64_t ts, double blocked_ms, uint32_t p0tick) {
    return frame(ts, {P(0, 1, 2, 102, 7, p0tick, 1), P(1, 1, 3, 103, 18, 50, 4, "main.rawBlocker")},
                 {M(2, 102, 0, -1, 7), M(3, 103, 1, -1, 18, "main.rawBlocker")},
                 {T(102, "running"), T(103, "sleeping", "read", blocked_ms)});
  };
  auto f1 = mk(1 * kSec, 500, 100);
  detect::attach(f1, d.evaluate(f1));
  EXPECT_EQ(find(f1, "stuck_p"), nullptr) << "first sight: no history yet";
  auto f2 = mk(2 * kSec, 1500, 180);
  detect::attach(f2, d.evaluate(f2));
  const auto* a = find(f2, "stuck_p");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->p, 1);
  EXPECT_EQ(a->m, 3);
  EXPECT_EQ(a->tid, 103u);
  EXPECT_EQ(a->goid, 18u);
  EXPECT_EQ(a->func, "main.rawBlocker");
  EXPECT_EQ(a->syscall, "read");
  EXPECT_DOUBLE_EQ(a->duration_ms, 1500);
  EXPECT_FALSE(a->handed_off);
  // P0 moves: never flagged.
  for (const auto& x : f2.alerts) EXPECT_NE(x.p, 0);
}

TEST(StuckP, PsyscallNotRetakenBySysmon) {
  detect::Detectors d;
  auto mk = [](uint64_t ts, double ms) {
    return frame(ts, {P(0, 2, -1, 0, 0, 9, 3)}, {M(1, 201, -1, 0, 33, "main.cgoBlocker", true)},
                 {T(201, "sleeping", "nanosleep", ms)});
  };
  auto f1 = mk(kSec, 900);
  detect::attach(f1, d.evaluate(f1));
  auto f2 = mk(2 * kSec, 1900);
  detect::attach(f2, d.evaluate(f2));
  const auto* a = find(f2, "stuck_p");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->p, 0);
  EXPECT_EQ(a->tid, 201u);
  EXPECT_EQ(a->goid, 33u);
  EXPECT_EQ(a->syscall, "nanosleep");
  EXPECT_EQ(find(f2, "blocked_m"), nullptr) << "the P is still held: stuck, not blocked M";
}

TEST(StuckP, HandedOffLongSyscallIsABlockedMNotAStuckP) {
  detect::Detectors d;
  // M1 is in a 3 s cgo call; sysmon gave its P0 to M2, which keeps scheduling.
  auto mk = [](uint64_t ts, uint32_t tick, double ms) {
    return frame(ts, {P(0, 1, 2, 202, 5, tick, 8)},
                 {M(1, 201, -1, 0, 33, "main.cgoBlocker", true), M(2, 202, 0, -1, 5)},
                 {T(201, "sleeping", "nanosleep", ms), T(202, "running")});
  };
  auto f1 = mk(kSec, 10, 2000);
  detect::attach(f1, d.evaluate(f1));
  auto f2 = mk(2 * kSec, 90, 3000);
  detect::attach(f2, d.evaluate(f2));
  EXPECT_EQ(find(f2, "stuck_p"), nullptr);
  const auto* b = find(f2, "blocked_m");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->handed_off);
  EXPECT_EQ(b->tid, 201u);
  EXPECT_EQ(b->func, "main.cgoBlocker");
  EXPECT_EQ(b->severity, "info");
  EXPECT_TRUE(f2.alerts.empty()) << "a blocked M is a notice, not an alert";
}

TEST(StuckP, Go126PStaysRunningDuringSyscalls) {
  // Go 1.26 keeps the P _Prunning and attached (m.p set) during a syscall: frozen ticks and
  // a blocked M are enough, status alone is not.
  detect::Detectors d;
  auto mk = [](uint64_t ts) {
    return frame(ts, {P(0, 1, 1, 301, 12, 77, 77)}, {M(1, 301, 0, 0, 12, "main.reader")},
                 {T(301, "sleeping", "read", double(ts / 1'000'000) - 500)});
  };
  auto f1 = mk(kSec);
  detect::attach(f1, d.evaluate(f1));
  auto f2 = mk(2 * kSec);
  detect::attach(f2, d.evaluate(f2));
  ASSERT_NE(find(f2, "stuck_p"), nullptr);
}

TEST(StuckP, IdlePsAndCpuBoundGsAreNotStuck) {
  detect::Detectors d;
  for (int i = 1; i <= 5; i++) {
    // P0 idle forever (ticks frozen, no M); P1 runs a CPU-bound G whose thread is on CPU.
    auto f = frame(uint64_t(i) * kSec, {P(0, 0, -1, 0, 0, 4, 4), P(1, 1, 2, 402, 9, 30, 2)},
                   {M(2, 402, 1, -1, 9, "main.spin"), M(3, 403, -1, -1, 0)},
                   {T(402, "running"), T(403, "sleeping", "futex", 5000)});
    detect::attach(f, d.evaluate(f));
    EXPECT_TRUE(f.alerts.empty()) << "frame " << i;
  }
}

TEST(StuckP, ClearsWhenTheCallReturnsAndKeepsHistory) {
  detect::Detectors d;
  auto stuck = [](uint64_t ts) {
    return frame(ts, {P(0, 1, 1, 501, 3, 10, 1)}, {M(1, 501, 0, -1, 3, "main.b")},
                 {T(501, "sleeping", "read", 2000)});
  };
  auto f1 = stuck(kSec);
  detect::attach(f1, d.evaluate(f1));
  auto f2 = stuck(2 * kSec);
  detect::attach(f2, d.evaluate(f2));
  ASSERT_NE(find(f2, "stuck_p"), nullptr);
  auto f3 =
      frame(3 * kSec, {P(0, 1, 1, 501, 3, 11, 1)}, {M(1, 501, 0, -1, 3)}, {T(501, "running")});
  detect::attach(f3, d.evaluate(f3));
  EXPECT_EQ(find(f3, "stuck_p"), nullptr);
  ASSERT_EQ(d.history().size(), 1u);
  EXPECT_FALSE(d.history()[0].active);
  EXPECT_EQ(d.all().size(), 1u);
}

TEST(StuckP, MExitsMidAlert) {
  detect::Detectors d;
  auto f1 = frame(kSec, {P(0, 1, 1, 601, 3, 10, 1)}, {M(1, 601, 0, -1, 3)},
                  {T(601, "sleeping", "read", 1500)});
  detect::attach(f1, d.evaluate(f1));
  auto f2 = frame(2 * kSec, {P(0, 1, 1, 601, 3, 10, 1)}, {M(1, 601, 0, -1, 3)},
                  {T(601, "sleeping", "read", 2500)});
  detect::attach(f2, d.evaluate(f2));
  ASSERT_NE(find(f2, "stuck_p"), nullptr);
  // The thread is gone (exited); the P table still names the M: no crash, alert clears.
  auto f3 = frame(3 * kSec, {P(0, 0, -1, 0, 0, 10, 1)}, {}, {});
  detect::attach(f3, d.evaluate(f3));
  EXPECT_EQ(find(f3, "stuck_p"), nullptr);
  EXPECT_EQ(d.history().size(), 1u);
}

TEST(StuckP, NoGoSampleNoAlert) {
  detect::Detectors d;
  model::Frame f;
  f.ts_ns = kSec;
  f.threads = {T(1, "sleeping", "read", 10000)};
  f.threads_alive = 1;
  detect::attach(f, d.evaluate(f));
  EXPECT_TRUE(f.alerts.empty());
}

namespace {

model::Frame storm_frame(uint64_t ts, int threads, int blocked, uint64_t created_total,
                         const char* sc = "nanosleep") {
  model::Frame f;
  f.ts_ns = ts;
  f.interval_s = 1;
  f.creations_total = created_total;
  go::SchedSample s;
  s.gomaxprocs = 2;
  s.maxmcount = 10000;
  for (int i = 0; i < threads; i++) {
    uint32_t tid = 1000 + i;
    bool b = i < blocked;
    f.threads.push_back(b ? T(tid, "sleeping", sc, 300) : T(tid, "running"));
    s.ms.push_back(M(i, int(tid), -1, -1, b ? 100 + i : 0, b ? "main.cgoLookup" : ""));
  }
  f.go = s;
  f.threads_alive = threads;
  model::Frame_Creation c;
  c.tid = 5000;
  c.set_stack({"runtime.newm", "main.cgoLookup main.go:42"}, "main.cgoLookup main.go:42");
  f.creations.push_back(c);
  return f;
}

}  // namespace

TEST(SyscallStorm, FastThreadGrowthWithMostThreadsBlocked) {
  detect::Detectors d;
  auto f1 = storm_frame(1 * kSec, 20, 15, 10);
  detect::attach(f1, d.evaluate(f1));
  auto f2 = storm_frame(2 * kSec, 80, 70, 70);
  detect::attach(f2, d.evaluate(f2));
  const auto* a = find(f2, "syscall_storm");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->threads, 80);
  EXPECT_EQ(a->syscall, "nanosleep");
  EXPECT_EQ(a->func, "main.cgoLookup");
  ASSERT_FALSE(a->stack.empty());
  EXPECT_EQ(a->stack.back(), "main.cgoLookup main.go:42");
  EXPECT_EQ(a->severity, "warning");
}

TEST(SyscallStorm, SampledCreationStacksStillNameTheSiteAndSaySo) {
  // Past the kernel's stack budget most creations come without a stack: the site is
  // named from the sampled ones and the evidence says how many had one.
  detect::Detectors d;
  auto f1 = storm_frame(1 * kSec, 20, 15, 10);
  detect::attach(f1, d.evaluate(f1));
  auto f2 = storm_frame(2 * kSec, 80, 70, 70);
  for (int i = 0; i < 9; i++) {
    model::Frame_Creation c;
    c.tid = 6000 + uint32_t(i);
    c.stack_skipped = true;
    f2.creations.push_back(c);
  }
  detect::attach(f2, d.evaluate(f2));
  const auto* a = find(f2, "syscall_storm");
  ASSERT_NE(a, nullptr);
  bool said = false;
  for (const auto& e : a->evidence)
    if (e.find("main.cgoLookup main.go:42 (1 of the 1 creations whose stack was sampled this "
               "interval, of 10)") != std::string::npos)
      said = true;
  EXPECT_TRUE(said) << ::testing::PrintToString(a->evidence);
  ASSERT_FALSE(a->stack.empty());
  EXPECT_EQ(a->stack.back(), "main.cgoLookup main.go:42");
}

TEST(SyscallStorm, ManyThreadsButIdleInFutexIsNotAStorm) {
  detect::Detectors d;
  for (int i = 1; i <= 4; i++) {
    auto f = storm_frame(uint64_t(i) * kSec, 100, 90, uint64_t(i) * 30, "futex");
    detect::attach(f, d.evaluate(f));
    EXPECT_EQ(find(f, "syscall_storm"), nullptr);
  }
}

TEST(SyscallStorm, SlowGrowthIsNotAStorm) {
  detect::Detectors d;
  for (int i = 1; i <= 6; i++) {
    auto f = storm_frame(uint64_t(i) * kSec, 60, 50, uint64_t(i));  // +1 thread/s
    detect::attach(f, d.evaluate(f));
    EXPECT_EQ(find(f, "syscall_storm"), nullptr);
  }
}

TEST(SyscallStorm, NearTheThreadLimitIsCritical) {
  detect::DetectOptions o;
  detect::Detectors d(o);
  auto f1 = storm_frame(kSec, 100, 95, 0);
  f1.go->maxmcount = 120;
  detect::attach(f1, d.evaluate(f1));
  auto f2 = storm_frame(2 * kSec, 110, 100, 100);
  f2.go->maxmcount = 120;
  detect::attach(f2, d.evaluate(f2));
  const auto* s = find(f2, "syscall_storm");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->severity, "critical");
  ASSERT_NE(find(f2, "thread_limit"), nullptr);
}

TEST(SyscallStorm, StaysActiveWhileThreadsStayPiledUpThenClears) {
  detect::Detectors d;
  auto f1 = storm_frame(1 * kSec, 10, 5, 0);
  detect::attach(f1, d.evaluate(f1));
  auto f2 = storm_frame(2 * kSec, 90, 85, 80);
  detect::attach(f2, d.evaluate(f2));
  ASSERT_NE(find(f2, "syscall_storm"), nullptr);
  auto f3 = storm_frame(6 * kSec, 90, 85, 80);  // no growth, still piled up
  detect::attach(f3, d.evaluate(f3));
  ASSERT_NE(find(f3, "syscall_storm"), nullptr);
  auto f4 = storm_frame(7 * kSec, 90, 5, 80);  // calls returned
  detect::attach(f4, d.evaluate(f4));
  EXPECT_EQ(find(f4, "syscall_storm"), nullptr);
  EXPECT_EQ(d.history().size(), 1u);
}

TEST(StuckP, StaysActiveThroughASignalBlipWhileTicksStayFrozen) {
  // sysmon's SIGURG wakes the blocked M every ~10 ms; a snapshot can catch it on CPU.
  detect::Detectors d;
  auto mk = [](uint64_t ts, model::ThreadRow row) {
    return frame(ts, {P(0, 1, 1, 701, 3, 10, 1)}, {M(1, 701, 0, -1, 3, "main.b")}, {row});
  };
  auto f1 = mk(kSec, T(701, "sleeping", "read", 1500));
  detect::attach(f1, d.evaluate(f1));
  auto f2 = mk(2 * kSec, T(701, "sleeping", "read", 2500));
  detect::attach(f2, d.evaluate(f2));
  ASSERT_NE(find(f2, "stuck_p"), nullptr);
  auto f3 = mk(3 * kSec, T(701, "running"));
  detect::attach(f3, d.evaluate(f3));
  const auto* a = find(f3, "stuck_p");
  ASSERT_NE(a, nullptr) << "a blip on CPU with frozen ticks must not clear the alert";
  EXPECT_DOUBLE_EQ(a->duration_ms, 3500);
  EXPECT_TRUE(d.history().empty());
  auto f4 = frame(4 * kSec, {P(0, 1, 1, 701, 3, 11, 1)}, {M(1, 701, 0, -1, 3)}, {T(701, "running")});
  detect::attach(f4, d.evaluate(f4));
  EXPECT_EQ(find(f4, "stuck_p"), nullptr) << "ticks moved: the P schedules again";
}

// The same, when the restarted call's block is counted from its restart (its clock back
// under --stuck-ms) while the P's ticks stay frozen: the alert stays, with the same start.
TEST(StuckP, StaysActiveWhenTheBlocksClockRestartsWhileTicksStayFrozen) {
  detect::Detectors d;
  auto mk = [](uint64_t ts, double blocked_ms, uint32_t tick) {
    return frame(ts, {P(0, 1, 1, 701, 3, tick, 1)}, {M(1, 701, 0, -1, 3, "main.b")},
                 {T(701, "sleeping", "read", blocked_ms)});
  };
  auto f1 = mk(kSec, 1500, 10);
  detect::attach(f1, d.evaluate(f1));
  auto f2 = mk(2 * kSec, 2500, 10);
  detect::attach(f2, d.evaluate(f2));
  const auto* raised = find(f2, "stuck_p");
  ASSERT_NE(raised, nullptr);
  const uint64_t since = raised->ts_ns;
  auto f3 = mk(3 * kSec, 300, 10);
  detect::attach(f3, d.evaluate(f3));
  const auto* a = find(f3, "stuck_p");
  ASSERT_NE(a, nullptr) << "a restarted block with frozen ticks must not clear the alert";
  EXPECT_EQ(a->ts_ns, since);
  EXPECT_DOUBLE_EQ(a->duration_ms, 3500);
  EXPECT_TRUE(d.history().empty());
  auto f4 = mk(4 * kSec, 300, 11);
  detect::attach(f4, d.evaluate(f4));
  EXPECT_EQ(find(f4, "stuck_p"), nullptr) << "ticks moved: the P schedules again";
  EXPECT_EQ(d.history().size(), 1u);
}

namespace {

// A thread that runs goroutine `goid` and is between two calls at the frame's instant, after
// spending `blocked_ms` of the 1 s interval blocked, in long blocks of `sc`.
void between_calls(model::Frame& f, size_t i, const char* sc, double blocked_ms) {
  auto& r = f.threads[i];
  r.state = model::ThreadState::kRunning;
  r.syscall.clear();
  r.offcpu_ms.sleep = blocked_ms;
  r.blocked_in[sc] = {10, blocked_ms, 20};
  f.go->ms[i].curg_goid = 100 + i;
  f.go->ms[i].curg_func = "main.fsyncer";
}

}  // namespace

TEST(SyscallStorm, ShareBlockedOverTheIntervalDecidesWhenTheInstantCatchesFewerThreads) {
  // 60 threads, only 20 caught in fsync at the frame's instant (a third); 30 more spent 80%
  // of the interval blocked in fsync between calls: 44 on average, the storm is there.
  detect::Detectors d;
  auto f1 = storm_frame(1 * kSec, 20, 15, 10, "fsync");
  detect::attach(f1, d.evaluate(f1));
  auto f2 = storm_frame(2 * kSec, 60, 20, 70, "fsync");
  for (size_t i = 20; i < 50; i++) between_calls(f2, i, "fsync", 800);
  detect::attach(f2, d.evaluate(f2));
  const auto* a = find(f2, "syscall_storm");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->syscall, "fsync");
  bool said = false;
  for (const auto& e : a->evidence)
    if (e.find("44.0 threads blocked on average over the last 1.0s") != std::string::npos)
      said = true;
  EXPECT_TRUE(said) << ::testing::PrintToString(a->evidence);
}

TEST(SyscallStorm, IntervalShareIsBoundedAndLeavesOutFutexAndIdleMs) {
  // The same instant. The others: parked in futex between calls, or idle Ms whose threads
  // slept, or threads whose one long sleep of 5 s ended in this interval (a thread counts at
  // most once): a third of the threads is no storm.
  detect::Detectors d;
  auto f1 = storm_frame(1 * kSec, 20, 15, 10, "fsync");
  detect::attach(f1, d.evaluate(f1));
  auto f2 = storm_frame(2 * kSec, 60, 20, 70, "fsync");
  for (size_t i = 20; i < 40; i++) between_calls(f2, i, "futex", 1000);
  for (size_t i = 40; i < 45; i++) between_calls(f2, i, "fsync", 5000);
  for (size_t i = 45; i < 60; i++) {  // idle Ms
    f2.threads[i].offcpu_ms.sleep = 1000;
    f2.threads[i].blocked_in["nanosleep"] = {1, 1000, 1000};
  }
  detect::attach(f2, d.evaluate(f2));
  EXPECT_EQ(find(f2, "syscall_storm"), nullptr);
}

TEST(SyscallStorm, NamesTheSyscallMostThreadsWereInOverTheInterval) {
  // At the instant, 20 threads in fsync and 25 in pread64; between calls, 30 more spent
  // nearly all the interval in fsync: the storm is in fsync.
  detect::Detectors d;
  auto f1 = storm_frame(1 * kSec, 20, 15, 10, "fsync");
  detect::attach(f1, d.evaluate(f1));
  auto f2 = storm_frame(2 * kSec, 80, 45, 70, "fsync");
  for (size_t i = 20; i < 45; i++) f2.threads[i].syscall = "pread64";
  for (size_t i = 45; i < 75; i++) between_calls(f2, i, "fsync", 950);
  detect::attach(f2, d.evaluate(f2));
  const auto* a = find(f2, "syscall_storm");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->syscall, "fsync");
}
