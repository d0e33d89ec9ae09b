// The model fed with synthetic kernel records and snapshots: no root, no BPF.
#include <gtest/gtest.h>

#include <cstring>

#include "model/model.h"
#include "probe/syscalls.h"
#include "util/units.h"

using namespace schedscope;

namespace {

constexpr uint64_t kMs = 1'000'000;

ss_thread_state base_state(uint32_t tgid = 100) {
  ss_thread_state s{};
  s.tgid = tgid;
  s.sc_nr = SS_NO_SYSCALL;
  s.block_nr = SS_NO_SYSCALL;
  s.go.m_id = -1;
  s.go.p_id = -1;
  std::strcpy(s.comm, "worker");
  return s;
}

probe::KernelSnapshot snap_at(uint64_t ts, std::vector<probe::ThreadEntry> threads) {
  probe::KernelSnapshot s;
  s.ts_ns = ts;
  s.threads = std::move(threads);
  return s;
}

model::TargetInfo target() {
  model::TargetInfo t;
  t.pid = 100;
  t.comm = "svc";
  return t;
}

}  // namespace

TEST(Units, Durations) {
  EXPECT_DOUBLE_EQ(*parse_duration("1s"), 1.0);
  EXPECT_DOUBLE_EQ(*parse_duration("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_duration("2"), 2.0);
  EXPECT_DOUBLE_EQ(*parse_duration("1m"), 60.0);
  EXPECT_FALSE(parse_duration("fast"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("1parsec"));
  EXPECT_FALSE(parse_duration(""));
}

TEST(Units, Sizes) {
  EXPECT_EQ(*parse_size("8M"), 8u << 20);
  EXPECT_EQ(*parse_size("64K"), 64u << 10);
  EXPECT_EQ(*parse_size("1GiB"), 1ull << 30);
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_FALSE(parse_size("lots"));
  EXPECT_FALSE(parse_size("1T"));
}

TEST(Syscalls, NamesComeFromTheKernelTable) {
  EXPECT_EQ(probe::syscall_name(0), "read");
  EXPECT_EQ(probe::syscall_name(1), "write");
  EXPECT_EQ(probe::syscall_name(202), "futex");
  EXPECT_EQ(probe::syscall_name(232), "epoll_wait");
  EXPECT_EQ(probe::syscall_name(9999), "syscall_9999");
  EXPECT_EQ(*probe::syscall_number("nanosleep"), 35);
  EXPECT_EQ(*probe::syscall_number("syscall_77"), 77);
  EXPECT_FALSE(probe::syscall_number("nosuchcall"));
}

TEST(Hist, PercentilesInterpolateInsideLog2Buckets) {
  uint64_t h[SS_HIST_BUCKETS] = {};
  EXPECT_EQ(model::hist_percentile_ns(h, SS_HIST_BUCKETS, 0.5), 0);
  h[10] = 100;  // all samples in [1024, 2048)
  double p50 = model::hist_percentile_ns(h, SS_HIST_BUCKETS, 0.5);
  EXPECT_GE(p50, 1024);
  EXPECT_LT(p50, 2048);
  h[20] = 1;  // one outlier at ~1 ms
  EXPECT_GE(model::hist_percentile_ns(h, SS_HIST_BUCKETS, 0.999), 1 << 20);
  EXPECT_LT(model::hist_percentile_ns(h, SS_HIST_BUCKETS, 0.5), 2048);
}

TEST(Model, ThreadStatesAndCurrentSyscall) {
  model::Model m(target());
  auto run = base_state();
  run.state = SS_TS_ONCPU;
  run.last_switch_ns = 10 * kMs;
  auto blocked = base_state();
  blocked.state = SS_TS_OFFCPU;
  blocked.off_reason = SS_OFF_SLEEP;
  blocked.block_nr = 0;  // read
  blocked.last_switch_ns = 500 * kMs;
  auto runnable = base_state();
  runnable.state = SS_TS_OFFCPU;
  runnable.off_reason = SS_OFF_PREEMPTED;
  runnable.wakeup_ns = 900 * kMs;
  runnable.last_switch_ns = 900 * kMs;
  m.on_kernel(snap_at(0, {}));
  (void)m.frame();
  m.on_kernel(snap_at(1000 * kMs, {{1, run}, {2, blocked}, {3, runnable}}));
  auto f = m.frame();
  ASSERT_EQ(f.threads.size(), 3u);
  EXPECT_STREQ(model::thread_state_name(f.threads[0].state), "running");
  EXPECT_NEAR(f.threads[0].oncpu_pct, 99.0, 0.01);  // on CPU since 10 ms of a 1 s interval
  EXPECT_STREQ(model::thread_state_name(f.threads[1].state), "sleeping");
  EXPECT_EQ(f.threads[1].syscall, "read");
  EXPECT_DOUBLE_EQ(f.threads[1].syscall_ms, 500);
  EXPECT_STREQ(model::thread_state_name(f.threads[2].state), "runnable");
  EXPECT_TRUE(f.threads[2].syscall.empty());
}

TEST(Model, OnCpuIsNotDoubleCountedAcrossFrames) {
  model::Model m(target());
  auto s = base_state();
  s.state = SS_TS_ONCPU;
  s.last_switch_ns = 1;  // switched in right at the start
  m.on_kernel(snap_at(1, {{1, s}}));
  (void)m.frame();
  m.on_kernel(snap_at(1000 * kMs + 1, {{1, s}}));
  auto f1 = m.frame();
  EXPECT_NEAR(f1.threads[0].oncpu_pct, 100, 0.01);
  // The stretch ends at 1.5 s; the thread sleeps until 2 s.
  s.state = SS_TS_OFFCPU;
  s.off_reason = SS_OFF_SLEEP;
  s.oncpu_ns = 1500 * kMs;
  s.last_switch_ns = 1500 * kMs + 1;
  m.on_kernel(snap_at(2000 * kMs + 1, {{1, s}}));
  auto f2 = m.frame();
  EXPECT_NEAR(f2.threads[0].oncpu_pct, 50, 0.01);
}

TEST(Model, IntervalDeltasAndFinalTotals) {
  model::Model m(target());
  auto s = base_state();
  s.state = SS_TS_OFFCPU;
  s.off_reason = SS_OFF_SLEEP;
  m.on_kernel(snap_at(0, {{7, s}}));
  (void)m.frame();
  s.offcpu_ns[SS_OFF_SLEEP] = 300 * kMs;
  s.offcpu_count[SS_OFF_SLEEP] = 3;
  s.rq_count = 3;
  s.rq_hist[12] = 3;
  m.on_kernel(snap_at(1000 * kMs, {{7, s}}));
  auto f1 = m.frame();
  EXPECT_DOUBLE_EQ(f1.threads[0].offcpu_ms.sleep, 300);
  EXPECT_EQ(f1.threads[0].switches, 3u);
  s.offcpu_ns[SS_OFF_SLEEP] = 500 * kMs;
  s.offcpu_count[SS_OFF_SLEEP] = 5;
  m.on_kernel(snap_at(2000 * kMs, {{7, s}}));
  auto f2 = m.frame();
  EXPECT_DOUBLE_EQ(f2.threads[0].offcpu_ms.sleep, 200);
  EXPECT_EQ(f2.threads[0].switches, 2u);
  auto fin = m.frame(true);
  EXPECT_TRUE(fin.final);
  EXPECT_DOUBLE_EQ(fin.threads[0].offcpu_ms.sleep, 500);
  EXPECT_DOUBLE_EQ(fin.totals.offcpu_ms.sleep, 500);
  EXPECT_EQ(fin.totals.switches, 5u);
}

// (-S) A snapshot that caught a switch-out between its read of the entry and its read of
// the CPU's calls shows fewer calls than the one before: the count holds, and the calls
// are not counted twice when they show again. A tid reused by a new thread (its switch
// count restarts) counts from zero.
TEST(Model, CallCountNeverGoesBackForOneThread) {
  model::Model m(target());
  auto s = base_state();
  s.state = SS_TS_ONCPU;
  s.offcpu_count[SS_OFF_PREEMPTED] = 1;
  m.on_kernel(snap_at(0, {{7, s}}));
  (void)m.frame();
  s.sc_count = 10;  // 6 in the entry, 4 still on the CPU
  m.on_kernel(snap_at(1000 * kMs, {{7, s}}));
  auto f1 = m.frame();
  ASSERT_EQ(f1.threads.size(), 1u);
  EXPECT_DOUBLE_EQ(f1.threads[0].syscalls_per_s, 10);
  s.sc_count = 6;  // the switch-out moved the 4 after the entry was read
  m.on_kernel(snap_at(2000 * kMs, {{7, s}}));
  auto f2 = m.frame();
  EXPECT_DOUBLE_EQ(f2.threads[0].syscalls_per_s, 0);
  EXPECT_EQ(f2.totals.syscalls, 10u);
  s.sc_count = 15;
  s.offcpu_count[SS_OFF_PREEMPTED] = 2;
  m.on_kernel(snap_at(3000 * kMs, {{7, s}}));
  auto f3 = m.frame();
  EXPECT_DOUBLE_EQ(f3.threads[0].syscalls_per_s, 5);
  EXPECT_EQ(f3.totals.syscalls, 15u);
  auto fresh = base_state();  // the tid, now another thread: no switch yet
  fresh.state = SS_TS_ONCPU;
  fresh.sc_count = 3;
  m.on_kernel(snap_at(4000 * kMs, {{7, fresh}}));
  auto f4 = m.frame();
  EXPECT_EQ(f4.totals.syscalls, 3u);
}

// Counts the frames it is asked to name: a creation stack must be symbolized once.
struct CountingSym : model::Symbolize {
  mutable int calls = 0;
  std::string frame(uint64_t pc) const override {
    calls++;
    return pc == 0x401000 ? "runtime.newm /go/proc.go:1" : "main.spawn /src/main.go:42";
  }
  bool is_runtime(uint64_t pc) const override { return pc == 0x401000; }
};

TEST(Model, CreationStacksAreSymbolizedOnceAndShared) {
  model::Model m(target());
  CountingSym sym;
  m.set_symbolizer(&sym);
  m.on_kernel(snap_at(0, {}));
  (void)m.frame();
  auto spawn = [&](uint32_t tid, uint64_t site_pc, uint32_t nframes) {
    ss_thread_new n{};
    n.h = {SS_EV_THREAD_NEW, sizeof n, 100 * kMs + tid};
    n.tid = tid;
    n.parent_tid = 100;
    n.stack[0] = 0x401000;
    n.stack[1] = site_pc;
    n.nframes = nframes;
    m.on_record(&n.h, sizeof n);
  };
  for (uint32_t i = 0; i < 50; i++) spawn(300 + i, 0x402000, 2);
  spawn(400, 0x403000, 2);  // another site
  spawn(401, 0, 0);         // no stack (over the kernel's budget)
  m.on_kernel(snap_at(500 * kMs, {}));
  auto f = m.frame();
  ASSERT_EQ(f.creations.size(), 52u);
  EXPECT_EQ(sym.calls, 4);  // two distinct stacks of two frames
  EXPECT_EQ(f.creations[0].where, f.creations[49].where);  // one stack, shared
  EXPECT_NE(f.creations[0].where, f.creations[50].where);
  EXPECT_EQ(f.creations[0].site(), "main.spawn /src/main.go:42");
  ASSERT_EQ(f.creations[0].frames().size(), 2u);
  EXPECT_EQ(f.creations[0].frames()[0], "runtime.newm /go/proc.go:1");
  EXPECT_EQ(f.creations[50].site(), "main.spawn /src/main.go:42");  // the same name, its own stack
  EXPECT_EQ(f.creations[51].where, nullptr);
  EXPECT_TRUE(f.creations[51].frames().empty());
  EXPECT_EQ(f.creations[51].site(), "");
}

// Over the kernel's budget a creation carries neither stack nor the creator's goroutine:
// its creator's M comes from the creating thread's last context, its goroutine is unknown.
TEST(Model, ACreationOverTheBudgetNamesTheCreatorsMFromItsThread) {
  model::Model m(target());
  auto creator = base_state();
  creator.go.flags = SS_GO_VALID;
  creator.go.m_id = 7;
  creator.go.goid = 99;
  m.on_kernel(snap_at(0, {{100, creator}, {101, base_state()}}));
  (void)m.frame();
  auto make = [](uint32_t tid, uint32_t parent) {
    ss_thread_new n{};
    n.h = {SS_EV_THREAD_NEW, sizeof n, 100 * kMs};
    n.tid = tid;
    n.parent_tid = parent;
    n.go.m_id = -1;
    n.go.p_id = -1;
    n.flags = SS_TN_DETAIL_SKIPPED;
    return n;
  };
  auto a = make(201, 100);  // a Go creator: its M
  auto b = make(202, 101);  // a creator with no Go context: none
  auto c = make(203, 555);  // a creator never seen: none
  auto d = make(204, 100);  // within the budget: the record's own context wins
  d.flags = 0;
  d.go.flags = SS_GO_VALID;
  d.go.m_id = 3;
  d.go.goid = 42;
  for (auto* n : {&a, &b, &c, &d}) m.on_record(&n->h, sizeof *n);
  auto f = m.frame();
  ASSERT_EQ(f.creations.size(), 4u);
  EXPECT_TRUE(f.creations[0].stack_skipped);
  EXPECT_EQ(f.creations[0].parent_m, 7);
  EXPECT_EQ(f.creations[0].parent_goid, 0u);
  EXPECT_EQ(f.creations[1].parent_m, -1);
  EXPECT_EQ(f.creations[2].parent_m, -1);
  EXPECT_FALSE(f.creations[3].stack_skipped);
  EXPECT_EQ(f.creations[3].parent_m, 3);
  EXPECT_EQ(f.creations[3].parent_goid, 42u);
}

TEST(Model, CreationsAndExitsKeepTotals) {
  model::Model m(target());
  m.on_kernel(snap_at(0, {}));
  (void)m.frame();
  ss_thread_new n{};
  n.h = {SS_EV_THREAD_NEW, sizeof n, 100 * kMs};
  n.tid = 201;
  n.parent_tid = 100;
  n.go.flags = SS_GO_VALID;
  n.go.goid = 42;
  n.go.m_id = 3;
  m.on_record(&n.h, sizeof n);
  auto st = base_state();
  st.oncpu_ns = 40 * kMs;
  st.offcpu_ns[SS_OFF_DISK] = 60 * kMs;
  st.offcpu_count[SS_OFF_DISK] = 2;
  m.on_kernel(snap_at(500 * kMs, {{201, st}}));
  auto f = m.frame();
  ASSERT_EQ(f.creations.size(), 1u);
  EXPECT_EQ(f.creations[0].tid, 201u);
  EXPECT_EQ(f.creations[0].parent_goid, 42u);
  EXPECT_EQ(f.threads[0].created_by, 100u);
  ss_thread_exit x{};
  x.h = {SS_EV_THREAD_EXIT, sizeof x, 600 * kMs};
  x.tid = 201;
  x.final = st;
  m.on_record(&x.h, sizeof x);
  EXPECT_EQ(m.take_exited(), std::vector<uint32_t>{201});
  // The BPF entry may still be read once before it is forgotten: it must not revive.
  m.on_kernel(snap_at(1000 * kMs, {{201, st}}));
  auto f2 = m.frame();
  EXPECT_EQ(f2.threads_alive, 0);
  EXPECT_EQ(f2.exits_total, 1u);
  auto fin = m.frame(true);
  ASSERT_EQ(fin.threads.size(), 1u);
  EXPECT_STREQ(model::thread_state_name(fin.threads[0].state), "exited");
  EXPECT_EQ(fin.threads[0].created_by, 100u);  // from the creation record: the kernel's has 0
  EXPECT_DOUBLE_EQ(fin.totals.offcpu_ms.disk, 60);
  EXPECT_EQ(fin.creations_total, 1u);
}

TEST(Model, RejectsTruncatedRecords) {
  model::Model m(target());
  ss_thread_new n{};
  n.h = {SS_EV_THREAD_NEW, sizeof n, 1};
  m.on_record(&n.h, sizeof(ss_hdr) + 4);  // header says more than we have
  ss_hdr bogus{999, sizeof(ss_hdr), 1};
  m.on_record(&bogus, sizeof bogus);
  EXPECT_EQ(m.bad_records(), 2u);
}

TEST(Model, BlockingSyscallTableDeltas) {
  model::Model m(target());
  probe::KernelSnapshot s0 = snap_at(0, {});
  ss_sc_stat st{};
  st.count = 10;
  st.total_ns = 100 * kMs;
  st.hist[23] = 10;  // ~8-16 ms
  s0.sc_block.push_back({35, st});
  m.on_kernel(s0);
  (void)m.frame();
  probe::KernelSnapshot s1 = snap_at(1000 * kMs, {});
  st.count = 15;
  st.total_ns = 160 * kMs;
  st.hist[23] = 15;
  s1.sc_block.push_back({35, st});
  m.on_kernel(s1);
  auto f = m.frame();
  ASSERT_EQ(f.syscalls.size(), 1u);
  EXPECT_EQ(f.syscalls[0].name, "nanosleep");
  EXPECT_EQ(f.syscalls[0].count, 5u);
  EXPECT_EQ(f.syscalls[0].total_count, 15u);
  EXPECT_DOUBLE_EQ(f.syscalls[0].time_ms, 60);
  EXPECT_GE(f.syscalls[0].p50_us, 8388);
}

// The kernel deletes a thread's entry when it exits, after the exit record with its final
// totals: a snapshot lacks the thread from then on, and its record may be consumed before
// or after that snapshot. Either way the totals count the thread once, exactly.
namespace {

ss_thread_state worked(uint64_t oncpu_ms, uint64_t sleep_ms, uint64_t sleeps) {
  auto s = base_state();
  s.state = SS_TS_OFFCPU;
  s.off_reason = SS_OFF_SLEEP;
  s.oncpu_ns = oncpu_ms * kMs;
  s.offcpu_ns[SS_OFF_SLEEP] = sleep_ms * kMs;
  s.offcpu_count[SS_OFF_SLEEP] = sleeps;
  return s;
}

void exit_of(model::Model& m, uint32_t tid, const ss_thread_state& final, uint64_t ts) {
  ss_thread_exit x{};
  x.h = {SS_EV_THREAD_EXIT, sizeof x, ts};
  x.tid = tid;
  x.final = final;
  m.on_record(&x.h, sizeof x);
}

// Two threads seen in a first interval: 201 (to exit) and 202 (stays).
model::Model two_threads() {
  model::Model m(target());
  m.on_kernel(snap_at(0, {}));
  (void)m.frame();
  m.on_kernel(snap_at(1000 * kMs, {{201, worked(100, 300, 3)}, {202, worked(10, 900, 9)}}));
  auto f = m.frame();
  EXPECT_EQ(f.threads_alive, 2);
  EXPECT_DOUBLE_EQ(f.totals.oncpu_ms, 110);
  return m;
}

}  // namespace

TEST(ModelExits, RecordBeforeTheSnapshotThatLacksTheThread) {
  auto m = two_threads();
  exit_of(m, 201, worked(150, 500, 5), 1500 * kMs);  // more than the last snapshot read
  m.on_kernel(snap_at(2000 * kMs, {{202, worked(20, 1800, 18)}}));
  auto f = m.frame();
  EXPECT_EQ(f.threads_alive, 1);
  ASSERT_EQ(f.threads.size(), 1u);
  EXPECT_EQ(f.threads[0].tid, 202u);
  EXPECT_EQ(f.exits_total, 1u);
  EXPECT_DOUBLE_EQ(f.totals.oncpu_ms, 170);  // 150 (final) + 20
  EXPECT_DOUBLE_EQ(f.totals.offcpu_ms.sleep, 2300);
  EXPECT_EQ(f.totals.switches, 23u);
  EXPECT_EQ(m.take_exited(), std::vector<uint32_t>{201});
  m.on_kernel(snap_at(3000 * kMs, {{202, worked(30, 2700, 27)}}));
  auto f3 = m.frame();
  EXPECT_EQ(f3.exits_total, 1u);
  EXPECT_DOUBLE_EQ(f3.totals.oncpu_ms, 180);
  auto fin = m.frame(true);
  EXPECT_DOUBLE_EQ(fin.totals.oncpu_ms, 180);
  ASSERT_EQ(fin.threads.size(), 2u);
  EXPECT_STREQ(model::thread_state_name(fin.threads[1].state), "exited");
  EXPECT_EQ(fin.threads[1].tid, 201u);
  EXPECT_EQ(fin.threads[1].switches, 5u);
}

// A snapshot read just before the exit still has the thread (its state before the exit);
// the record, consumed after that read, has the final totals: they stand.
TEST(ModelExits, RecordAfterASnapshotThatStillHadTheThread) {
  auto m = two_threads();
  exit_of(m, 201, worked(150, 500, 5), 1990 * kMs);
  m.on_kernel(snap_at(2000 * kMs, {{201, worked(140, 480, 4)}, {202, worked(20, 1800, 18)}}));
  auto f = m.frame();
  EXPECT_EQ(f.threads_alive, 1);
  EXPECT_EQ(f.exits_total, 1u);
  EXPECT_DOUBLE_EQ(f.totals.oncpu_ms, 170);
  EXPECT_EQ(f.totals.switches, 23u);
}

// The snapshot lacks the thread and its record comes only after it (behind another CPU's
// unfinished record): the thread leaves the rows at once, its totals stay as last read,
// then its record brings the final ones; nothing is lost or counted twice.
TEST(ModelExits, RecordAfterTheSnapshotThatLacksTheThread) {
  auto m = two_threads();
  m.on_kernel(snap_at(2000 * kMs, {{202, worked(20, 1800, 18)}}));
  auto f = m.frame();
  EXPECT_EQ(f.threads_alive, 1);
  ASSERT_EQ(f.threads.size(), 1u);
  EXPECT_EQ(f.threads[0].tid, 202u);
  EXPECT_EQ(f.exits_total, 0u);
  EXPECT_DOUBLE_EQ(f.totals.oncpu_ms, 120);  // 100 (201 as last read) + 20
  exit_of(m, 201, worked(150, 500, 5), 1500 * kMs);
  m.on_kernel(snap_at(3000 * kMs, {{202, worked(30, 2700, 27)}}));
  auto f3 = m.frame();
  EXPECT_EQ(f3.threads_alive, 1);
  EXPECT_EQ(f3.exits_total, 1u);
  EXPECT_DOUBLE_EQ(f3.totals.oncpu_ms, 180);  // 150 (final) + 30
  EXPECT_DOUBLE_EQ(f3.totals.offcpu_ms.sleep, 3200);
  EXPECT_EQ(f3.totals.switches, 32u);
  EXPECT_EQ(m.take_exited(), std::vector<uint32_t>{201});
  auto fin = m.frame(true);
  EXPECT_DOUBLE_EQ(fin.totals.oncpu_ms, 180);
}

// The record never comes (dropped: the ring was full): two snapshots without the thread
// and it counts as exited, with the totals last read.
TEST(ModelExits, LostRecordExitsTheThreadAfterTwoSnapshotsWithoutIt) {
  auto m = two_threads();
  m.on_kernel(snap_at(2000 * kMs, {{202, worked(20, 1800, 18)}}));
  auto f2 = m.frame();
  EXPECT_EQ(f2.exits_total, 0u);
  EXPECT_TRUE(m.take_exited().empty());
  m.on_kernel(snap_at(3000 * kMs, {{202, worked(30, 2700, 27)}}));
  auto f3 = m.frame();
  EXPECT_EQ(f3.threads_alive, 1);
  EXPECT_EQ(f3.exits_total, 1u);
  EXPECT_DOUBLE_EQ(f3.totals.oncpu_ms, 130);  // 100 (201 as last read) + 30
  EXPECT_EQ(m.take_exited(), std::vector<uint32_t>{201});
  m.on_kernel(snap_at(4000 * kMs, {{202, worked(40, 3600, 36)}}));
  auto f4 = m.frame();
  EXPECT_EQ(f4.exits_total, 1u);
  EXPECT_DOUBLE_EQ(f4.totals.oncpu_ms, 140);
  auto fin = m.frame(true);
  ASSERT_EQ(fin.threads.size(), 2u);
  EXPECT_EQ(fin.threads[1].tid, 201u);
  EXPECT_STREQ(model::thread_state_name(fin.threads[1].state), "exited");
}

// A tid reused after a lost record: the one before exits with its totals as last read,
// the new thread starts from zero.
TEST(ModelExits, TidReusedAfterALostRecord) {
  auto m = two_threads();
  m.on_kernel(snap_at(2000 * kMs, {{202, worked(20, 1800, 18)}}));
  (void)m.frame();
  ss_thread_new n{};
  n.h = {SS_EV_THREAD_NEW, sizeof n, 2500 * kMs};
  n.tid = 201;
  n.parent_tid = 202;
  m.on_record(&n.h, sizeof n);
  m.on_kernel(snap_at(3000 * kMs, {{201, worked(5, 0, 0)}, {202, worked(30, 2700, 27)}}));
  auto f = m.frame();
  EXPECT_EQ(f.threads_alive, 2);
  EXPECT_EQ(f.exits_total, 1u);
  EXPECT_DOUBLE_EQ(f.totals.oncpu_ms, 135);  // 100 (the one before) + 5 + 30
}

// A thread created after the snapshot read (its record consumed before the frame) is
// shown runnable since its creation until a snapshot has its state.
TEST(ModelExits, ThreadCreatedAfterTheSnapshotReadIsRunnable) {
  auto m = two_threads();
  ss_thread_new n{};
  n.h = {SS_EV_THREAD_NEW, sizeof n, 1900 * kMs};
  n.tid = 203;
  n.parent_tid = 202;
  m.on_record(&n.h, sizeof n);
  m.on_kernel(snap_at(2000 * kMs, {{201, worked(100, 300, 3)}, {202, worked(20, 1800, 18)}}));
  auto f = m.frame();
  EXPECT_EQ(f.threads_alive, 3);
  ASSERT_EQ(f.threads.size(), 3u);
  EXPECT_EQ(f.threads[2].tid, 203u);
  EXPECT_STREQ(model::thread_state_name(f.threads[2].state), "runnable");
  EXPECT_DOUBLE_EQ(f.threads[2].state_ms, 100);
  EXPECT_EQ(f.threads[2].created_by, 202u);
  EXPECT_EQ(f.threads[2].syscall, "");
}

// Past the exited rows the final frame keeps, an exited thread's long blocks go with it:
// memory stays flat under churn, and a thread that reuses its tid starts with none.
TEST(ModelExits, LongBlocksOfExitedThreadsPastTheKeptRowsAreDropped) {
  model::Model m(target());
  m.on_kernel(snap_at(0, {}));
  (void)m.frame();
  const uint32_t first = 1000, n = uint32_t(model::Model::kGoneMax) + 10;
  for (uint32_t i = 0; i < n; i++) {
    ss_offcpu o{};
    o.h = {SS_EV_OFFCPU, sizeof o, 100 * kMs + i};
    o.start_ns = 50 * kMs;
    o.tid = first + i;
    o.reason = SS_OFF_SLEEP;
    o.syscall_nr = 35;  // nanosleep
    m.on_record(&o.h, sizeof o);
    exit_of(m, first + i, worked(1, 50, 1), 200 * kMs + i);
  }
  m.on_kernel(snap_at(1000 * kMs, {}));
  auto f = m.frame();
  EXPECT_EQ(f.exits_total, uint64_t(n));
  // A kept exited thread keeps its block; one past them, reused by a new thread, does not.
  const uint32_t reused = first + n - 1;
  ss_thread_new t{};
  t.h = {SS_EV_THREAD_NEW, sizeof t, 1100 * kMs};
  t.tid = reused;
  t.parent_tid = 100;
  m.on_record(&t.h, sizeof t);
  m.on_kernel(snap_at(2000 * kMs, {{reused, worked(5, 100, 2)}}));
  (void)m.frame();
  auto fin = m.frame(true);
  const model::ThreadRow* kept = nullptr;
  const model::ThreadRow* alive = nullptr;
  for (const auto& r : fin.threads) {
    if (r.tid == first) kept = &r;
    if (r.tid == reused && r.state != model::ThreadState::kExited) alive = &r;
  }
  ASSERT_NE(kept, nullptr);
  ASSERT_EQ(kept->blocked_in.count("nanosleep"), 1u);
  EXPECT_EQ(kept->blocked_in.at("nanosleep").count, 1u);
  ASSERT_NE(alive, nullptr);
  EXPECT_TRUE(alive->blocked_in.empty());
}
