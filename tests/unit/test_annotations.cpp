// --annotations: the probe placement past the stack-check prologue (on code bytes and on
// the annotated workload's real stripped binaries, both toolchains), and the tracker's
// pairing: region stacks per goroutine, task trees across goroutines, unmatched ends,
// task types from span-id names, interval vs since-attach tables, and the JSON/text.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "detect/annotations_evidence.h"
#include "annotations/probes.h"
#include "model/annotations_json.h"
#include "annotations/tracker.h"
#include "../common/fixtures.h"
#include "go/binary.h"
#include "model/model.h"

using namespace schedscope;
using annotations::Tracker;

namespace {

constexpr uint64_t kMs = 1'000'000;

ss_annot ev(uint8_t kind, uint64_t ts, uint64_t goid, uint64_t id, uint64_t arg,
            const std::string& s1, const std::string& s2 = "", int p = 0) {
  ss_annot e{};
  e.h.type = SS_EV_ANNOT;
  e.h.size = sizeof e;
  e.h.ts = ts;
  e.tid = 100 + uint32_t(p);
  e.kind = kind;
  e.flags = SS_ANNOT_GOID | SS_ANNOT_P;
  e.p_id = p;
  e.goid = goid;
  e.id = id;
  e.arg = arg;
  e.len1 = uint32_t(s1.size());
  e.len2 = uint32_t(s2.size());
  std::memcpy(e.s1, s1.data(), std::min(s1.size(), sizeof e.s1));
  std::memcpy(e.s2, s2.data(), std::min(s2.size(), sizeof e.s2));
  return e;
}

struct Feed {
  Tracker t;
  void create(uint64_t ts, uint64_t g, uint64_t id, const std::string& name) {
    t.on_annot(ev(SS_ANNOT_TASK_CREATE, ts, g, id, 0, name));
  }
  void end(uint64_t ts, uint64_t g, uint64_t id) { t.on_annot(ev(SS_ANNOT_TASK_END, ts, g, id, 0, "")); }
  void begin(uint64_t ts, uint64_t g, uint64_t id, const std::string& n, int p = 0) {
    t.on_annot(ev(SS_ANNOT_REGION, ts, g, id, 0, n, "", p));
  }
  void rend(uint64_t ts, uint64_t g, uint64_t id, const std::string& n, int p = 0) {
    t.on_annot(ev(SS_ANNOT_REGION, ts, g, id, 1, n, "", p));
  }
  void log(uint64_t ts, uint64_t g, uint64_t id, const std::string& c, const std::string& m) {
    t.on_annot(ev(SS_ANNOT_LOG, ts, g, id, 0, c, m));
  }
  void state(uint64_t hits, uint64_t on_ns) {
    ss_annot_state s{};
    s.h.type = SS_EV_ANNOT_STATE;
    s.h.size = sizeof s;
    s.state = SS_ANNOT_STATE_ON;
    s.nprobes = 4;
    s.hits = hits;
    s.on_ns = on_ns;
    std::snprintf(s.note, sizeof s.note, "4 uprobe(s)");
    EXPECT_TRUE(t.on_record(&s.h, sizeof s));
  }
};

const annotations::RegionRow* region(const annotations::Tables& t, const std::string& path) {
  for (const auto& r : t.regions)
    if (r.path == path) return &r;
  return nullptr;
}
const annotations::TaskRow* task(const annotations::Tables& t, const std::string& type) {
  for (const auto& r : t.tasks)
    if (r.type == type) return &r;
  return nullptr;
}

// The seed's request lifecycle: handleRequest on G9 with parse (validate nested), fanout
// with a shard on each of G20, G21, G22, encode.
void request(Feed& f, uint64_t t0, uint64_t id, const std::string& name) {
  f.create(t0, 9, id, name);
  f.log(t0 + 1, 9, id, "stage", "received");
  f.begin(t0 + 1 * kMs, 9, id, "parse");
  f.begin(t0 + 2 * kMs, 9, id, "validate");
  f.rend(t0 + 3 * kMs, 9, id, "validate");
  f.rend(t0 + 4 * kMs, 9, id, "parse");
  f.begin(t0 + 5 * kMs, 9, id, "fanout");
  f.begin(t0 + 6 * kMs, 20, id, "shard", 1);  // the slow one contains the others in time
  f.begin(t0 + 7 * kMs, 21, id, "shard", 0);
  f.begin(t0 + 7 * kMs, 22, id, "shard", 1);
  f.rend(t0 + 10 * kMs, 21, id, "shard", 0);
  f.rend(t0 + 13 * kMs, 22, id, "shard", 1);
  f.rend(t0 + 46 * kMs, 20, id, "shard", 1);
  f.rend(t0 + 47 * kMs, 9, id, "fanout");
  f.begin(t0 + 48 * kMs, 9, id, "encode");
  f.rend(t0 + 49 * kMs, 9, id, "encode");
  f.log(t0 + 49 * kMs, 9, id, "decision", "slow");
  f.end(t0 + 50 * kMs, 9, id);
}

}  // namespace

TEST(AnnotationsProbes, PastStackCheckSmallFrame) {
  // go1.19 runtime/trace.userTaskEnd: cmp 0x10(%r14),%rsp; jbe +0x42; push...
  const std::vector<uint8_t> code = {0x49, 0x3b, 0x66, 0x10, 0x76, 0x42, 0x48, 0x83, 0xec, 0x38};
  auto a = annotations::past_stack_check(code, 0x45ec40);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 0x45ec46u);
}

TEST(AnnotationsProbes, PastStackCheckLeaR12) {
  // go1.23 runtime/trace.userTaskCreate: lea -0x10(%rsp),%r12; cmp 0x10(%r14),%r12; jbe rel32
  const std::vector<uint8_t> code = {0x4c, 0x8d, 0x64, 0x24, 0xf0, 0x4d, 0x3b, 0x66, 0x10,
                                     0x0f, 0x86, 0x8f, 0x01, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5};
  auto a = annotations::past_stack_check(code, 0x46bce0);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 0x46bcefu);
}

TEST(AnnotationsProbes, PastStackCheckHugeFrame) {
  // mov %rsp,%r12; sub $0x2000,%r12; jb +0x30; cmp 0x10(%r14),%r12; jbe rel32
  const std::vector<uint8_t> code = {0x49, 0x89, 0xe4, 0x49, 0x81, 0xec, 0x00, 0x20, 0x00, 0x00,
                                     0x72, 0x30, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x40, 0x00,
                                     0x00, 0x00, 0x55};
  auto a = annotations::past_stack_check(code, 0x1000);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 0x1000u + 22);
}

TEST(AnnotationsProbes, NoStackCheckIsNullopt) {
  // A NOSPLIT function: mov %rax,%rbx; ret
  const std::vector<uint8_t> code = {0x48, 0x89, 0xc3, 0xc3};
  EXPECT_FALSE(annotations::past_stack_check(code, 0x1000));
  // A cmp against another field than stackguard0 is not the check.
  const std::vector<uint8_t> other = {0x49, 0x3b, 0x66, 0x18, 0x76, 0x42, 0xc3};
  EXPECT_FALSE(annotations::past_stack_check(other, 0x1000));
}

// The annotated workload's stripped builds: all four functions found in pclntab, each
// probed past its check (so morestack's re-entry does not fire it twice).
TEST(AnnotationsProbes, RealStrippedBinaries) {
  for (const char* name : {"workloads/annotated-stripped", "workloads/annotated-go1.23-stripped"}) {
    std::string path = std::string(SCHEDSCOPE_BUILD_DIR) + "/" + name;
    SCOPED_TRACE(path);
    if (!test::present_or_skip(path)) continue;
    auto b = go::inspect_binary(path);
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_TRUE(b->stripped);
    auto f = elf::ElfFile::open(path);
    ASSERT_TRUE(f.ok());
    auto probes = annotations::annotation_probes(**f, *b);
    ASSERT_TRUE(probes) << probes.error().message;
    ASSERT_EQ(probes->size(), 4u);
    for (const auto& p : *probes) {
      SCOPED_TRACE(p.func);
      EXPECT_TRUE(p.past_check);
      EXPECT_GT(p.addr, p.entry);
      EXPECT_LE(p.addr - p.entry, 24u);
      EXPECT_EQ(std::string(annotations::kind_func(p.kind)), p.func);
    }
  }
}

TEST(AnnotationsProbes, ProgramWithoutAnnotationsSaysSo) {
  std::string path = std::string(SCHEDSCOPE_BUILD_DIR) + "/workloads/gospawn";
  if (!test::present_or_skip(path)) return;
  auto b = go::inspect_binary(path);
  ASSERT_TRUE(b.ok());
  auto f = elf::ElfFile::open(path);
  ASSERT_TRUE(f.ok());
  auto probes = annotations::annotation_probes(**f, *b);
  ASSERT_FALSE(probes);
  EXPECT_NE(probes.error().message.find("does not link runtime/trace annotations"), std::string::npos);
}

TEST(AnnotationsTracker, TaskType) {
  EXPECT_EQ(annotations::task_type("handleRequest span=00f067aa0ba902b7"), "handleRequest span=<id>");
  EXPECT_EQ(annotations::task_type("00f067aa0ba902b7"), "<id>");
  EXPECT_EQ(annotations::task_type("healthCheck"), "healthCheck");
  EXPECT_EQ(annotations::task_type("job 1234567"), "job 1234567");   // 7 digits: kept
  EXPECT_EQ(annotations::task_type("deadbeefcafe"), "<id>");
  EXPECT_EQ(annotations::task_type("xdeadbeefcafe"), "xdeadbeefcafe");  // part of a word
}

TEST(AnnotationsTracker, RequestTreeAcrossGoroutines) {
  Feed f;
  f.state(36, 1000 * kMs);
  request(f, 1000 * kMs, 5, "handleRequest span=d5104dc76695721d");
  auto s = f.t.frame(false, 1.0);
  EXPECT_TRUE(s.asked);
  ASSERT_EQ(s.slowest.size(), 1u);
  const auto& t = s.slowest[0];
  EXPECT_EQ(t.id, 5u);
  EXPECT_EQ(t.name, "handleRequest span=d5104dc76695721d");
  EXPECT_EQ(t.type, "handleRequest span=<id>");
  EXPECT_DOUBLE_EQ(t.ms, 50.0);
  // Pre-order: parse, validate, fanout, its three shards by start time (the longer first
  // at the same start), encode.
  std::vector<std::tuple<std::string, uint64_t, int>> got;
  for (const auto& r : t.regions) got.emplace_back(r.name, r.goid, r.depth);
  std::vector<std::tuple<std::string, uint64_t, int>> want = {
      {"parse", 9, 0},  {"validate", 9, 1}, {"fanout", 9, 0}, {"shard", 20, 1},
      {"shard", 22, 1}, {"shard", 21, 1},   {"encode", 9, 0}};
  EXPECT_EQ(got, want);
  EXPECT_DOUBLE_EQ(t.regions[3].ms, 40.0);
  EXPECT_DOUBLE_EQ(t.regions[3].start_ms, 6.0);
  ASSERT_EQ(t.logs.size(), 2u);
  EXPECT_EQ(t.logs[0].message, "received");
  EXPECT_EQ(t.logs[1].category, "decision");
  // Region paths nest per goroutine: a shard on its own goroutine is "shard".
  auto* v = region(s.interval, "parse/validate");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->count, 1u);
  EXPECT_DOUBLE_EQ(v->total_ms, 1.0);
  auto* sh = region(s.interval, "shard");
  ASSERT_TRUE(sh);
  EXPECT_EQ(sh->count, 3u);
  EXPECT_DOUBLE_EQ(sh->max_ms, 40.0);
  EXPECT_DOUBLE_EQ(sh->p50_ms, 6.0);
  EXPECT_EQ(sh->ps.at(1), 2u);
  EXPECT_EQ(sh->ps.at(0), 1u);
  auto* tr = task(s.interval, "handleRequest span=<id>");
  ASSERT_TRUE(tr);
  EXPECT_EQ(tr->started, 1u);
  EXPECT_EQ(tr->ended, 1u);
  EXPECT_EQ(tr->in_flight, 0u);
  EXPECT_DOUBLE_EQ(tr->max_ms, 50.0);
  EXPECT_DOUBLE_EQ(s.hits_per_s, 36.0);
}

TEST(AnnotationsTracker, IntervalsAndTotals) {
  Feed f;
  f.state(0, 0);
  for (int i = 0; i < 3; i++) request(f, uint64_t(i + 1) * 100 * kMs, uint64_t(10 + i), "r " + std::to_string(i));
  f.create(900 * kMs, 9, 99, "healthCheck");  // still in flight
  auto a = f.t.frame(false, 1.0);
  EXPECT_EQ(task(a.interval, "healthCheck")->in_flight, 1u);
  request(f, 2000 * kMs, 20, "r 3");
  f.end(2100 * kMs, 9, 99);
  auto b = f.t.frame(false, 1.0);
  EXPECT_EQ(region(b.interval, "encode")->count, 1u);
  EXPECT_EQ(region(b.total, "encode")->count, 4u);
  EXPECT_EQ(task(b.interval, "healthCheck")->started, 0u);
  EXPECT_EQ(task(b.interval, "healthCheck")->ended, 1u);
  EXPECT_EQ(task(b.total, "healthCheck")->in_flight, 0u);
  auto fin = f.t.frame(true, 0);
  EXPECT_EQ(region(fin.interval, "shard")->count, 12u);
  EXPECT_EQ(fin.slowest.size(), 5u);
  EXPECT_EQ(fin.slowest[0].name, "healthCheck");  // 1200 ms
}

TEST(AnnotationsTracker, UnmatchedAndOutOfOrderEnds) {
  Feed f;
  f.state(0, 0);
  f.rend(1 * kMs, 7, 0, "began-before-attach");
  f.end(2 * kMs, 7, 42);
  // A missed end: b is dropped when a's end pops past it, as the runtime does.
  f.begin(3 * kMs, 7, 0, "a");
  f.begin(4 * kMs, 7, 0, "b");
  f.rend(6 * kMs, 7, 0, "a");
  // Same name nested: the innermost ends first.
  f.begin(10 * kMs, 8, 0, "x");
  f.begin(11 * kMs, 8, 0, "x");
  f.rend(12 * kMs, 8, 0, "x");
  f.rend(15 * kMs, 8, 0, "x");
  auto s = f.t.frame(true, 0);
  EXPECT_EQ(s.region_ends_unmatched, 1u);
  EXPECT_EQ(s.task_ends_unmatched, 1u);
  EXPECT_EQ(region(s.total, "a")->count, 1u);
  EXPECT_DOUBLE_EQ(region(s.total, "a")->total_ms, 3.0);
  EXPECT_EQ(region(s.total, "a/b"), nullptr);
  EXPECT_DOUBLE_EQ(region(s.total, "x/x")->total_ms, 1.0);
  EXPECT_DOUBLE_EQ(region(s.total, "x")->total_ms, 5.0);
  // Goroutines' stacks are separate: an end on another goroutine does not match.
  f.begin(20 * kMs, 1, 0, "y");
  f.rend(21 * kMs, 2, 0, "y");
  EXPECT_EQ(f.t.frame(true, 0).region_ends_unmatched, 2u);
  auto in = f.t.in_flight(1, 25 * kMs);
  ASSERT_EQ(in.regions.size(), 1u);
  EXPECT_EQ(in.regions[0], "y");
  EXPECT_DOUBLE_EQ(in.region_ms, 5.0);
}

TEST(AnnotationsTracker, LogsAndTruncation) {
  Feed f;
  f.state(0, 0);
  f.create(1, 3, 1, "t");
  f.log(2, 3, 1, "stage", "a");
  f.log(3, 3, 1, "stage", "a");
  f.log(4, 3, 0, "bg", std::string(300, 'm'));
  auto s = f.t.frame(true, 0);
  ASSERT_EQ(s.total.logs.size(), 2u);
  EXPECT_EQ(s.total.logs[0].count, 2u);
  EXPECT_EQ(s.total.logs[1].message.size(), size_t(SS_ANNOT_S2));
  EXPECT_EQ(s.truncated, 1u);
  ASSERT_EQ(s.last_logs.size(), 3u);
  EXPECT_EQ(s.last_logs[0].task_name, "t");
}

// The model routes the records and the frame carries them; JSON has the documented keys
// and the text prints from that JSON.
TEST(AnnotationsTracker, ModelFrameJsonAndText) {
  model::Model m{model::TargetInfo{}};
  probe::KernelSnapshot snap;
  snap.ts_ns = 1000 * kMs;
  m.on_kernel(snap);
  (void)m.frame();
  Feed f;  // only to build records
  ss_annot_state st{};
  st.h.type = SS_EV_ANNOT_STATE;
  st.h.size = sizeof st;
  st.state = SS_ANNOT_STATE_ON;
  st.hits = 18;
  m.on_record(&st.h, sizeof st);
  auto e = ev(SS_ANNOT_TASK_CREATE, 1100 * kMs, 4, 1, 0, "handleRequest span=00f067aa0ba902b7");
  m.on_record(&e.h, sizeof e);
  auto r1 = ev(SS_ANNOT_REGION, 1101 * kMs, 4, 1, 0, "parse");
  m.on_record(&r1.h, sizeof r1);
  auto r2 = ev(SS_ANNOT_REGION, 1103 * kMs, 4, 1, 1, "parse");
  m.on_record(&r2.h, sizeof r2);
  auto l = ev(SS_ANNOT_LOG, 1104 * kMs, 4, 1, 0, "stage", "done");
  m.on_record(&l.h, sizeof l);
  auto x = ev(SS_ANNOT_TASK_END, 1105 * kMs, 4, 1, 0, "");
  m.on_record(&x.h, sizeof x);
  snap.ts_ns = 2000 * kMs;
  m.on_kernel(snap);
  auto fr = m.frame();
  ASSERT_TRUE(fr.annotations);
  auto j = model::annotations_json(*fr.annotations);
  for (const char* k : {"regions", "tasks", "slowest", "logs", "hits_per_s", "cost", "since_attach",
                        "not_visible", "state"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["regions"][0]["path"], "parse");
  EXPECT_DOUBLE_EQ(j["regions"][0]["total_ms"].get<double>(), 2.0);
  for (const char* k : {"name", "path", "count", "total_ms", "avg_ms", "p50_ms", "p99_ms", "max_ms"})
    EXPECT_TRUE(j["regions"][0].contains(k)) << k;
  for (const char* k : {"type", "started", "ended", "in_flight", "p50_ms", "p99_ms", "max_ms"})
    EXPECT_TRUE(j["tasks"][0].contains(k)) << k;
  for (const char* k : {"id", "type", "ms", "regions", "logs"})
    EXPECT_TRUE(j["slowest"][0].contains(k)) << k;
  for (const char* k : {"name", "goid", "start_ms", "ms", "depth"})
    EXPECT_TRUE(j["slowest"][0]["regions"][0].contains(k)) << k;
  EXPECT_EQ(j["slowest"][0]["logs"][0]["message"], "done");
  EXPECT_EQ(j["state"], "attached");
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  model::print_annotations_text(j, out);
  fclose(out);
  std::string text(buf, len);
  free(buf);
  EXPECT_NE(text.find("parse"), std::string::npos);
  EXPECT_NE(text.find("handleRequest span=00f067aa0ba902b7"), std::string::npos);
  EXPECT_NE(text.find("StartRegion"), std::string::npos);
}

// Alerts name what is in flight: on the alert's goroutine, or the oldest tasks.
TEST(AnnotationsAlerts, AlertsCarryTasksAndRegionsInFlight) {
  Feed f;
  f.state(0, 0);
  f.create(100 * kMs, 9, 5, "handleRequest span=00f067aa0ba902b7");
  f.begin(101 * kMs, 9, 5, "fanout");
  f.begin(102 * kMs, 20, 5, "shard");
  f.create(150 * kMs, 11, 6, "healthCheck");
  auto s = f.t.frame(false, 1.0, 200 * kMs);
  ASSERT_EQ(s.open_regions.size(), 2u);
  EXPECT_EQ(s.open_regions[0].goid, 9u);  // the oldest innermost region first
  model::Alert stuck;
  stuck.kind = "stuck_p";
  stuck.goid = 20;
  detect::annotate_alert(s, stuck);
  ASSERT_EQ(stuck.evidence.size(), 1u);
  EXPECT_EQ(stuck.evidence[0],
            "annotations on G20: task 5 \"handleRequest span=00f067aa0ba902b7\", region shard "
            "(innermost open 98.0 ms)");
  model::Alert other;
  other.goid = 33;  // nothing in flight there: no line
  detect::annotate_alert(s, other);
  EXPECT_TRUE(other.evidence.empty());
  model::Alert gc;
  gc.kind = "gc_stall";
  detect::annotate_alert(s, gc);
  ASSERT_EQ(gc.evidence.size(), 1u);
  EXPECT_EQ(gc.evidence[0],
            "annotations: tasks in flight: task 5 \"handleRequest span=00f067aa0ba902b7\" (G9, "
            "100.0 ms) in fanout; task 6 \"healthCheck\" (G11, 50.0 ms)");
}

// A detach (duty cycle, ceiling) forgets what is open: after the next attach, regions do
// not nest under one whose end was never seen, and its end counts as unmatched.
TEST(AnnotationsTracker, DetachForgetsOpenRegionsAndTasks) {
  Feed f;
  f.state(0, 0);
  f.create(1 * kMs, 9, 1, "t");
  f.begin(2 * kMs, 9, 1, "fanout");
  ss_annot_state paused{};
  paused.h.type = SS_EV_ANNOT_STATE;
  paused.h.size = sizeof paused;
  paused.state = SS_ANNOT_STATE_PAUSED;
  ASSERT_TRUE(f.t.on_record(&paused.h, sizeof paused));
  f.state(0, 0);
  f.begin(10 * kMs, 9, 2, "fanout");
  f.rend(12 * kMs, 9, 2, "fanout");
  f.rend(13 * kMs, 9, 1, "fanout");
  f.end(14 * kMs, 9, 1);
  auto s = f.t.frame(true, 0);
  EXPECT_EQ(region(s.total, "fanout/fanout"), nullptr);
  EXPECT_EQ(region(s.total, "fanout")->count, 1u);
  EXPECT_EQ(s.region_ends_unmatched, 1u);
  EXPECT_EQ(s.task_ends_unmatched, 1u);
  EXPECT_EQ(task(s.total, "t")->in_flight, 0u);
}

// Off-CPU intervals of a task's goroutines: counted for the task whose region is open on
// the goroutine, or that the goroutine created; clipped to the task's span; a goroutine
// that works for no task, and an interval without a goroutine, count for nothing.
TEST(AnnotationsTracker, SlowTasksCarryTheirGoroutinesOffCpu) {
  auto off = [](uint64_t start, uint64_t end, uint64_t goid, int nr, uint64_t rq) {
    ss_offcpu o{};
    o.h.type = SS_EV_OFFCPU;
    o.h.size = sizeof o;
    o.h.ts = end;
    o.start_ns = start;
    o.rq_ns = rq;
    o.reason = SS_OFF_SLEEP;
    o.syscall_nr = nr;
    o.go.flags = goid ? SS_GO_VALID : 0;
    o.go.goid = goid;
    return o;
  };
  Feed f;
  f.state(0, 0);
  f.create(100 * kMs, 9, 7, "req");
  f.t.on_offcpu(off(90 * kMs, 104 * kMs, 9, 35, 1 * kMs));    // creator: 4 ms inside the span
  f.begin(110 * kMs, 20, 7, "shard");
  f.t.on_offcpu(off(111 * kMs, 131 * kMs, 20, 35, 0));        // shard goroutine: 20 ms
  f.t.on_offcpu(off(111 * kMs, 140 * kMs, 21, 35, 0));        // a goroutine of no task
  f.t.on_offcpu(off(111 * kMs, 140 * kMs, 0, 35, 0));         // no goroutine on the M
  f.t.on_offcpu(off(132 * kMs, 134 * kMs, 20, -1, 2 * kMs));  // preempted-like, no syscall
  f.rend(135 * kMs, 20, 7, "shard");
  f.t.on_offcpu(off(136 * kMs, 137 * kMs, 20, 35, 0));        // shard closed: not the task's
  f.end(150 * kMs, 9, 7);
  auto s = f.t.frame(false, 1.0);
  ASSERT_EQ(s.slowest.size(), 1u);
  const auto& o = s.slowest[0].offcpu;
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].syscall_nr, 35);
  EXPECT_EQ(o[0].count, 2u);
  EXPECT_DOUBLE_EQ(o[0].ms, 24.0);
  EXPECT_DOUBLE_EQ(o[0].rq_ms, 1.0);
  EXPECT_EQ(o[1].syscall_nr, -1);
  EXPECT_DOUBLE_EQ(o[1].ms, 2.0);
  EXPECT_DOUBLE_EQ(o[1].rq_ms, 2.0);
  // JSON and text name the syscall.
  auto j = model::annotations_json(s);
  const auto& jo = j["slowest"][0]["offcpu"];
  ASSERT_EQ(jo.size(), 2u);
  EXPECT_EQ(jo[0]["syscall"], "nanosleep");
  EXPECT_EQ(jo[0]["reason"], "sleep");
  EXPECT_EQ(jo[0]["ms"], 24.0);
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  model::print_annotations_text(j, out);
  fclose(out);
  std::string text(buf, len);
  free(buf);
  EXPECT_NE(text.find("off-CPU meanwhile: nanosleep 24.000 ms x2 (run queue 1.000 ms)"),
            std::string::npos)
      << text;
}
