// USDT: the .note.stapsdt parser on synthetic ELF images and on the real
// libjvm.so / CPython (tests/fixtures/usdt_python.py) of this machine, the argument-spec
// decoder, runtime detection, and the tracker (probe table, counts, pauses, runtime thread names)
// fed with records.
#include <elf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "../common/fixtures.h"
#include "../common/stapsdt_elf.h"
#include "app/usdt_attach.h"
#include "usdt/notes.h"
#include "usdt/tracker.h"

namespace su = schedscope::usdt;
namespace se = schedscope::elf;
using namespace schedscope::test_elf;

TEST(UsdtArgs, DecodesRegistersMemoryConstants) {
  auto a = su::parse_args("8@%rdi -4@-60(%rbp) 1@%al -8@$-5 4@(%rax) 8@8(%rsp,%rax,8) bogus");
  ASSERT_EQ(a.size(), 7u);
  EXPECT_EQ(a[0].kind, su::Arg::kReg);
  EXPECT_EQ(a[0].size, 8);
  EXPECT_FALSE(a[0].is_signed);
  EXPECT_EQ(a[0].reg, "rdi");
  EXPECT_EQ(a[1].kind, su::Arg::kMem);
  EXPECT_EQ(a[1].size, 4);
  EXPECT_TRUE(a[1].is_signed);
  EXPECT_EQ(a[1].reg, "rbp");
  EXPECT_EQ(a[1].value, -60);
  EXPECT_EQ(a[1].describe(), "s32 mem -60(%rbp)");
  EXPECT_EQ(a[2].reg, "al");
  EXPECT_EQ(a[2].size, 1);
  EXPECT_EQ(a[3].kind, su::Arg::kConst);
  EXPECT_EQ(a[3].value, -5);
  EXPECT_EQ(a[4].kind, su::Arg::kMem);
  EXPECT_EQ(a[4].value, 0);
  EXPECT_EQ(a[5].kind, su::Arg::kUnknown);  // index register: libbpf does not support it
  EXPECT_EQ(a[6].kind, su::Arg::kUnknown);
  EXPECT_TRUE(su::parse_args("").empty());
}

TEST(UsdtNotes, SyntheticNotesWithPrelinkAdjustment) {
  // Notes recorded .stapsdt.base at 0x1000; the section now sits at 0x1100 (prelinked by
  // 0x100): pc and semaphore move with it.
  auto notes = note_bytes({{0x400100, 0x1000, 0, "prov", "one", "8@%rdi -4@$3"},
                           {0x400180, 0x1000, 0x400010, "prov", "two__with__sem", ""}});
  auto img = make_elf(notes, 0x400000, 0x1100);
  auto f = se::ElfFile::from_bytes(img);
  ASSERT_TRUE(f) << f.error().message;
  auto p = su::parse_notes(**f);
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].full_name(), "prov:one");
  EXPECT_EQ((*p)[0].pc, 0x400200u);
  EXPECT_EQ((*p)[0].file_offset, 0x200u);
  EXPECT_EQ((*p)[0].semaphore, 0u);
  ASSERT_EQ((*p)[0].args.size(), 2u);
  EXPECT_EQ((*p)[0].args[1].kind, su::Arg::kConst);
  EXPECT_EQ((*p)[1].name, "two__with__sem");
  EXPECT_EQ((*p)[1].semaphore, 0x400110u);
  EXPECT_EQ((*p)[1].semaphore_offset, 0x110u);
  EXPECT_TRUE((*p)[1].args.empty());
}

TEST(UsdtNotes, MalformedNotesAreErrorsNotCrashes) {
  auto good = note_bytes({{0x400100, 0, 0, "p", "n", "8@%rdi"}});
  // Strings not terminated.
  auto bad = good;
  while (!bad.empty() && bad.back() == 0) bad.pop_back();
  bad.push_back('x');
  align4(bad);
  for (auto& b : bad)
    if (b == 0 && &b > bad.data() + 12 + 8 + 24) b = 'y';
  auto f = se::ElfFile::from_bytes(make_elf(bad, 0x400000, 0));
  ASSERT_TRUE(f);
  EXPECT_FALSE(su::parse_notes(**f));
  // A descsz that runs past the section.
  auto huge = good;
  uint32_t big = 0x10000;
  std::memcpy(huge.data() + 4, &big, 4);
  auto g = se::ElfFile::from_bytes(make_elf(huge, 0x400000, 0));
  ASSERT_TRUE(g);
  EXPECT_FALSE(su::parse_notes(**g));
  // Every truncation of the note section: an error or fewer probes, never a crash.
  for (size_t n = 0; n < good.size(); n++) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + long(n));
    auto h = se::ElfFile::from_bytes(make_elf(cut, 0x400000, 0));
    ASSERT_TRUE(h);
    auto r = su::parse_notes(**h);
    if (r) {
      EXPECT_TRUE(r->empty());
    }
  }
}

TEST(UsdtNotes, RealLibjvmAndPython) {
  const char* jvm = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";
  if (access(jvm, R_OK) != 0) GTEST_SKIP() << "needs Debian's openjdk-17 (scripts/install-deps.sh)";
  std::string why;
  const std::string py_path = schedscope::test::usdt_python(&why);
  if (py_path.empty()) GTEST_SKIP() << why;
  const char* py = py_path.c_str();
  auto j = su::probes_of_file(jvm);
  ASSERT_TRUE(j.error.empty()) << j.error;
  EXPECT_GT(j.probes.size(), 500u);
  bool start = false, gc = false, sp = false;
  for (const auto& p : j.probes) {
    if (p.full_name() == "hotspot:thread__start") {
      start = true;
      ASSERT_EQ(p.args.size(), 5u);  // name, length, java id, native tid, daemon
      EXPECT_EQ(p.args[0].size, 8);
      EXPECT_EQ(p.args[4].size, 1);
      EXPECT_NE(p.file_offset, 0u);
    }
    gc |= p.full_name() == "hotspot:gc__begin";
    sp |= p.name == "safepoint__begin";
    EXPECT_EQ(p.semaphore, 0u) << p.full_name();  // HotSpot guards its probes with flags
  }
  EXPECT_TRUE(start && gc && sp);
  auto y = su::probes_of_file(py);
  ASSERT_TRUE(y.error.empty()) << y.error;
  bool gcs = false;
  for (const auto& p : y.probes) {
    EXPECT_EQ(p.provider, "python");
    EXPECT_NE(p.semaphore, 0u) << p.full_name();  // CPython's probes have semaphores
    EXPECT_NE(p.semaphore_offset, 0u);
    if (p.name == "gc__start") {
      gcs = true;
      ASSERT_EQ(p.args.size(), 1u);
      EXPECT_EQ(p.args[0].size, 4);
    }
  }
  EXPECT_TRUE(gcs);
  EXPECT_EQ(su::detect_runtime(false, {py}, {y}), "cpython");
  EXPECT_EQ(su::detect_runtime(false, {"/usr/bin/java", jvm}, {}), "hotspot");
  EXPECT_EQ(su::detect_runtime(true, {py}, {y}), "go");
  EXPECT_EQ(su::detect_runtime(false, {"/bin/true"}, {}), "unknown");
}

TEST(UsdtSpec, ParsesProviderName) {
  auto ok = schedscope::app::parse_usdt_spec("hotspot:monitor__contended__enter");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->first, "hotspot");
  EXPECT_EQ(ok->second, "monitor__contended__enter");
  for (const char* bad : {"", "x", ":y", "x:", "a:b:c"})
    EXPECT_FALSE(schedscope::app::parse_usdt_spec(bad)) << bad;
  EXPECT_FALSE(schedscope::app::adapter_probes("hotspot").empty());
  EXPECT_EQ(schedscope::app::adapter_probes("cpython").size(), 2u);
  EXPECT_TRUE(schedscope::app::adapter_probes("go").empty());
}

namespace {

ss_usdt_probe probe_rec(uint32_t idx, uint32_t role, uint32_t pause, const char* rt, const char* prov,
                        const char* name) {
  ss_usdt_probe e{};
  e.h.type = SS_EV_USDT_PROBE;
  e.h.size = sizeof e;
  e.h.ts = 1000;
  e.probe = idx;
  e.role = role;
  e.pause = pause;
  e.locations = 1;
  std::strncpy(e.runtime, rt, sizeof e.runtime - 1);
  std::strncpy(e.provider, prov, sizeof e.provider - 1);
  std::strncpy(e.name, name, sizeof e.name - 1);
  return e;
}

ss_usdt_hit hit(uint32_t idx, uint32_t tid, uint64_t ts, std::vector<uint64_t> args = {},
                const char* str = nullptr) {
  ss_usdt_hit e{};
  e.h.type = SS_EV_USDT;
  e.h.size = sizeof e;
  e.h.ts = ts;
  e.tid = tid;
  e.probe = idx;
  e.nargs = uint32_t(args.size());
  for (size_t i = 0; i < args.size(); i++) e.args[i] = args[i];
  if (str) {
    std::strncpy(e.str, str, sizeof e.str - 1);
    e.str_len = uint32_t(std::strlen(str) + 1);
  }
  return e;
}

}  // namespace

TEST(UsdtTracker, ThreadsPausesAndCounts) {
  su::Tracker t;
  auto feed = [&](const auto& rec) { t.on_record(&rec.h, sizeof rec); };
  feed(probe_rec(0, SS_USDT_ROLE_THREAD_START, 0, "hotspot", "hotspot", "thread__start"));
  feed(probe_rec(1, SS_USDT_ROLE_PAUSE_BEGIN, SS_PAUSE_SAFEPOINT, "hotspot", "hs_private", "safepoint__begin"));
  feed(probe_rec(2, SS_USDT_ROLE_PAUSE_END, SS_PAUSE_SAFEPOINT, "hotspot", "hs_private", "safepoint__end"));
  feed(probe_rec(3, SS_USDT_ROLE_GENERIC, 0, "", "hotspot", "monitor__contended__enter"));
  // thread__start("worker-1" (len 8), id 42, native tid 501, daemon)
  feed(hit(0, 500, 2000, {0x7f00, 8, 42, 501, 1}, "worker-1"));
  feed(hit(1, 7, 3'000'000));  // safepoint 3ms .. 8ms on tid 7
  feed(hit(2, 7, 8'000'000));
  feed(hit(2, 8, 9'000'000));  // an end without a begin (began before attach): ignored
  feed(hit(3, 501, 9'500'000, {0xabc, 1}));
  ss_usdt_count c{};
  c.h.type = SS_EV_USDT_COUNT;
  c.h.size = sizeof c;
  c.tid = 501;
  c.probe = 3;
  c.count = 5;
  feed(c);
  auto s = t.frame(1'000'000'000, 1.0, false, {{7, "VM Thread"}});
  EXPECT_EQ(s.runtime, "hotspot");
  ASSERT_EQ(s.started.size(), 1u);
  EXPECT_EQ(s.started[0].tid, 501u);
  EXPECT_EQ(s.started[0].name, "worker-1");
  EXPECT_EQ(s.started[0].id, 42);
  EXPECT_TRUE(s.started[0].daemon);
  EXPECT_EQ(t.name(501).value_or(""), "worker-1");
  ASSERT_EQ(s.pause_list.size(), 1u);
  EXPECT_DOUBLE_EQ(s.pause_list[0].ms(), 5.0);
  ASSERT_EQ(s.pauses.size(), 1u);
  EXPECT_EQ(s.pauses[0].kind, "safepoint");
  EXPECT_EQ(s.pauses[0].count, 1u);
  EXPECT_NEAR(s.pauses[0].share, 0.005, 1e-9);
  const su::ProbeRow* mon = nullptr;
  for (const auto& p : s.probes)
    if (p.probe == "hotspot:monitor__contended__enter") mon = &p;
  ASSERT_NE(mon, nullptr);
  EXPECT_EQ(mon->hits, 5u);
  ASSERT_EQ(mon->threads.size(), 1u);
  EXPECT_EQ(mon->threads[0].name, "worker-1");
  ASSERT_EQ(s.hits.size(), 1u);
  EXPECT_EQ(s.hits[0].args[1], 1);
  // Next interval: counts are deltas; the pause moved to the totals.
  c.count = 7;
  feed(c);
  auto s2 = t.frame(2'000'000'000, 1.0, false, {});
  for (const auto& p : s2.probes)
    if (p.probe == "hotspot:monitor__contended__enter") {
      EXPECT_EQ(p.hits, 2u);
      EXPECT_EQ(p.total, 7u);
    }
  ASSERT_EQ(s2.pauses.size(), 1u);
  EXPECT_EQ(s2.pauses[0].count, 0u);
  EXPECT_EQ(s2.pauses[0].count_total, 1u);
  // An open pause shows as ongoing.
  feed(hit(1, 7, 2'500'000'000));
  auto s3 = t.frame(3'000'000'000, 1.0, false, {});
  ASSERT_EQ(s3.pauses.size(), 1u);
  EXPECT_NEAR(s3.pauses[0].ongoing_ms, 500, 1e-6);
  auto fin = t.frame(3'000'000'000, 0, true, {});
  EXPECT_EQ(fin.pause_list.size(), 1u);
  EXPECT_EQ(fin.started.size(), 1u);
  auto j = su::stats_to_json(fin);
  EXPECT_EQ(j["threads_started"], 1);
  EXPECT_FALSE(su::stats_lines(fin, true).empty());
}

TEST(UsdtTracker, IgnoresShortAndUnknownRecords) {
  su::Tracker t;
  auto h = hit(9, 1, 5);  // unknown probe index
  t.on_record(&h.h, sizeof h);
  ss_usdt_probe p = probe_rec(0, 0, 0, "", "a", "b");
  t.on_record(&p.h, sizeof p - 1);  // short: ignored
  EXPECT_TRUE(t.probes().empty());
  EXPECT_TRUE(t.frame(10, 1, false, {}).empty());
}

// ---- the pause detector and the runtime thread names of syscall_storm (detect/pauses.cpp)

#include "detect/detectors.h"

namespace {

schedscope::model::Frame pause_frame(uint64_t ts, const char* kind, uint64_t count, double total_ms,
                                     double max_ms, double interval_s = 1.0) {
  schedscope::model::Frame f;
  f.ts_ns = ts;
  f.interval_s = interval_s;
  f.usdt.runtime = "hotspot";
  su::PauseStats p;
  p.kind = kind;
  p.runtime = "hotspot";
  p.count = count;
  p.total_ms = total_ms;
  p.max_ms = max_ms;
  p.share = total_ms / (interval_s * 1000);
  p.per_s = double(count) / interval_s;
  f.usdt.pauses.push_back(p);
  su::ProbeRow r;
  r.probe = "hs_private:safepoint__begin";
  f.usdt.probes.push_back(r);
  return f;
}

std::vector<std::string> kinds(const schedscope::model::Frame& f) {
  std::vector<std::string> k;
  for (const auto& a : f.alerts)
    if (a.active) k.push_back(a.kind);
  return k;
}

}  // namespace

TEST(UsdtPauses, LongOrFrequentPausesAlertShortRareOnesDoNot) {
  schedscope::detect::Detectors d;  // defaults: 100 ms, 10% of the wall time
  auto quiet = pause_frame(1'000'000'000, "safepoint", 20, 40, 5);  // 4%, 5 ms max
  schedscope::detect::attach(quiet, d.evaluate(quiet));
  EXPECT_TRUE(kinds(quiet).empty());
  auto longp = pause_frame(2'000'000'000, "safepoint", 1, 150, 150);
  schedscope::detect::attach(longp, d.evaluate(longp));
  ASSERT_EQ(kinds(longp), std::vector<std::string>{"safepoint_pause"});
  EXPECT_NE(longp.alerts[0].message.find("150.0 ms"), std::string::npos) << longp.alerts[0].message;
  auto freq = pause_frame(3'000'000'000, "gc", 200, 250, 3);  // 25% of the wall time
  schedscope::detect::attach(freq, d.evaluate(freq));
  auto k = kinds(freq);
  ASSERT_EQ(k, std::vector<std::string>{"gc_pause"});
  EXPECT_EQ(freq.alerts.back().severity, "critical");  // >= 2x the share threshold
  // Cleared: the safepoint alert went to the history.
  auto all = d.all();
  EXPECT_EQ(all.size(), 2u);
  // Thresholds from the options.
  schedscope::detect::DetectOptions o;
  o.pause_ms = 200;
  schedscope::detect::Detectors d2(o);
  auto f2 = pause_frame(1'000'000'000, "safepoint", 1, 150, 150, 10.0);  // 1.5% of 10 s
  schedscope::detect::attach(f2, d2.evaluate(f2));
  EXPECT_TRUE(kinds(f2).empty());
}

TEST(UsdtPauses, NameGroupsFoldDigits) {
  schedscope::model::Frame f;
  for (uint32_t i = 0; i < 5; i++) {
    schedscope::model::ThreadRow r;
    r.tid = 100 + i;
    r.name = "pool-1-thread-" + std::to_string(i + 1);
    f.threads.push_back(r);
  }
  schedscope::model::ThreadRow m;
  m.tid = 7;
  m.name = "main";
  f.threads.push_back(m);
  EXPECT_EQ(schedscope::detect::name_groups(f, {100, 101, 102, 103, 104, 7, 999}),
            "pool-*-thread-* (5), main (1)");
}
