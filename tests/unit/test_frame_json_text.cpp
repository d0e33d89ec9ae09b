// frame_json_text writes the thread rows and creations without a DOM: its text must be
// byte for byte what dump_json(frame_to_json(f)) writes, whatever the frame holds.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "model/frame_json.h"
#include "util/json_out.h"

using namespace schedscope;

namespace {

model::Frame sample_frame(bool all_syscalls, bool final) {
  model::Frame f;
  f.elapsed_s = 3.14159;
  f.interval_s = 1.0049;
  f.final = final;
  f.target.pid = 4242;
  f.target.comm = "svc";
  f.target.exe = "/usr/bin/svc \"quoted\"";
  f.target.all_syscalls = all_syscalls;
  f.target.go_version = "go1.19";
  f.threads_alive = 3;
  const char* names[] = {"plain", "tab\there \"q\" \\ back", "bad\xff\xfeutf8", "caf\xc3\xa9", ""};
  for (int i = 0; i < 5; i++) {
    model::ThreadRow r;
    r.tid = 100 + uint32_t(i);
    r.name = names[i];
    r.state = model::ThreadState(i % 6);
    r.syscall = i % 2 ? "futex" : "";
    r.syscall_ms = 12.345 * i;
    r.state_ms = i == 3 ? std::numeric_limits<double>::quiet_NaN() : 0.005 * i;
    r.oncpu_pct = i == 4 ? std::numeric_limits<double>::infinity() : 100.0 / 3 * i;
    r.offcpu_ms = {1.0 * i, 2.25, -0.0, 1e-9};
    r.rq_p50_us = 7;
    r.rq_p99_us = 123456789.987;
    r.syscalls_per_s = 1e6 / 7;
    r.switches = uint64_t(1) << 40;
    r.m = i == 0 ? -1 : i;
    r.p = i == 1 ? -1 : i;
    r.goid = UINT64_MAX - uint64_t(i);
    r.p_from_oldp = i == 2;
    r.incgo = i == 3;
    r.created_by = i == 4 ? 0 : 99;
    if (i % 2) r.go_func = "main.worker\x01";
    if (i != 0) {
      r.blocked_in["nanosleep"] = {3, 301.5, 100.25};
      r.blocked_in["read\"x"] = {1, 2, 2};
    }
    f.threads.push_back(r);
  }
  for (int i = 0; i < 4; i++) {
    model::Frame_Creation c;
    c.tid = 200 + uint32_t(i);
    c.parent_tid = 100;
    c.parent_goid = i == 1 ? 0 : 17;
    c.parent_m = i == 2 ? -1 : 3;
    if (i == 0)
      c.set_stack({"runtime.newm /go/proc.go:1", "main.spawn /src/\xe2\x82\xac.go:42"},
                  "main.spawn /src/main.go:42");
    else if (i != 3)
      c.set_stack({}, "main.spawn /src/main.go:42");
    c.stack_skipped = i == 1;
    f.creations.push_back(c);
  }
  f.creations_total = 1234;
  f.exits_total = 1200;
  f.creations_per_s = 22000.5;
  f.switches_per_s = 17000.25;
  model::SyscallRow s;
  s.name = "futex";
  s.nr = 202;
  s.count = 5;
  f.syscalls.push_back(s);
  return f;
}

}  // namespace

TEST(FrameJsonText, SameTextAsTheDom) {
  for (bool all : {false, true})
    for (bool final : {false, true}) {
      model::Frame f = sample_frame(all, final);
      EXPECT_EQ(model::frame_json_text(f), dump_json(model::frame_to_json(f)))
          << "all_syscalls=" << all << " final=" << final;
    }
}

TEST(FrameJsonText, SameTextWithTheMList) {
  model::Frame f = sample_frame(false, false);
  go::SchedSample g;
  g.gomaxprocs = 2;
  go::PSample p;
  p.id = 0;
  p.func = "main.worker";
  g.ps.push_back(p);
  const char* funcs[] = {"", "main.steady", "odd \"q\"\x01", "caf\xc3\xa9", "bad\xff"};
  for (int i = 0; i < 5; i++) {
    go::MSample m;
    m.id = i == 0 ? -1 : i * 1000;
    m.tid = 30000 + i;
    m.p = i == 1 ? 0 : -1;
    m.oldp = i == 2 ? 1 : -1;
    m.curg_goid = i == 3 ? UINT64_MAX : uint64_t(i);
    m.curg_func = funcs[i];
    m.spinning = i == 1;
    m.blocked = i % 2 == 0;
    m.incgo = i == 3;
    m.sysmon = i == 4;
    m.lockedg_goid = i == 2 ? 77 : 0;
    g.ms.push_back(m);
  }
  f.go = g;
  EXPECT_EQ(model::frame_json_text(f), dump_json(model::frame_to_json(f)));
  f.go->ms.clear();
  EXPECT_EQ(model::frame_json_text(f), dump_json(model::frame_to_json(f)));
}

TEST(FrameJsonText, EmptyFrame) {
  model::Frame f;
  EXPECT_EQ(model::frame_json_text(f), dump_json(model::frame_to_json(f)));
}

TEST(FrameJsonText, ParsesWithTheRowsInIt) {
  model::Frame f = sample_frame(true, false);
  auto j = parse_json_bounded(reinterpret_cast<const uint8_t*>(model::frame_json_text(f).data()),
                              model::frame_json_text(f).size());
  ASSERT_TRUE(j.has_value());
  ASSERT_EQ((*j)["threads"].size(), 5u);
  EXPECT_EQ((*j)["threads"][1]["name"], "tab\there \"q\" \\ back");
  EXPECT_EQ((*j)["threads"][2]["p_detached"], true);
  EXPECT_TRUE((*j)["threads"][3]["state_ms"].is_null());
  EXPECT_EQ((*j)["creations"].size(), 4u);
  EXPECT_EQ((*j)["creations"][0]["stack"].size(), 2u);
  EXPECT_EQ((*j)["creations"][1]["stack_skipped"], true);
}
