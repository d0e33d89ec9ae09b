// Wait reason names from the binary (go/waitreasons.h): the search for
// runtime.waitReasonStrings on synthetic images (plain, PIE-relocated with 0 in the slots,
// a string array right after it, corrupt and absent tables), the length from the code of
// runtime.waitReason.String, real binaries of go1.17..go1.27 (stripped, PIE), and the
// names in the census JSON, the text output and the netpoll alert evidence.
//
// Expected names per release: Go 1.19 and 1.23 from their runtime2.go (Debian's
// /usr/lib/go-1.19 and /usr/lib/go-1.23); 1.25 from runtime2.go of that release; 1.26 (which
// reordered the enum) checked against the code of runtime.waitReason.isChanWait /
// isSyncWait in selfreport-go1.26-dwarf (select|chan receive = 18|19, chan send = 20,
// sync waits 21..25).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "../common/fixtures.h"
#include "detect/detectors.h"
#include "elf/elf_file.h"
#include "gc/gc.h"
#include "go/binary.h"
#include "go/binary_json.h"
#include "go/waitreasons.h"
#include "model/frame_json.h"
#include "ui/gc_print.h"

using namespace schedscope;

namespace {

constexpr uint64_t kRo = 0x401000;    // synthetic rodata
constexpr uint64_t kData = 0x500000;  // synthetic data

// A synthetic image: string bytes in rodata, string headers in data.
struct Synth {
  std::vector<uint8_t> ro;
  std::vector<uint8_t> data;
  std::map<std::string, uint64_t> at;  // string -> its address in rodata
  std::unordered_map<uint64_t, uint64_t> relative;

  uint64_t str(const std::string& s) {
    if (auto it = at.find(s); it != at.end()) return it->second;
    uint64_t a = kRo + ro.size();
    ro.insert(ro.end(), s.begin(), s.end());  // not NUL-terminated, like Go
    at[s] = a;
    return a;
  }
  void word(uint64_t v) {
    for (int i = 0; i < 8; i++) data.push_back(uint8_t(v >> (8 * i)));
  }
  // A string header; `pie`: 0 in the slot and a RELATIVE relocation with the address.
  void header(uint64_t ptr, uint64_t len, bool pie = false) {
    if (pie && ptr) relative[kData + data.size()] = ptr;
    word(pie ? 0 : ptr);
    word(len);
  }
  uint64_t table(const std::vector<std::string>& names, bool pie = false) {
    uint64_t a = kData + data.size();
    for (const auto& n : names) {
      if (n.empty())
        header(0, 0);
      else
        header(str(n), n.size(), pie);
    }
    return a;
  }
  [[nodiscard]] go::WaitReasonImage image() const {
    go::WaitReasonImage img;
    img.rodata = {{kRo, ro}};
    img.data = {{kData, data}};
    img.mapped = {{kRo, ro}, {kData, data}};
    img.relative = relative;
    return img;
  }
};

const std::vector<std::string> kNames = {
    "", "GC assist marking", "IO wait", "chan receive", "select", "sleep"};

TEST(WaitReasons, FoundInPlainImage) {
  Synth s;
  s.str("unrelated rodata ");
  s.word(0x1234);  // other data before the array
  s.header(s.str("IO wait"), 7);
  uint64_t a = s.table(kNames);
  s.header(0, 0);  // the next variable: not a name
  auto t = go::find_wait_reasons(s.image());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->addr, a);
  EXPECT_EQ(t->names, kNames);
  EXPECT_EQ(t->source, "data");
}

TEST(WaitReasons, PieSlotsHoldZeroAndRelocationsGiveTheAddresses) {
  Synth s;
  s.word(7);
  uint64_t a = s.table(kNames, /*pie=*/true);
  s.word(0);
  auto img = s.image();
  ASSERT_FALSE(img.relative.empty());
  auto t = go::find_wait_reasons(img);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->addr, a);
  EXPECT_EQ(t->names, kNames);
  img.relative.clear();  // without the relocations the slots are 0: nothing to find
  EXPECT_FALSE(go::find_wait_reasons(img));
}

TEST(WaitReasons, SharedSubstringsAndUnterminatedBytes) {
  Synth s;
  // "select (no cases)" holds "select"; headers may point into the middle of other bytes.
  uint64_t sel = s.str("select (no cases)");
  s.str("GC assist markingIO wait");
  uint64_t assist = s.at["GC assist markingIO wait"];
  s.header(0, 0);
  s.header(assist, 17);
  s.header(assist + 17, 7);
  s.header(sel, 6);
  s.header(sel, 17);
  s.word(0);
  s.word(0);
  auto t = go::find_wait_reasons(s.image());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->names, (std::vector<std::string>{"", "GC assist marking", "IO wait", "select",
                                                "select (no cases)"}));
}

TEST(WaitReasons, EndsAtTheFirstImplausibleEntry) {
  auto ends = [](auto tail) {
    Synth s;
    s.table({"", "GC assist marking", "IO wait", "sleep"});
    tail(s);
    s.header(s.str("never read"), 10);
    auto t = go::find_wait_reasons(s.image());
    EXPECT_TRUE(t);
    return t ? t->names.size() : 0;
  };
  EXPECT_EQ(ends([](Synth& s) { s.header(s.str("x"), 0); }), 4u);                    // length 0
  EXPECT_EQ(ends([](Synth& s) { s.header(s.str(std::string(80, 'a')), 80); }), 4u);  // > 64
  EXPECT_EQ(ends([](Synth& s) { s.header(0x7000000, 5); }), 4u);                     // unmapped
  EXPECT_EQ(ends([](Synth& s) { s.header(s.str(std::string("a\x01z", 3)), 3); }), 4u);
  // The end of the data range, and the cap.
  Synth s;
  std::vector<std::string> many = {"", "GC assist marking", "IO wait"};
  for (int i = 3; i < 100; i++) many.push_back("reason " + std::to_string(i));
  s.table(many);
  auto t = go::find_wait_reasons(s.image());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->names.size(), go::kMaxWaitReasons);
}

TEST(WaitReasons, LengthFromTheCodeStopsAtTheNextArray) {
  Synth s;
  uint64_t a = s.table(kNames);
  s.table({"end of file", "identifier", "number"});  // another [...]string right after
  auto img = s.image();
  auto over = go::find_wait_reasons(img);
  ASSERT_TRUE(over);
  EXPECT_EQ(over->names.size(), kNames.size() + 3);  // contents alone cannot tell
  img.bound = go::WaitReasonImage::Bound{a, kNames.size()};
  auto t = go::find_wait_reasons(img);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->names, kNames);
  EXPECT_EQ(t->source, "data+code");
  img.bound = go::WaitReasonImage::Bound{a + 16, 3};  // another address: ignored
  EXPECT_EQ(go::find_wait_reasons(img)->source, "data");
}

// runtime.stwReasonStrings: the same search anchored on "unknown", "GC mark termination",
// "GC sweep termination"; the wait reasons' table is not taken for it, nor a table whose
// element 0 is another name.
TEST(StwReasons, FoundByItsFirstThreeNames) {
  const std::vector<std::string> stw = {"unknown", "GC mark termination", "GC sweep termination",
                                        "write heap dump", "read mem stats"};
  for (bool pie : {false, true}) {
    SCOPED_TRACE(pie ? "PIE" : "plain");
    Synth s;
    s.table(kNames, pie);
    s.word(0);
    s.word(0);
    uint64_t a = s.table(stw, pie);
    s.word(0);
    s.word(0);
    auto img = s.image();
    auto t = go::find_stw_reasons(img);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->addr, a);
    EXPECT_EQ(t->names, stw);
    EXPECT_EQ(t->source, "data");
    EXPECT_EQ(go::find_wait_reasons(img)->names, kNames);  // each finds its own
  }
  Synth s;
  s.table({"stopped", "GC mark termination", "GC sweep termination", "x"});
  s.word(0);
  s.word(0);
  s.table({"", "GC mark termination", "GC sweep termination", "x"});
  s.word(0);
  s.word(0);
  s.table({"unknown", "GC sweep termination", "GC mark termination", "x"});  // reordered
  s.word(0);
  s.word(0);
  EXPECT_FALSE(go::find_stw_reasons(s.image()));
}

TEST(WaitReasons, AbsentOrCorruptGivesNothing) {
  EXPECT_FALSE(go::find_wait_reasons(go::WaitReasonImage{}));
  {  // the strings exist but no array points at them
    Synth s;
    s.str("GC assist marking");
    s.str("IO wait");
    s.word(0);
    s.word(0);
    EXPECT_FALSE(go::find_wait_reasons(s.image()));
  }
  {  // entry 2 is not "IO wait"
    Synth s;
    s.table({"", "GC assist marking", "sleep", "IO wait"});
    EXPECT_FALSE(go::find_wait_reasons(s.image()));
  }
  {  // entry 2 has the right pointer but a wrong length
    Synth s;
    s.header(0, 0);
    s.header(s.str("GC assist marking"), 17);
    s.header(s.str("IO wait"), 6);
    EXPECT_FALSE(go::find_wait_reasons(s.image()));
  }
  {  // entry 0 is not the empty string
    Synth s;
    s.table({"x", "GC assist marking", "IO wait"});
    EXPECT_FALSE(go::find_wait_reasons(s.image()));
  }
  {  // two different tables: ambiguous
    Synth s;
    s.table({"", "GC assist marking", "IO wait", "sleep"});
    s.word(1);
    s.table({"", "GC assist marking", "IO wait", "select"});
    EXPECT_FALSE(go::find_wait_reasons(s.image()));
  }
  {  // truncated data: the array runs off the end of the range
    Synth s;
    s.table({"", "GC assist marking", "IO wait"});
    s.data.resize(s.data.size() - 1);
    EXPECT_FALSE(go::find_wait_reasons(s.image()));
  }
  {  // pointer size other than 4 or 8
    Synth s;
    s.table(kNames);
    auto img = s.image();
    img.ptr_size = 3;
    EXPECT_FALSE(go::find_wait_reasons(img));
  }
}

TEST(WaitReasons, BoundFromTheCodeOfWaitReasonString) {
  // runtime.waitReason.String of tests/fixtures/bin/hello-symbols (go1.19.8) at 0x43e880:
  // cmp $0x1b,%al; jb; lea "unknown wait reason"(%rip),%rax; mov $19,%ebx; ret;
  // movzbl %al,%ecx; shl $4,%rcx; lea waitReasonStrings(%rip),%rdx; mov (%rdx,%rcx),%rax ...
  const std::vector<uint8_t> code = {
      0x3c, 0x1b, 0x72, 0x0d, 0x48, 0x8d, 0x05, 0xc0, 0x79, 0x02, 0x00, 0xbb, 0x13, 0x00,
      0x00, 0x00, 0xc3, 0x0f, 0xb6, 0xc8, 0x48, 0xc1, 0xe1, 0x04, 0x48, 0x8d, 0x15, 0x41,
      0xdf, 0x07, 0x00, 0x48, 0x8b, 0x04, 0x0a, 0x48, 0x8b, 0x5c, 0x0a, 0x08, 0xc3};
  auto b = go::wait_reason_bound_from_code(code, 0x43e880);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->addr, 0x4bc7e0u);  // the twin's .symtab: runtime.waitReasonStrings
  EXPECT_EQ(b->len, 27u);         // its size 432 / 16
  // Without the bounds check, or without the indexed load: nothing.
  EXPECT_FALSE(go::wait_reason_bound_from_code(std::span(code).subspan(2), 0x43e882));
  EXPECT_FALSE(go::wait_reason_bound_from_code(std::span(code).first(31), 0x43e880));
  EXPECT_FALSE(go::wait_reason_bound_from_code({}, 0));
}

// ---------------------------------------------------------------- real binaries

using schedscope::test::fixture;
using schedscope::test::npm_binary;
using schedscope::test::testbin;
std::string built(const std::string& rel) { return std::string(SCHEDSCOPE_BUILD_DIR) + "/" + rel; }

struct Expect {
  std::string path;
  std::string version_prefix;
  size_t count;
  std::map<size_t, std::string> names;  // a few entries beyond 1 and 2
};

// Go 1.17..1.20 (waitReasonStrings of 1.17-1.19 are the same 27 entries).
const std::map<size_t, std::string> k119 = {{3, "chan receive (nil chan)"},
                                            {9, "select"},
                                            {14, "chan receive"},
                                            {15, "chan send"},
                                            {18, "semacquire"},
                                            {19, "sleep"},
                                            {20, "sync.Cond.Wait"},
                                            {21, "timer goroutine (idle)"},
                                            {26, "debug call"}};
const std::map<size_t, std::string> k123 = {{9, "select"},
                                            {14, "chan receive"},
                                            {19, "sleep"},
                                            {21, "sync.Mutex.Lock"},
                                            {27, "GC worker (active)"},
                                            {36, "coroutine"},
                                            {37, "GC weak to strong wait"}};
const std::map<size_t, std::string> k125 = {
    {9, "select"},       {14, "chan receive"},        {18, "GOMAXPROCS updater (idle)"},
    {20, "sleep"},       {25, "sync.WaitGroup.Wait"}, {42, "chan receive (durable)"},
    {46, "cleanup wait"}};
const std::map<size_t, std::string> k126 = {{14, "sleep"},          {18, "select"},
                                            {19, "chan receive"},   {20, "chan send"},
                                            {21, "sync.Cond.Wait"}, {25, "sync.WaitGroup.Wait"},
                                            {46, "cleanup wait"}};

void check_binary(const Expect& e) {
  SCOPED_TRACE(e.path);
  if (!schedscope::test::present_or_skip(e.path)) return;
  auto b = go::inspect_binary(e.path);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->go_version.rfind(e.version_prefix, 0), 0u) << b->go_version;
  ASSERT_EQ(b->wait_reasons.size(), e.count);
  EXPECT_EQ(b->wait_reasons_source, "data+code");
  EXPECT_NE(b->wait_reasons_addr, 0u);
  EXPECT_EQ(b->wait_reasons[0], "");
  EXPECT_EQ(b->wait_reasons[1], "GC assist marking");
  EXPECT_EQ(b->wait_reasons[2], "IO wait");
  for (const auto& [i, n] : e.names) EXPECT_EQ(b->wait_reasons.at(i), n) << "index " << i;
  // The length from the code agrees with the contents alone (nothing readable follows),
  // except where another string array follows the table in .data.
  auto elf = elf::ElfFile::open(e.path);
  ASSERT_TRUE(elf.ok());
  auto by_contents = go::find_wait_reasons(**elf);
  ASSERT_TRUE(by_contents);
  EXPECT_EQ(by_contents->addr, b->wait_reasons_addr);
  EXPECT_GE(by_contents->names.size(), e.count);
}

TEST(WaitReasonsReal, Fixtures119StrippedPieCgoNoBuildinfo) {
  for (const char* n : {"hello-stripped", "hello-pie-stripped", "cgohello-stripped",
                        "hello-nobuildinfo", "hello-symbols"})
    check_binary({fixture(n), "go1.19", 27, k119});
}

TEST(WaitReasonsReal, FixtureSymbolsMatchSymtab) {
  auto elf = elf::ElfFile::open(fixture("hello-symbols"));
  ASSERT_TRUE(elf.ok());
  auto sym = (*elf)->symbol("runtime.waitReasonStrings");
  ASSERT_TRUE(sym);
  auto b = go::inspect_binary(fixture("hello-symbols"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->wait_reasons_addr, sym->value);
  EXPECT_EQ(b->wait_reasons.size() * 16, sym->size);
}

TEST(WaitReasonsReal, Workloads119) {
  check_binary({built("workloads/pingpong"), "go1.19", 27, k119});
  check_binary({built("workloads/healthy_cpu-pie-stripped"), "go1.19", 27, k119});
}

TEST(WaitReasonsReal, Testbins121To126Stripped) {
  check_binary(
      {testbin("selfreport-go1.21-stripped"),
       "go1.21",
       32,
       {{9, "select"}, {19, "sleep"}, {30, "GC mark termination"}, {31, "stopping the world"}}});
  check_binary({testbin("selfreport-go1.22-stripped"),
                "go1.22",
                37,
                {{9, "select"}, {19, "sleep"}, {36, "coroutine"}}});
  check_binary({testbin("selfreport-go1.23-stripped"), "go1.23", 38, k123});
  check_binary({testbin("selfreport-go1.24-stripped"),
                "go1.24",
                44,
                {{9, "select"}, {19, "sleep"}, {24, "sync.WaitGroup.Wait"}}});
  check_binary({testbin("selfreport-go1.25-stripped"), "go1.25", 47, k125});
  check_binary({testbin("selfreport-go1.26-stripped"), "go1.26", 47, k126});
}

TEST(WaitReasonsReal, Go126MatchesItsDwarfTwinSymbol) {
  const std::string p = testbin("selfreport-go1.26-dwarf");
  if (!schedscope::test::present_or_skip(p)) return;
  auto elf = elf::ElfFile::open(p);
  ASSERT_TRUE(elf.ok());
  auto sym = (*elf)->symbol("runtime.waitReasonStrings");
  ASSERT_TRUE(sym);
  auto b = go::inspect_binary(p);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->wait_reasons_addr, sym->value);
  EXPECT_EQ(b->wait_reasons.size() * 16, sym->size);
}

// Downloaded by `make npm-bins` (tests/fixtures/npm/fetch.py) before the unit tier; when
// the download failed the skip says why.
TEST(WaitReasonsReal, ForeignBinariesWhenPresent) {
  check_binary({npm_binary("esbuild-0.13.15/package/bin/esbuild"), "go1.17", 27, k119});
  check_binary({npm_binary("esbuild-0.14.30/package/bin/esbuild"), "go1.18", 27, k119});
  // go1.20: another string array follows waitReasonStrings in esbuild's .data; the
  // length from runtime.waitReason.String ends the table.
  check_binary({npm_binary("esbuild-0.17.19/package/bin/esbuild"),
                "go1.20",
                32,
                {{9, "select"},
                 {19, "sleep"},
                 {21, "sync.Mutex.Lock"},
                 {27, "GC worker (active)"},
                 {31, "stopping the world"}}});
  check_binary({npm_binary("lefthook-2.2.2/package/bin/lefthook"), "go1.27", 47, k126});
}

// runtime.stwReasonStrings: 17 names in every release from 1.21 to 1.27, none before.
void check_stw(const std::string& path, size_t count) {
  SCOPED_TRACE(path);
  if (!schedscope::test::present_or_skip(path)) return;
  auto b = go::inspect_binary(path);
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_EQ(b->stw_reasons.size(), count);
  if (count == 0) {
    EXPECT_EQ(b->stw_reasons_source, "none");
    return;
  }
  EXPECT_EQ(b->stw_reasons_source, "data");
  EXPECT_EQ(b->stw_reasons[0], "unknown");
  EXPECT_EQ(b->stw_reasons[1], "GC mark termination");
  EXPECT_EQ(b->stw_reasons[2], "GC sweep termination");
  EXPECT_EQ(b->stw_reasons[7], "read mem stats");
  EXPECT_EQ(b->stw_reasons[9], "GOMAXPROCS");
  EXPECT_EQ(b->stw_reasons[16], "ResetDebugLog (test)");
}

TEST(StwReasonsReal, NoneBefore121) {
  check_stw(fixture("hello-stripped"), 0);
  check_stw(built("workloads/pingpong"), 0);
  check_stw(npm_binary("esbuild-0.13.15/package/bin/esbuild"), 0);
  check_stw(npm_binary("esbuild-0.17.19/package/bin/esbuild"), 0);
}

TEST(StwReasonsReal, From121To127Stripped) {
  for (const char* v : {"1.21", "1.22", "1.23", "1.24", "1.25", "1.26"})
    check_stw(testbin(std::string("selfreport-go") + v + "-stripped"), 17);
  check_stw(built("workloads/stwloop-go1.23-stripped"), 17);
  check_stw(npm_binary("lefthook-2.2.2/package/bin/lefthook"), 17);
}

TEST(StwReasonsReal, Go126MatchesItsDwarfTwinSymbol) {
  const std::string p = testbin("selfreport-go1.26-dwarf");
  if (!schedscope::test::present_or_skip(p)) return;
  auto elf = elf::ElfFile::open(p);
  ASSERT_TRUE(elf.ok());
  auto sym = (*elf)->symbol("runtime.stwReasonStrings");
  ASSERT_TRUE(sym);
  auto t = go::find_stw_reasons(**elf);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->addr, sym->value);
  EXPECT_EQ(t->names.size() * 16, sym->size);
}

TEST(WaitReasonsReal, InspectJsonAndNotFound) {
  auto b = go::inspect_binary(fixture("hello-stripped"));
  ASSERT_TRUE(b.ok());
  auto j = go::inspect_to_json(*b);
  EXPECT_EQ(j["wait_reasons"]["count"], 27);
  EXPECT_EQ(j["wait_reasons"]["source"], "data+code");
  EXPECT_EQ(j["wait_reasons"]["names"][19], "sleep");
  EXPECT_FALSE(j["wait_reasons"].contains("note"));
  // Not found: the fallback is said.
  b->wait_reasons.clear();
  b->wait_reasons_source = "none";
  b->wait_reasons_addr = 0;
  j = go::inspect_to_json(*b);
  EXPECT_EQ(j["wait_reasons"]["count"], 0);
  EXPECT_EQ(j["wait_reasons"]["source"], "none");
  EXPECT_NE(j["wait_reasons"]["note"].get<std::string>().find("wait reason N"), std::string::npos);
}

TEST(WaitReasonsReal, CorruptedStringsInTheImageGiveNone) {
  // Overwrite "IO wait" everywhere in a real binary: the table is not found, nothing else
  // breaks.
  auto elf = elf::ElfFile::open(fixture("hello-stripped"));
  ASSERT_TRUE(elf.ok());
  std::vector<uint8_t> img((*elf)->image().begin(), (*elf)->image().end());
  const std::string needle = "IO wait";
  for (size_t i = 0; i + needle.size() <= img.size(); i++)
    if (std::memcmp(img.data() + i, needle.data(), needle.size()) == 0) img[i] = 'X';
  auto b = go::inspect_binary_image(img, "corrupt");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->is_go);
  EXPECT_TRUE(b->wait_reasons.empty());
  EXPECT_EQ(b->wait_reasons_source, "none");
}

// ---------------------------------------------------------------- the names in the output

gc::Census census_with(gc::WaitReasonNames names) {
  gc::Census c;
  c.allglen = c.read = 40;
  c.by_status[4] = 40;
  c.waiting_by_reason[2] = 10;   // IO wait
  c.waiting_by_reason[14] = 20;  // chan receive in 1.19
  c.waiting_by_reason[19] = 9;   // sleep in 1.19
  c.waiting_by_reason[60] = 1;   // beyond the table
  c.reason_names = std::move(names);
  return c;
}

TEST(WaitReasonNames, CensusJsonUsesTheTableElseTheFallback) {
  auto b = go::inspect_binary(fixture("hello-stripped"));
  ASSERT_TRUE(b.ok());
  auto names = std::make_shared<const std::vector<std::string>>(b->wait_reasons);
  auto j = model::census_json(census_with(names));
  EXPECT_EQ(j["waiting_by_reason"]["IO wait"], 10);
  EXPECT_EQ(j["waiting_by_reason"]["chan receive"], 20);
  EXPECT_EQ(j["waiting_by_reason"]["sleep"], 9);
  EXPECT_EQ(j["waiting_by_reason"]["wait reason 60"], 1);
  EXPECT_EQ(j["io_wait"], 10);
  auto fallback = model::census_json(census_with(nullptr));
  EXPECT_EQ(fallback["waiting_by_reason"]["IO wait"], 10);
  EXPECT_EQ(fallback["waiting_by_reason"]["wait reason 14"], 20);
  EXPECT_EQ(gc::wait_reason_name(0, names), "none");
  EXPECT_EQ(gc::wait_reason_name(1, nullptr), "GC assist marking");
}

TEST(WaitReasonNames, TextOutputListsTheTopReasons) {
  model::Frame f;
  f.census = census_with(std::make_shared<const std::vector<std::string>>(
      go::inspect_binary(fixture("hello-stripped"))->wait_reasons));
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  ui::print_gc_text(f, out);
  fclose(out);
  std::string s(buf, len);
  free(buf);
  EXPECT_NE(s.find("waiting: chan receive 20, IO wait 10, sleep 9, wait reason 60 1"),
            std::string::npos)
      << s;
}

TEST(WaitReasonNames, NetpollEvidenceNamesTheReasons) {
  model::Frame f;
  f.ts_ns = 5'000'000'000ull;
  f.interval_s = 1;
  go::SchedSample s;
  s.gomaxprocs = 2;
  for (int i = 0; i < 2; i++) {
    go::PSample p;
    p.id = i;
    p.status = 0;
    s.ps.push_back(p);
  }
  f.go = s;
  model::ThreadRow r;
  r.tid = 10;
  r.syscall = "epoll_wait";
  r.oncpu_pct = 10;
  f.threads.push_back(r);
  gc::Census c;
  c.allglen = c.read = 1000;
  c.by_status[4] = 1000;
  c.waiting_by_reason[2] = 900;
  c.waiting_by_reason[9] = 100;  // select in 1.19
  c.reason_names = std::make_shared<const std::vector<std::string>>(
      go::inspect_binary(fixture("hello-stripped"))->wait_reasons);
  f.census = c;
  detect::Detectors d;
  detect::attach(f, d.evaluate(f));
  ASSERT_EQ(f.alerts.size(), 1u);
  std::string all;
  for (const auto& e : f.alerts[0].evidence) all += e + "\n";
  EXPECT_NE(all.find("waiting by reason: IO wait 900; select 100"), std::string::npos) << all;
}

}  // namespace
