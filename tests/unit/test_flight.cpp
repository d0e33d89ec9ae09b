// The flight recorder: its window (record/flight.h), what it keeps, what a dump contains,
// that a dump reads back as an ordinary recording; and app::FlightRecorder over one
// observed process (what top and each target of the agent run).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>

#include "app/flight.h"
#include "record/flight.h"
#include "record/reader.h"
#include "record/rotate.h"

using namespace schedscope;
using nlohmann::json;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/ss-flight-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { (void)system(("rm -rf " + path).c_str()); }
};

constexpr uint64_t kSec = 1'000'000'000ull;

// Frame i: one kernel snapshot at t0 + i s with one thread, one off-CPU event, a marker.
void feed_frame(record::FlightBuffer& b, int i, size_t padding = 0) {
  probe::KernelSnapshot s;
  s.ts_ns = (100 + uint64_t(i)) * kSec;
  probe::ThreadEntry t{};
  t.tid = 1000;
  s.threads.push_back(t);
  b.kernel(s);
  ss_offcpu e{};
  e.h.type = SS_EV_OFFCPU;
  e.h.size = sizeof e;
  e.h.ts = s.ts_ns - kSec / 2;
  e.tid = 1000;
  b.raw(&e.h, sizeof e);
  if (padding) b.name(1000 + uint32_t(i), std::string(padding, 'x'));
  b.frame({{"mode", i == 0 ? "baseline" : "shown"}, {"ts_ns", s.ts_ns}, {"elapsed_s", double(i)}});
}

struct Summary {
  json meta, trailer;
  std::vector<std::string> modes;
  std::vector<uint64_t> ts;
  std::map<uint32_t, std::string> names;
  std::map<uint64_t, std::string> syms;
  uint64_t raw = 0, kernel = 0, baseline_value = 0;
  bool has_baseline_value = false;
  json info;
};

Summary read_back(const std::string& path) {
  auto rec = record::Recording::open(path);
  EXPECT_TRUE(rec) << (rec ? "" : rec.error().message);
  Summary s;
  if (!rec) return s;
  s.meta = rec->meta();
  s.trailer = rec->trailer();
  record::Item it;
  auto iter = rec->records();
  while (iter.next(&it)) {
    switch (it.kind) {
      case record::kRecFrame:
        s.modes.push_back(it.json.value("mode", ""));
        s.ts.push_back(it.json.value("ts_ns", uint64_t(0)));
        break;
      case record::kRecName: s.names[it.tid] = it.name; break;
      case record::kRecSymbols:
        for (const auto& e : it.symbols) s.syms[e.pc] = e.frame;
        break;
      case record::kRecRaw: s.raw++; break;
      case record::kRecKernel: s.kernel++; break;
      case record::kRecInfo: s.info = it.json; break;
      case record::kRecGoBaseline:
        s.has_baseline_value = true;
        s.baseline_value = it.value;
        break;
      default: break;
    }
  }
  EXPECT_TRUE(iter.warning().empty()) << iter.warning();
  return s;
}

}  // namespace

TEST(Flight, KeepsTheWindowPlusABaselineFrame) {
  record::FlightBuffer b({3.0, size_t(64) << 20});
  for (int i = 0; i < 10; i++) feed_frame(b, i);
  // Frames at 100..109 s: the shown frames 107..109 cover the last 3 s; 106 stays as the
  // baseline they are measured from.
  EXPECT_EQ(b.frames(), 4u);
  EXPECT_DOUBLE_EQ(b.span_s(), 3.0);
  EXPECT_EQ(b.trimmed_for_bytes(), 0u);
}

TEST(Flight, DumpIsASelfContainedRecording) {
  TempDir d;
  record::FlightBuffer b({3.0, size_t(64) << 20});
  // State recorded long before the window: it must still be in the dump.
  b.name(42, "worker-42");
  b.symbols({{0x401000, false, "main.work /src/main.go:10", true, "main.work"}});
  b.goroutine_baseline(17);
  b.info({{"gomaxprocs", 4}});
  for (int i = 0; i < 10; i++) feed_frame(b, i);
  json meta = {{"format_version", record::kFormatVersion}, {"capture", {{"kind", "flight"}}}};
  json fin = {{"mode", "final"}, {"alerts", json::array()}};
  auto r = b.dump(d.path + "/x.sched", meta, fin, {{"drops", 0}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->frames, 3u);
  EXPECT_EQ(r->events, 4u);
  EXPECT_DOUBLE_EQ(r->span_s, 3.0);
  struct stat st {};
  ASSERT_EQ(stat(r->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Summary s = read_back(r->path);
  EXPECT_EQ(s.meta["capture"]["kind"], "flight");
  ASSERT_TRUE(s.trailer.is_object());
  EXPECT_EQ(s.trailer["frames"], 3);
  EXPECT_EQ(s.trailer["events"], 4);
  // The oldest frame kept became the baseline; the file ends with the final marker.
  std::vector<std::string> want = {"baseline", "shown", "shown", "shown", "final"};
  EXPECT_EQ(s.modes, want);
  EXPECT_EQ(s.ts.front(), 106 * kSec);
  EXPECT_EQ(s.ts[3], 109 * kSec);
  EXPECT_EQ(s.kernel, 4u);
  EXPECT_EQ(s.raw, 4u);
  EXPECT_EQ(s.names[42], "worker-42");
  EXPECT_EQ(s.syms[0x401000], "main.work /src/main.go:10");
  EXPECT_TRUE(s.has_baseline_value);
  EXPECT_EQ(s.baseline_value, 17u);
  EXPECT_EQ(s.info["gomaxprocs"], 4);
}

TEST(Flight, MemoryCapDropsTheOldestFramesFirst) {
  // ~100 KB of names per frame against a 350 KB cap: at most 3 frames can stay.
  record::FlightBuffer b({60.0, 350u << 10});
  for (int i = 0; i < 8; i++) feed_frame(b, i, 100u << 10);
  EXPECT_LE(b.bytes(), size_t(350u << 10));
  EXPECT_GE(b.frames(), 2u);
  EXPECT_EQ(b.frames() + b.trimmed_for_bytes(), 8u);
  TempDir d;
  auto r = b.dump(d.path + "/y.sched", {{"format_version", record::kFormatVersion}},
                  {{"mode", "final"}}, json::object());
  ASSERT_TRUE(r) << r.error().message;
  Summary s = read_back(r->path);
  EXPECT_EQ(s.ts.front(), (100 + 8 - b.frames()) * kSec);  // the newest frames survived
}

TEST(Flight, DumpIntoAMissingDirectoryFails) {
  record::FlightBuffer b({3.0, size_t(64) << 20});
  feed_frame(b, 0);
  auto r = b.dump("/nonexistent-dir/z.sched", {{"format_version", record::kFormatVersion}},
                  {{"mode", "final"}}, json::object());
  EXPECT_FALSE(r);
}

TEST(Flight, AttachMarkerWithoutATimeDoesNotStretchTheSpan) {
  // The attach-time baseline marker has no ts_ns: it takes the time of the kernel
  // snapshot before it, and without one the span starts at the oldest frame with a time.
  record::FlightBuffer b({30.0, size_t(64) << 20});
  b.frame({{"mode", "baseline"}});
  EXPECT_EQ(b.span_s(), 0.0);
  for (int i = 1; i < 4; i++) feed_frame(b, i);
  EXPECT_EQ(b.frames(), 4u);
  EXPECT_DOUBLE_EQ(b.span_s(), 2.0);  // from the oldest frame with a time, not from 0
  record::FlightBuffer c({30.0, size_t(64) << 20});
  probe::KernelSnapshot s;
  s.ts_ns = 100 * kSec;
  c.kernel(s);
  c.frame({{"mode", "baseline"}});
  for (int i = 1; i < 4; i++) feed_frame(c, i);
  EXPECT_DOUBLE_EQ(c.span_s(), 3.0);
}

namespace {
// Any observed process (app::Observed): the Observer of top, or one target of the agent.
class FakeObserved : public app::Observed {
 public:
  model::TargetInfo t;
  std::vector<model::Inputs*> taps;
  bool gone = false;
  [[nodiscard]] const model::TargetInfo& target() const override { return t; }
  app::GoAttach* go() override { return nullptr; }
  void add_tap(model::Inputs* x) override { taps.push_back(x); }
  [[nodiscard]] bool target_gone() const override { return gone; }
  [[nodiscard]] bool stopped() const override { return false; }
};

std::vector<std::string> sched_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& f : record::list_recordings(dir)) out.push_back(f.path.substr(dir.size() + 1));
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

// The flight recorder as the agent runs it, one per target: it taps the process, writes a
// file named after the pid and the alert kinds when an alert is raised, says which alerts
// a file covers, waits out the window before the next file, and writes the one owed at
// the end.
TEST(Flight, RecorderOfOneTargetNamesItsFilesAfterThePidAndTheAlerts) {
  TempDir d;
  FakeObserved o;
  o.t.pid = 4242;
  o.t.comm = "svc";
  app::FlightRecorderOptions opt;
  opt.window_s = 3;
  opt.dir = d.path;
  opt.kind_in_name = true;
  app::ObserveOptions obs;
  obs.pid = 4242;
  app::FlightRecorder fr(opt, obs, detect::DetectOptions{});
  std::vector<std::pair<std::string, std::vector<detect::Alert>>> written;
  fr.on_written = [&](const std::string& p, const std::vector<detect::Alert>& t) { written.emplace_back(p, t); };
  fr.attach(o);
  ASSERT_EQ(o.taps.size(), 1u);
  auto alert = [](const char* kind, uint64_t ts) {
    detect::Alert a;
    a.kind = kind;
    a.ts_ns = ts;
    a.p = 0;
    a.tid = 7;
    return a;
  };
  auto step = [&](int i, std::vector<detect::Alert> alerts) {
    probe::KernelSnapshot s;
    s.ts_ns = (100 + uint64_t(i)) * kSec;
    probe::ThreadEntry t{};
    t.tid = 7;
    s.threads.push_back(t);
    o.taps[0]->kernel(s);
    model::Frame f;
    f.ts_ns = s.ts_ns;
    f.elapsed_s = i;
    f.interval_s = 1;
    f.alerts = alerts;
    return fr.after_frame(o, f, alerts);
  };
  for (int i = 0; i < 5; i++) step(i, {});
  EXPECT_TRUE(sched_files(d.path).empty());

  const auto stuck = alert("stuck_p", 105 * kSec);
  auto said = step(5, {stuck});
  ASSERT_EQ(written.size(), 1u);
  auto files = sched_files(d.path);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].rfind("schedscope-", 0), 0u) << files[0];
  EXPECT_NE(files[0].find("-4242-stuck_p-"), std::string::npos) << files[0];
  EXPECT_EQ(written[0].first, d.path + "/" + files[0]);
  ASSERT_EQ(written[0].second.size(), 1u);
  EXPECT_EQ(written[0].second[0].kind, "stuck_p");
  ASSERT_FALSE(said.empty());
  EXPECT_NE(said.back().find("wrote " + written[0].first), std::string::npos) << said.back();
  Summary s = read_back(written[0].first);
  EXPECT_EQ(s.meta["capture"]["kind"], "flight");
  EXPECT_EQ(s.meta["target"]["pid"], 4242);

  // Still active at the next frames: not a new alert. A new one within the window waits.
  step(6, {stuck});
  const auto storm = alert("syscall_storm", 107 * kSec);
  step(7, {stuck, storm});
  EXPECT_EQ(written.size(), 1u);
  // The end: the file still owed.
  o.gone = true;
  fr.finish(o, {stuck, storm});
  ASSERT_EQ(written.size(), 2u);
  ASSERT_EQ(written[1].second.size(), 1u);
  EXPECT_EQ(written[1].second[0].kind, "syscall_storm");
  EXPECT_NE(written[1].first.find("-4242-syscall_storm-"), std::string::npos) << written[1].first;
  EXPECT_EQ(sched_files(d.path).size(), 2u);
}
