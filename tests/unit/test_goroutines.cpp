// --goroutines in the model: synthetic SS_EV_GO_CREATE / SS_EV_GO_EXIT records, the
// per-interval and total counts, attribution by start function (exits by goid), the live
// estimate and the uprobe hit rate. Also the RET finder of go/probes.h.
#include <gtest/gtest.h>

#include <map>

#include "analysis/replay.h"
#include "go/probes.h"
#include "model/model.h"
#include "schedscope.h"

using namespace schedscope;

namespace {

constexpr uint64_t kSec = 1'000'000'000;

struct FakeSym : model::Symbolize {
  std::map<uint64_t, std::string> names;
  std::string frame(uint64_t pc) const override {
    auto it = names.find(pc);
    return it == names.end() ? "" : it->second + " /src/main.go:12";
  }
  bool is_runtime(uint64_t) const override { return false; }
};

ss_go_create create(uint64_t goid, uint64_t startpc, uint64_t creator, uint64_t ts = 1) {
  ss_go_create e{};
  e.h.type = SS_EV_GO_CREATE;
  e.h.size = sizeof e;
  e.h.ts = ts;
  e.tid = 7;
  e.goid = goid;
  e.startpc = startpc;
  e.creator_goid = creator;
  e.flags = SS_GOC_STARTPC | SS_GOC_CREATOR;
  return e;
}

ss_go_exit exit_of(uint64_t goid) {
  ss_go_exit e{};
  e.h.type = SS_EV_GO_EXIT;
  e.h.size = sizeof e;
  e.goid = goid;
  return e;
}

probe::KernelSnapshot snap(uint64_t ts, uint64_t create_hits, uint64_t exit_hits) {
  probe::KernelSnapshot s;
  s.ts_ns = ts;
  s.go_create_hits = create_hits;
  s.go_exit_hits = exit_hits;
  return s;
}

// --goroutine-exits (or an older recording): exits counted by the exit uprobe.
model::TargetInfo target() {
  model::TargetInfo t;
  t.pid = 100;
  t.goroutines = true;
  t.goroutines_attached = true;
  t.goroutine_exits = true;
  t.goroutines_note = "attached";
  return t;
}

// A complete census at ts: `live` Gs alive in all, by start function.
gc::Census census(uint64_t ts, uint32_t live,
                  std::vector<std::pair<std::string, uint32_t>> funcs) {
  gc::Census c;
  c.ts_ns = ts;
  c.allglen = live + 10;
  c.read = c.allglen;
  c.by_status[4] = live;  // waiting
  c.by_status[6] = 10;    // dead
  c.live_funcs = std::move(funcs);
  return c;
}

const model::GoFuncRow* row(const model::Frame& f, const std::string& func) {
  for (const auto& r : f.goroutines.top)
    if (r.func == func) return &r;
  return nullptr;
}

}  // namespace

TEST(Goroutines, CountsAttributesAndEstimatesLive) {
  FakeSym sym;
  sym.names[0x1000] = "main.spawned";
  sym.names[0x2000] = "main.worker";
  model::Model m(target());
  m.set_symbolizer(&sym);
  m.on_kernel(snap(10 * kSec, 0, 0));
  m.set_goroutine_baseline(5);
  (void)m.frame();

  // Interval 1: 3 spawned + 1 worker created by goid 1; two spawned exit, and one G
  // created before attach (goid 3) exits.
  for (uint64_t g : {20, 21, 22}) {
    auto e = create(g, 0x1000, 1);
    m.on_record(&e.h, sizeof e);
  }
  auto w = create(23, 0x2000, 20);
  m.on_record(&w.h, sizeof w);
  for (uint64_t g : {20, 21, 3}) {
    auto e = exit_of(g);
    m.on_record(&e.h, sizeof e);
  }
  m.on_kernel(snap(12 * kSec, 4, 3));
  model::Frame f = m.frame();
  const auto& g = f.goroutines;
  EXPECT_TRUE(g.enabled);
  EXPECT_EQ(g.created, 4u);
  EXPECT_EQ(g.exited, 3u);
  EXPECT_EQ(g.exited_unmatched, 1u);
  EXPECT_DOUBLE_EQ(g.created_per_s, 2.0);
  ASSERT_TRUE(g.live.has_value());
  EXPECT_EQ(*g.live, 5 + 4 - 3);
  ASSERT_GE(g.top.size(), 2u);
  EXPECT_EQ(g.top[0].func, "main.spawned");  // func only, no file:line
  EXPECT_EQ(g.top[0].created, 3u);
  EXPECT_EQ(g.top[0].exited, 2u);
  ASSERT_NE(row(f, "main.worker"), nullptr);
  EXPECT_EQ(row(f, "main.worker")->created, 1u);
  ASSERT_GE(g.creators.size(), 2u);
  EXPECT_EQ(g.creators[0].goid, 1u);
  EXPECT_EQ(g.creators[0].count, 3u);
  EXPECT_EQ(g.creators[1].goid, 20u);  // exited since: its function is no longer known
  EXPECT_EQ(g.uprobe_hits, 7u);
  EXPECT_DOUBLE_EQ(g.uprobe_hits_per_s, 3.5);
  EXPECT_NE(g.cost.find("hits/s"), std::string::npos);

  // Interval 2: the rest exits; an unknown startpc is shown as hex.
  for (uint64_t gid : {22, 23}) {
    auto e = exit_of(gid);
    m.on_record(&e.h, sizeof e);
  }
  auto u = create(30, 0xdead, 1);
  m.on_record(&u.h, sizeof u);
  m.on_kernel(snap(13 * kSec, 5, 5));
  f = m.frame();
  EXPECT_EQ(f.goroutines.created, 1u);
  EXPECT_EQ(f.goroutines.exited, 2u);
  EXPECT_EQ(f.goroutines.created_total, 5u);
  EXPECT_EQ(f.goroutines.exited_total, 5u);
  EXPECT_EQ(f.goroutines.uprobe_hits, 3u);
  EXPECT_EQ(*f.goroutines.live, 5);
  ASSERT_NE(row(f, "main.spawned"), nullptr);
  EXPECT_EQ(row(f, "main.spawned")->created, 0u);
  EXPECT_EQ(row(f, "main.spawned")->exited, 1u);
  ASSERT_NE(row(f, "0xdead"), nullptr);

  // Final: totals since attach.
  f = m.frame(true);
  ASSERT_NE(row(f, "main.spawned"), nullptr);
  EXPECT_EQ(row(f, "main.spawned")->created, 3u);
  EXPECT_EQ(row(f, "main.spawned")->exited, 3u);
  EXPECT_EQ(row(f, "main.worker")->exited, 1u);
  EXPECT_EQ(f.goroutines.created, 5u);
  EXPECT_EQ(f.goroutines.uprobe_hits, 10u);
}

// --goroutines alone: one uprobe (creation), exits estimated from the census = creations
// between two complete censuses - growth of the live count, in all and by start function.
TEST(Goroutines, ExitsFromTheCensus) {
  FakeSym sym;
  sym.names[0x1000] = "main.spawned";
  sym.names[0x2000] = "main.worker";
  model::TargetInfo t = target();
  t.goroutine_exits = false;
  model::Model m(t);
  m.set_symbolizer(&sym);
  m.on_kernel(snap(10 * kSec, 1, 0));
  // Created before the base census ended: in its live count, not in the estimate's creations.
  auto early = create(19, 0x1000, 1, 10 * kSec + 1);
  m.on_record(&early.h, sizeof early);
  // Base: 5 alive (1 main.spawned, 2 main.idle started before attach, 2 main.main/...).
  m.on_census(census(10 * kSec + 5, 5, {{"main.idle", 2}, {"main.main", 2}, {"main.spawned", 1}}));
  model::Frame f = m.frame();
  EXPECT_EQ(f.goroutines.exited_source, "census");
  EXPECT_EQ(f.goroutines.exited, 0u);
  ASSERT_TRUE(f.goroutines.live.has_value());
  EXPECT_EQ(*f.goroutines.live, 5);

  // Interval 1: 3 main.spawned + 1 main.worker before the census, one more main.worker
  // drained after it but created before it ended, one created after it. At the census
  // 1 main.spawned and 1 main.worker are alive, one main.idle has exited: 5 created, live
  // 5 -> 5: 5 exits (3 main.spawned, 1 main.worker, 1 main.idle: started none since attach).
  for (uint64_t g : {20, 21, 22}) {
    auto e = create(g, 0x1000, 1, 11 * kSec + g);
    m.on_record(&e.h, sizeof e);
  }
  auto w = create(23, 0x2000, 20, 11 * kSec + 30);
  m.on_record(&w.h, sizeof w);
  m.on_census(census(12 * kSec, 5, {{"main.main", 2}, {"main.idle", 1}, {"main.spawned", 1},
                                    {"main.worker", 1}}));
  // Drained after that census, created before it ended: counted against it.
  auto late = create(24, 0x2000, 1, 12 * kSec - 1);
  m.on_record(&late.h, sizeof late);
  // Created after it: the next census's.
  auto next = create(25, 0x2000, 1, 12 * kSec + 1);
  m.on_record(&next.h, sizeof next);
  m.on_kernel(snap(12 * kSec + 2, 7, 0));
  f = m.frame();
  const auto& g = f.goroutines;
  EXPECT_EQ(g.created, 6u);                // every creation event of the interval
  EXPECT_EQ(g.exited, 5u);
  EXPECT_EQ(g.exited_total, 5u);
  EXPECT_EQ(g.exited_unmatched, 1u);       // main.idle 2 -> 1
  EXPECT_EQ(*g.live, 5);                   // the census's
  ASSERT_NE(row(f, "main.spawned"), nullptr);
  EXPECT_EQ(row(f, "main.spawned")->exited, 3u);  // 3 created, live 1 -> 1
  ASSERT_NE(row(f, "main.worker"), nullptr);
  EXPECT_EQ(row(f, "main.worker")->exited, 1u);   // 2 created before the census, 1 alive
  EXPECT_EQ(g.uprobe_hits, 6u);           // one per creation, no exit trap
  EXPECT_EQ(g.exited, g.exited_unmatched + row(f, "main.spawned")->exited +
                          row(f, "main.worker")->exited);

  // Interval 2: nothing more created; everything of main.spawned/main.worker gone. A
  // census cut short by its time budget is not a count: ignored.
  gc::Census cut = census(13 * kSec, 2, {{"main.main", 2}});
  cut.read = cut.allglen - 1;
  m.on_census(cut);
  m.on_kernel(snap(13 * kSec + 2, 7, 0));
  f = m.frame();
  EXPECT_EQ(f.goroutines.exited, 0u);
  EXPECT_EQ(*f.goroutines.live, 5);
  EXPECT_NE(f.goroutines.exited_note.find("cut short"), std::string::npos);
  m.on_census(census(14 * kSec, 2, {{"main.main", 2}}));
  m.on_kernel(snap(14 * kSec + 2, 7, 0));
  f = m.frame();
  EXPECT_EQ(f.goroutines.exited_note, "");
  // 6 created since the base (19 was before it), live 5 -> 2: 9 exits, 5 already shown.
  EXPECT_EQ(f.goroutines.exited_total, 9u);
  EXPECT_EQ(f.goroutines.exited, 4u);
  EXPECT_EQ(f.goroutines.exited_unmatched, 2u);  // both main.idle
  EXPECT_EQ(row(f, "main.spawned")->exited, 1u);
  EXPECT_EQ(row(f, "main.worker")->exited, 2u);  // 3 created, none alive
  // Final: totals since the base census.
  f = m.frame(true);
  EXPECT_EQ(f.goroutines.exited, 9u);
  EXPECT_EQ(row(f, "main.spawned")->exited, 4u);
  EXPECT_EQ(row(f, "main.worker")->exited, 3u);
  EXPECT_EQ(f.goroutines.created, 7u);
  EXPECT_EQ(f.goroutines.uprobe_hits, 7u);
}

// A census that lists at most kCensusLiveFuncsMax functions and is full says nothing of
// the functions it leaves out: their estimate stays where it was.
TEST(Goroutines, CensusExitsNeedTheFunctionListed) {
  FakeSym sym;
  sym.names[0x1000] = "main.spawned";
  model::TargetInfo t = target();
  t.goroutine_exits = false;
  model::Model m(t);
  m.set_symbolizer(&sym);
  m.on_kernel(snap(10 * kSec, 0, 0));
  std::vector<std::pair<std::string, uint32_t>> full;
  for (size_t i = 0; i < gc::kCensusLiveFuncsMax; i++) full.emplace_back("f" + std::to_string(i), 1);
  m.on_census(census(10 * kSec, uint32_t(full.size()), full));
  auto e = create(20, 0x1000, 1, 11 * kSec);
  m.on_record(&e.h, sizeof e);
  m.on_census(census(12 * kSec, uint32_t(full.size()), full));  // main.spawned not listed
  m.on_kernel(snap(12 * kSec, 1, 0));
  model::Frame f = m.frame();
  ASSERT_NE(row(f, "main.spawned"), nullptr);
  EXPECT_EQ(row(f, "main.spawned")->exited, 0u);  // unknown: not estimated
  EXPECT_EQ(f.goroutines.exited_total, 1u);       // the total needs no list
}

// Recordings say where the exits came from; one made before the census estimate had the
// exit uprobe attached: replayed as such (its GO_EXIT records count).
TEST(Goroutines, RecordedExitSource) {
  model::TargetInfo t = target();
  t.goroutine_exits = false;
  auto j = record::target_to_json(t);
  EXPECT_FALSE(record::target_from_json(j).goroutine_exits);
  t.goroutine_exits = true;
  EXPECT_TRUE(record::target_from_json(record::target_to_json(t)).goroutine_exits);
  j.erase("goroutine_exits");  // an older recording
  EXPECT_TRUE(record::target_from_json(j).goroutine_exits);
}

TEST(Goroutines, OffWhenNotAttached) {
  model::TargetInfo t;
  t.goroutines = true;
  t.goroutines_note = "not attached: no newproc1";
  model::Model m(t);
  m.on_kernel(snap(kSec, 0, 0));
  auto f = m.frame();
  EXPECT_FALSE(f.goroutines.enabled);
  EXPECT_FALSE(f.goroutines.live.has_value());
  EXPECT_EQ(f.goroutines.note, "not attached: no newproc1");
}

TEST(Goroutines, ShortRecordsAreBad) {
  model::Model m(target());
  auto e = create(1, 0x1000, 1);
  m.on_record(&e.h, sizeof(ss_hdr) + 4);
  EXPECT_EQ(m.bad_records(), 1u);
}

TEST(GoProbes, RetAddressesAreInstructionBoundaries) {
  // push rbp; mov rbp,rsp; mov eax,0xc3c3c3c3; je +1; ret; pop rbp; ret; int3
  const uint8_t code[] = {0x55, 0x48, 0x89, 0xe5, 0xb8, 0xc3, 0xc3, 0xc3, 0xc3,
                          0x74, 0x01, 0xc3, 0x5d, 0xc3, 0xcc};
  size_t bad = 0;
  auto rets = go::ret_addresses(code, 0x401000, &bad);
  EXPECT_EQ(bad, 0u);
  ASSERT_EQ(rets.size(), 2u);
  EXPECT_EQ(rets[0], 0x401000u + 11);
  EXPECT_EQ(rets[1], 0x401000u + 13);
}

// Goroutines created without uprobes: sched.goidgen deltas between Go samples, per interval
// and in total, the rate over the samples' own timestamps, the error bound (16 ids per P
// cached ahead) and the live count of the last census.
TEST(GoroutineCounts, FromGoidgenDeltas) {
  model::Model m(model::TargetInfo{});
  auto kernel_at = [&](uint64_t ts) {
    probe::KernelSnapshot k;
    k.ts_ns = ts;
    m.on_kernel(k);
  };
  auto go_at = [&](uint64_t ts, uint64_t goidgen, int32_t procs) {
    go::SchedSample s;
    s.ts_ns = ts;
    s.goidgen = goidgen;
    s.gomaxprocs = procs;
    m.on_go_sample(s);
  };
  kernel_at(1 * kSec);
  model::Frame f0 = m.frame();
  EXPECT_FALSE(f0.goroutine_counts.available);  // no read of goidgen yet
  go_at(1 * kSec, 1000, 2);
  kernel_at(2 * kSec);
  go_at(2 * kSec, 1000 + 480, 2);  // 480 ids in 1 s
  model::Frame f1 = m.frame();
  ASSERT_TRUE(f1.goroutine_counts.available);
  EXPECT_EQ(f1.goroutine_counts.created, 480u);
  EXPECT_DOUBLE_EQ(f1.goroutine_counts.created_per_s, 480.0);
  EXPECT_EQ(f1.goroutine_counts.error_max, 32u);  // 16 x GOMAXPROCS 2
  EXPECT_FALSE(f1.goroutine_counts.live.has_value());  // no census read
  gc::Census c;
  c.allglen = 30;
  c.read = 30;
  c.by_status[4] = 25;  // waiting
  c.by_status[6] = 5;   // dead: not alive
  m.on_census(c);
  kernel_at(4 * kSec);
  go_at(4 * kSec, 1480 + 64, 4);  // 64 ids in 2 s, GOMAXPROCS raised to 4
  model::Frame f2 = m.frame();
  EXPECT_EQ(f2.goroutine_counts.created, 64u);
  EXPECT_DOUBLE_EQ(f2.goroutine_counts.created_per_s, 32.0);
  EXPECT_EQ(f2.goroutine_counts.error_max, 64u);
  ASSERT_TRUE(f2.goroutine_counts.live.has_value());
  EXPECT_EQ(*f2.goroutine_counts.live, int64_t(c.live()));
  EXPECT_EQ(f2.goroutine_counts.created_total, 544u);
  model::Frame fin = m.frame(true);
  EXPECT_EQ(fin.goroutine_counts.created, 544u);  // since the first read
  EXPECT_DOUBLE_EQ(fin.goroutine_counts.created_per_s, 544.0 / 3);
}

TEST(GoroutineCounts, NewProcessImageStartsOver) {
  model::Model m(model::TargetInfo{});
  probe::KernelSnapshot k;
  k.ts_ns = kSec;
  m.on_kernel(k);
  go::SchedSample s;
  s.gomaxprocs = 1;
  s.ts_ns = kSec;
  s.goidgen = 5000;
  m.on_go_sample(s);
  s.ts_ns = 2 * kSec;
  s.goidgen = 20;  // exec: a new runtime counts from its start again
  m.on_go_sample(s);
  s.ts_ns = 3 * kSec;
  s.goidgen = 120;
  m.on_go_sample(s);
  k.ts_ns = 3 * kSec;
  m.on_kernel(k);
  model::Frame f = m.frame();
  ASSERT_TRUE(f.goroutine_counts.available);
  EXPECT_EQ(f.goroutine_counts.created, 100u);
}
