// Goroutine scheduling latency from the runtime's sched.timeToRun (go/timehist.h): the
// two histogram layouts against the runtime's record() and metric boundaries, the
// percentiles, where casgstatus says the histogram lives on real binaries of every
// release we have, the recording encoding, and the model's per-interval deltas.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <random>
#include <string>

#include "../common/fixtures.h"
#include "go/binary.h"
#include "go/timehist.h"
#include "model/model.h"
#include "record/census_format.h"

namespace sg = schedscope::go;
namespace sr = schedscope::record;

namespace {

constexpr uint64_t kOpen = std::numeric_limits<uint64_t>::max();

sg::TimeHist hist(int layout, std::initializer_list<std::pair<size_t, uint64_t>> slots,
                  uint64_t ts = 0) {
  sg::TimeHist h;
  h.layout = uint8_t(layout);
  h.ts_ns = ts;
  h.slots.assign(sg::time_hist_slots(layout), 0);
  for (auto [i, v] : slots) h.slots.at(i) = v;
  return h;
}

}  // namespace

TEST(TimeHist, SizesMatchTheRuntimeStructs) {
  // DWARF of a go1.19 and a go1.26 binary: timeHistogram is 5768 and 1296 bytes.
  EXPECT_EQ(sg::time_hist_bytes(sg::kTimeHistV1), 5768u);
  EXPECT_EQ(sg::time_hist_bytes(sg::kTimeHistV2), 1296u);
  EXPECT_EQ(sg::time_hist_slots(0), 0u);
}

TEST(TimeHist, EveryDurationLandsInTheRangeOfItsSlot) {
  std::mt19937_64 rng(7);
  for (int layout : {sg::kTimeHistV1, sg::kTimeHistV2}) {
    std::vector<int64_t> ds = {0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 255, 256, 257, 511, 512,
                               1000, 1 << 20, (int64_t(1) << 47) - 1, int64_t(1) << 47,
                               (int64_t(1) << 48) - 1, int64_t(1) << 48, int64_t(1) << 62};
    for (int i = 0; i < 20000; i++) ds.push_back(int64_t(rng() >> (rng() % 63 + 1)));
    for (int64_t d : ds) {
      const size_t s = sg::time_hist_slot_of(layout, d);
      ASSERT_LT(s, sg::time_hist_slots(layout));
      const auto r = sg::time_hist_range(layout, s);
      EXPECT_LE(r.lo, uint64_t(d)) << "layout " << layout << " d " << d << " slot " << s;
      EXPECT_LT(uint64_t(d), r.hi) << "layout " << layout << " d " << d << " slot " << s;
    }
    // Negative durations go to the underflow slot, right after the counts.
    EXPECT_EQ(sg::time_hist_slot_of(layout, -5), sg::time_hist_counts(layout));
  }
}

TEST(TimeHist, CountSlotsAreContiguousAndAscending) {
  for (int layout : {sg::kTimeHistV1, sg::kTimeHistV2}) {
    const size_t n = sg::time_hist_counts(layout);
    EXPECT_EQ(sg::time_hist_range(layout, 0).lo, 0u);
    for (size_t i = 0; i + 1 < n; i++)
      EXPECT_EQ(sg::time_hist_range(layout, i).hi, sg::time_hist_range(layout, i + 1).lo)
          << "layout " << layout << " slot " << i;
  }
  // Layout 1 ends open; layout 2's counts end at 2^47 where overflow begins.
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV1, 719).hi, kOpen);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV2, 159).hi, uint64_t(1) << 47);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV2, 161).lo, uint64_t(1) << 47);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV2, 161).hi, kOpen);
}

TEST(TimeHist, BoundariesEqualTheRuntimeMetricBuckets) {
  // runtime/metrics Buckets[i+1] (seconds x 1e9) as go1.19.8 and go1.23.5 print them
  // for /sched/latencies:seconds (tools/workloads/schedlat's final line).
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV1, 16 * 21 + 3).lo, 19922944u);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV1, 16 * 21 + 3).hi, 20971520u);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV1, 7).lo, 7u);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV1, 16 + 5).lo, 21u);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV1, 32 + 5).lo, 42u);  // 32 + 5 * 2
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV2, 1).lo, 64u);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV2, 4).lo, 256u);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV2, 5).lo, 320u);
  // 16777216 = 2^24 (bit length 25: bucket 17, sub 0), 20971520 = 2^24 + 2^22.
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV2, 17 * 4).lo, 16777216u);
  EXPECT_EQ(sg::time_hist_range(sg::kTimeHistV2, 17 * 4 + 1).lo, 20971520u);
}

TEST(TimeHist, PercentilesInterpolateInsideBuckets) {
  // Layout 2: 90 samples in [1024, 1280) (slot 12), 9 in [2^20, 2^20 + 2^18) (slot 52),
  // 1 in overflow.
  auto h = hist(sg::kTimeHistV2, {{12, 90}, {52, 9}, {161, 1}});
  ASSERT_EQ(sg::time_hist_range(2, 12).lo, 1024u);
  ASSERT_EQ(sg::time_hist_range(2, 12).hi, 1280u);
  ASSERT_EQ(sg::time_hist_range(2, 52).lo, uint64_t(1) << 20);
  ASSERT_EQ(sg::time_hist_range(2, 52).hi, (uint64_t(1) << 20) + (1 << 18));
  auto s = sg::summarize(h, nullptr);
  EXPECT_EQ(s.samples, 100u);
  // p50: rank 50 of the 90 in [1024, 1280): 1024 + 256 * 50/90.
  EXPECT_NEAR(s.p50_us, (1024 + 256.0 * 50 / 90) / 1e3, 1e-9);
  // p99: rank 99, the 9th of the 9 in the second bucket: its upper bound.
  EXPECT_NEAR(s.p99_us, double((1 << 20) + (1 << 18)) / 1e3, 1e-9);
  // p99.9 falls in overflow: its lower bound, flagged.
  EXPECT_NEAR(s.p999_us, double(uint64_t(1) << 47) / 1e3, 1e-3);
  EXPECT_TRUE(s.open_top);
  ASSERT_EQ(s.buckets.size(), 3u);
  EXPECT_EQ(s.buckets[2].hi_ns, kOpen);
}

TEST(TimeHist, DeltaBetweenReadsAndUnderflow) {
  auto a = hist(sg::kTimeHistV1, {{20, 5}, {720, 1}});
  auto b = hist(sg::kTimeHistV1, {{20, 5}, {100, 4}, {720, 3}});
  EXPECT_TRUE(sg::time_hist_monotonic(b, a));
  EXPECT_FALSE(sg::time_hist_monotonic(a, b));
  auto s = sg::summarize(b, &a);
  EXPECT_EQ(s.samples, 6u);  // 4 new in slot 100, 2 new negative
  EXPECT_EQ(s.underflow, 2u);
  ASSERT_EQ(s.buckets.size(), 2u);
  EXPECT_EQ(s.buckets[0].lo_ns, 0u);  // negative durations count as 0
  EXPECT_EQ(s.buckets[1].lo_ns, sg::time_hist_range(1, 100).lo);
  EXPECT_EQ(sg::summarize(a, &a).samples, 0u);
  // Layouts never mix.
  EXPECT_FALSE(sg::time_hist_monotonic(hist(2, {}), hist(1, {})));
}

// ---- where the histogram is, on real binaries

namespace {
using schedscope::test::fixture;
using schedscope::test::testbin;
void expect_time_to_run(const std::string& path, uint32_t offset, int layout) {
  if (!schedscope::test::present_or_skip(path)) return;
  auto r = sg::inspect_binary(path);
  ASSERT_TRUE(r.ok()) << path;
  const auto& t = r->time_to_run;
  EXPECT_EQ(t.source, "code") << path;
  EXPECT_EQ(t.offset, offset) << path;
  EXPECT_EQ(t.layout, layout) << path;
  EXPECT_EQ(t.addr, r->globals.sched + offset) << path;
  EXPECT_TRUE(r->warnings.empty()) << path << ": " << r->warnings.front();
}
}  // namespace

// Offsets: casgstatus's code, equal to DWARF where a binary has it (go1.19: 312,
// go1.26: 360).
TEST(TimeToRunLocation, Go119FixturesStrippedPieAndWithoutBuildInfo) {
  for (const char* b : {"hello-stripped", "hello-pie-stripped", "cgohello-stripped",
                        "hello-symbols", "hello-nobuildinfo"})
    expect_time_to_run(fixture(b), 312, sg::kTimeHistV1);
}

TEST(TimeToRunLocation, Go121To126Stripped) {
  const std::pair<const char*, uint32_t> cases[] = {
      {"selfreport-go1.21-stripped", 320}, {"selfreport-go1.22-stripped", 320},
      {"selfreport-go1.23-stripped", 320}, {"selfreport-go1.24-stripped", 320},
      {"selfreport-go1.25-stripped", 344}, {"selfreport-go1.26-stripped", 360},
      {"selfreport-go1.26-dwarf", 360}};
  for (auto [b, off] : cases) expect_time_to_run(testbin(b), off, sg::kTimeHistV2);
}

// ---- recording encoding

TEST(TimeHistRecord, RoundTripAndCorruptInput) {
  auto h = hist(sg::kTimeHistV2, {{0, 1}, {77, 123456789}, {161, 2}}, 42);
  sr::ByteWriter w;
  sr::encode_time_hist(w, h);
  sr::ByteReader r(w.data().data(), w.size());
  sg::TimeHist back;
  ASSERT_TRUE(sr::decode_time_hist(r, &back));
  EXPECT_EQ(back.ts_ns, 42u);
  EXPECT_EQ(back.layout, sg::kTimeHistV2);
  EXPECT_EQ(back.slots, h.slots);
  // Truncated at every length: refused, never read past the end.
  for (size_t n = 0; n < w.size(); n++) {
    sr::ByteReader t(w.data().data(), n);
    EXPECT_FALSE(sr::decode_time_hist(t, &back)) << n;
  }
  // An unknown layout, too many entries, a slot out of range.
  auto bad = [](uint8_t layout, uint32_t n, uint16_t idx) {
    sr::ByteWriter b;
    b.u64(1);
    b.u8(layout);
    b.u32(n);
    b.u16(idx);
    b.u64(1);
    sr::ByteReader rr(b.data().data(), b.size());
    sg::TimeHist x;
    return sr::decode_time_hist(rr, &x);
  };
  EXPECT_TRUE(bad(2, 1, 161));
  EXPECT_FALSE(bad(3, 1, 0));
  EXPECT_FALSE(bad(2, 1, 162));
  EXPECT_FALSE(bad(2, 163, 0));
}

// ---- the model: per-interval deltas, totals since the first read

TEST(TimeHistModel, IntervalsAndFinal) {
  schedscope::model::Model m(schedscope::model::TargetInfo{});
  EXPECT_FALSE(m.frame().go_latency.available);
  m.set_sched_latency_note("sched.timeToRun (sched+320, code)");
  m.on_sched_latency(hist(2, {{8, 10}}, 1));  // before attach: not counted
  auto f0 = m.frame();
  EXPECT_TRUE(f0.go_latency.available);
  EXPECT_EQ(f0.go_latency.lat.samples, 0u);
  EXPECT_EQ(f0.go_latency.note, "sched.timeToRun (sched+320, code)");
  m.on_sched_latency(hist(2, {{8, 14}, {40, 1}}, 2));
  auto f1 = m.frame();
  EXPECT_EQ(f1.go_latency.lat.samples, 5u);
  m.on_sched_latency(hist(2, {{8, 14}, {40, 3}}, 3));
  auto f2 = m.frame();
  EXPECT_EQ(f2.go_latency.lat.samples, 2u);
  EXPECT_GE(f2.go_latency.lat.p50_us * 1e3, double(sg::time_hist_range(2, 40).lo));
  auto fin = m.frame(true);
  EXPECT_EQ(fin.go_latency.lat.samples, 7u);
  // A histogram that went backwards (a new process image): start over from it.
  m.on_sched_latency(hist(2, {{8, 1}}, 4));
  EXPECT_EQ(m.frame().go_latency.lat.samples, 0u);
  m.on_sched_latency(hist(2, {{8, 4}}, 5));
  EXPECT_EQ(m.frame().go_latency.lat.samples, 3u);
}
