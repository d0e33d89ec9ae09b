// Runtime struct offsets (table, DWARF), the memory reader on a synthetic Go process
// image, and calibration of offsets on such images laid out like Go 1.22, 1.25, 1.26.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../common/fixtures.h"
#include "app/go_attach.h"
#include "go/offsets.h"
#include "go/runtime_json.h"
#include "go/runtime_reader.h"

namespace sg = schedscope::go;

namespace {

using schedscope::test::testbin;

// ------------------------------------------------------------------ table

struct Spot {
  int minor;
  // g: goid, startpc, atomicstatus, sched.bp, syscallpc, lockedm
  uint32_t g_goid, g_startpc, g_atomicstatus, g_sched_bp, g_syscallpc, g_lockedm;
  // m: procid, curg, p, oldp, id, alllink, lockedg, syscalltick, spinning
  uint32_t m_procid, m_curg, m_p, m_oldp, m_id, m_alllink, m_lockedg, m_syscalltick, m_spinning;
  // p: m, runqhead, runnext
  uint32_t p_m, p_runqhead, p_runnext;
  // sched: nmidle, maxmcount, npidle, nmspinning, runqsize, gcwaiting
  uint32_t s_nmidle, s_maxmcount, s_npidle, s_nmspinning, s_runqsize, s_gcwaiting;
};

// Numbers copied from docs/go-runtime.md, "Finding the current g, m and p", column by column.
// clang-format off
const Spot kSpots[] = {
    // minor  goid startpc status  bp syscallpc lockedm | procid curg  p oldp  id alllink lockedg syscalltick spinning | p.m runqhead runnext | nmidle maxmcount npidle nmspinning runqsize gcwaiting
    {  17,  152,  312,  144,  104,  120,  232,   72,  192,  208,  224,  232,  344,  360,  676,  276,   56, 1520, 3576,   40,   56,   88,   92,  112,  256},
    {  18,  152,  312,  144,  104,  120,  232,   72,  192,  208,  224,  232,  336,  352,  668,  276,   56,  400, 2456,   40,   56,   88,   92,  112,  224},
    {  19,  152,  312,  144,  104,  120,  232,   72,  192,  208,  224,  232,  336,  352,  668,  276,   56,  400, 2456,   40,   56,   88,   92,  112,  224},
    {  20,  152,  312,  144,  104,  120,  232,   72,  192,  208,  224,  232,  336,  352,  668,  276,   56,  400, 2456,   40,   56,   88,   92,  120,  232},
    {  21,  152,  296,  144,  104,  120,  208,   72,  192,  208,  224,  232,  336,  352,  664,  276,   56,  400, 2456,   40,   56,   88,   92,  120,  232},
    {  22,  152,  296,  144,  104,  120,  208,   72,  192,  208,  224,  232,  328,  344,  952,  276,   56,  400, 2456,   40,   56,   88,   92,  120,  232},
    {  23,  160,  304,  152,  104,  120,  216,   72,  192,  208,  224,  232,  328,  344,  740,  276,   48,  392, 2448,   40,   56,   88,   92,  120,  232},
    {  24,  160,  304,  152,  104,  120,  216,   72,  192,  208,  224,  232,  328,  344,  740,  276,   48,  392, 2448,   40,   56,   88,   92,  120,  232},
    {  25,  152,  296,  144,   96,  112,  208,   64,  184,  200,  216,  224,  344,  360,  756,  268,   48,  392, 2448,   48,   64,   96,  100,  128,  248},
    {  26,  152,  304,  144,   96,  112,  208,   64,  184,  208,  224,  232,  352,  384,  788,  276,   48,  400, 2456,   64,   80,  112,  116,  144,  264},
};
// clang-format on

TEST(OffsetsTable, MatchesDocumentForEveryVersion) {
  for (const Spot& s : kSpots) {
    SCOPED_TRACE("go1." + std::to_string(s.minor));
    auto t = sg::offsets_from_table(s.minor);
    ASSERT_TRUE(t.ok()) << t.error().message;
    const sg::Offsets& o = *t;
    EXPECT_EQ(o.source, "table:go1." + std::to_string(s.minor));
    EXPECT_EQ(o.g_m, 48u);
    EXPECT_EQ(o.g_sched_sp, 56u);
    EXPECT_EQ(o.g_sched_pc, 64u);
    EXPECT_EQ(o.g_goid, s.g_goid);
    EXPECT_EQ(o.g_startpc, s.g_startpc);
    EXPECT_EQ(o.g_gopc, s.g_startpc - 16);
    EXPECT_EQ(o.g_atomicstatus, s.g_atomicstatus);
    EXPECT_EQ(o.g_sched_bp, s.g_sched_bp);
    EXPECT_EQ(o.g_syscallpc, s.g_syscallpc);
    EXPECT_EQ(o.g_syscallsp, s.g_syscallpc - 8);
    EXPECT_EQ(o.g_lockedm, s.g_lockedm);
    EXPECT_EQ(o.m_g0, 0u);
    EXPECT_EQ(o.m_procid, s.m_procid);
    EXPECT_EQ(o.m_tls, s.m_procid + 64);
    EXPECT_EQ(o.m_curg, s.m_curg);
    EXPECT_EQ(o.m_p, s.m_p);
    EXPECT_EQ(o.m_oldp, s.m_oldp);
    EXPECT_EQ(o.m_id, s.m_id);
    EXPECT_EQ(o.m_alllink, s.m_alllink);
    EXPECT_EQ(o.m_lockedg, s.m_lockedg);
    EXPECT_EQ(o.m_syscalltick, s.m_syscalltick);
    EXPECT_EQ(o.m_spinning, s.m_spinning);
    EXPECT_EQ(o.m_blocked, s.m_spinning + 1);
    EXPECT_EQ(o.p_id, 0u);
    EXPECT_EQ(o.p_status, 4u);
    EXPECT_EQ(o.p_m, s.p_m);
    EXPECT_EQ(o.p_runqhead, s.p_runqhead);
    EXPECT_EQ(o.p_runqtail, s.p_runqhead + 4);
    EXPECT_EQ(o.p_runnext, s.p_runnext);
    EXPECT_EQ(o.sched_goidgen, 0u);
    EXPECT_EQ(o.sched_lastpoll, 8u);
    EXPECT_EQ(o.sched_nmidle, s.s_nmidle);
    EXPECT_EQ(o.sched_maxmcount, s.s_maxmcount);
    EXPECT_EQ(o.sched_npidle, s.s_npidle);
    EXPECT_EQ(o.sched_nmspinning, s.s_nmspinning);
    EXPECT_EQ(o.sched_runqsize, s.s_runqsize);
    EXPECT_EQ(o.sched_gcwaiting, s.s_gcwaiting);
    EXPECT_TRUE(o.valid());
  }
  // A few version-specific rows in full.
  auto t17 = *sg::offsets_from_table(17);
  EXPECT_EQ(t17.g_size, 392u);
  EXPECT_EQ(t17.m_size, 1024u);
  EXPECT_EQ(t17.p_size, 10000u);
  EXPECT_EQ(t17.m_isextra, 0u);  // "—": not in 1.17
  EXPECT_EQ(t17.g_parent_goid, 0u);
  EXPECT_EQ(t17.m_vdsosp, 832u);
  auto t22 = *sg::offsets_from_table(22);
  EXPECT_EQ(t22.m_size, 2024u);
  EXPECT_EQ(t22.m_vdsopc, 1128u);
  EXPECT_EQ(t22.p_gcmarkworkermode, 4688u);
  EXPECT_EQ(t22.sched_needspinning, 96u);
  auto t25 = *sg::offsets_from_table(25);
  EXPECT_EQ(t25.sched_runq, 112u);
  EXPECT_EQ(t25.sched_runqsize, t25.sched_runq + 16);  // runq.size
  EXPECT_EQ(t25.sched_customgomaxprocs, 328u);
  EXPECT_EQ(t25.m_isextra, 273u);
  auto t26 = *sg::offsets_from_table(26);
  EXPECT_EQ(t26.p_size, 15920u);
  EXPECT_EQ(t26.p_preempt, 13776u);
  EXPECT_EQ(t26.g_parent_goid, 280u);
  EXPECT_EQ(t26.m_lockedext, 648u);
  EXPECT_EQ(t26.sched_procresizetime, 328u);
}

TEST(OffsetsTable, VersionsOutsideTheTableAreErrors) {
  EXPECT_FALSE(sg::offsets_from_table(16).ok());
  EXPECT_FALSE(sg::offsets_from_table(27).ok());
  EXPECT_FALSE(sg::offsets_from_table(0).ok());
  auto e = sg::offsets_from_table(27);
  EXPECT_NE(e.error().message.find("go1.27"), std::string::npos);
}

TEST(OffsetsTable, FieldListIsCompleteAndUnique) {
  std::set<std::string> names;
  for (const auto& f : sg::offset_fields()) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_NE(std::string(f.dwarf_path), "");
  }
  // Every field of every table column is either set or documented absent ("—").
  for (int minor = sg::kTableMinMinor; minor <= sg::kTableMaxMinor; ++minor) {
    auto t = *sg::offsets_from_table(minor);
    for (const auto& f : sg::offset_fields()) {
      if (f.zero_ok) continue;
      std::string n = f.name;
      const bool absent = (n == "m_isextra" && minor < 20) ||
                          (n == "g_parent_goid" && minor < 21) ||
                          (n == "sched_needspinning" && minor < 20) ||
                          (n == "sched_customgomaxprocs" && minor < 25);
      EXPECT_EQ(t.*f.member == 0, absent) << n << " go1." << minor;
    }
  }
}

// ------------------------------------------------------------------ DWARF

void expect_same(const sg::Offsets& a, const sg::Offsets& b) {
  for (const auto& f : sg::offset_fields()) {
    EXPECT_EQ(a.*f.member, b.*f.member) << f.name;
  }
}

TEST(OffsetsDwarf, Go126DwarfEqualsTable) {
  const std::string path = testbin("selfreport-go1.26-dwarf");
  if (!schedscope::test::present_or_skip(path)) return;
  auto d = sg::offsets_from_dwarf(path);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->source, "dwarf");
  expect_same(*d, *sg::offsets_from_table(26));
}

TEST(OffsetsDwarf, StrippedBinaryHasNoDwarf) {
  const std::string path = testbin("selfreport-go1.25-stripped");
  if (!schedscope::test::present_or_skip(path)) return;
  EXPECT_FALSE(sg::offsets_from_dwarf(path).ok());
  EXPECT_FALSE(sg::offsets_from_dwarf("/nonexistent/binary").ok());
}

// Builds tests/fixtures/offsets with the local toolchain (Debian go1.19 here).
TEST(OffsetsDwarf, LocalToolchainFixtureEqualsTable) {
  const std::string script =
      std::string(SCHEDSCOPE_SOURCE_DIR) + "/tests/fixtures/offsets/build.sh";
  char tmpl[] = "/tmp/schedscope-offsets-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string out = std::string(tmpl) + "/fixture";
  const std::string cmd = "bash '" + script + "' '" + out + "' 2>&1";
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
  while (!last.empty() && (last.back() == '\n' || last.back() == '\r')) last.pop_back();
  ASSERT_EQ(last.rfind("go1.", 0), 0u) << "unexpected version line: " << last;
  const int minor = std::stoi(last.substr(4));
  auto d = sg::offsets_from_dwarf(out);
  ASSERT_TRUE(d.ok()) << d.error().message;
  auto t = sg::offsets_from_table(minor);
  if (!t.ok()) GTEST_SKIP() << "toolchain " << last << " is outside the table";
  RecordProperty("toolchain", last);
  expect_same(*d, *t);
  std::filesystem::remove_all(tmpl);
}

TEST(OffsetsJson, HasSourceAndEveryField) {
  auto t = *sg::offsets_from_table(22);
  auto j = sg::offsets_to_json(t);
  EXPECT_EQ(j["source"], "table:go1.22");
  EXPECT_EQ(j["g_goid"], 152);
  EXPECT_EQ(j["m_alllink"], 328);
  EXPECT_EQ(j["sched_runqsize"], 120);
  EXPECT_EQ(j.size(), sg::offset_fields().size() + 1);
}

// ------------------------------------------------------------------ synthetic process

class FakeMemReader : public sg::MemReader {
 public:
  explicit FakeMemReader(std::shared_ptr<std::map<uint64_t, std::vector<uint8_t>>> regions)
      : regions_(std::move(regions)) {}
  bool read(uint64_t addr, void* buf, size_t len) override {
    ++reads;
    auto it = regions_->upper_bound(addr);
    if (it == regions_->begin()) return false;
    --it;
    const uint64_t start = it->first, end = start + it->second.size();
    if (addr < start || addr + len > end) return false;
    std::memcpy(buf, it->second.data() + (addr - start), len);
    return true;
  }
  size_t reads = 0;

 private:
  std::shared_ptr<std::map<uint64_t, std::vector<uint8_t>>> regions_;
};

class FakeSymbolizer : public sg::Symbolizer {
 public:
  void add(const std::string& name, uint64_t entry, uint64_t size) {
    funcs_.push_back({name, entry, entry + size});
  }
  [[nodiscard]] std::optional<sg::SourceLoc> lookup(uint64_t pc) const override {
    for (const auto& f : funcs_) {
      if (pc >= f.entry && pc < f.end) return sg::SourceLoc{f.name, "x.go", 1, f.entry};
    }
    return std::nullopt;
  }
  [[nodiscard]] std::optional<sg::FuncInfo> find_function(const std::string& name) const override {
    for (const auto& f : funcs_) {
      if (f.name == name) return f;
    }
    return std::nullopt;
  }
  [[nodiscard]] size_t function_count() const override { return funcs_.size(); }

 private:
  std::vector<sg::FuncInfo> funcs_;
};

// A Go process image laid out with a given Offsets (from the version table), filled with
// junk wherever the runtime would hold unrelated data, so that calibration cannot lean
// on zeroed memory. Link-time addresses + bias = runtime addresses.
struct FakeGoProcess {
  static constexpr int kPid = 4242;
  sg::Offsets off;
  uint64_t bias;
  std::shared_ptr<std::map<uint64_t, std::vector<uint8_t>>> mem =
      std::make_shared<std::map<uint64_t, std::vector<uint8_t>>>();
  sg::BinaryInfo bin;
  std::shared_ptr<FakeSymbolizer> sym = std::make_shared<FakeSymbolizer>();
  uint64_t heap = 0xc000000000;
  uint64_t junk_state = 0x9e3779b97f4a7c15ull;

  // runtime addresses of things the tests look at
  std::vector<uint64_t> ps, ms, gs;
  std::vector<int> tids;
  std::map<std::string, uint64_t> fn;  // link-time entries

  uint64_t junk() {
    junk_state ^= junk_state << 13;
    junk_state ^= junk_state >> 7;
    junk_state ^= junk_state << 17;
    return junk_state | 0xff00000000000001ull;  // never a pointer, never small
  }
  uint64_t alloc(size_t size, bool fill_junk) {
    size = (size + 15) & ~size_t{15};
    uint64_t a = heap;
    heap += size + 64;
    std::vector<uint8_t> v(size, 0);
    if (fill_junk) {
      for (size_t i = 0; i + 8 <= size; i += 8) {
        uint64_t j = junk();
        std::memcpy(v.data() + i, &j, 8);
      }
    }
    (*mem)[a] = std::move(v);
    return a;
  }
  std::vector<uint8_t>& region(uint64_t addr, uint64_t& base) {
    auto it = mem->upper_bound(addr);
    --it;
    base = it->first;
    return it->second;
  }
  void put(uint64_t addr, const void* p, size_t n) {
    uint64_t base = 0;
    auto& r = region(addr, base);
    ASSERT_LE(addr - base + n, r.size());
    std::memcpy(r.data() + (addr - base), p, n);
  }
  uint64_t r64(uint64_t a) {
    uint64_t base = 0, v = 0;
    auto& r = region(a, base);
    std::memcpy(&v, r.data() + (a - base), 8);
    return v;
  }
  void w64(uint64_t a, uint64_t v) { put(a, &v, 8); }
  void w32(uint64_t a, uint32_t v) { put(a, &v, 4); }
  void w8(uint64_t a, uint8_t v) { put(a, &v, 1); }

  uint64_t new_g(uint64_t goid, uint32_t status, uint64_t m, const std::string& start,
                 uint64_t parent) {
    uint64_t g = alloc(std::max<uint32_t>(off.g_size, 512), true);
    const uint64_t lo = 0xc100000000 + gs.size() * 0x10000, hi = lo + 0x8000;
    w64(g + 0, lo);
    w64(g + 8, hi);
    w64(g + 16, lo + 928);               // stackguard0
    w64(g + 24, 0xffffffffffffffffull);  // stackguard1 (user g)
    w64(g + 32, 0);                      // _panic
    w64(g + 40, 0);                      // _defer
    w64(g + off.g_m, m);
    // gobuf: sp, pc, g, ctxt, [ret,] lr, bp
    w64(g + off.g_sched_sp, hi - 0x100);
    w64(g + off.g_sched_pc, start.empty() ? 0 : fn.at("runtime.gopark") + 0x40 + bias);
    w64(g + 72, g);
    for (uint32_t o = 80; o < off.g_sched_bp; o += 8) w64(g + o, 0);
    w64(g + off.g_sched_bp, start.empty() ? 0 : hi - 0x80);
    w64(g + off.g_syscallsp, 0);
    w64(g + off.g_syscallpc, 0);
    w64(g + off.g_syscallpc + 8, 0);  // syscallbp (1.23+) / stktopsp
    w32(g + off.g_atomicstatus, status);
    w32(g + off.g_atomicstatus + 4, 0);  // stackLock
    w64(g + off.g_goid, goid);
    w64(g + off.g_schedlink, 0);
    w64(g + off.g_waitsince, status == 4 ? 123456789 : 0);
    w8(g + off.g_waitreason, status == 4 ? 2 : 0);
    w64(g + off.g_lockedm, 0);
    if (off.g_parent_goid) w64(g + off.g_parent_goid, parent);
    w64(g + off.g_gopc, start.empty() ? 0 : fn.at("main.main") + 0x33 + bias);
    w64(g + off.g_gopc + 8, 0);  // ancestors
    w64(g + off.g_startpc, start.empty() ? 0 : fn.at(start) + bias);
    w64(g + off.g_waiting, 0);
    if (!start.empty()) gs.push_back(g);
    return g;
  }
  uint64_t new_g0(uint64_t m) {
    uint64_t g = new_g(0, 0, m, "", 0);
    w64(g + off.g_sched_bp, 0xc100000000 + (gs.size() + 100) * 0x10000 + 0x7f00);
    // g0 stacks: make lo/hi cover its sched.bp
    const uint64_t lo = 0xc100000000 + (gs.size() + 100) * 0x10000;
    w64(g + 0, lo);
    w64(g + 8, lo + 0x8000);
    w64(g + off.g_sched_sp, lo + 0x7e00);
    return g;
  }

  explicit FakeGoProcess(int minor, uint64_t bias_)
      : off(*sg::offsets_from_table(minor)), bias(bias_) {
    // text
    uint64_t pc = 0x401000;
    for (const char* name :
         {"runtime.main", "runtime.sysmon", "runtime.mspinning", "runtime.templateThread",
          "runtime.gopark", "runtime.forcegchelper", "runtime.bgsweep", "main.main",
          "main.knownSpinner", "main.pipeReader", "syscall.Syscall", "runtime.goexit"}) {
      sym->add(name, pc, 0x200);
      fn[name] = pc;
      pc += 0x200;
    }
    // globals (link-time, in a "bss" region placed at +bias)
    const uint64_t bss = 0x5a0000;
    (*mem)[bss + bias] = std::vector<uint8_t>(0x2000, 0);
    bin.path = "/fake/go";
    bin.is_go = true;
    bin.go_version = "go1." + std::to_string(minor) + ".0";
    bin.globals.allp = bss + 0x10;
    bin.globals.allm = bss + 0x30;
    bin.globals.gomaxprocs = bss + 0x38;
    bin.globals.allgs = bss + 0x40;
    bin.globals.allglen = bss + 0x58;
    bin.globals.gcphase = bss + 0x60;
    bin.globals.sched = bss + 0x100;
    bin.globals.source = "fake";
    bin.symbolizer = sym;
    bin.pie = bias != 0;

    for (int i = 0; i < 6; ++i) tids.push_back(kPid + i * 3);  // m0 runs on the main thread
    const int np = 4;
    // Ps
    for (int i = 0; i < np; ++i) {
      uint64_t p = alloc(std::max<uint32_t>(off.p_size, 4096), true);
      ps.push_back(p);
      w32(p + 0, static_cast<uint32_t>(i));
      w64(p + 8, 0);
      w32(p + 16, 1000u + static_cast<uint32_t>(i) * 7);
      w32(p + 20, 50u + static_cast<uint32_t>(i));
      w32(p + 24, 999);
      w32(p + 28, 0);
      w64(p + 32, 987654321000ull);
      w32(p + 40, 49);
      w32(p + 44, 0);
      w64(p + 48, 987654000000ull);
      w64(p + off.p_m, 0);
      // goidcache/goidcacheend, runq
      const uint64_t gc = i == 1 ? 20 : 0, gce = i == 1 ? 33 : 0;
      w64(p + off.p_runqhead - 16, gc);
      w64(p + off.p_runqhead - 8, gce);
      w32(p + off.p_runqhead, 40);
      w32(p + off.p_runqtail, 40);
      w64(p + off.p_runnext, 0);
    }
    // Ms: allm order m5 -> m4 -> m3 -> m2 -> m1 -> m0
    std::vector<uint64_t> m_by_id(6);
    for (int id = 0; id < 6; ++id) {
      uint64_t m = alloc(std::max<uint32_t>(off.m_size, 1024), true);
      m_by_id[id] = m;
      w64(m + off.m_g0, new_g0(m));
      w64(m + off.m_procid, static_cast<uint64_t>(tids[id]));
      uint64_t gsig = new_g(0, 0, m, "", 0);
      w64(m + off.m_gsignal, gsig);
      w64(m + off.m_tls, 0);  // set below once curg is known
      w64(m + off.m_mstartfn, 0);
      w64(m + off.m_curg, 0);
      w64(m + off.m_curg + 8, 0);  // caughtsig
      w64(m + off.m_p, 0);
      w64(m + off.m_nextp, 0);
      w64(m + off.m_oldp, 0);
      w64(m + off.m_id, static_cast<uint64_t>(id));
      w8(m + off.m_spinning, 0);
      w8(m + off.m_blocked, id == 0 || id == 5 ? 1 : 0);
      w8(m + off.m_spinning + 2, 0);
      w8(m + off.m_spinning + 3, 0);
      w8(m + off.m_incgo, 0);
      if (off.m_isextra) w8(m + off.m_isextra, 0);
      w64(m + off.m_alllink, 0);
      w64(m + off.m_schedlink, 0);
      w64(m + off.m_lockedg, 0);
    }
    for (int id = 5; id >= 1; --id) w64(m_by_id[id] + off.m_alllink, m_by_id[id - 1]);
    w64(m_by_id[0] + off.m_schedlink, m_by_id[5]);  // idle list: m0 -> m5
    ms.assign(m_by_id.rbegin(), m_by_id.rend());
    // sysmon (m1): mstartfn funcval -> runtime.sysmon; m5 started by mspinning
    uint64_t fv = alloc(16, false);
    w64(fv, fn["runtime.sysmon"] + bias);
    w64(m_by_id[1] + off.m_mstartfn, fv);
    uint64_t fv2 = alloc(16, false);
    w64(fv2, fn["runtime.mspinning"] + bias);
    w64(m_by_id[5] + off.m_mstartfn, fv2);
    // goroutines
    uint64_t g1 = new_g(1, 2, m_by_id[3], "runtime.main", 0);
    uint64_t g2 = new_g(2, 4, 0, "runtime.forcegchelper", 1);
    uint64_t g3 = new_g(3, 4, 0, "runtime.bgsweep", 1);
    uint64_t g18 = new_g(18, 2, m_by_id[2], "main.knownSpinner", 1);
    uint64_t g19 = new_g(19, 3, m_by_id[4], "main.pipeReader", 1);
    uint64_t g20 = new_g(20, 6, 0, "main.knownSpinner", 1);  // dead, keeps its goid
    uint64_t g21 = new_g(21, 1, 0, "main.pipeReader", 18);   // runnable in P1.runnext
    // g19 is in a syscall: syscallsp in its stack, syscallpc in syscall.Syscall
    const uint64_t lo19 = r64(g19);
    w64(g19 + off.g_syscallsp, lo19 + 0x7000);
    w64(g19 + off.g_syscallpc, fn["syscall.Syscall"] + 0x55 + bias);
    // P0 running m2 (spinner); P1 running m3 (main) with runnext g21 and 2 queued;
    // P2 idle; P3 _Psyscall with p.m == 0 (≤1.25), m4 in the syscall holds it as oldp.
    auto bind = [&](int p, int m, uint64_t g) {
      w32(ps[p] + 4, 1);
      w64(ps[p] + off.p_m, m_by_id[m]);
      w64(m_by_id[m] + off.m_p, ps[p]);
      w64(m_by_id[m] + off.m_curg, g);
      w64(m_by_id[m] + off.m_tls, g);
    };
    bind(0, 2, g18);
    bind(1, 3, g1);
    w64(ps[1] + off.p_runnext, g21);
    w32(ps[1] + off.p_runqtail, 42);
    w32(ps[2] + 4, 0);
    w32(ps[3] + 4, 2);
    w64(m_by_id[4] + off.m_oldp, ps[3]);
    w64(m_by_id[4] + off.m_curg, g19);
    w64(m_by_id[4] + off.m_tls, g19);
    for (int id : {0, 1, 5}) w64(m_by_id[id] + off.m_tls, r64(m_by_id[id] + off.m_g0));
    // allp, allm, gomaxprocs, allgs
    uint64_t allp_arr = alloc(np * 8, false);
    for (int i = 0; i < np; ++i) w64(allp_arr + i * 8, ps[i]);
    const uint64_t B = bias;
    w64(bin.globals.allp + B, allp_arr);
    w64(bin.globals.allp + B + 8, np);
    w64(bin.globals.allp + B + 16, np);
    w64(bin.globals.allm + B, m_by_id[5]);
    w32(bin.globals.gomaxprocs + B, np);
    const std::vector<uint64_t> all = {g1, g2, g3, g18, g19, g20, g21};
    uint64_t allgs_arr = alloc(all.size() * 8, false);
    for (size_t i = 0; i < all.size(); ++i) w64(allgs_arr + i * 8, all[i]);
    w64(bin.globals.allgs + B, allgs_arr);
    w64(bin.globals.allgs + B + 8, all.size());
    w64(bin.globals.allgs + B + 16, all.size());
    w64(bin.globals.allglen + B, all.size());
    w32(bin.globals.gcphase + B, 1);
    // sched: junk around, counters consistent with the above
    const uint64_t s = bin.globals.sched + B;
    for (uint32_t o = 0; o < 512; o += 8) w64(s + o, junk());
    w64(s + 0, 32);                                                     // goidgen
    w64(s + 8, 5555555555ull);                                          // lastpoll
    w64(s + 16, 0);                                                     // pollUntil
    for (uint32_t o = 24; o < off.sched_nmidle; o += 8) w64(s + o, 0);  // lock
    w32(s + off.sched_nmidle, 2);
    w32(s + off.sched_nmidlelocked, 0);
    w64(s + off.sched_mnext, 6);
    w32(s + off.sched_maxmcount, 10000);
    w32(s + off.sched_nmsys, 1);
    w64(s + off.sched_nmsys + 4, 0);
    w64(s + off.sched_ngsys, 4);
    w64(s + off.sched_pidle, ps[2]);
    w32(s + off.sched_npidle, 1);
    w32(s + off.sched_nmspinning, 0);
    if (off.sched_needspinning) w64(s + off.sched_needspinning, 0);
    w64(s + off.sched_runq, 0);
    w64(s + off.sched_runq + 8, 0);
    w64(s + off.sched_runqsize, 0);
    w64(s + off.sched_gcwaiting, 0);
  }

  std::unique_ptr<FakeMemReader> reader() { return std::make_unique<FakeMemReader>(mem); }
  [[nodiscard]] sg::TidSource tid_source() const {
    auto t = tids;
    return [t] { return t; };
  }
};

// ------------------------------------------------------------------ RuntimeReader

void check_sample(FakeGoProcess& fp) {
  sg::RuntimeReader rr(fp.reader(), fp.bin, fp.off, fp.bias);
  auto s = rr.sample();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->gomaxprocs, 4);
  EXPECT_EQ(s->goidgen, 32u);
  EXPECT_EQ(s->maxmcount, 10000);
  EXPECT_EQ(s->npidle, 1);
  EXPECT_EQ(s->nmidle, 2);
  EXPECT_EQ(s->gcphase, 1u);
  ASSERT_EQ(s->ps.size(), 4u);
  const auto& p0 = s->ps[0];
  EXPECT_EQ(p0.id, 0);
  EXPECT_STREQ(sg::p_status_name(p0.status), "running");
  EXPECT_EQ(p0.m_id, 2);
  EXPECT_EQ(p0.tid, fp.tids[2]);
  EXPECT_EQ(p0.goid, 18u);
  EXPECT_EQ(p0.func, "main.knownSpinner");
  EXPECT_EQ(p0.cur_func, "runtime.gopark");
  EXPECT_EQ(p0.schedtick, 1000u);
  EXPECT_EQ(p0.syscalltick, 50u);
  EXPECT_EQ(p0.runq, 0u);
  const auto& p1 = s->ps[1];
  EXPECT_EQ(p1.goid, 1u);
  EXPECT_EQ(p1.func, "runtime.main");
  EXPECT_EQ(p1.runq, 3u);  // 2 queued + runnext
  EXPECT_STREQ(sg::p_status_name(s->ps[2].status), "idle");
  EXPECT_EQ(s->ps[2].tid, 0);
  EXPECT_EQ(s->ps[2].goid, 0u);
  const auto& p3 = s->ps[3];
  EXPECT_STREQ(sg::p_status_name(p3.status), "syscall");
  EXPECT_TRUE(p3.via_oldp);
  EXPECT_EQ(p3.tid, fp.tids[4]);
  EXPECT_EQ(p3.goid, 19u);
  EXPECT_EQ(p3.func, "main.pipeReader");
  EXPECT_EQ(p3.cur_func, "syscall.Syscall");  // syscallpc while _Gsyscall
  ASSERT_EQ(s->ms.size(), 6u);
  EXPECT_EQ(s->ms.front().id, 5);
  EXPECT_EQ(s->ms.back().id, 0);
  EXPECT_EQ(s->ms.back().tid, FakeGoProcess::kPid);
  int sysmon = 0;
  for (const auto& m : s->ms) {
    if (m.sysmon) {
      ++sysmon;
      EXPECT_EQ(m.id, 1);
      EXPECT_EQ(m.curg_goid, 0u);
    }
    if (m.id == 2) {
      EXPECT_EQ(m.p, 0);
      EXPECT_EQ(m.curg_goid, 18u);
      EXPECT_EQ(m.curg_func, "main.knownSpinner");
      EXPECT_EQ(m.curg_status, 2u);
    }
    if (m.id == 4) {
      EXPECT_EQ(m.p, -1);
      EXPECT_EQ(m.oldp, 3);
      EXPECT_EQ(m.curg_goid, 19u);
      EXPECT_EQ(m.curg_status, 3u);
    }
    if (m.id == 5) {
      EXPECT_TRUE(m.blocked);
    }
  }
  EXPECT_EQ(sysmon, 1);

  auto g = rr.find_goroutine(19);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->status, 3u);
  EXPECT_EQ(g->func, "main.pipeReader");
  EXPECT_FALSE(rr.find_goroutine(999).has_value());
  auto all = rr.goroutines();
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all->size(), 7u);

  auto j = sg::sample_to_json(*s);
  ASSERT_EQ(j["ps"].size(), 4u);
  for (const char* k :
       {"id", "status", "m", "tid", "goid", "func", "schedtick", "syscalltick", "runq"}) {
    EXPECT_TRUE(j["ps"][0].contains(k)) << k;
  }
  EXPECT_EQ(j["ps"][0]["status"], "running");
  EXPECT_EQ(j["ps"][3]["status"], "syscall");
  EXPECT_EQ(j["ps"][0]["func"], "main.knownSpinner");
  ASSERT_EQ(j["ms"].size(), 6u);
  for (const char* k : {"id", "tid", "p", "oldp", "goid", "func", "spinning", "blocked", "incgo",
                        "sysmon", "lockedg"}) {
    EXPECT_TRUE(j["ms"][0].contains(k)) << k;
  }
  EXPECT_EQ(j["gomaxprocs"], 4);
}

TEST(RuntimeReader, SampleSyntheticGo122) {
  FakeGoProcess fp(22, 0);
  check_sample(fp);
}

TEST(RuntimeReader, SampleSyntheticGo125Pie) {
  FakeGoProcess fp(25, 0x555500000000ull);
  check_sample(fp);
}

TEST(RuntimeReader, SampleErrorsWithoutGlobals) {
  FakeGoProcess fp(22, 0);
  sg::BinaryInfo bin = fp.bin;
  bin.globals = {};
  sg::RuntimeReader rr(fp.reader(), bin, fp.off, 0);
  EXPECT_FALSE(rr.sample().ok());
}

TEST(RuntimeReader, PStatusNames) {
  EXPECT_STREQ(sg::p_status_name(0), "idle");
  EXPECT_STREQ(sg::p_status_name(1), "running");
  EXPECT_STREQ(sg::p_status_name(2), "syscall");
  EXPECT_STREQ(sg::p_status_name(3), "gcstop");
  EXPECT_STREQ(sg::p_status_name(4), "dead");
}

bool has_check(const sg::Validation& v, const std::string& s) {
  for (const auto& c : v.checks) {
    if (c.find(s) != std::string::npos) return true;
  }
  return false;
}

std::string joined(const sg::Validation& v) {
  std::string s;
  for (const auto& c : v.checks) s += c + "\n";
  return s;
}

TEST(RuntimeReader, ValidateAcceptsRightLayoutRejectsWrongOne) {
  FakeGoProcess fp(22, 0);
  auto mem = fp.reader();
  auto v = sg::validate(*mem, fp.bin, fp.off, 0, FakeGoProcess::kPid, fp.tid_source());
  EXPECT_TRUE(v.ok) << joined(v);
  EXPECT_TRUE(has_check(v, "ok: m.procid==tid for 6/6 Ms")) << joined(v);
  EXPECT_TRUE(has_check(v, "ok: p.id==index for 4/4 Ps")) << joined(v);
  EXPECT_TRUE(has_check(v, "ok: p.m.p==p for running Ps 2/2")) << joined(v);
  EXPECT_TRUE(has_check(v, "ok: m.curg.m==m 3/3")) << joined(v);
  EXPECT_TRUE(has_check(v, "ok: g0.goid==0 and g0.m==m for 6/6 Ms")) << joined(v);
  EXPECT_TRUE(has_check(v, "exactly one M with mstartfn==runtime.sysmon")) << joined(v);
  // The 1.25 layout on 1.22 memory, and 1.23 (goid +8): both must fail.
  for (int wrong : {25, 23, 17}) {
    auto w = sg::validate(*mem, fp.bin, *sg::offsets_from_table(wrong), 0, FakeGoProcess::kPid,
                          fp.tid_source());
    EXPECT_FALSE(w.ok) << "go1." << wrong << " layout accepted:\n" << joined(w);
  }
  // Thread ids that are not the process's: procid check fails.
  auto bad = sg::validate(*mem, fp.bin, fp.off, 0, FakeGoProcess::kPid, [] {
    return std::vector<int>{1, 2, 3};
  });
  EXPECT_FALSE(bad.ok);
  EXPECT_TRUE(has_check(bad, "FAIL: m.procid==tid")) << joined(bad);
}

// ------------------------------------------------------------------ calibration

const char* const kCalibratedFields[] = {
    "g_schedlink",
    "g_waitreason",
    "g_m",
    "g_sched_sp",
    "g_sched_pc",
    "g_sched_bp",
    "g_syscallsp",
    "g_syscallpc",
    "g_atomicstatus",
    "g_goid",
    "g_gopc",
    "g_startpc",
    "m_g0",
    "m_procid",
    "m_gsignal",
    "m_tls",
    "m_mstartfn",
    "m_curg",
    "m_p",
    "m_nextp",
    "m_oldp",
    "m_id",
    "m_spinning",
    "m_blocked",
    "m_incgo",
    "m_alllink",
    "m_schedlink",
    "p_id",
    "p_status",
    "p_schedtick",
    "p_syscalltick",
    "p_m",
    "p_runqhead",
    "p_runqtail",
    "p_runq",
    "p_runnext",
    "sched_goidgen",
    "sched_lastpoll",
    "sched_nmidle",
    "sched_maxmcount",
    "sched_npidle",
    "sched_nmspinning",
    "sched_mnext",
    "sched_nmsys",
    "sched_ngsys",
    "sched_pidle",
};

void check_calibration(int minor, uint64_t bias) {
  SCOPED_TRACE("go1." + std::to_string(minor));
  FakeGoProcess fp(minor, bias);
  auto mem = fp.reader();
  std::vector<std::string> log;
  sg::CalibrateOptions opts;
  opts.snapshots = 2;
  opts.interval_ms = 0;
  opts.log = &log;
  auto c = sg::calibrate(*mem, fp.bin, bias, FakeGoProcess::kPid, fp.tid_source(), opts);
  std::string logs;
  for (auto& l : log) logs += l + "\n";
  if (getenv("SCHEDSCOPE_TEST_VERBOSE")) std::printf("%s", logs.c_str());
  ASSERT_TRUE(c.ok()) << c.error().message << "\n" << logs;
  EXPECT_EQ(c->source, "calibrated");
  std::map<std::string, uint32_t sg::Offsets::*> by_name;
  for (const auto& f : sg::offset_fields()) by_name[f.name] = f.member;
  for (const char* name : kCalibratedFields) {
    EXPECT_EQ((*c).*by_name.at(name), fp.off.*by_name.at(name)) << name << "\n" << logs;
  }
  // Fields with no evidence in this image stay unknown rather than guessed.
  EXPECT_EQ(c->m_lockedg, 0u);
  EXPECT_EQ(c->sched_gcwaiting, 0u);
  auto v = sg::validate(*mem, fp.bin, *c, bias, FakeGoProcess::kPid, fp.tid_source());
  EXPECT_TRUE(v.ok) << joined(v);
  // A reader over calibrated offsets sees what the table-based one sees.
  sg::RuntimeReader rr(fp.reader(), fp.bin, *c, bias);
  auto s = rr.sample();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->ps[0].goid, 18u);
  EXPECT_EQ(s->ps[0].func, "main.knownSpinner");
  EXPECT_EQ(s->ps[3].goid, 19u);
}

TEST(Calibrate, RecoversGo122Layout) { check_calibration(22, 0); }
TEST(Calibrate, RecoversGo125Layout) { check_calibration(25, 0); }
TEST(Calibrate, RecoversGo126LayoutPie) { check_calibration(26, 0x7f1200000000ull); }
TEST(Calibrate, RecoversGo117Layout) { check_calibration(17, 0); }

TEST(Calibrate, WithoutSymbolizerFindsCoreFields) {
  FakeGoProcess fp(25, 0);
  fp.bin.symbolizer = nullptr;
  auto mem = fp.reader();
  sg::CalibrateOptions opts;
  opts.snapshots = 2;
  opts.interval_ms = 0;
  auto c = sg::calibrate(*mem, fp.bin, 0, FakeGoProcess::kPid, fp.tid_source(), opts);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->g_goid, fp.off.g_goid);
  EXPECT_EQ(c->m_curg, fp.off.m_curg);
  EXPECT_EQ(c->m_procid, fp.off.m_procid);
  EXPECT_EQ(c->m_p, fp.off.m_p);
  EXPECT_EQ(c->p_m, fp.off.p_m);
  EXPECT_EQ(c->g_startpc, 0u);  // needs function entries
  EXPECT_EQ(c->m_mstartfn, 0u);
}

TEST(Calibrate, WithoutAllgsStillFindsGoid) {
  FakeGoProcess fp(23, 0);
  fp.bin.globals.allgs = 0;
  fp.bin.globals.allglen = 0;
  auto mem = fp.reader();
  sg::CalibrateOptions opts;
  opts.snapshots = 2;
  opts.interval_ms = 0;
  auto c = sg::calibrate(*mem, fp.bin, 0, FakeGoProcess::kPid, fp.tid_source(), opts);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->g_goid, fp.off.g_goid);
  EXPECT_EQ(c->g_atomicstatus, fp.off.g_atomicstatus);
  EXPECT_EQ(c->g_startpc, fp.off.g_startpc);
}

TEST(Calibrate, FailsCleanlyOnForeignThreads) {
  FakeGoProcess fp(22, 0);
  auto mem = fp.reader();
  sg::CalibrateOptions opts;
  opts.snapshots = 1;
  opts.interval_ms = 0;
  auto c = sg::calibrate(
      *mem, fp.bin, 0, 1,
      [] {
        return std::vector<int>{1, 2};
      },
      opts);
  EXPECT_FALSE(c.ok());
  sg::BinaryInfo none = fp.bin;
  none.globals = {};
  EXPECT_FALSE(sg::calibrate(*mem, none, 0, FakeGoProcess::kPid, fp.tid_source(), opts).ok());
}

// ------------------------------------------------------------------ source selection

sg::CalibrateOptions quick() {
  sg::CalibrateOptions o;
  o.snapshots = 2;
  o.interval_ms = 0;
  o.max_wait_ms = 0;
  return o;
}

TEST(OffsetsResolve, KnownVersionUsesValidatedTable) {
  FakeGoProcess fp(22, 0);
  auto mem = fp.reader();
  auto r = sg::resolve_offsets(*mem, fp.bin, 0, FakeGoProcess::kPid, fp.tid_source(), quick());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->first.source, "table:go1.22");
  EXPECT_TRUE(r->second.ok) << joined(r->second);
  EXPECT_TRUE(has_check(r->second, "source: dwarf absent"));
  EXPECT_TRUE(has_check(r->second, "source: table:go1.22 (validated)"));
}

TEST(OffsetsResolve, NewerVersionIsCalibrated) {
  FakeGoProcess fp(26, 0x7f0000000000ull);
  fp.bin.go_version = "go1.27.0";
  auto mem = fp.reader();
  auto r =
      sg::resolve_offsets(*mem, fp.bin, fp.bias, FakeGoProcess::kPid, fp.tid_source(), quick());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->first.source, "calibrated");
  EXPECT_TRUE(r->second.ok) << joined(r->second);
  EXPECT_TRUE(has_check(r->second, "no table for go1.27.0 (newer than the table)"));
  EXPECT_TRUE(has_check(r->second, "note: calibration: m.alllink=352"));
  EXPECT_EQ(r->first.g_goid, 152u);
  EXPECT_EQ(r->first.m_p, 208u);
}

TEST(OffsetsResolve, UnknownVersionIsCalibrated) {
  FakeGoProcess fp(23, 0);
  fp.bin.go_version = "unknown";
  auto mem = fp.reader();
  auto r = sg::resolve_offsets(*mem, fp.bin, 0, FakeGoProcess::kPid, fp.tid_source(), quick());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->first.source, "calibrated");
  EXPECT_EQ(r->first.g_goid, 160u);
  EXPECT_TRUE(r->second.ok) << joined(r->second);
}

TEST(OffsetsResolve, WrongTableFailsValidationThenCalibrates) {
  FakeGoProcess fp(22, 0);
  fp.bin.go_version = "go1.25.3";  // mislabelled: memory is laid out like 1.22
  auto mem = fp.reader();
  auto r = sg::resolve_offsets(*mem, fp.bin, 0, FakeGoProcess::kPid, fp.tid_source(), quick());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->first.source, "calibrated");
  EXPECT_TRUE(r->second.ok) << joined(r->second);
  EXPECT_TRUE(has_check(r->second, "source: table:go1.25 failed validation")) << joined(r->second);
  EXPECT_EQ(r->first.m_alllink, 328u);
  EXPECT_EQ(r->first.g_goid, 152u);
}

TEST(OffsetsResolve, NoGlobalsNoStaticSourceIsAnError) {
  FakeGoProcess fp(22, 0);
  fp.bin.go_version = "unknown";
  fp.bin.globals = {};
  auto mem = fp.reader();
  EXPECT_FALSE(
      sg::resolve_offsets(*mem, fp.bin, 0, FakeGoProcess::kPid, fp.tid_source(), quick()).ok());
  // With a version, the table is returned unvalidated.
  fp.bin.go_version = "go1.22.1";
  auto r = sg::resolve_offsets(*mem, fp.bin, 0, FakeGoProcess::kPid, fp.tid_source(), quick());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first.source, "table:go1.22");
  EXPECT_FALSE(r->second.ok);
}

TEST(OffsetsResolve, OffsetsForPrefersDwarfThenTable) {
  sg::BinaryInfo bin;
  bin.go_version = "go1.21.13";
  auto t = sg::offsets_for(bin);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->source, "table:go1.21");
  bin.go_version = "go1.27.0";
  EXPECT_FALSE(sg::offsets_for(bin).ok());
  const std::string dw = testbin("selfreport-go1.26-dwarf");
  ASSERT_TRUE(std::filesystem::exists(dw)) << "test binary missing: " << dw;
  bin.path = dw;
  bin.has_dwarf = true;
  auto d = sg::offsets_for(bin);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->source, "dwarf");
}

// ------------------------------------------------------------------ own process

TEST(RuntimeReader, ProcessMemoryReadsOwnProcess) {
  std::string err;
  auto mem = sg::open_process_memory(getpid(), &err);
  ASSERT_NE(mem, nullptr) << err;
  volatile uint64_t probe = 0x5c4ed5c09e000001ull;
  auto v = mem->get<uint64_t>(reinterpret_cast<uint64_t>(&probe));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, probe);
  EXPECT_FALSE(mem->get<uint64_t>(8).has_value());  // unmapped
  EXPECT_EQ(sg::open_process_memory(-5, &err), nullptr);
  auto tids = sg::process_tids(getpid());
  EXPECT_NE(std::find(tids.begin(), tids.end(), static_cast<int>(getpid())), tids.end());
}

int bias_anchor() { return 42; }

TEST(RuntimeReader, LoadBiasOfOwnExecutable) {
  sg::BinaryInfo bin;
  bin.path = "/proc/self/exe";
  bin.pie = false;
  EXPECT_EQ(*sg::load_bias(getpid(), bin), 0u);
  bin.path = std::filesystem::read_symlink("/proc/self/exe").string();
  bin.pie = true;
  auto b = sg::load_bias(getpid(), bin);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b & 0xfff, 0u);
  // The code of this test binary sits at its link-time address + bias: within the file's
  // first few hundred MiB of address space.
  const uint64_t fn = reinterpret_cast<uint64_t>(&bias_anchor);
  ASSERT_GE(fn, *b);
  EXPECT_LT(fn - *b, 512ull << 20);
  sg::BinaryInfo missing;
  missing.path = "/nonexistent";
  missing.pie = true;
  EXPECT_FALSE(sg::load_bias(getpid(), missing).ok());
}


// read_goctx reads curg, id, p, oldp and incgo of an M in one window of SS_M_WINDOW bytes,
// with procid and isextra (the check of a thread's known M) where they fit: every field
// lies in it within the BPF side's masks, and the window stays inside struct m, on every
// tabled version.
TEST(OffsetsTable, GoContextFieldsOfMFitOneWindowRead) {
  for (int minor = 17; minor <= 26; minor++) {
    SCOPED_TRACE("go1." + std::to_string(minor));
    auto t = sg::offsets_from_table(minor);
    ASSERT_TRUE(t.ok()) << t.error().message;
    ss_go_offsets o{};
    o.m_curg = t->m_curg;
    o.m_id = t->m_id;
    o.m_p = t->m_p;
    o.m_oldp = t->m_oldp;
    o.m_incgo = t->m_incgo;
    o.m_procid = t->m_procid;
    o.m_isextra = t->m_isextra;
    for (bool cgo : {false, true}) {
      SCOPED_TRACE(cgo ? "cgo" : "no cgo");
      const auto w = schedscope::app::m_window(o, cgo);
      ASSERT_NE(w.start, 0u);
      EXPECT_EQ(w.start % 8, 0u);
      // The known M is read again only where an extra M can be told (1.20+) or none exists.
      EXPECT_EQ(w.cache, !cgo || minor >= 20);
      std::vector<uint32_t> f8 = {o.m_curg, o.m_id, o.m_p, o.m_oldp}, f1 = {o.m_incgo};
      if (w.cache) {
        f8.push_back(o.m_procid);
        if (o.m_isextra) f1.push_back(o.m_isextra);
      }
      for (uint32_t off : f8) {  // within the BPF side's mask for an 8-byte field
        EXPECT_GE(off, w.start);
        EXPECT_EQ((off - w.start) & 0xf8, off - w.start);
      }
      for (uint32_t off : f1) {
        EXPECT_GE(off, w.start);
        EXPECT_EQ((off - w.start) & 0xff, off - w.start);
      }
      EXPECT_LE(w.start + SS_M_WINDOW, t->m_size);
    }
  }
  // Fields too far apart (an unknown layout): one read per field.
  ss_go_offsets far{};
  far.m_curg = 192;
  far.m_id = 232;
  far.m_p = 208;
  far.m_incgo = 192 + 256;
  EXPECT_EQ(schedscope::app::m_window(far, false).start, 0u);
  far.m_incgo = 192 + 255;
  EXPECT_EQ(schedscope::app::m_window(far, false).start, 192u);
  far.m_oldp = 192 + 256;  // an 8-byte field past the mask
  EXPECT_EQ(schedscope::app::m_window(far, false).start, 0u);
  far.m_oldp = 220;  // unaligned
  EXPECT_EQ(schedscope::app::m_window(far, false).start, 0u);
  far.m_oldp = 224;
  far.m_incgo = 187;  // the window starts 8-aligned below the first field
  EXPECT_EQ(schedscope::app::m_window(far, false).start, 184u);
  EXPECT_FALSE(schedscope::app::m_window(far, false).cache);  // no procid
  // procid too far from the other fields: the window without it, and no cache.
  far.m_procid = 456;
  auto w = schedscope::app::m_window(far, false);
  EXPECT_EQ(w.start, 184u);
  EXPECT_FALSE(w.cache);
  far.m_procid = 72;  // within reach: the window starts at procid
  w = schedscope::app::m_window(far, false);
  EXPECT_EQ(w.start, 72u);
  EXPECT_TRUE(w.cache);
  // cgo and isextra unknown: a cgo callback's M could not be told from the thread's own.
  EXPECT_FALSE(schedscope::app::m_window(far, true).cache);
  far.m_isextra = 281;
  EXPECT_TRUE(schedscope::app::m_window(far, true).cache);
  far.m_isextra = 72 + 256;  // out of reach
  EXPECT_FALSE(schedscope::app::m_window(far, true).cache);
  // Uncalibrated (curg unknown): no window.
  far.m_curg = 0;
  EXPECT_EQ(schedscope::app::m_window(far, false).start, 0u);
}

}  // namespace
