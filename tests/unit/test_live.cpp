// The pure parts of the live view (ui/live_state.h) and the cost line of ObserverSource:
// formatting, per-P time in state and tick rates, the alert history across frames,
// the panes' sort orders, column fitting, header wrapping and the pane layout.
#include <gtest/gtest.h>

#include "app/live_source.h"
#include "synthetic.h"
#include "ui/live_state.h"

using namespace schedscope;
using namespace schedscope::ui::live;

namespace {

constexpr uint64_t kSec = 1'000'000'000;

// A P with only the fields the live view's P pane tracks (no M, G or function).
go::PSample P(int id, uint32_t status, uint32_t sched, uint32_t sys, uint32_t runq = 0) {
  return synthetic::P(id, status, -1, 0, 0, sched, sys, "", runq);
}

model::Frame pframe(uint64_t ts, std::vector<go::PSample> ps) {
  model::Frame f;
  f.ts_ns = ts;
  f.interval_s = 1;
  f.elapsed_s = double(ts) / kSec;
  go::SchedSample s;
  s.gomaxprocs = int(ps.size());
  s.ps = std::move(ps);
  f.go = s;
  return f;
}

detect::Alert A(const char* kind, const char* sev, int p, uint32_t tid, uint64_t ts, uint64_t since,
                bool active = true) {
  detect::Alert a;
  a.kind = kind;
  a.severity = sev;
  a.p = p;
  a.tid = tid;
  a.ts_ns = ts;
  a.since_ns = since;
  a.active = active;
  a.message = std::string(kind) + " on " + std::to_string(tid);
  return a;
}

model::Frame aframe(uint64_t ts, std::vector<detect::Alert> alerts, bool final = false) {
  model::Frame f;
  f.ts_ns = ts;
  f.elapsed_s = double(ts) / kSec;
  f.alerts = std::move(alerts);
  f.final = final;
  return f;
}

}  // namespace

TEST(LiveFormat, Durations) {
  EXPECT_EQ(fmt_ms(0.42), "0.4ms");
  EXPECT_EQ(fmt_ms(850), "850ms");
  EXPECT_EQ(fmt_ms(12345), "12.3s");
  EXPECT_EQ(fmt_ms(303000), "5m03s");
  EXPECT_EQ(fmt_ms(7500000), "2h05m");
  EXPECT_EQ(fmt_ms(-3), "0.0ms");
  EXPECT_EQ(fmt_us(49), "49us");
  EXPECT_EQ(fmt_us(8254), "8.3ms");
  EXPECT_EQ(fmt_us(1.2e6), "1.20s");
  EXPECT_EQ(fmt_count(622), "622");
  EXPECT_EQ(fmt_count(12345), "12.3k");
  EXPECT_EQ(fmt_count(4.5e6), "4.5M");
  EXPECT_EQ(fmt_clock(42), "00:42");
  EXPECT_EQ(fmt_clock(723), "12:03");
  EXPECT_EQ(fmt_clock(3723), "1:02:03");
}

TEST(LiveFormat, FitPadWrap) {
  EXPECT_EQ(fit("main.rawBlocker", 4), "main");
  EXPECT_EQ(fit_tail("schedscope/workloads/internal/wl.CPUWorker", 12), "~l.CPUWorker");
  EXPECT_EQ(fit_tail("short", 12), "short");
  EXPECT_EQ(pad("7", 4, true), "   7");
  EXPECT_EQ(pad("abc", 5, false), "abc  ");
  EXPECT_EQ(pad("abcdef", 3, true), "abc");
  auto w = wrap_text("P0 stuck 4.1s: M3 blocked in read", 12);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0], "P0 stuck");
  EXPECT_EQ(w[1], "4.1s: M3");
  EXPECT_EQ(w[2], "blocked in");
  EXPECT_EQ(w[3], "read");
}

TEST(LiveFormat, WrapTextCutsLongWords) {
  auto w = wrap_text("abcdefghij xy", 4);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0], "abcd");
  EXPECT_EQ(w[1], "efgh");
  EXPECT_EQ(w[2], "ij");
  EXPECT_EQ(w[3], "xy");
  EXPECT_EQ(wrap_text("", 10).size(), 1u);
}

TEST(LivePTracker, TimeInStateAndRates) {
  PTracker t;
  t.update(pframe(1 * kSec, {P(0, 1, 100, 10), P(1, 1, 5, 3)}));
  EXPECT_FALSE(t.info(0).known);  // first sight: nothing to compare with
  t.update(pframe(2 * kSec, {P(0, 1, 150, 12), P(1, 1, 5, 3)}));
  auto i0 = t.info(0), i1 = t.info(1);
  EXPECT_TRUE(i0.known);
  EXPECT_DOUBLE_EQ(i0.sched_per_s, 50);
  EXPECT_DOUBLE_EQ(i0.syscall_per_s, 2);
  EXPECT_DOUBLE_EQ(i0.in_state_s, 0);  // changed at this frame
  EXPECT_FALSE(i0.since_first);
  EXPECT_DOUBLE_EQ(i1.sched_per_s, 0);
  EXPECT_DOUBLE_EQ(i1.in_state_s, 1);  // frozen since first seen: a lower bound
  EXPECT_TRUE(i1.since_first);
  t.update(pframe(4 * kSec, {P(0, 1, 150, 12), P(1, 2, 5, 4)}));
  i0 = t.info(0);
  i1 = t.info(1);
  EXPECT_DOUBLE_EQ(i0.in_state_s, 2);  // ticks frozen since the frame at 2s
  EXPECT_FALSE(i0.since_first);
  EXPECT_DOUBLE_EQ(i0.sched_per_s, 0);
  EXPECT_DOUBLE_EQ(i1.in_state_s, 0);  // status changed
  EXPECT_DOUBLE_EQ(i1.syscall_per_s, 0.5);
}

TEST(LivePTracker, WrapSeekBackAndGoneP) {
  PTracker t;
  t.update(pframe(1 * kSec, {P(0, 1, 0xfffffff0u, 0), P(1, 0, 0, 0)}));
  t.update(pframe(2 * kSec, {P(0, 1, 0x10, 0)}));  // schedtick wrapped; P1 gone
  EXPECT_DOUBLE_EQ(t.info(0).sched_per_s, 0x20);
  EXPECT_FALSE(t.info(1).known);
  EXPECT_EQ(t.all().size(), 1u);
  t.update(pframe(1 * kSec, {P(0, 1, 0x10, 0)}));  // a seek back starts over
  EXPECT_FALSE(t.info(0).known);
}

TEST(LiveAlertHistory, AccumulatesAcrossFrames) {
  AlertHistory h;
  // Raised at 3s (condition since 2s), still active at 4s, cleared at 5s (the detectors
  // carry it once more with active=false), gone afterwards.
  h.update(aframe(3 * kSec, {A("stuck_p", "critical", 0, 100, 3 * kSec, 2 * kSec)}));
  auto a = A("stuck_p", "critical", 0, 100, 3 * kSec, 2 * kSec);
  a.message = "longer now";
  h.update(aframe(4 * kSec, {a}));
  a.active = false;  // the cleared copy is the last active one
  h.update(aframe(5 * kSec, {a}));
  h.update(aframe(6 * kSec, {}));
  ASSERT_EQ(h.entries().size(), 1u);
  const auto& e = h.entries()[0];
  EXPECT_FALSE(e.active);
  EXPECT_DOUBLE_EQ(e.first_s, 3);
  EXPECT_DOUBLE_EQ(e.last_s, 4);
  EXPECT_EQ(e.alert.message, "longer now");
  // The same kind on the same P again later: a new episode, a new entry.
  h.update(aframe(9 * kSec, {A("stuck_p", "critical", 0, 100, 9 * kSec, 8 * kSec),
                             A("syscall_storm", "warning", -1, 0, 9 * kSec, 9 * kSec)}));
  ASSERT_EQ(h.entries().size(), 3u);
  EXPECT_EQ(h.active(), 2);
  EXPECT_EQ(h.active("critical"), 1);
  // An active alert missing from a later frame has cleared.
  h.update(aframe(10 * kSec, {A("syscall_storm", "warning", -1, 0, 9 * kSec, 9 * kSec)}));
  EXPECT_EQ(h.active(), 1);
  EXPECT_EQ(h.active("critical"), 0);
}

TEST(LiveAlertHistory, ReRaiseRightAfterClearingIsOneEpisode) {
  AlertHistory h;
  // Raised at 2s (since 1s), cleared at 3s, raised again at 4s with the condition
  // started at 2.5s (not after it was last seen active + one interval): one entry.
  auto a1 = A("stuck_p", "critical", 0, 100, 2 * kSec, 1 * kSec);
  h.update(aframe(2 * kSec, {a1}));
  a1.active = false;
  h.update(aframe(3 * kSec, {a1}));
  auto a2 = A("stuck_p", "critical", 0, 100, 4 * kSec, 2500'000'000);
  a2.message = "again";
  h.update(aframe(4 * kSec, {a2}));
  ASSERT_EQ(h.entries().size(), 1u);
  EXPECT_TRUE(h.entries()[0].active);
  EXPECT_EQ(h.entries()[0].raised, 2);
  EXPECT_DOUBLE_EQ(h.entries()[0].first_s, 2);
  EXPECT_EQ(h.entries()[0].alert.message, "again");
  // The final frame lists both raises: the older one does not overwrite the entry.
  a2.active = false;
  h.update(aframe(5 * kSec, {a1, a2}, true));
  ASSERT_EQ(h.entries().size(), 1u);
  EXPECT_EQ(h.entries()[0].alert.message, "again");
  // A raise long after (a new condition), or on another P: new entries.
  h.update(aframe(20 * kSec, {A("stuck_p", "critical", 0, 100, 20 * kSec, 19 * kSec),
                              A("stuck_p", "critical", 1, 101, 20 * kSec, 2 * kSec)}));
  EXPECT_EQ(h.entries().size(), 3u);
}

TEST(LiveAlertHistory, FinalFrameAndCap) {
  AlertHistory h(3);
  for (int i = 1; i <= 5; i++)
    h.update(aframe(uint64_t(i) * kSec, {A("blocked_m", "info", -1, uint32_t(i), uint64_t(i) * kSec,
                                           uint64_t(i) * kSec)}));
  ASSERT_EQ(h.entries().size(), 3u);  // the oldest cleared ones went
  EXPECT_EQ(h.entries().back().alert.tid, 5u);
  EXPECT_TRUE(h.entries().back().active);
  // The final frame lists every alert (det.all()): nothing is cleared by it.
  h.update(aframe(6 * kSec, {A("blocked_m", "info", -1, 5, 5 * kSec, 5 * kSec)}, true));
  EXPECT_TRUE(h.entries().back().active);
  EXPECT_EQ(h.entries().size(), 3u);
}

TEST(LiveSort, Threads) {
  model::Frame f;
  auto row = [](uint32_t tid, const char* state, double cpu, double sc_ms, const char* sc) {
    model::ThreadRow r;
    r.tid = tid;
    r.state = synthetic::state(state);
    r.oncpu_pct = cpu;
    r.syscall = sc;
    r.syscall_ms = sc_ms;
    r.state_ms = sc_ms;
    r.name = "t" + std::to_string(tid);
    return r;
  };
  f.threads = {row(30, "sleeping", 0, 5000, "read"), row(10, "running", 90, 0, ""),
               row(20, "sleeping", 0, 100, "futex"), row(40, "runnable", 5, 0, "")};
  auto tids = [&](const std::vector<size_t>& o) {
    std::vector<uint32_t> v;
    for (size_t i : o) v.push_back(f.threads[i].tid);
    return v;
  };
  EXPECT_EQ(tids(order_threads(f, 0, false)), (std::vector<uint32_t>{10, 40, 30, 20}));  // cpu%
  EXPECT_EQ(tids(order_threads(f, 1, false)), (std::vector<uint32_t>{30, 20, 10, 40}));  // for
  EXPECT_EQ(tids(order_threads(f, 2, false)), (std::vector<uint32_t>{10, 40, 20, 30}));  // state
  EXPECT_EQ(tids(order_threads(f, 6, false)), (std::vector<uint32_t>{10, 20, 30, 40}));  // tid
  EXPECT_EQ(tids(order_threads(f, 6, true)), (std::vector<uint32_t>{40, 30, 20, 10}));
  EXPECT_EQ(thread_sort_keys()[0], "cpu%");
}

TEST(LiveSort, PsSyscallsAlerts) {
  model::Frame f = pframe(2 * kSec, {P(1, 1, 5, 0, 3), P(0, 1, 9, 0, 0), P(2, 0, 1, 0, 1)});
  std::map<int32_t, PTracker::Info> info;
  info[0].in_state_s = 0;
  info[1].in_state_s = 7;
  info[2].in_state_s = 2;
  auto ids = [&](const std::vector<size_t>& o) {
    std::vector<int32_t> v;
    for (size_t i : o) v.push_back(f.go->ps[i].id);
    return v;
  };
  EXPECT_EQ(ids(order_ps(f, info, 0, false)), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(ids(order_ps(f, info, 2, false)), (std::vector<int32_t>{1, 2, 0}));  // for
  EXPECT_EQ(ids(order_ps(f, info, 4, false)), (std::vector<int32_t>{1, 2, 0}));  // runq
  EXPECT_EQ(ids(order_ps(f, info, 1, false)), (std::vector<int32_t>{2, 0, 1}));  // idle < running

  model::SyscallRow r1, r2, r3;
  r1.name = "read", r1.count = 5, r1.p99_us = 10;
  r2.name = "futex", r2.count = 50, r2.p99_us = 1;
  r3.name = "poll", r3.count = 5, r3.total_count = 9, r3.p99_us = 100;
  f.syscalls = {r1, r2, r3};
  auto names = [&](const std::vector<size_t>& o) {
    std::vector<std::string> v;
    for (size_t i : o) v.push_back(f.syscalls[i].name);
    return v;
  };
  EXPECT_EQ(names(order_syscalls(f, 0, false)),
            (std::vector<std::string>{"futex", "poll", "read"}));
  EXPECT_EQ(names(order_syscalls(f, 2, false)),
            (std::vector<std::string>{"poll", "read", "futex"}));
  EXPECT_EQ(names(order_syscalls(f, 6, false)),
            (std::vector<std::string>{"futex", "poll", "read"}));

  std::vector<AlertEntry> e(3);
  e[0].alert.kind = "blocked_m", e[0].alert.severity = "info", e[0].first_s = 1;
  e[1].alert.kind = "stuck_p", e[1].alert.severity = "critical", e[1].first_s = 2;
  e[2].alert.kind = "syscall_storm", e[2].alert.severity = "warning", e[2].first_s = 3,
  e[2].active = true;
  EXPECT_EQ(order_alerts(e, 0, false), (std::vector<size_t>{2, 1, 0}));  // newest first
  EXPECT_EQ(order_alerts(e, 1, false), (std::vector<size_t>{1, 2, 0}));  // severity
  EXPECT_EQ(order_alerts(e, 3, false), (std::vector<size_t>{2, 1, 0}));  // active first
  EXPECT_EQ(order_alerts(e, 0, true), (std::vector<size_t>{0, 1, 2}));
}

TEST(LiveColumns, HideLowPriorityThenFlex) {
  std::vector<Col> cols = {
      {"A", 5, true, 0}, {"B", 5, true, 2}, {"C", 5, true, 1}, {"F", 10, false, 0}};
  // All fit: 5+5+5+10 + 3 gaps = 28; the flexible column takes the rest.
  EXPECT_EQ(fit_columns(cols, 40, 3), (std::vector<int>{5, 5, 5, 22}));
  // 24 wide: B (prio 2) goes first.
  EXPECT_EQ(fit_columns(cols, 24, 3), (std::vector<int>{5, 0, 5, 12}));
  // 16 wide: C goes too; prio 0 columns stay even if they overflow.
  EXPECT_EQ(fit_columns(cols, 16, 3), (std::vector<int>{5, 0, 0, 10}));
  EXPECT_EQ(fit_columns(cols, 10, 3), (std::vector<int>{5, 0, 0, 10}));
  cols[1].width = 0;  // switched off
  EXPECT_EQ(fit_columns(cols, 40, -1), (std::vector<int>{5, 0, 5, 10}));
}

TEST(LiveColumns, WrapFields) {
  std::vector<std::string> f = {"aaaa", "bbb", "cc", "", "dddddddddddd"};
  auto l = wrap_fields(f, 10);
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0], (std::vector<size_t>{0, 1}));  // "aaaa  bbb" = 9
  EXPECT_EQ(l[1], (std::vector<size_t>{2}));     // empty fields are skipped
  EXPECT_EQ(l[2], (std::vector<size_t>{4}));     // too wide: a line of its own
}

TEST(LiveLayout, AdaptsToSize) {
  int want[kPanes] = {4, 30, 10, 12};
  // 160x50 minus a 6-line header and the footer: side-by-side bottom.
  Rect area{6, 0, 43, 160};
  Layout L = layout_panes(area, kThreads, false, want);
  for (int p = 0; p < kPanes; p++) EXPECT_TRUE(L.shown[p]);
  EXPECT_EQ(L.pane[kPs].h, 4);
  EXPECT_EQ(L.pane[kSyscalls].y, L.pane[kAlerts].y);
  EXPECT_GT(L.pane[kAlerts].x, L.pane[kSyscalls].x + L.pane[kSyscalls].w - 1);
  EXPECT_EQ(L.pane[kThreads].y, L.pane[kPs].y + L.pane[kPs].h);
  EXPECT_EQ(L.pane[kThreads].h + L.pane[kPs].h + L.pane[kSyscalls].h, 43);
  // 80x24: stacked, every pane at least 3 lines, all inside the area.
  area = {5, 0, 18, 80};
  L = layout_panes(area, kThreads, false, want);
  int sum = 0;
  for (int p = 0; p < kPanes; p++) {
    EXPECT_TRUE(L.shown[p]);
    EXPECT_GE(L.pane[p].h, 3);
    EXPECT_EQ(L.pane[p].w, 80);
    sum += L.pane[p].h;
  }
  EXPECT_EQ(sum, 18);
  EXPECT_EQ(L.pane[kAlerts].y + L.pane[kAlerts].h, 23);
  // Maximized or too small: only the focused pane.
  L = layout_panes(area, kSyscalls, true, want);
  EXPECT_TRUE(L.shown[kSyscalls]);
  EXPECT_FALSE(L.shown[kThreads]);
  EXPECT_EQ(L.pane[kSyscalls].h, 18);
  L = layout_panes({3, 0, 8, 80}, kAlerts, false, want);
  EXPECT_TRUE(L.shown[kAlerts]);
  EXPECT_FALSE(L.shown[kPs]);
  // Few threads: the spare lines go to the bottom panes.
  int few[kPanes] = {4, 5, 10, 12};
  L = layout_panes({6, 0, 43, 100}, kThreads, false, few);
  EXPECT_EQ(L.pane[kThreads].h, 5);
  EXPECT_EQ(L.pane[kPs].h + L.pane[kThreads].h + L.pane[kSyscalls].h + L.pane[kAlerts].h, 43);
}

TEST(LiveCost, Line) {
  std::string s =
      app::ObserverSource::cost_line({"ss_sched_switch", "ss_sched_wakeup"}, true, 1.0, 87.4, 3, 1);
  EXPECT_EQ(s,
            "probes: 2 BPF programs (sched_switch sched_wakeup) + P table read from /proc/PID/mem "
            "every 1.0s; ring buffer 87 events/s; drops 3 (+1 now)");
  EXPECT_EQ(app::ObserverSource::cost_line({"ss_sys_enter"}, false, 1, -1, 0, 0),
            "probes: 1 BPF program (sys_enter); drops 0");
}

// --annotations in pane 3: the regions and task types sorted by each key, and the slowest
// tasks laid out as a task line followed by its region tree, logs and off-CPU time.
TEST(LiveAnnotations, RegionAndTaskOrders) {
  std::vector<annotations::RegionRow> r(3);
  r[0].path = "handle", r[0].count = 10, r[0].total_ms = 50, r[0].p99_ms = 9, r[0].avg_ms = 5;
  r[1].path = "handle/parse", r[1].count = 30, r[1].total_ms = 6, r[1].p99_ms = 1, r[1].avg_ms = 0.2;
  r[2].path = "encode", r[2].count = 10, r[2].total_ms = 50, r[2].p99_ms = 20, r[2].avg_ms = 5;
  auto paths = [&](const std::vector<size_t>& o) {
    std::vector<std::string> v;
    for (size_t i : o) v.push_back(r[i].path);
    return v;
  };
  // total (ties: count, then path), count, p99, path; reversed
  EXPECT_EQ(paths(order_regions(r, 0, false)),
            (std::vector<std::string>{"encode", "handle", "handle/parse"}));
  EXPECT_EQ(paths(order_regions(r, 1, false)),
            (std::vector<std::string>{"handle/parse", "encode", "handle"}));
  EXPECT_EQ(paths(order_regions(r, 3, false)),
            (std::vector<std::string>{"encode", "handle", "handle/parse"}));
  EXPECT_EQ(paths(order_regions(r, 5, false)),
            (std::vector<std::string>{"encode", "handle", "handle/parse"}));
  EXPECT_EQ(paths(order_regions(r, 1, true)),  // fewest first; ties keep the path order
            (std::vector<std::string>{"encode", "handle", "handle/parse"}));
  EXPECT_EQ(region_sort_keys().size(), 6u);

  std::vector<annotations::TaskRow> t(2);
  t[0].type = "healthCheck", t[0].started = 100, t[0].p99_ms = 0.5, t[0].in_flight = 0;
  t[1].type = "handleRequest span=<id>", t[1].started = 20, t[1].p99_ms = 40, t[1].in_flight = 3;
  auto types = [&](const std::vector<size_t>& o) {
    std::vector<std::string> v;
    for (size_t i : o) v.push_back(t[i].type);
    return v;
  };
  EXPECT_EQ(types(order_tasks(t, 0, false)),
            (std::vector<std::string>{"handleRequest span=<id>", "healthCheck"}));
  EXPECT_EQ(types(order_tasks(t, 1, false)),
            (std::vector<std::string>{"healthCheck", "handleRequest span=<id>"}));
  EXPECT_EQ(types(order_tasks(t, 2, false)),
            (std::vector<std::string>{"handleRequest span=<id>", "healthCheck"}));
  EXPECT_STREQ(pane3_name(Pane3::kRegions), "Regions");
  EXPECT_STREQ(pane3_name(Pane3::kSlowest), "Slowest tasks");
}

TEST(LiveAnnotations, SlowestTaskRowsAreItsTreeLogsAndOffCpu) {
  annotations::SlowTask s;
  s.id = 7, s.name = "handleRequest span=00f067aa0ba902b7", s.goid = 21, s.ms = 12.5;
  s.regions = {{"parse", 21, 0.1, 1.0, 0, 0}, {"validate", 21, 0.2, 0.5, 1, 0},
               {"shard", 40, 2.0, 8.0, 1, 1}};
  s.logs = {{"cache", "miss", 21, 1.5}};
  annotations::OffCpuRow o;
  o.reason = SS_OFF_SLEEP, o.syscall_nr = 35 /* nanosleep */, o.count = 1, o.ms = 6, o.rq_ms = 0.25;
  s.offcpu = {o};
  auto rows = slowest_rows({s});
  ASSERT_EQ(rows.size(), 1u + 3 + 1 + 1);
  EXPECT_TRUE(rows[0].task);
  EXPECT_EQ(rows[0].cells[0], "7");
  EXPECT_EQ(rows[0].cells[1], "handleRequest span=00f067aa0ba902b7");  // searchable span id
  EXPECT_EQ(rows[0].cells[5], "12.500");
  EXPECT_EQ(rows[1].cells[1], "  parse");
  EXPECT_EQ(rows[2].cells[1], "    validate");  // nested one deeper
  EXPECT_EQ(rows[3].cells[2], "G40");
  EXPECT_EQ(rows[3].cells[3], "1");
  EXPECT_EQ(rows[4].cells[1], "  log cache: miss");
  EXPECT_EQ(rows[4].cells[4], "1.500");
  EXPECT_NE(rows[5].cells[1].find("off-CPU"), std::string::npos);
  EXPECT_NE(rows[5].cells[1].find("nanosleep"), std::string::npos);
  EXPECT_NE(rows[5].cells[1].find("run-queue 0.250 ms"), std::string::npos);
  EXPECT_EQ(rows[5].cells[5], "6.000");
  for (const auto& row : rows) EXPECT_EQ(row.cells.size(), 6u);
}
