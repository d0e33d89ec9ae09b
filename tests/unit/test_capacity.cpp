// Capacity decisions: the cgroup parsers and reader on v1 and v2 fixtures, the rules on
// hand-made evidence (each answer and its thresholds, healthy negatives, unknown when
// data is missing), the window's need for sustained evidence, and the tracker fed with
// SS_EV_CAP_SAMPLE records through the model as a replay would.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "capacity/cgroup.h"
#include "capacity/present.h"
#include "capacity/psampler.h"
#include "capacity/rules.h"
#include "capacity/thresholds.h"
#include "model/model.h"

using namespace schedscope;
using namespace schedscope::capacity;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& rel) {
  std::ifstream in(std::string(SCHEDSCOPE_SOURCE_DIR) + "/tests/fixtures/cgroup/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string replace_root(std::string s, const std::string& root) {
  for (size_t p; (p = s.find("@ROOT@")) != std::string::npos;) s.replace(p, 6, root);
  return s;
}

// ---- parsers

TEST(CgroupParse, ProcCgroupV1Hybrid) {
  ProcCgroup c = parse_proc_cgroup(fixture("v1/proc_cgroup"));
  ASSERT_TRUE(c.v1_cpu);
  EXPECT_EQ(*c.v1_cpu, "/ss-capacity/job");
  ASSERT_TRUE(c.v2);
  EXPECT_EQ(*c.v2, "/");
}

TEST(CgroupParse, ProcCgroupV2AndCombinedControllers) {
  ProcCgroup c = parse_proc_cgroup(fixture("v2/proc_cgroup"));
  EXPECT_FALSE(c.v1_cpu);
  ASSERT_TRUE(c.v2);
  EXPECT_EQ(*c.v2, "/system.slice/app.service");
  // cpu,cpuacct mounted together (most v1 distributions); cpuset is not cpu.
  ProcCgroup d = parse_proc_cgroup("5:cpuset:/a\n4:cpu,cpuacct:/docker/abc\n");
  ASSERT_TRUE(d.v1_cpu);
  EXPECT_EQ(*d.v1_cpu, "/docker/abc");
  EXPECT_FALSE(parse_proc_cgroup("3:cpuset:/x\ngarbage\n").v1_cpu);
}

TEST(CgroupParse, Mountinfo) {
  CgroupMounts m = parse_mountinfo(replace_root(fixture("v1/mountinfo"), "/R"));
  ASSERT_TRUE(m.v1_cpu);
  EXPECT_EQ(m.v1_cpu->point, "/R/cpu");  // not cpuacct alone
  EXPECT_EQ(m.v1_cpu->root, "/");
  ASSERT_TRUE(m.v2);
  EXPECT_EQ(m.v2->point, "/R/unified");
  CgroupMounts n = parse_mountinfo(replace_root(fixture("v2/mountinfo"), "/S"));
  EXPECT_FALSE(n.v1_cpu);
  ASSERT_TRUE(n.v2);
  EXPECT_EQ(n.v2->point, "/S");
}

TEST(CgroupParse, CpuMaxV2) {
  auto q = parse_cpu_max(fixture("v2/cpu.max"));
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->limited);
  EXPECT_DOUBLE_EQ(q->cores(), 1.5);
  auto none = parse_cpu_max("max 100000\n");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->limited);
  EXPECT_FALSE(parse_cpu_max("50000"));
  EXPECT_FALSE(parse_cpu_max("50000 0"));
  EXPECT_FALSE(parse_cpu_max("-5 100000"));
}

TEST(CgroupParse, CfsQuotaV1) {
  auto q = parse_cfs_quota(fixture("v1/cpu.cfs_quota_us"), fixture("v1/cpu.cfs_period_us"));
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->limited);
  EXPECT_DOUBLE_EQ(q->cores(), 0.5);
  auto none = parse_cfs_quota("-1\n", "100000\n");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->limited);
  EXPECT_FALSE(parse_cfs_quota("abc", "100000"));
}

TEST(CgroupParse, CpuStatBothForms) {
  auto v1 = parse_cpu_stat(fixture("v1/cpu.stat"));
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->nr_periods, 120u);
  EXPECT_EQ(v1->nr_throttled, 96u);
  EXPECT_EQ(v1->throttled_ns, 7'250'000'000u);  // throttled_time is ns
  auto v2 = parse_cpu_stat(fixture("v2/cpu.stat"));
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->nr_periods, 4213u);
  EXPECT_EQ(v2->nr_throttled, 812u);
  EXPECT_EQ(v2->throttled_ns, 30'192'837'000u);  // throttled_usec * 1000
  EXPECT_FALSE(parse_cpu_stat("usage_usec 5\n"));
}

// ---- the reader over a hierarchy built from the fixtures

class CgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ss-cgtest-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(CgroupTree, V1QuotaAndThrottling) {
  fs::path job = root_ / "cpu/ss-capacity/job";
  for (auto f : {"cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.stat"})
    write(job / f, fixture(std::string("v1/") + f));
  write(root_ / "cpu/ss-capacity/cpu.cfs_quota_us", "-1\n");
  write(root_ / "cpu/ss-capacity/cpu.cfs_period_us", "100000\n");
  write(root_ / "proc_cgroup", fixture("v1/proc_cgroup"));
  write(root_ / "mountinfo", replace_root(fixture("v1/mountinfo"), root_.string()));
  CgroupReading r = CgroupReader((root_ / "proc_cgroup").string(), (root_ / "mountinfo").string()).read();
  ASSERT_TRUE(r.found) << r.note;
  EXPECT_FALSE(r.v2);
  EXPECT_EQ(r.path, "/ss-capacity/job");
  EXPECT_TRUE(r.quota.limited);
  EXPECT_DOUBLE_EQ(r.quota.cores(), 0.5);
  EXPECT_EQ(r.stat.nr_throttled, 96u);
}

TEST_F(CgroupTree, V2TightestAncestorQuotaApplies) {
  // The service has 1.5 CPUs, its slice 0.75: the slice's quota and counters apply.
  fs::path svc = root_ / "system.slice/app.service";
  write(svc / "cpu.max", fixture("v2/cpu.max"));
  write(svc / "cpu.stat", fixture("v2/cpu.stat"));
  write(root_ / "system.slice/cpu.max", "75000 100000\n");
  write(root_ / "system.slice/cpu.stat", "nr_periods 10\nnr_throttled 7\nthrottled_usec 1000\n");
  write(root_ / "proc_cgroup", fixture("v2/proc_cgroup"));
  write(root_ / "mountinfo", replace_root(fixture("v2/mountinfo"), root_.string()));
  CgroupReading r = CgroupReader((root_ / "proc_cgroup").string(), (root_ / "mountinfo").string()).read();
  ASSERT_TRUE(r.found) << r.note;
  EXPECT_TRUE(r.v2);
  EXPECT_EQ(r.path, "/system.slice");
  EXPECT_DOUBLE_EQ(r.quota.cores(), 0.75);
  EXPECT_EQ(r.stat.nr_throttled, 7u);
}

TEST_F(CgroupTree, NoQuotaAndOutsideTheMount) {
  write(root_ / "system.slice/app.service/cpu.max", "max 100000\n");
  write(root_ / "system.slice/app.service/cpu.stat", fixture("v2/cpu.stat"));
  write(root_ / "proc_cgroup", fixture("v2/proc_cgroup"));
  write(root_ / "mountinfo", replace_root(fixture("v2/mountinfo"), root_.string()));
  CgroupReading r = CgroupReader((root_ / "proc_cgroup").string(), (root_ / "mountinfo").string()).read();
  ASSERT_TRUE(r.found) << r.note;
  EXPECT_FALSE(r.quota.limited);
  EXPECT_EQ(r.path, "/system.slice/app.service");
  // A mount of another subtree (a container's view) does not show the target's cgroup.
  write(root_ / "mountinfo2",
        "25 24 0:23 /other " + root_.string() + " rw - cgroup2 cgroup2 rw\n");
  CgroupReading o = CgroupReader((root_ / "proc_cgroup").string(), (root_ / "mountinfo2").string()).read();
  EXPECT_FALSE(o.found);
  EXPECT_NE(o.note.find("outside"), std::string::npos);
}

// ---- rules

Evidence base(int gmp, double span = 1.0) {
  Evidence e;
  e.span_s = span;
  e.gomaxprocs = gmp;
  e.cpus = 2;
  e.tick_hz = 1000;
  return e;
}
// `share` of 1000 ticks with k = gmp Ps running, the rest with gmp - 1.
void procs(Evidence& e, double share) {
  e.ticks = 1000;
  e.procs.assign(size_t(e.gomaxprocs + 1), 0);
  e.procs[size_t(e.gomaxprocs)] = uint64_t(share * 1000);
  e.procs[size_t(e.gomaxprocs - 1)] = 1000 - uint64_t(share * 1000);
}
void latency(Evidence& e, double p99_us) {
  e.latency_known = true;
  e.latency_samples = 500;
  e.latency_p99_us = p99_us;
}

TEST(CapacityRules, RaiseGomaxprocs) {
  Evidence e = base(1);
  procs(e, 0.95);
  latency(e, 32'000);
  Verdict v = judge(Question::kRaiseGomaxprocs, e);
  EXPECT_EQ(v.answer, Answer::kYes);
  EXPECT_NE(v.because.find("32.0 ms"), std::string::npos) << v.because;
  EXPECT_NE(v.advice.find("towards 2"), std::string::npos) << v.advice;  // 2 CPUs, 1 P
  // Already at the CPUs: the advice is more CPU, the answer still yes.
  e.gomaxprocs = 2;
  procs(e, 0.95);
  EXPECT_EQ(judge(Question::kRaiseGomaxprocs, e).answer, Answer::kYes);
  EXPECT_NE(judge(Question::kRaiseGomaxprocs, e).advice.find("add CPU"), std::string::npos);
  // Ps at GOMAXPROCS, latency under 1 ms: probably not.
  latency(e, 400);
  EXPECT_EQ(judge(Question::kRaiseGomaxprocs, e).answer, Answer::kNo);
  // Between the thresholds: no.
  latency(e, 5'000);
  EXPECT_EQ(judge(Question::kRaiseGomaxprocs, e).answer, Answer::kNo);
  // High latency but the Ps are mostly not all running: the scheduler is not the bottleneck.
  procs(e, kSaturatedShare - 0.05);
  latency(e, 50'000);
  EXPECT_EQ(judge(Question::kRaiseGomaxprocs, e).answer, Answer::kNo);
}

TEST(CapacityRules, RaiseLooksElsewhereWhenThePsThreadsLackCpu) {
  // One P held all the time, goroutines waiting, but its thread got a fifth of a CPU: the
  // host (or a quota) holds it back, more Ps would wait for the CPU too.
  Evidence e = base(1);
  procs(e, 1.0);
  latency(e, 60'000);
  e.cpu_cores = 0.2;
  Verdict v = judge(Question::kRaiseGomaxprocs, e);
  EXPECT_EQ(v.answer, Answer::kLookElsewhere);
  EXPECT_NE(v.advice.find("got 0.20 CPUs for 1.00 Ps"), std::string::npos) << v.advice;
  e.cpu_cores = 0.9;
  EXPECT_EQ(judge(Question::kRaiseGomaxprocs, e).answer, Answer::kYes);
  e.cpu_cores = -1;  // unknown: not held against it
  EXPECT_EQ(judge(Question::kRaiseGomaxprocs, e).answer, Answer::kYes);
}

TEST(CapacityRules, RaiseUnknownWithoutData) {
  Evidence e = base(0);
  EXPECT_EQ(judge(Question::kRaiseGomaxprocs, e).answer, Answer::kUnknown);  // not Go
  e.gomaxprocs = 2;
  EXPECT_EQ(judge(Question::kRaiseGomaxprocs, e).answer, Answer::kUnknown);  // no sampler
  procs(e, 0.9);
  EXPECT_EQ(judge(Question::kRaiseGomaxprocs, e).answer, Answer::kUnknown);  // no latency
}

TEST(CapacityRules, ShardAndLookElsewhere) {
  Evidence e = base(2);
  EXPECT_EQ(judge(Question::kShard, e).answer, Answer::kUnknown);
  e.runq_known = true;
  e.runq.assign(SS_CAP_RUNQ, 0);
  e.runq[0] = 900;
  e.runq[240] = 100;
  latency(e, 40'000);
  Verdict v = judge(Question::kShard, e);
  EXPECT_EQ(v.answer, Answer::kYes);
  EXPECT_NE(v.because.find("max 240"), std::string::npos) << v.because;
  // Short queues, high latency, the GC busy: look elsewhere, naming the GC.
  e.runq.assign(SS_CAP_RUNQ, 0);
  e.runq[3] = 1000;
  e.gc_share = 0.4;
  v = judge(Question::kShard, e);
  EXPECT_EQ(v.answer, Answer::kLookElsewhere);
  EXPECT_NE(v.advice.find("GC"), std::string::npos) << v.advice;
  e.gc_share = 0;
  e.quota_known = true;
  e.quota_cores = 0.5;
  e.nr_periods = 10;
  e.nr_throttled = 8;
  EXPECT_NE(judge(Question::kShard, e).advice.find("throttling"), std::string::npos);
  // Short queues, low latency: no.
  latency(e, 300);
  EXPECT_EQ(judge(Question::kShard, e).answer, Answer::kNo);
  // Between short and near: no.
  e.runq[3] = 0;
  e.runq[150] = 1000;
  latency(e, 40'000);
  EXPECT_EQ(judge(Question::kShard, e).answer, Answer::kNo);
}

TEST(CapacityRules, FewerGoroutines) {
  Evidence e = base(2);
  EXPECT_EQ(judge(Question::kFewerGoroutines, e).answer, Answer::kUnknown);
  e.census_known = true;
  e.goroutines = 24'010;
  e.io_wait = 24'001;
  EXPECT_EQ(judge(Question::kFewerGoroutines, e).answer, Answer::kYes);
  e.io_wait = 2'000;  // many, but not parked on the network
  EXPECT_EQ(judge(Question::kFewerGoroutines, e).answer, Answer::kNo);
  e.goroutines = 900;  // parked, but few
  e.io_wait = 890;
  EXPECT_EQ(judge(Question::kFewerGoroutines, e).answer, Answer::kNo);
}

TEST(CapacityRules, CpuQuota) {
  Evidence e = base(2);
  EXPECT_EQ(judge(Question::kCpuQuota, e).answer, Answer::kUnknown);  // cgroup not read
  e.cgroup_known = true;
  e.cgroup = "/";
  Verdict none = judge(Question::kCpuQuota, e);
  EXPECT_EQ(none.answer, Answer::kUnknown);  // no quota
  EXPECT_NE(none.because.find("no CPU quota"), std::string::npos);
  e.quota_known = true;
  e.quota_cores = 0.5;
  e.nr_periods = 10;
  e.nr_throttled = 9;
  e.throttled_ms = 480;
  Verdict v = judge(Question::kCpuQuota, e);
  EXPECT_EQ(v.answer, Answer::kYes);
  EXPECT_NE(v.because.find("throttled in 90%"), std::string::npos) << v.because;
  EXPECT_NE(v.advice.find("GOMAXPROCS=1"), std::string::npos) << v.advice;
  e.nr_throttled = 0;  // above, but not throttled (an idle program)
  EXPECT_EQ(judge(Question::kCpuQuota, e).answer, Answer::kNo);
  // The opposite: a quota well above GOMAXPROCS, the Ps saturated, goroutines waiting.
  e = base(1);
  e.cgroup_known = e.quota_known = true;
  e.quota_cores = 4;
  e.nr_periods = 10;
  procs(e, 0.9);
  latency(e, 25'000);
  v = judge(Question::kCpuQuota, e);
  EXPECT_EQ(v.answer, Answer::kYes);
  EXPECT_NE(v.advice.find("raise GOMAXPROCS to 4"), std::string::npos) << v.advice;
  latency(e, 500);
  EXPECT_EQ(judge(Question::kCpuQuota, e).answer, Answer::kNo);
}

TEST(CapacityRules, VerdictsNeedSustainedEvidence) {
  Evidence yes = base(1);
  procs(yes, 0.95);
  latency(yes, 30'000);
  Evidence no = yes;
  latency(no, 200);
  auto j = [](const Evidence& e) { return judge(Question::kRaiseGomaxprocs, e); };
  // One noisy interval among quiet ones: no.
  std::vector<std::pair<double, Verdict>> w{{1, j(no)}, {1, j(no)}, {1, j(yes)}, {1, j(no)}, {1, j(no)}};
  EXPECT_EQ(decide(Question::kRaiseGomaxprocs, w, yes).answer, Answer::kNo);
  // Three of five seconds: yes.
  w = {{1, j(no)}, {1, j(yes)}, {1, j(yes)}, {1, j(no)}, {1, j(yes)}};
  Verdict v = decide(Question::kRaiseGomaxprocs, w, yes);
  EXPECT_EQ(v.answer, Answer::kYes);
  EXPECT_NE(v.because.find("yes in 3 of 5 s"), std::string::npos) << v.because;
  // Two seconds of data only: unknown, whatever they say.
  w = {{1, j(yes)}, {1, j(yes)}};
  EXPECT_EQ(decide(Question::kRaiseGomaxprocs, w, yes).answer, Answer::kUnknown);
  // Short intervals count by time: 30 x 100 ms of yes is 3 s.
  w.clear();
  for (int i = 0; i < 30; i++) w.emplace_back(0.1, j(yes));
  EXPECT_EQ(decide(Question::kRaiseGomaxprocs, w, yes).answer, Answer::kYes);
  // Unknown intervals do not dilute: 3 s yes + 2 s unknown is yes.
  Evidence unk = base(1);
  w = {{1, j(unk)}, {1, j(yes)}, {1, j(yes)}, {1, j(unk)}, {1, j(yes)}};
  EXPECT_EQ(decide(Question::kRaiseGomaxprocs, w, yes).answer, Answer::kYes);
}

// ---- the P sampler's counting

TEST(CapacitySampler, TallyCountsRunningPsAndTheLongestQueue) {
  ss_cap_counts c{};
  // _Pidle 0, _Prunning 1, _Psyscall 2, _Pgcstop 3: two Ps running, longest queue 130.
  tally({1, 0, 1, 2}, {0, 130, 7, 0}, true, c);
  tally({0, 0, 0, 0}, {0, 0, 0, 0}, true, c);
  tally({1, 1, 1, 1}, {300, 0, 0, 0}, false, c);  // run queues unknown: not counted
  EXPECT_EQ(c.ticks, 3u);
  EXPECT_EQ(c.procs[2], 1u);
  EXPECT_EQ(c.procs[0], 1u);
  EXPECT_EQ(c.procs[4], 1u);
  EXPECT_EQ(c.runq[130], 1u);
  EXPECT_EQ(c.runq[0], 1u);
  uint64_t rq = 0;
  for (auto v : c.runq) rq += v;
  EXPECT_EQ(rq, 2u);
  // A torn read past the capacity lands in the last bucket, not out of bounds.
  tally({1}, {1000}, true, c);
  EXPECT_EQ(c.runq[SS_CAP_RUNQ - 1], 1u);
}

TEST(CapacitySampler, AWeightedReadCountsForTheSlotsItStandsFor) {
  ss_cap_counts c{};
  uint64_t key = tally({1, 0}, {0, 3}, true, c, 4);  // one read after a 4-period sleep
  EXPECT_EQ(c.ticks, 4u);
  EXPECT_EQ(c.procs[1], 4u);
  EXPECT_EQ(c.runq[3], 4u);
  EXPECT_EQ(key & 0xffffffffu, 1u);  // Ps running
  EXPECT_EQ(key >> 32, 3u);          // longest queue
  EXPECT_EQ(tally({1, 1}, {9, 9}, false, c) >> 32, 0u);  // queues unknown: not in the key
}

TEST(CapacitySampler, AGapEndingOnAChangeIsSplitBetweenItsEnds) {
  const size_t nps = 2;
  const uint64_t one = 1, two = 2, two_queued = 2 | (uint64_t(5) << 32);
  // What the period adapts to: all Ps running or not, and the longest queue's class
  // (under 64, under 192, near full) the capacity rules use.
  EXPECT_EQ(stretch_key(0, nps), stretch_key(one, nps));
  EXPECT_NE(stretch_key(one, nps), stretch_key(two, nps));
  EXPECT_EQ(stretch_key(two, nps), stretch_key(two_queued, nps));
  EXPECT_EQ(stretch_key(2 | (uint64_t(63) << 32), nps) >> 32, 0u);
  EXPECT_EQ(stretch_key(2 | (uint64_t(64) << 32), nps) >> 32, 1u);
  EXPECT_EQ(stretch_key(2 | (uint64_t(191) << 32), nps) >> 32, 1u);
  EXPECT_EQ(stretch_key(2 | (uint64_t(192) << 32), nps) >> 32, 2u);
  ss_cap_counts c{};
  add_gap(c, one, two, nps, true, 8);  // saturated somewhere in the 8 ms: half each
  EXPECT_EQ(c.ticks, 8u);
  EXPECT_EQ(c.procs[1], 4u);
  EXPECT_EQ(c.procs[2], 4u);
  add_gap(c, 0, one, nps, true, 8);  // same key at both ends: all to the new read
  EXPECT_EQ(c.procs[1], 12u);
  EXPECT_EQ(c.procs[0], 0u);
  add_gap(c, one, two_queued, nps, true, 1);  // one period: nothing to split
  EXPECT_EQ(c.procs[2], 5u);
  EXPECT_EQ(c.runq[5], 1u);
  EXPECT_EQ(c.ticks, 17u);
}

TEST(CapacitySampler, StretchesOnlyWhileNothingChangesAndNothingQueues) {
  Stretch s;
  const uint64_t idle = 0, one = 1, queued = 1 | (uint64_t(2) << 32);
  EXPECT_EQ(s.next(idle), 1u);
  // kStableReads identical reads double the period up to kShortStretch; beyond it each
  // doubling needs kLongStableSlots periods of the same answers, up to kMaxStretch.
  uint32_t reads = 0;
  std::vector<uint32_t> at;  // reads taken when each doubling happened
  while (s.stretch() < kMaxStretch && reads < 10000) {
    uint32_t before = s.stretch();
    s.next(idle);
    reads++;
    if (s.stretch() != before) {
      EXPECT_EQ(s.stretch(), before * 2);
      at.push_back(reads);
    }
  }
  EXPECT_EQ(s.stretch(), kMaxStretch);
  ASSERT_EQ(at.size(), 5u);                 // 1 -> 2 -> 4 -> 8 -> 16 -> 32
  EXPECT_EQ(at[2], kStableReads * 3);       // 8 after 16 + 32 + 64 ms
  const uint32_t at8 = (kLongStableSlots + 7) / 8, at16 = (kLongStableSlots + 15) / 16;
  EXPECT_EQ(at[3], kStableReads * 3 + at8);         // 16 after 500 more ms
  EXPECT_EQ(at[4], kStableReads * 3 + at8 + at16);  // 32 after 500 more: ~1.1 s in all
  for (uint32_t i = 0; i < 1000; i++) s.next(idle);
  EXPECT_EQ(s.stretch(), kMaxStretch);  // never beyond
  EXPECT_EQ(s.next(one), 1u);           // a change: every period again
  for (uint32_t i = 0; i < kStableReads; i++) s.next(one);
  EXPECT_EQ(s.stretch(), 2u);
  // A long queue (class 1: 64 or more): every period, however long the state holds.
  for (uint32_t i = 0; i < 10 * kStableReads; i++) EXPECT_EQ(s.next(queued), 1u);
  // Stability is counted in periods: reads 10 periods apart (a budget floor) double the
  // stretch after 16 periods, i.e. on the second read.
  Stretch t;
  t.next(idle);
  EXPECT_EQ(t.next(idle, 10), 1u);
  EXPECT_EQ(t.next(idle, 10), 2u);
  // The gap is the stretch or the floor, the longer.
  Stretch u;
  EXPECT_EQ(next_gap(u, 10, idle, 1), 10u);
  EXPECT_EQ(next_gap(u, 1, one, 10), 1u);
}

TEST(CapacitySampler, BudgetFloorKeepsTheWakeUpsWithinTheShare) {
  // 50 us per wake-up within 0.5% of a core: 100 wake-ups a second, every 10 periods.
  EXPECT_EQ(budget_floor(50'000, 0.005, 1'000'000), 10u);
  EXPECT_EQ(budget_floor(50'001, 0.005, 1'000'000), 11u);  // rounded up: never above
  EXPECT_EQ(budget_floor(4'000, 0.005, 1'000'000), 1u);    // cheap: every period
  EXPECT_EQ(budget_floor(5e6, 0.005, 1'000'000), kMaxFloor);  // capped: 10 reads a second
  EXPECT_EQ(budget_floor(0, 0.005, 1'000'000), 1u);        // not measured yet
  EXPECT_EQ(budget_floor(50'000, 0.005, 2'000'000), 5u);   // a 2 ms base period
}

// A synthetic thread whose wake-ups cost `cost` ns of CPU each, run through Budget for
// `secs` seconds from wall time `wall` on: its CPU share (per window) and the floor.
struct SimThread {
  uint64_t wall = 0, cpu = 0, wakeups = 0;
  double share_since(uint64_t w0, uint64_t c0) const { return double(cpu - c0) / double(wall - w0); }
  void run(Budget& b, double cost, double secs) {
    const uint64_t end = wall + uint64_t(secs * 1e9);
    while (wall < end) {
      cpu += uint64_t(cost);
      wakeups++;
      b.woke();
      if (b.due(wall)) b.close(wall, cpu);
      wall += uint64_t(b.floor()) * kPSamplePeriodNs;
    }
  }
};

TEST(CapacitySampler, BudgetRaisesAndLowersTheFloorWithTheMeasuredCost) {
  Budget b;
  SimThread t;
  EXPECT_EQ(b.floor(), 1u);
  // 150 us a wake-up (the cost measured under thread churn): 3% of a core at 1 kHz.
  t.run(b, 150'000, 1.0);  // the first windows find the cost
  EXPECT_EQ(b.floor(), budget_floor(150'000, kCpuBudget, kPSamplePeriodNs));
  EXPECT_EQ(b.floor(), 30u);
  EXPECT_NEAR(b.cost_ns(), 150'000, 1);
  uint64_t w0 = t.wall, c0 = t.cpu;
  t.run(b, 150'000, 10.0);
  EXPECT_LE(t.share_since(w0, c0), kCpuBudget * 1.001);
  EXPECT_GE(t.share_since(w0, c0), kCpuBudget * 0.9);
  // Cheaper wake-ups (the target quiet again): the floor comes down within three windows
  // (the one the change fell in, and the two the mean is over).
  t.run(b, 20'000, 3 * kBudgetWindowNs / 1e9 + 0.1);
  EXPECT_EQ(b.floor(), 4u);
  w0 = t.wall, c0 = t.cpu;
  t.run(b, 20'000, 10.0);
  EXPECT_LE(t.share_since(w0, c0), kCpuBudget * 1.001);
  // Under the budget at every period: no floor.
  t.run(b, 3'000, 1.0);
  EXPECT_EQ(b.floor(), 1u);
}

// Reads weighted by the periods they stand for keep the counts of a 1 kHz sampler: a
// synthetic target (all Ps running in bursts of random length, a known share of the time)
// read with the budget's floor and the stretch; the share seen is the share true.
TEST(CapacitySampler, WeightedReadsUnderAFloorKeepTheShareOfTime) {
  const size_t nps = 2;
  for (uint32_t floor : {1u, 10u, 30u}) {
    for (double duty : {0.1, 0.3, 0.6}) {
      std::mt19937_64 rng(floor * 1000 + uint64_t(duty * 100));
      // Slot by slot truth: runs of "all running" and "not", exponential lengths
      // (mean 40 ms busy scaled by duty, idle the rest), over 200 s of 1 ms slots.
      const uint64_t slots = 200'000;
      std::vector<uint8_t> busy(slots);
      uint64_t i = 0, truth = 0;
      std::exponential_distribution<double> on(1.0 / (40 * duty)), off(1.0 / (40 * (1 - duty)));
      bool state = false;
      while (i < slots) {
        uint64_t len = 1 + uint64_t(state ? on(rng) : off(rng));
        for (uint64_t k = 0; k < len && i < slots; k++, i++) {
          busy[i] = state;
          truth += state;
        }
        state = !state;
      }
      ss_cap_counts c{};
      Stretch s;
      uint64_t prev = 0;
      bool have_prev = false;
      uint32_t weight = 1, reads = 0;
      for (uint64_t at = 0; at < slots; at += weight) {
        uint64_t m = busy[at] ? nps : 1;
        if (have_prev) add_gap(c, prev, m, nps, true, weight);
        else add(c, m, true, weight);
        prev = m;
        have_prev = true;
        reads++;
        weight = next_gap(s, floor, stretch_key(m, nps), weight);
      }
      const double seen = double(c.procs[nps]) / double(c.ticks);
      const double want = double(truth) / double(slots);
      EXPECT_NEAR(seen, want, 0.02) << "floor " << floor << " duty " << duty;
      EXPECT_NEAR(double(c.ticks), double(slots), double(kMaxFloor));
      EXPECT_LE(reads, slots / floor + 1);
    }
  }
}

// ---- the tracker through the model, as live and replay feed it

ss_cap_sample cap_record(uint64_t ts, uint64_t ticks, uint64_t k_at_1, uint64_t runq240,
                         uint64_t periods, uint64_t throttled) {
  ss_cap_sample r{};
  r.h.type = SS_EV_CAP_SAMPLE;
  r.h.size = sizeof r;
  r.h.ts = ts;
  r.flags = SS_CAPF_SAMPLER | SS_CAPF_RUNQ | SS_CAPF_CGROUP | SS_CAPF_QUOTA;
  r.period_us = 1000;
  r.cpus = 2;
  r.quota_us = 50000;
  r.cfs_period_us = 100000;
  r.nr_periods = periods;
  r.nr_throttled = throttled;
  std::snprintf(r.cgroup, sizeof r.cgroup, "/ss-capacity/job");
  r.counts.ticks = ticks;
  r.counts.procs[1] = k_at_1;
  r.counts.procs[0] = ticks - k_at_1;
  r.counts.runq[240] = runq240;
  r.counts.runq[0] = ticks;
  return r;
}

// The sampler thread reading Ps laid out in this process's own memory (process_vm_readv on
// itself): Ps running and the longest queue (run queue + runnext) of every read.
TEST(CapacitySampler, ReadsThePsOfAProcess) {
  const uint32_t off_status = 4, off_runq = 400, off_runnext = 2456;  // Go's p: queue between
  std::vector<std::vector<uint8_t>> ps(3, std::vector<uint8_t>(off_runnext + 64, 0));
  // P0 running, queue 5 + runnext; P1 running, queue 0; P2 in a syscall (2), queue 2.
  const uint32_t status[3] = {1, 1, 2}, head[3] = {10, 7, 1}, tail[3] = {15, 7, 3};
  const uint64_t runnext[3] = {0xc000001000, 0, 0};
  std::vector<uint64_t> ptrs;
  for (int i = 0; i < 3; i++) {
    std::memcpy(&ps[i][off_status], &status[i], 4);
    std::memcpy(&ps[i][off_runq], &head[i], 4);
    std::memcpy(&ps[i][off_runq + 4], &tail[i], 4);
    std::memcpy(&ps[i][off_runnext], &runnext[i], 8);
    ptrs.push_back(reinterpret_cast<uint64_t>(ps[i].data()));
  }
  const uint64_t allp[3] = {reinterpret_cast<uint64_t>(ptrs.data()), 3, 3};  // slice header
  PSamplerConfig cfg;
  cfg.pid = int(getpid());
  cfg.allp = reinterpret_cast<uint64_t>(allp);
  cfg.p_status = off_status;
  cfg.p_runqhead = off_runq;
  cfg.p_runqtail = off_runq + 4;
  cfg.p_runnext = off_runnext;
  ss_cap_counts c{};
  {
    PSampler s(cfg);
    EXPECT_TRUE(s.runq_known());
    for (int i = 0; i < 200 && s.counts().ticks < 20; i++) usleep(10000);
    c = s.counts();
  }
  ASSERT_GE(c.ticks, 20u);
  // Every read: 2 Ps running, longest queue 6 (P0: 5 queued + runnext).
  EXPECT_EQ(c.procs[2], c.ticks);
  EXPECT_EQ(c.runq[6], c.ticks);
}

// Sample slots (sample_hz) and reads (reads_hz) apart: a sampler reading every 32 slots
// shows ~1000 slots and 31 reads a second; the reads word wraps at 2^32; a recording from
// before reads were counted (no SS_CAPF_READS) shows reads_hz null.
TEST(CapacityTracker, ReadsPerSecondApartFromSampleSlots) {
  for (bool counted : {true, false}) {
    model::Model m(model::TargetInfo{});
    probe::KernelSnapshot snap;
    const uint64_t s = 1'000'000'000;
    snap.ts_ns = 10 * s;
    m.on_kernel(snap);
    (void)m.frame();
    std::vector<model::Frame> frames;
    for (int i = 1; i <= 3; i++) {
      auto r = cap_record((10 + i) * s, 1000ull * i, 500ull * i, 0, 0, 0);
      if (counted) {
        r.flags |= SS_CAPF_READS;
        r.reads = uint32_t(0xffffffe0u + 31u * uint32_t(i));  // wraps after the first
      }
      m.on_record(&r.h, sizeof r);
      snap.ts_ns = (10 + i) * s;
      m.on_kernel(snap);
      frames.push_back(m.frame());
    }
    nlohmann::json j = to_json(frames.back().capacity);
    EXPECT_EQ(j["procs_running"]["sample_hz"], 1000.0);
    if (counted) {
      EXPECT_EQ(j["procs_running"]["reads_hz"], 31.0);
      model::Frame fin = m.frame(true);
      EXPECT_EQ(fin.capacity.interval.reads, 3ull * 31 + 0xffffffe0ull);  // since attach
    } else {
      EXPECT_TRUE(j["procs_running"]["reads_hz"].is_null());
    }
  }
}

TEST(CapacityTracker, ThroughTheModel) {
  model::Model m(model::TargetInfo{});
  probe::KernelSnapshot snap;
  const uint64_t s = 1'000'000'000;
  snap.ts_ns = 10 * s;
  m.on_kernel(snap);
  (void)m.frame();  // baseline
  go::SchedSample g;
  g.gomaxprocs = 1;
  m.on_go_sample(g);
  // Six 1 s intervals: the P running 95% of the time, a full run queue seen, the cgroup
  // throttled in 8 of 10 periods each second (its counters start before attach).
  std::vector<model::Frame> frames;
  for (int i = 1; i <= 6; i++) {
    auto r = cap_record((10 + i) * s, 1000ull * i, 950ull * i, 5ull * i, 500 + 10ull * i, 100 + 8ull * i);
    m.on_record(&r.h, sizeof r);
    snap.ts_ns = (10 + i) * s;
    m.on_kernel(snap);
    frames.push_back(m.frame());
  }
  const Section& c1 = frames[0].capacity;
  ASSERT_TRUE(c1.present);
  EXPECT_EQ(c1.interval.ticks, 1000u);
  EXPECT_EQ(c1.interval.procs_percentile(0.5), 1);
  EXPECT_EQ(c1.interval.runq_max(), 240);
  EXPECT_EQ(c1.interval.nr_periods, 0u);  // the first record is the cgroup's baseline
  const Section& c = frames.back().capacity;
  EXPECT_EQ(c.interval.nr_periods, 10u);
  EXPECT_EQ(c.interval.nr_throttled, 8u);
  EXPECT_DOUBLE_EQ(c.interval.throttled_share(), 0.8);
  ASSERT_EQ(c.verdicts.size(), 4u);
  EXPECT_EQ(c.verdicts[1].answer, Answer::kYes);  // shard: a run queue near capacity
  EXPECT_EQ(c.verdicts[3].answer, Answer::kYes);  // cpu quota: throttled in 80% of periods
  EXPECT_EQ(c.verdicts[0].answer, Answer::kUnknown);  // no latency read
  EXPECT_EQ(c.verdicts[2].answer, Answer::kUnknown);  // no census
  nlohmann::json j = to_json(c);
  EXPECT_EQ(j["gomaxprocs"], 1);
  EXPECT_EQ(j["procs_running"]["max"], 1);
  EXPECT_DOUBLE_EQ(j["procs_running"]["hist"][1].get<double>(), 0.95);
  EXPECT_EQ(j["runq"]["max"], 240);
  EXPECT_DOUBLE_EQ(j["cpu_quota"]["cores"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["cpu_quota"]["throttled_share"].get<double>(), 0.8);
  EXPECT_EQ(j["cpu_quota"]["nr_throttled"], 8);
  EXPECT_EQ(j["verdicts"][3]["question"], "cpu_quota");
  EXPECT_EQ(j["verdicts"][3]["answer"], "yes");
  // The final frame: totals since attach and the strongest sustained answers.
  model::Frame fin = m.frame(true);
  EXPECT_TRUE(fin.capacity.final);
  EXPECT_EQ(fin.capacity.interval.ticks, 6000u);
  EXPECT_EQ(fin.capacity.verdicts[1].answer, Answer::kYes);
  ASSERT_EQ(fin.capacity.verdict_at_s.size(), 4u);
  EXPECT_DOUBLE_EQ(fin.capacity.verdict_at_s[1], 3.0);  // reached with the third second
}

}  // namespace
