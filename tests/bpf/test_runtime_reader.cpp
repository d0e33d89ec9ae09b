// Root tests of the Go runtime reader against live processes: the selfreport fixtures
// (tests/fixtures/testbins: go1.21–go1.26, stripped; go1.26 with DWARF), the offsets fixture built
// with the local toolchain (go1.19 on Debian), and a go1.27 binary from npm (lefthook) that is
// newer than the offset table and must be calibrated.
//
// They read /proc/PID/mem of their own children, so they need root (or ptrace rights).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../common/fixtures.h"
#include "bpf_test_support.h"
#include "go/binary.h"
#include "go/offsets.h"
#include "go/runtime_json.h"
#include "go/runtime_reader.h"

namespace sg = schedscope::go;
namespace fs = std::filesystem;

namespace {

using schedscope::bpftest::Child;

std::string joined(const sg::Validation& v) {
  std::string s;
  for (const auto& c : v.checks) s += "  " + c + "\n";
  return s;
}

struct Expect {
  std::string label;   // "go1.21"
  std::string source;  // expected Offsets.source of resolve_offsets
  int minor = 0;
};

// The selfreport protocol (tests/fixtures/testbins and tests/fixtures/offsets): pid/go/gomaxprocs,
// then the spinner's and the pipe reader's goids.
void check_selfreport(const std::string& path, const Expect& ex) {
  Child child({path});
  ASSERT_GT(child.pid(), 0);
  auto lines = child.json_lines(3, std::chrono::seconds(15));
  ASSERT_EQ(lines.size(), 3u) << path << " did not print its 3 JSON lines";
  const int pid = lines[0]["pid"].get<int>();
  ASSERT_EQ(pid, child.pid());
  const int gomaxprocs = lines[0]["gomaxprocs"].get<int>();
  const uint64_t spinner = lines[1]["spinner_goid"].get<uint64_t>();
  const uint64_t reader = lines[2]["reader_goid"].get<uint64_t>();
  const std::string go = lines[0]["go"].get<std::string>();

  auto bin = sg::inspect_binary(path);
  ASSERT_TRUE(bin.ok()) << bin.error().message;
  ASSERT_TRUE(bin->is_go);
  ASSERT_NE(bin->globals.allm, 0u) << "runtime.allm not found in " << path;
  ASSERT_NE(bin->globals.allp, 0u) << "runtime.allp not found in " << path;
  std::string err;
  auto mem = sg::open_process_memory(pid, &err);
  ASSERT_NE(mem, nullptr) << err;
  auto bias = sg::load_bias(pid, *bin);
  ASSERT_TRUE(bias.ok()) << bias.error().message;
  if (bin->pie) {
    EXPECT_NE(*bias, 0u) << "PIE loaded at its link address?";
  } else {
    EXPECT_EQ(*bias, 0u);
  }

  auto r = sg::resolve_offsets(*mem, *bin, *bias, pid);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const sg::Offsets off = r->first;
  EXPECT_TRUE(r->second.ok) << ex.label << " validation failed:\n" << joined(r->second);
  EXPECT_EQ(off.source, ex.source) << joined(r->second);

  sg::RuntimeReader rr(sg::open_process_memory(pid, &err), *bin, off, *bias);
  // The spinner is the curg of a running P within a few samples.
  int spinner_after = -1;
  std::string spinner_p;
  for (int i = 0; i < 200 && spinner_after < 0; ++i) {
    auto s = rr.sample();
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->gomaxprocs, gomaxprocs);
    EXPECT_EQ(static_cast<int>(s->ps.size()), gomaxprocs);
    for (const auto& p : s->ps) {
      if (p.status == 1 && p.goid == spinner) {
        EXPECT_EQ(p.func, "main.knownSpinner") << sg::sample_to_json(*s).dump();
        EXPECT_GT(p.tid, 0);
        spinner_after = i + 1;
        spinner_p = "P" + std::to_string(p.id) + " tid " + std::to_string(p.tid);
      }
    }
    if (spinner_after < 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(spinner_after, 0) << "spinner goid " << spinner << " never seen running on a P";

  // The pipe reader: the curg of an M (in its read) at some point over ~1 s, or else
  // located among all goroutines (it is parked in the netpoller most of the time: the
  // pipe is non-blocking in Go).
  std::string reader_where;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (reader_where.empty() && std::chrono::steady_clock::now() < until) {
    auto s = rr.sample();
    ASSERT_TRUE(s.ok()) << s.error().message;
    for (const auto& m : s->ms) {
      if (m.curg_goid == reader) {
        EXPECT_EQ(m.curg_func, "main.pipeReader");
        reader_where = "curg of M" + std::to_string(m.id) + " (g status " +
                       std::to_string(m.curg_status) + ")";
      }
    }
  }
  if (reader_where.empty()) {
    auto g = rr.find_goroutine(reader);
    ASSERT_TRUE(g.has_value()) << "reader goid " << reader << " not found";
    EXPECT_EQ(g->func, "main.pipeReader");
    EXPECT_TRUE(g->status >= 1 && g->status <= 4) << "status " << g->status;
    reader_where = "in allgs, status " + std::to_string(g->status) + " waitreason " +
                   std::to_string(g->waitreason);
  }

  // Calibration alone (no version knowledge) finds the table's core offsets.
  std::vector<std::string> log;
  sg::CalibrateOptions opts;
  opts.log = &log;
  auto c = sg::calibrate(
      *mem, *bin, *bias, pid, [pid] { return sg::process_tids(pid); }, opts);
  std::string logs;
  for (auto& l : log) logs += "  " + l + "\n";
  ASSERT_TRUE(c.ok()) << c.error().message << "\n" << logs;
  auto table = sg::offsets_from_table(ex.minor);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(c->g_goid, table->g_goid) << logs;
  EXPECT_EQ(c->m_curg, table->m_curg) << logs;
  EXPECT_EQ(c->m_procid, table->m_procid) << logs;
  EXPECT_EQ(c->m_p, table->m_p) << logs;
  EXPECT_EQ(c->p_m, table->p_m) << logs;
  size_t agree = 0, found = 0;
  std::string differ;
  for (const auto& f : sg::offset_fields()) {
    if (!f.zero_ok && (*c).*f.member == 0) continue;
    ++found;
    if ((*c).*f.member == (*table).*f.member) {
      ++agree;
    } else {
      differ += std::string(" ") + f.name;
    }
  }
  EXPECT_EQ(agree, found) << "calibrated offsets differing from the table:" << differ << "\n"
                          << logs;
  auto cv = sg::validate(*mem, *bin, *c, *bias, pid);
  EXPECT_TRUE(cv.ok) << joined(cv);

  std::cout << "[" << ex.label << " " << go << "] source=" << off.source
            << (r->second.ok ? " validated" : " NOT validated") << "; spinner goid " << spinner
            << " on " << spinner_p << " after " << spinner_after << " sample(s); reader goid "
            << reader << ": " << reader_where << "; calibration found " << found << " fields, "
            << agree << " equal to the go1." << ex.minor << " table\n";
}

struct Case {
  const char* file;
  int minor;
  const char* source;
};

class RuntimeReaderLive : public ::testing::TestWithParam<Case> {};

TEST_P(RuntimeReaderLive, ResolvesSamplesAndCalibrates) {
  REQUIRE_ROOT();
  const Case& c = GetParam();
  const std::string path = schedscope::test::testbin(c.file);
  if (!schedscope::test::present_or_skip(path)) return;
  check_selfreport(path, {"go1." + std::to_string(c.minor), c.source, c.minor});
}

INSTANTIATE_TEST_SUITE_P(RuntimeReader, RuntimeReaderLive,
                         ::testing::Values(Case{"selfreport-go1.21-stripped", 21, "table:go1.21"},
                                           Case{"selfreport-go1.22-stripped", 22, "table:go1.22"},
                                           Case{"selfreport-go1.23-stripped", 23, "table:go1.23"},
                                           Case{"selfreport-go1.24-stripped", 24, "table:go1.24"},
                                           Case{"selfreport-go1.25-stripped", 25, "table:go1.25"},
                                           Case{"selfreport-go1.26-stripped", 26, "table:go1.26"},
                                           Case{"selfreport-go1.26-dwarf", 26, "dwarf"}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           std::string n = i.param.file;
                           for (auto& ch : n) {
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

// The offsets fixture, built with DWARF by the local toolchain (plain and PIE).
void check_fixture(const std::string& name, const std::string& flags, bool cgo,
                   const std::string& source) {
  const std::string out = std::string(SCHEDSCOPE_BUILD_DIR) + "/fixtures/" + name;
  fs::create_directories(fs::path(out).parent_path());
  const std::string cmd = std::string(cgo ? "CGO_ENABLED=1" : "CGO_ENABLED=0") + " bash '" +
                          std::string(SCHEDSCOPE_SOURCE_DIR) +
                          "/tests/fixtures/offsets/build.sh' '" + out + "' " + flags + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string output, last;
  char buf[512];
  while (fgets(buf, sizeof buf, f)) {
    output += buf;
    last = buf;
  }
  int rc = pclose(f);
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 2) GTEST_SKIP() << "no Go toolchain: " << output;
  ASSERT_EQ(rc, 0) << output;
  while (!last.empty() && isspace(static_cast<unsigned char>(last.back()))) last.pop_back();
  ASSERT_EQ(last.rfind("go1.", 0), 0u) << output;
  const int minor = std::stoi(last.substr(4));
  if (!sg::offsets_from_table(minor).ok()) GTEST_SKIP() << last << " is outside the table";
  const std::string label = last + (flags.empty() ? "" : " " + flags) + (cgo ? " cgo" : "");
  check_selfreport(
      out, {label, source == "table" ? "table:go1." + std::to_string(minor) : source, minor});
}

TEST(RuntimeReaderLiveFixture, LocalToolchainDwarfBinary) {
  REQUIRE_ROOT();
  check_fixture("offsets-fixture", "", false, "dwarf");
}

TEST(RuntimeReaderLiveFixture, LocalToolchainPieBinary) {
  REQUIRE_ROOT();
  check_fixture("offsets-fixture-pie", "-buildmode=pie", false, "dwarf");
}

// cgo, stripped: globals from instruction patterns, offsets from the table; one extra M.
TEST(RuntimeReaderLiveFixture, LocalToolchainCgoStrippedBinary) {
  REQUIRE_ROOT();
  if (std::system("command -v gcc >/dev/null 2>&1") != 0) GTEST_SKIP() << "no C compiler for cgo";
  check_fixture("offsets-fixture-cgo", "'-ldflags=-s -w'", true, "table");
}

// go1.27: newer than the table. lefthook (npm lefthook-linux-x64 2.2.2) is a stripped
// go1.27.0 binary; a custom hook streams a child's output through it so that its
// scheduler is busy (Ps running) while we calibrate.
TEST(CalibrateLive, Go127LefthookFromNpm) {
  REQUIRE_ROOT();
  // Downloaded by `make npm-bins` (tests/fixtures/npm/fetch.py); the skip says why not.
  const fs::path exe = schedscope::test::npm_binary("lefthook-2.2.2/package/bin/lefthook");
  if (!schedscope::test::present_or_skip(exe.string())) return;
  if (std::system("command -v git >/dev/null 2>&1") != 0) GTEST_SKIP() << "no git";
  char tmpl[] = "/tmp/schedscope-lefthook-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string repo = tmpl;
  ASSERT_EQ(std::system(("git init -q '" + repo + "'").c_str()), 0);
  {
    std::ofstream y(repo + "/lefthook.yml");
    y << "schedscope-hold:\n  commands:\n    stream:\n"
         "      run: yes schedscope-calibration | head -n 200000000\n";
  }
  auto bin = sg::inspect_binary(exe.string());
  ASSERT_TRUE(bin.ok()) << bin.error().message;
  ASSERT_TRUE(bin->is_go);
  auto minor = sg::go_minor(bin->go_version);
  ASSERT_TRUE(minor.has_value()) << bin->go_version;
  EXPECT_GT(*minor, sg::kTableMaxMinor)
      << "expected a Go newer than the table: " << bin->go_version;
  ASSERT_NE(bin->globals.allm, 0u);
  ASSERT_NE(bin->globals.allp, 0u);

  Child child({exe.string(), "run", "schedscope-hold"}, repo, /*capture=*/false);
  ASSERT_GT(child.pid(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const int pid = child.pid();
  ASSERT_TRUE(fs::exists("/proc/" + std::to_string(pid))) << "lefthook exited early";
  std::string err;
  auto mem = sg::open_process_memory(pid, &err);
  ASSERT_NE(mem, nullptr) << err;
  auto bias = sg::load_bias(pid, *bin);
  ASSERT_TRUE(bias.ok());
  auto r = sg::resolve_offsets(*mem, *bin, *bias, pid);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const sg::Offsets& off = r->first;
  EXPECT_EQ(off.source, "calibrated");
  EXPECT_TRUE(r->second.ok) << joined(r->second);
  for (uint32_t v : {off.g_goid, off.m_curg, off.m_procid, off.m_p, off.p_m, off.m_alllink,
                     off.g_startpc, off.g_atomicstatus, off.m_id}) {
    EXPECT_NE(v, 0u) << joined(r->second);
  }
  sg::RuntimeReader rr(sg::open_process_memory(pid, &err), *bin, off, *bias);
  auto s = rr.sample();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(static_cast<size_t>(s->gomaxprocs), s->ps.size());
  int sysmon = 0;
  for (const auto& m : s->ms) sysmon += m.sysmon;
  EXPECT_EQ(sysmon, 1);
  auto main_g = rr.find_goroutine(1);
  ASSERT_TRUE(main_g.has_value());
  EXPECT_EQ(main_g->func, "runtime.main");

  std::cout << "[go1.27 lefthook " << bin->go_version << "] " << sg::offsets_to_json(off).dump()
            << "\n";
  for (const auto& c : r->second.checks) std::cout << "  " << c << "\n";
  std::cout << "  sample: " << sg::sample_to_json(*s).dump() << "\n";
  fs::remove_all(repo);
}

}  // namespace
