// Two targets observed side by side in one process: each has its own model, detectors and
// pipeline, fed from synthetic ring-buffer records, kernel snapshots and Go samples,
// stepped in turns. Target A has a stuck P (its M blocked in read() with the P's ticks
// frozen); target B is healthy. The alerts go to A only, and what each was fed stays its
// own (thread creations, thread names): nothing is shared per target in userspace.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "detect/pipeline.h"
#include "model/model.h"
#include "synthetic.h"

using namespace schedscope;
using namespace schedscope::synthetic;

namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kT0 = 100 * kSec;  // monotonic time of the first snapshot

ss_thread_new thread_new(uint64_t ts, uint32_t tid, uint32_t parent, const char* comm) {
  ss_thread_new e{};
  e.h.type = SS_EV_THREAD_NEW;
  e.h.size = sizeof e;
  e.h.ts = ts;
  e.tid = tid;
  e.parent_tid = parent;
  std::strncpy(e.comm, comm, sizeof e.comm - 1);
  return e;
}

// One synthetic target: a Go process with two Ps, each on its own M, as a frame source.
// stuck: P1's M (tid base+2) sits in read() since kT0 and P1's ticks never move; else
// both Ps advance and tid base+2 waits in epoll_wait for a few ms at a time.
class SyntheticTarget : public detect::FrameFeed {
 public:
  SyntheticTarget(int pid, bool stuck, int intervals, int creations)
      : pid_(pid), stuck_(stuck), intervals_(intervals), creations_(creations),
        model_(target_info(pid)) {}

  Expected<detect::Pulled> pull() override {
    detect::Pulled out;
    if (step_ > intervals_) return out;
    feed(step_++);
    if (step_ == 1) {  // the baseline: the start of every delta, not shown
      (void)model_.frame();
      return pull();
    }
    out.kind = detect::Pulled::kShown;
    out.frame = model_.frame();
    return out;
  }
  model::Frame final_frame() override { return model_.frame(true); }
  [[nodiscard]] std::string end_reason() const override { return "end of script"; }
  model::Model& model() { return model_; }

 private:
  static model::TargetInfo target_info(int pid) {
    model::TargetInfo t;
    t.pid = pid;
    t.comm = "svc" + std::to_string(pid);
    t.go_version = "go1.22.0";
    t.go_enabled = true;
    return t;
  }
  [[nodiscard]] uint32_t tid(int i) const { return uint32_t(pid_ + i); }

  void feed(int step) {
    const uint64_t ts = kT0 + uint64_t(step) * kSec;
    // Thread creations of this interval: ring-buffer records of this target only.
    if (step > 0)
      for (int i = 0; i < creations_; i++) {
        auto e = thread_new(ts - kSec / 2, tid(100 + step * 10 + i), tid(1), "worker");
        model_.on_record(&e.h, sizeof e);
      }
    probe::KernelSnapshot snap;
    snap.ts_ns = ts;
    auto running = kernel_thread(uint32_t(pid_), "main");
    running.state = SS_TS_ONCPU;
    running.last_switch_ns = ts - kSec / 4;
    running.oncpu_ns = uint64_t(step) * kSec / 2;
    snap.threads.push_back({tid(1), running});
    auto blocked = kernel_thread(uint32_t(pid_), "blocker");
    blocked.state = SS_TS_OFFCPU;
    blocked.off_reason = SS_OFF_SLEEP;
    blocked.block_nr = stuck_ ? 0 /* read */ : 232 /* epoll_wait */;
    blocked.block_since_ns = stuck_ ? kT0 : ts - 5'000'000;
    blocked.last_switch_ns = blocked.block_since_ns;
    snap.threads.push_back({tid(2), blocked});
    model_.on_kernel(snap);
    if (step == 0) model_.set_thread_name(tid(2), stuck_ ? "reader" : "poller");

    go::SchedSample s;
    s.ts_ns = ts;
    s.gomaxprocs = 2;
    s.maxmcount = 10000;
    const auto tick = uint32_t(10 + step * 7);
    s.ps = {P(0, 1, 0, int(tid(1)), 7, tick, 3),
            P(1, 1, 1, int(tid(2)), 18, stuck_ ? 50 : tick, 4, "main.blocker")};
    s.ms = {M(0, int(tid(1)), 0, -1, 7, "main.worker"),
            M(1, int(tid(2)), 1, -1, 18, "main.blocker")};
    model_.on_go_sample(s);
  }

  int pid_;
  bool stuck_;
  int intervals_, creations_;
  int step_ = 0;
  model::Model model_;
};

// Collects what the pipeline hands to its sinks.
struct Collect : detect::FrameSink {
  std::vector<model::Frame> shown;
  std::optional<model::Frame> final;
  void on_shown(const model::Frame& f, const detect::Pipeline&) override { shown.push_back(f); }
  void on_final(const model::Frame& f, const detect::Pipeline&) override { final = f; }
};

std::vector<const detect::Alert*> of_kind(const std::vector<detect::Alert>& alerts,
                                          const std::string& kind) {
  std::vector<const detect::Alert*> out;
  for (const auto& a : alerts)
    if (a.kind == kind) out.push_back(&a);
  return out;
}

}  // namespace

TEST(TwoTargets, AlertsGoToTheirOwnTargetWithoutCrossTalk) {
  SyntheticTarget a(1000, /*stuck=*/true, 4, /*creations=*/3);
  SyntheticTarget b(2000, /*stuck=*/false, 4, /*creations=*/1);
  detect::Pipeline pa(a, detect::DetectOptions{});
  detect::Pipeline pb(b, detect::DetectOptions{});
  Collect ca, cb;
  pa.add_sink(&ca);
  pb.add_sink(&cb);
  // In turns, as one process watching both would.
  for (int i = 0; i < 10; i++) {
    auto fa = pa.step();
    auto fb = pb.step();
    ASSERT_TRUE(fa && fb);
    if (!*fa && !*fb) break;
  }
  EXPECT_EQ(pa.end_reason(), "end of script");
  EXPECT_EQ(pb.end_reason(), "end of script");
  ASSERT_EQ(ca.shown.size(), 4u);
  ASSERT_EQ(cb.shown.size(), 4u);

  // A: stuck P1 from the second shown frame on (first sight has no tick history), with
  // A's own M, thread and goroutine.
  EXPECT_TRUE(of_kind(ca.shown[0].alerts, "stuck_p").empty());
  for (size_t i = 1; i < ca.shown.size(); i++) {
    const auto& f = ca.shown[i];
    EXPECT_EQ(f.target.pid, 1000);
    auto stuck = of_kind(f.alerts, "stuck_p");
    ASSERT_EQ(stuck.size(), 1u) << "frame " << i;
    EXPECT_EQ(stuck[0]->p, 1);
    EXPECT_EQ(stuck[0]->m, 1);
    EXPECT_EQ(stuck[0]->tid, 1002u);
    EXPECT_EQ(stuck[0]->goid, 18u);
    EXPECT_EQ(stuck[0]->syscall, "read");
    EXPECT_TRUE(stuck[0]->active);
    // Blocked since kT0: the frame at kT0 + (i + 1) s.
    EXPECT_DOUBLE_EQ(stuck[0]->duration_ms, double(i + 1) * 1000);
    for (const auto& al : f.alerts) EXPECT_LT(al.tid, 2000u) << al.message;
  }
  // B: healthy, nothing raised or noticed, and none of A's threads in its frames.
  for (const auto& f : cb.shown) {
    EXPECT_EQ(f.target.pid, 2000);
    EXPECT_TRUE(f.alerts.empty()) << f.alerts.front().message;
    EXPECT_TRUE(f.notices.empty());
    for (const auto& r : f.threads) EXPECT_GE(r.tid, 2000u);
  }

  // The final frames: every alert raised, per target.
  const model::Frame& fa = pa.finish();
  const model::Frame& fb = pb.finish();
  ASSERT_TRUE(ca.final && cb.final);
  EXPECT_EQ(of_kind(fa.alerts, "stuck_p").size(), 1u);
  EXPECT_TRUE(fb.alerts.empty());
  EXPECT_EQ(pa.detectors().all().size(), 1u);
  EXPECT_TRUE(pb.detectors().all().empty());

  // What each model was fed stays its own: A saw 3 creations an interval, B one.
  EXPECT_EQ(fa.creations_total, 12u);
  EXPECT_EQ(fb.creations_total, 4u);
  for (const auto& c : fa.creations) EXPECT_EQ(c.parent_tid, 1001u);
  for (const auto& c : fb.creations) EXPECT_EQ(c.parent_tid, 2001u);
  auto name_of = [](const model::Frame& f, uint32_t tid) {
    for (const auto& r : f.threads)
      if (r.tid == tid) return r.name;
    return std::string("?");
  };
  EXPECT_EQ(name_of(ca.shown.back(), 1002), "reader");
  EXPECT_EQ(name_of(cb.shown.back(), 2002), "poller");
  EXPECT_EQ(a.model().records(), 12u);
  EXPECT_EQ(b.model().records(), 4u);
}

TEST(TwoTargets, ThePipelineStopsEachTargetOnItsOwnPolicy) {
  SyntheticTarget a(3000, /*stuck=*/true, 6, 0);
  SyntheticTarget b(4000, /*stuck=*/false, 6, 0);
  detect::Pipeline pa(a, detect::DetectOptions{}, {2, 0});    // -n 2
  detect::Pipeline pb(b, detect::DetectOptions{}, {0, 3.0});  // -d 3s
  int na = 0, nb = 0;
  for (int i = 0; i < 10; i++) {
    auto fa = pa.step();
    auto fb = pb.step();
    ASSERT_TRUE(fa && fb);
    na += *fa ? 1 : 0;
    nb += *fb ? 1 : 0;
  }
  EXPECT_EQ(na, 2);
  EXPECT_EQ(nb, 3);
  EXPECT_EQ(pa.end_reason(), "the -n limit was reached");
  EXPECT_EQ(pb.end_reason(), "the -d limit was reached");
  // A stopped before its P was seen frozen long enough: one alert at its second frame.
  EXPECT_EQ(pa.finish().alerts.size(), 1u);
  EXPECT_TRUE(pb.finish().alerts.empty());
}
