// Input controlled by someone else, without root: binaries crafted to make the pclntab scan
// slow, files that are not regular files, and target-derived sizes and offsets.
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "elf/elf_file.h"
#include "go/binary.h"
#include "util/input_file.h"
#include "util/stop.h"

namespace sg = schedscope::go;
namespace se = schedscope::elf;
namespace ss = schedscope;

namespace {

void put64(std::vector<uint8_t>& b, size_t off, uint64_t v) { std::memcpy(b.data() + off, &v, 8); }

// An ELF64 with one read-only PT_LOAD segment of `seg_size` bytes and no section headers.
// The segment is a lattice of Go 1.2 pclntab headers (magic 0xfffffffb, quantum 1, 8-byte
// pointers) every 16 bytes, each declaring a function table that reaches the end of the
// segment, so every candidate is plausible; the table breaks its order `break_from_end`
// entries before its end (1: the last entry; 2: the one before, which sampling misses).
// The quadratic scan validated each candidate in full: about 14 s for 1 MiB.
std::vector<uint8_t> crafted_pclntab_lattice(size_t seg_size, int break_from_end) {
  constexpr size_t kSegOff = 4096;
  std::vector<uint8_t> img(kSegOff + seg_size, 0);
  std::memcpy(img.data(), ELFMAG, SELFMAG);
  img[EI_CLASS] = ELFCLASS64;
  img[EI_DATA] = ELFDATA2LSB;
  img[EI_VERSION] = EV_CURRENT;
  img[16] = ET_EXEC;
  img[18] = EM_X86_64;
  img[20] = EV_CURRENT;
  put64(img, 32, 64);  // e_phoff
  img[52] = 64;        // e_ehsize
  img[54] = 56;        // e_phentsize
  img[56] = 1;         // e_phnum
  uint8_t* ph = img.data() + 64;
  uint32_t type = PT_LOAD, flags = PF_R;
  std::memcpy(ph, &type, 4);
  std::memcpy(ph + 4, &flags, 4);
  put64(img, 64 + 8, kSegOff);    // p_offset
  put64(img, 64 + 16, 0x400000);  // p_vaddr
  put64(img, 64 + 32, seg_size);  // p_filesz
  put64(img, 64 + 40, seg_size);  // p_memsz
  const uint8_t magic[8] = {0xfb, 0xff, 0xff, 0xff, 0, 0, 1, 8};
  const size_t last = (seg_size - 16) & ~size_t{15};  // the last even slot
  for (size_t j = 0; j + 16 <= last; j += 16) {
    std::memcpy(img.data() + kSegOff + j, magic, 8);
    put64(img, kSegOff + j + 8, (last - j - 16) / 16);  // nfunc: the table ends at `last`
  }
  put64(img, kSegOff + last, ~uint64_t{0});                  // the end entry
  put64(img, kSegOff + last + 8, 0);                         // the file table offset after it
  put64(img, kSegOff + last + 16 - 16 * break_from_end, 0);  // out of order
  return img;
}

double seconds_to_inspect(const std::vector<uint8_t>& img, bool* is_go) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = sg::inspect_binary_image(img, "crafted");
  auto dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  *is_go = r.ok() && r->is_go;
  return dt;
}

}  // namespace

// A complexity test: linear work takes milliseconds here, the quadratic scan took 14 s at
// 1 MiB (and would take about an hour at 16 MiB). 2 s leaves room for a loaded machine.
TEST(PclntabScan, CraftedSegmentIsLinear) {
  for (size_t mib : {1, 16}) {
    for (int brk : {1, 2}) {
      auto img = crafted_pclntab_lattice(mib << 20, brk);
      bool is_go = true;
      double s = seconds_to_inspect(img, &is_go);
      std::printf("  %zu MiB, break %d from the end: %.3f s\n", mib, brk, s);
      EXPECT_LT(s, 2.0) << mib << " MiB, break " << brk << " from the end";
      EXPECT_FALSE(is_go) << "no valid pclntab in the lattice";
    }
  }
}

TEST(PclntabScan, LatticeIsAcceptedWhenSorted) {
  // The same lattice with no break is a valid (if odd) pclntab at the first candidate:
  // the scan's shortcuts do not reject what a full parse accepts.
  auto img = crafted_pclntab_lattice(1 << 16, 0);
  auto r = sg::inspect_binary_image(img, "crafted-sorted");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->is_go);
  EXPECT_EQ(r->pclntab_addr, 0x400000u);
}

TEST(PclntabScan, StopRequestEndsTheScan) {
  // Ctrl-C during the scan of a large binary without section headers: the scan polls
  // the stop request (util/stop.h) and gives up instead of finishing the segment.
  auto img = crafted_pclntab_lattice(64 << 20, 1);
  schedscope::g_stop = 1;
  bool is_go = true;
  double s = seconds_to_inspect(img, &is_go);
  schedscope::g_stop = 0;
  EXPECT_FALSE(is_go);
  const double full = seconds_to_inspect(img, &is_go);
  std::printf("  64 MiB: %.3f s stopped, %.3f s in full\n", s, full);
  // The rest of inspect (ELF parsing, the build info search) takes about a quarter here.
  EXPECT_LT(s, full / 2) << "the stop request did not end the scan";
}

// ------------------------------------------------------------------ non-regular files

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ss-hostile-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
};

int count(const std::string& s, const std::string& sub) {
  int n = 0;
  for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(InputFile, NonRegularFilesAreOneLineErrorsNotHangs) {
  TempDir d;
  const std::string fifo = d.path + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Without O_NONBLOCK this open would wait for a writer forever.
  auto f = ss::open_input_file(fifo);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().message, fifo + ": not a regular file (a FIFO)");
  auto e = se::ElfFile::open(fifo);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(count(e.error().message, fifo), 1) << e.error().message;

  auto dir = se::ElfFile::open(d.path);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().message, d.path + ": is a directory");
  auto zero = se::ElfFile::open("/dev/zero");
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().message, "/dev/zero: not a regular file (a character device)");

  const std::string empty = d.path + "/empty";
  {
    FILE* fp = std::fopen(empty.c_str(), "w");
    std::fclose(fp);
  }
  auto em = se::ElfFile::open(empty);
  ASSERT_FALSE(em.ok());
  EXPECT_EQ(em.error().message, empty + ": empty file, not an ELF executable");

  const std::string text = d.path + "/notelf.txt";
  {
    FILE* fp = std::fopen(text.c_str(), "w");
    std::fputs("hello\n", fp);
    std::fclose(fp);
  }
  auto bin = sg::inspect_binary(text);
  ASSERT_FALSE(bin.ok());
  EXPECT_EQ(bin.error().message, text + ": not an ELF file");  // the path once

  auto missing = ss::open_input_file(d.path + "/missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "cannot open " + d.path + "/missing: No such file or directory");
  auto ok = ss::open_input_file(text);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 6u);
}

// ------------------------------------------------------------------ target-derived sizes

#include "go/offsets.h"
#include "go/reader_detail.h"

namespace {

// Memory that answers every read (counting the bytes asked for): a huge read would be
// a huge allocation first.
class AnyMemory : public sg::MemReader {
 public:
  size_t asked = 0;
  bool read(uint64_t, void* buf, size_t len) override {
    asked += len;
    std::memset(buf, 0, len);
    return true;
  }
};

}  // namespace

TEST(TargetSizes, OffsetsAreBoundedWhereTheyEnter) {
  auto t = sg::offsets_from_table(21);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(sg::check_offset_bounds(*t).ok());
  sg::Offsets o = *t;
  o.p_m = 0xfffffff0u;  // e.g. from damaged DWARF: a P "4 GiB" long
  auto b = sg::check_offset_bounds(o);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message,
            "implausible offset p_m=4294967280 (runtime structs are smaller than 64 KiB)");
  o = *t;
  o.g_waitreason = 0xffffffffu;  // g_waitreason + 1 wrapped to 0 in 32 bits
  EXPECT_FALSE(sg::check_offset_bounds(o).ok());
  o = *t;
  o.g_waitreason = sg::kMaxGoStructOffset;
  EXPECT_TRUE(sg::check_offset_bounds(o).ok());

  // validate() refuses them before reading the target.
  AnyMemory mem;
  sg::BinaryInfo bin;
  bin.globals.allp = 0x1000;
  bin.globals.allm = 0x2000;
  o.p_m = 0xfffffff0u;
  auto v = sg::validate(mem, bin, o, 0, 1, [] { return std::vector<int>{1}; });
  EXPECT_FALSE(v.ok);
  ASSERT_EQ(v.checks.size(), 1u);
  EXPECT_EQ(v.checks[0],
            "FAIL: implausible offset p_m=4294967280 (runtime structs are smaller than 64 KiB)");
  EXPECT_EQ(mem.asked, 0u);
}

TEST(TargetSizes, StructReadsAreBounded) {
  AnyMemory mem;
  sg::detail::Block b;
  EXPECT_FALSE(sg::detail::read_block(mem, 0x10000, size_t{4} << 30, b));  // 4 GiB: refused
  EXPECT_EQ(mem.asked, 0u);
  EXPECT_TRUE(b.b.empty());
  EXPECT_TRUE(sg::detail::read_block(mem, 0x10000, sg::kMaxGoStructOffset, b));
  EXPECT_EQ(b.b.size(), sg::kMaxGoStructOffset);
}

// ------------------------------------------------------------------ terminal text

#include "util/printable.h"

TEST(Printable, ControlBytesAndInvalidUtf8AreEscaped) {
  EXPECT_EQ(ss::printable("worker-1"), "worker-1");
  EXPECT_EQ(ss::printable("\x1b[2Jx"), "\\x1b[2Jx");
  EXPECT_EQ(ss::printable("a\rb\nc\td\x7f"), "a\\x0db\\x0ac\\x09d\\x7f");
  EXPECT_EQ(ss::printable("a\nb\tc", true), "a\nb\tc");
  EXPECT_EQ(ss::printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(ss::printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(ss::printable("\xc2\x9b"
                          "31m"),
            "\\xc2\\x9b31m");                                   // C1 CSI
  EXPECT_EQ(ss::printable("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(ss::printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(ss::printable("\xe2\x82"), "\\xe2\\x82");           // truncated
  EXPECT_EQ(ss::printable(std::string("a\0b", 3)), "a\\x00b");
}

TEST(Printable, WritePrintableFiltersARenderedBlock) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  ss::write_printable(
      out, [](FILE* m) { std::fprintf(m, "THREAD %s\nnext\n", "evil\x1b]0;pwned\x07"); });
  std::fclose(out);
  EXPECT_EQ(std::string(buf, len), "THREAD evil\\x1b]0;pwned\\x07\nnext\n");
  std::free(buf);
}
