// BPF tier: the Go context the kernel side reads at a thread's switch-out (read_goctx),
// against live Go processes and the runtime reader's sample of their Ms (root only).
//
// A Go thread keeps its M for life, so after the first read through the TLS g the M is
// read again at the address found then, checked by m.procid (and m.isextra where an
// extra M can exist); without cgo the M is found from the thread's FS base at once. These
// tests hold it to the truth: each thread's M is the one whose procid is that thread, the
// known address is used (the TLS g then goes unread, g_addr 0), a wrong FS offset and a
// foreign M planted in a thread's entry are refused, and a cgo binary whose extra Ms
// cannot be told (before Go 1.20) never takes that path.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../common/fixtures.h"
#include "app/go_attach.h"
#include "bpf_test_support.h"
#include "probe/session.h"

using namespace schedscope;
using bpftest::Child;

namespace {

struct Observed {
  std::unique_ptr<probe::Session> session;
  std::unique_ptr<app::GoAttach> go;
};

// A session on `pid` with its Go offsets in the kernel (resolved within 10 s).
Observed observe(int pid) {
  Observed o;
  o.session = bpftest::open_for(pid, false);
  if (!o.session) return o;
  o.go = app::GoAttach::inspect(pid);
  EXPECT_TRUE(o.go && o.go->is_go());
  if (!o.go) return o;
  for (int i = 0; i < 100 && !o.go->resolve(); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(o.go->ready()) << o.go->note();
  if (o.go->ready()) {
    auto set = o.session->set_go_offsets(o.go->bpf_offsets());
    EXPECT_TRUE(set.ok()) << (set.ok() ? "" : set.error().message);
  }
  return o;
}

struct MOf {
  uint64_t addr;
  int64_t id;
};

// The Ms of the process by thread (m.procid), from the runtime reader.
std::map<uint32_t, MOf> ms_by_tid(app::GoAttach& go) {
  std::map<uint32_t, MOf> out;
  auto s = go.sample();
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  if (s.ok())
    for (const auto& m : s->ms)
      if (m.tid > 0) out[uint32_t(m.tid)] = {m.addr, m.id};
  return out;
}

struct Tally {
  int checked = 0;  // entries with a Go context, each naming its own M
  int known = 0;    // of which read at the M's known address (the TLS g unread)
};

// Every thread entry with a Go context names the M whose procid is that thread.
Tally check_entries(probe::Session& s, app::GoAttach& go) {
  Tally t;
  auto snap = s.snapshot();
  EXPECT_TRUE(snap.ok());
  const auto ms = ms_by_tid(go);
  if (!snap.ok()) return t;
  for (const auto& e : snap->threads) {
    if (!(e.st.go.flags & SS_GO_VALID)) continue;
    auto it = ms.find(e.tid);
    if (it == ms.end()) continue;  // an M created after the sample
    EXPECT_EQ(e.st.go.m_addr, it->second.addr) << "thread " << e.tid;
    EXPECT_EQ(e.st.go.m_id, it->second.id) << "thread " << e.tid;
    t.checked++;
    if (e.st.go.g_addr == 0) t.known++;
  }
  return t;
}

// The thread's entry once a switch-out gave it a Go context again: its Go context cleared
// (or set to `go`), then waited for (3 s at most).
std::optional<ss_thread_state> next_context(probe::Session& s, uint32_t tid, const ss_goctx& go) {
  auto st = bpftest::thread_entry(s, tid);
  if (!st) return st;
  st->go = go;
  s.forget_thread(tid);
  s.seed_thread(tid, *st);
  for (int i = 0; i < 300; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    st = bpftest::thread_entry(s, tid);
    if (st && st->go.m_addr != go.m_addr && (st->go.flags & SS_GO_VALID)) return st;
  }
  return std::nullopt;
}

// `fs`: whether the binary's threads are the runtime's own (no cgo), their M found from
// their FS base.
void check_binary(const std::vector<std::string>& argv, bool expect_known_m, bool fs) {
  Child child(argv, "", /*capture=*/false);
  ASSERT_GT(child.pid(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto o = observe(child.pid());
  ASSERT_TRUE(o.session && o.go && o.go->ready());
  const ss_go_offsets off = o.go->bpf_offsets();
  EXPECT_EQ(off.m_cache, expect_known_m ? 1u : 0u);
  EXPECT_EQ(off.m_fs != 0, fs);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const Tally t = check_entries(*o.session, *o.go);
  EXPECT_GE(t.checked, 2) << "too few threads with a Go context to check";
  if (!expect_known_m) {
    EXPECT_EQ(t.known, 0) << "an M read at a known address where extra Ms cannot be told";
    return;
  }
  EXPECT_GE(t.known, 1) << "no M was read at its known address";
  if (fs) {
    EXPECT_EQ(t.known, t.checked) << "an M not found from its thread's FS base";
  }

  // The thread that switches most, and another one.
  auto snap = o.session->snapshot();
  ASSERT_TRUE(snap.ok());
  const auto ms = ms_by_tid(*o.go);
  uint32_t victim = 0, other = 0;
  uint64_t most = 0;
  for (const auto& e : snap->threads) {
    if (!(e.st.go.flags & SS_GO_VALID) || !ms.count(e.tid)) continue;
    uint64_t n = 0;
    for (uint64_t c : e.st.offcpu_count) n += c;
    if (n >= most) {
      if (victim) other = victim;
      most = n;
      victim = e.tid;
    } else if (!other) {
      other = e.tid;
    }
  }
  ASSERT_TRUE(victim && other) << "two threads with a Go context";
  if (fs) {
    // An FS base that does not name the M (the offset 8 bytes short: m.procid is then
    // read from the word after it, m.gsignal, a pointer): refused by the M's procid, the
    // M is found through the TLS g (g_addr set).
    ss_go_offsets wrong = off;
    wrong.m_fs -= 8;
    ASSERT_TRUE(o.session->set_go_offsets(wrong).ok());
    auto st = next_context(*o.session, victim, ss_goctx{});
    ASSERT_TRUE(st) << "no switch-out of thread " << victim;
    EXPECT_EQ(st->go.m_addr, ms.at(victim).addr) << "thread " << victim;
    EXPECT_NE(st->go.g_addr, 0u) << "an M taken from a wrong FS offset";
    // The thread's own M, known from its last context, as in a binary with cgo.
    ss_go_offsets hint = off;
    hint.m_fs = 0;
    ASSERT_TRUE(o.session->set_go_offsets(hint).ok());
  }
  // Plant another thread's M in the entry of the thread that switches most, and wait for
  // its next switch-out: the planted M's procid is not that thread, so it is refused.
  auto cur = bpftest::thread_entry(*o.session, victim);
  ASSERT_TRUE(cur);
  ss_goctx foreign = cur->go;
  foreign.m_addr = ms.at(other).addr;
  foreign.m_id = ms.at(other).id;
  auto after = next_context(*o.session, victim, foreign);
  ASSERT_TRUE(after) << "thread " << victim << " kept a foreign M, or never switched out";
  EXPECT_EQ(after->go.m_addr, ms.at(victim).addr) << "thread " << victim << " kept a foreign M";
  EXPECT_EQ(after->go.m_id, ms.at(victim).id);
}

}  // namespace

// go1.19 without cgo: no m.isextra, no extra M either.
TEST(BpfGoContext, EachThreadNamesItsOwnMReadAgainAtItsAddressGo119) {
  REQUIRE_ROOT();
  const std::string exe = std::string(SCHEDSCOPE_BUILD_DIR) + "/workloads/pingpong";
  if (!test::present_or_skip(exe)) return;
  check_binary({exe, "-pairs", "2", "-every", "1h"}, true, true);
}

// The 1.20+ layout with m.isextra (go1.23), and the 1.25+ one with procid at 64 (go1.26).
TEST(BpfGoContext, EachThreadNamesItsOwnMReadAgainAtItsAddressGo123AndGo126) {
  REQUIRE_ROOT();
  for (const char* name : {"selfreport-go1.23-stripped", "selfreport-go1.26-stripped"}) {
    SCOPED_TRACE(name);
    const std::string exe = test::testbin(name);
    if (!test::present_or_skip(exe)) return;
    check_binary({exe}, true, true);
  }
}

// A creation's Go context is the creating thread's: its own M (read at the address of its
// entry once it has one), on a go1.19 process that creates 50 threads a second.
TEST(BpfGoContext, ThreadCreationsNameTheCreatorsOwnM) {
  REQUIRE_ROOT();
  const std::string exe = std::string(SCHEDSCOPE_BUILD_DIR) + "/workloads/threads";
  if (!test::present_or_skip(exe)) return;
  Child child({exe, "-threads", "10", "-churn", "50", "-every", "1h"}, "", /*capture=*/false);
  ASSERT_GT(child.pid(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto o = observe(child.pid());
  ASSERT_TRUE(o.session && o.go && o.go->ready());
  ASSERT_EQ(o.go->bpf_offsets().m_cache, 1u);
  std::vector<ss_thread_new> created;
  probe::EventFn fn = [&](const ss_hdr* h, size_t size) {
    if (h->type == SS_EV_THREAD_NEW && size >= sizeof(ss_thread_new))
      created.push_back(*reinterpret_cast<const ss_thread_new*>(h));
  };
  // The Ms by thread, sampled all along: a creator may itself be a churned thread.
  std::map<uint32_t, MOf> ms;
  for (int i = 0; i < 20; i++) {
    for (const auto& [tid, m] : ms_by_tid(*o.go)) ms.emplace(tid, m);
    ASSERT_TRUE(o.session->poll(50, fn).ok());
  }
  for (const auto& [tid, m] : ms_by_tid(*o.go)) ms.emplace(tid, m);
  int checked = 0, known = 0;
  for (const auto& e : created) {
    if (!(e.go.flags & SS_GO_VALID)) continue;
    auto it = ms.find(e.parent_tid);
    if (it == ms.end()) continue;  // a creator born and gone between two samples
    EXPECT_EQ(e.go.m_addr, it->second.addr) << "creator " << e.parent_tid;
    EXPECT_EQ(e.go.m_id, it->second.id) << "creator " << e.parent_tid;
    checked++;
    if (e.go.g_addr == 0) known++;
  }
  EXPECT_GE(checked, 10) << created.size() << " creations";
  EXPECT_GE(known, 1) << "no creator's M was read at its known address";
  if (o.go->bpf_offsets().m_fs) {
    EXPECT_EQ(known, checked) << "a creator's M not found from its FS base";
  }
}

// In a thread storm a creation's details (the creator's stack and goroutine) come within
// the kernel's per-CPU budget, the rest of the record always: every creation is sent, the
// detailed ones carry their creator's Go context, the others read nothing of the creator.
TEST(BpfGoContext, AThreadStormsCreationDetailsStayWithinTheBudget) {
  REQUIRE_ROOT();
  const std::string exe = std::string(SCHEDSCOPE_BUILD_DIR) + "/workloads/threads";
  if (!test::present_or_skip(exe)) return;
  Child child({exe, "-threads", "10", "-churn-max", "-every", "1h"}, "", /*capture=*/false);
  ASSERT_GT(child.pid(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();  // the budget starts full at load
  auto o = observe(child.pid());
  ASSERT_TRUE(o.session && o.go && o.go->ready());
  std::vector<ss_thread_new> created;
  probe::EventFn fn = [&](const ss_hdr* h, size_t size) {
    if (h->type == SS_EV_THREAD_NEW && size >= sizeof(ss_thread_new))
      created.push_back(*reinterpret_cast<const ss_thread_new*>(h));
  };
  const auto go_set = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - go_set < std::chrono::seconds(2))
    ASSERT_TRUE(o.session->poll(50, fn).ok());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(o.session->poll(0, fn).ok());
  const int cpus = libbpf_num_possible_cpus();
  ASSERT_GT(cpus, 0);
  int detailed = 0, named = 0, with_stack = 0;
  for (const auto& e : created) {
    if (e.flags & SS_TN_DETAIL_SKIPPED) {
      EXPECT_EQ(e.go.flags, 0u) << "creation of " << e.tid;
      EXPECT_EQ(e.go.goid, 0u);
      EXPECT_EQ(e.go.m_addr, 0u);
      EXPECT_EQ(e.nframes, 0u);
      continue;
    }
    detailed++;
    if (e.nframes > 0) with_stack++;
    if (e.go.flags & SS_GO_VALID) named++;  // (whose M: ThreadCreationsNameTheCreatorsOwnM)
  }
  const double budget = cpus * (SS_DETAIL_BURST + SS_DETAIL_RATE * secs);
  EXPECT_GT(created.size(), size_t(budget))
      << "no storm: " << created.size() << " creations in " << secs << " s";
  EXPECT_LE(detailed, int(budget) + cpus) << created.size() << " creations in " << secs << " s";
  EXPECT_GE(detailed, SS_DETAIL_BURST) << "the burst was not taken";
  EXPECT_GE(named, 10) << detailed << " detailed creations of " << created.size() << " in " << secs
                       << " s";
  EXPECT_GE(with_stack, detailed / 2);
}

// go1.19 with cgo: an extra M (a C thread calling into Go) could not be told from the
// thread's own, so every Go context is read through the TLS g.
TEST(BpfGoContext, ACgoBinaryWithoutIsextraReadsEveryMThroughTheTls) {
  REQUIRE_ROOT();
  const std::string exe = std::string(SCHEDSCOPE_BUILD_DIR) + "/workloads/stuckp_cgo";
  if (!test::present_or_skip(exe)) return;
  check_binary({exe, "-hold", "30s"}, false, false);
}
