// Static Go binary introspection: ELF reader, build info, pclntab, x86 patterns, and
// inspect_binary() on real binaries:
//   tests/fixtures/testbins/bin/selfreport-go1.{21..26}-stripped, selfreport-go1.26-dwarf
//   tests/fixtures/bin/* (built by tests/fixtures/build.sh with Debian's go1.19)
// Expected values were checked against DWARF (llvm-symbolizer), the unstripped twins'
// .symtab, and live processes (see tests/fixtures/build.sh and bin/expected.json).
#include <elf.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../common/fixtures.h"
#include "elf/bytes.h"
#include "elf/elf_file.h"
#include "go/binary.h"
#include "go/binary_json.h"
#include "go/buildinfo.h"
#include "go/pclntab.h"
#include "go/x86.h"
#include "util/hex.h"

namespace sg = schedscope::go;
namespace se = schedscope::elf;

namespace {

using schedscope::test::fixture;
using schedscope::test::testbin;

// Missing binaries are reported as skips (with the reason), never passed over silently.
bool exists(const std::string& p) { return schedscope::test::present_or_skip(p); }

#define SKIP_IF_MISSING(path)  \
  do {                         \
    if (!exists(path)) return; \
  } while (0)

uint64_t hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

// Ground truth written by tests/fixtures/build.sh from the unstripped twins.
const nlohmann::json& expected() {
  static const nlohmann::json j = [] {
    std::ifstream in(fixture("expected.json"));
    return nlohmann::json::parse(in);
  }();
  return j;
}

sg::BinaryInfo inspect_ok(const std::string& path) {
  auto r = sg::inspect_binary(path);
  EXPECT_TRUE(r.ok()) << path << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(*r) : sg::BinaryInfo{};
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The twin's .symtab addresses of the runtime globals, from expected.json.
void expect_globals_equal(const sg::Globals& g, const nlohmann::json& truth) {
  EXPECT_EQ(g.allp, hex(truth["runtime.allp"]));
  EXPECT_EQ(g.allm, hex(truth["runtime.allm"]));
  EXPECT_EQ(g.sched, hex(truth["runtime.sched"]));
  EXPECT_EQ(g.gomaxprocs, hex(truth["runtime.gomaxprocs"]));
  EXPECT_EQ(g.allgs, hex(truth["runtime.allgs"]));
  EXPECT_EQ(g.allglen, hex(truth["runtime.allglen"]));
  EXPECT_EQ(g.gcphase, hex(truth["runtime.gcphase"]));
}

std::shared_ptr<sg::Pclntab> pclntab_of(const std::string& path) {
  auto elf = se::ElfFile::open(path);
  EXPECT_TRUE(elf.ok());
  const se::Section* s = (*elf)->section(".gopclntab");
  EXPECT_NE(s, nullptr);
  auto t = sg::Pclntab::parse((*elf)->section_data(*s));
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  return t.ok() ? *t : nullptr;
}

// ------------------------------------------------------------------ synthetic pclntab

// Appends little-endian integers and uvarints to a byte vector.
struct Bytes {
  std::vector<uint8_t> b;
  void u8(uint8_t v) { b.push_back(v); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void word(uint64_t v, int ps) { ps == 8 ? u64(v) : u32(static_cast<uint32_t>(v)); }
  void uvarint(uint64_t v) {
    while (v >= 0x80) {
      b.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    b.push_back(static_cast<uint8_t>(v));
  }
  void str(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    b.push_back(0);
  }
  void put32(size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  void putword(size_t at, uint64_t v, int ps) {
    for (int i = 0; i < ps; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  size_t size() const { return b.size(); }
};

uint64_t zigzag(int64_t v) { return v < 0 ? ((~static_cast<uint64_t>(v)) << 1) | 1 : v << 1; }

struct SynFunc {
  std::string name;
  uint64_t entry;  // absolute
  uint64_t size;
  std::string file;
  int line;  // first half of the function is `line`, second half `line + 2`
  uint8_t func_id = 0;
};

// Builds a pclntab in the given layout (magic) with one CU and the functions above.
std::vector<uint8_t> build_pclntab(uint32_t magic, int ps, uint64_t text,
                                   const std::vector<SynFunc>& fns, uint64_t end) {
  const bool v12 = magic == 0xfffffffb;
  const bool v118 = magic == 0xfffffff0 || magic == 0xfffffff1;
  const bool v120 = magic == 0xfffffff1;
  std::vector<std::string> files;
  for (const auto& f : fns) {
    if (std::find(files.begin(), files.end(), f.file) == files.end()) files.push_back(f.file);
  }
  auto file_index = [&](const std::string& f) {
    return static_cast<int>(std::find(files.begin(), files.end(), f) - files.begin());
  };
  Bytes t;
  t.u32(magic);
  t.u8(0);
  t.u8(0);
  t.u8(1);  // quantum
  t.u8(static_cast<uint8_t>(ps));
  const int nwords = v12 ? 1 : (v118 ? 8 : 7);
  const size_t hdr_words = t.size();
  for (int i = 0; i < nwords; ++i) t.word(0, ps);
  t.putword(hdr_words, fns.size(), ps);
  if (!v12) t.putword(hdr_words + ps, files.size(), ps);
  if (v118) t.putword(hdr_words + 2 * ps, text, ps);

  // 1.16+: separate tables, offsets relative to the header. 1.2: everything relative to
  // the start, functab right after the header.
  std::vector<uint32_t> nameoff, pcfile, pcln;
  size_t funcname_off = 0, cu_off = 0, filetab_off = 0, pctab_off = 0;
  auto emit_pctabs = [&](size_t base) {
    for (const auto& f : fns) {
      const int fno = v12 ? file_index(f.file) + 1 : file_index(f.file);
      pcfile.push_back(static_cast<uint32_t>(t.size() - base));
      t.uvarint(zigzag(fno + 1));  // from -1 to fno
      t.uvarint(f.size);
      t.u8(0);
      pcln.push_back(static_cast<uint32_t>(t.size() - base));
      t.uvarint(zigzag(f.line + 1));
      t.uvarint(f.size / 2);
      t.uvarint(zigzag(2));
      t.uvarint(f.size - f.size / 2);
      t.u8(0);
    }
  };
  if (!v12) {
    funcname_off = t.size();
    for (const auto& f : fns) {
      nameoff.push_back(static_cast<uint32_t>(t.size() - funcname_off));
      t.str(f.name);
    }
    filetab_off = t.size();
    std::vector<uint32_t> foffs;
    for (const auto& f : files) {
      foffs.push_back(static_cast<uint32_t>(t.size() - filetab_off));
      t.str(f);
    }
    cu_off = t.size();
    for (uint32_t o : foffs) t.u32(o);
    pctab_off = t.size();
    t.u8(0);  // offset 0 means "no table"
    emit_pctabs(pctab_off);
  }
  if (!v12) {
    while (t.size() % 8) t.u8(0);
  }
  const size_t pcln_off = t.size();  // 1.2: the function table right after the header
  const int field = v118 ? 4 : ps;
  const size_t functab = t.size();
  for (size_t i = 0; i <= fns.size(); ++i) {
    t.word(0, field);
    if (i < fns.size()) t.word(0, field);
  }
  size_t filetab12 = 0;
  if (v12) {
    filetab12 = t.size();
    t.u32(0);  // patched below
    for (const auto& f : fns) {
      nameoff.push_back(static_cast<uint32_t>(t.size()));
      t.str(f.name);
    }
    emit_pctabs(0);
    std::vector<uint32_t> foffs;
    for (const auto& f : files) {
      foffs.push_back(static_cast<uint32_t>(t.size()));
      t.str(f);
    }
    while (t.size() % 4) t.u8(0);
    t.put32(filetab12, static_cast<uint32_t>(t.size()));
    t.u32(static_cast<uint32_t>(files.size() + 1));
    for (uint32_t o : foffs) t.u32(o);
  }
  for (size_t i = 0; i < fns.size(); ++i) {
    while (t.size() % 8) t.u8(0);
    const size_t fo = t.size();
    t.putword(functab + 2 * i * field, v118 ? fns[i].entry - text : fns[i].entry, field);
    // _func offsets: relative to the pcln table (1.16+), to the start (1.2).
    t.putword(functab + (2 * i + 1) * field, v12 ? fo : fo - pcln_off, field);
    t.word(v118 ? fns[i].entry - text : fns[i].entry, v118 ? 4 : ps);
    t.u32(nameoff[i]);
    t.u32(0);  // args
    t.u32(0);  // deferreturn / frame
    t.u32(0);  // pcsp
    t.u32(pcfile[i]);
    t.u32(pcln[i]);
    t.u32(0);  // npcdata
    if (!v12) {
      t.u32(0);                                             // cuOffset
      if (v120) t.u32(static_cast<uint32_t>(fns[i].line));  // startLine
      t.u8(fns[i].func_id);
      t.u8(0);
      t.u8(0);
      t.u8(0);
    }
  }
  t.putword(functab + 2 * fns.size() * field, v118 ? end - text : end, field);
  if (!v12) {
    t.putword(hdr_words + (v118 ? 3 : 2) * ps, funcname_off, ps);
    t.putword(hdr_words + (v118 ? 4 : 3) * ps, cu_off, ps);
    t.putword(hdr_words + (v118 ? 5 : 4) * ps, filetab_off, ps);
    t.putword(hdr_words + (v118 ? 6 : 5) * ps, pctab_off, ps);
    t.putword(hdr_words + (v118 ? 7 : 6) * ps, pcln_off, ps);
  }
  return t.b;
}

const std::vector<SynFunc> kSynFuncs = {
    {"runtime.goexit1", 0x401000, 0x40, "runtime/proc.go", 100, 0},
    {"runtime.goexit1", 0x401040, 0x20, "runtime/asm_amd64.s", 10, 21},
    {"runtime.newproc", 0x401060, 0x60, "runtime/proc.go", 200, 0},
    {"runtime.newproc", 0x4010c0, 0x20, "runtime/asm_amd64.s", 20, 21},
    {"main.main", 0x4010e0, 0x100, "main.go", 7, 0},
};

}  // namespace

// ================================================================== ELF reader

TEST(GoBinary, ElfReaderSectionsSegmentsSymbols) {
  auto elf = se::ElfFile::open(fixture("hello-symbols"));
  ASSERT_TRUE(elf.ok()) << elf.error().message;
  const auto& f = **elf;
  EXPECT_TRUE(f.is_64());
  EXPECT_EQ(f.machine(), EM_X86_64);
  EXPECT_EQ(f.type(), ET_EXEC);
  ASSERT_NE(f.section(".gopclntab"), nullptr);
  ASSERT_NE(f.section(".text"), nullptr);
  EXPECT_EQ(f.section(".text")->addr, 0x401000u);
  EXPECT_TRUE(f.has_symtab());
  auto sym = f.symbol("runtime.execute");
  ASSERT_TRUE(sym.has_value());
  EXPECT_EQ(sym->type, STT_FUNC);
  // vaddr -> file bytes: the function's first bytes are the same via section and vaddr.
  const auto* text = f.section(".text");
  auto via_vaddr = f.read_vaddr(sym->value, 16);
  auto via_section = se::subspan(f.section_data(*text), sym->value - text->addr, 16);
  ASSERT_EQ(via_vaddr.size(), 16u);
  EXPECT_EQ(0, std::memcmp(via_vaddr.data(), via_section.data(), 16));
  // .bss is not file-backed.
  auto allp = f.symbol("runtime.allp");
  ASSERT_TRUE(allp.has_value());
  EXPECT_TRUE(f.read_vaddr(allp->value, 8).empty());
  EXPECT_EQ(f.interpreter(), "");
  EXPECT_TRUE(f.needed_libraries().empty());
}

TEST(GoBinary, ElfReaderDynamicCgoAndTls) {
  auto elf = se::ElfFile::open(fixture("cgohello-stripped"));
  ASSERT_TRUE(elf.ok()) << elf.error().message;
  EXPECT_FALSE((*elf)->has_symtab());
  EXPECT_NE((*elf)->interpreter().find("ld-linux"), std::string::npos);
  auto libs = (*elf)->needed_libraries();
  EXPECT_NE(std::find(libs.begin(), libs.end(), "libc.so.6"), libs.end());
  const se::Segment* tls = (*elf)->segment(PT_TLS);
  ASSERT_NE(tls, nullptr);
  EXPECT_EQ(tls->memsz, 8u);  // only runtime.tlsg
}

TEST(GoBinary, ElfReaderRejectsBadInput) {
  auto missing = se::ElfFile::open("/nonexistent/schedscope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot open"), std::string::npos);

  const std::string text = "#!/bin/sh\necho not an elf\n";
  auto notelf = se::ElfFile::from_bytes(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  ASSERT_FALSE(notelf.ok());
  EXPECT_NE(notelf.error().message.find("not an ELF"), std::string::npos);

  auto empty = se::ElfFile::from_bytes({});
  EXPECT_FALSE(empty.ok());

  // Truncations of a real binary are errors (Go writes all headers into the first page,
  // so a 4 KiB prefix has intact headers but contents past the end).
  auto img = read_file(fixture("hello-stripped"));
  for (size_t n : {size_t{4}, size_t{16}, size_t{63}, size_t{64}, size_t{200}, size_t{4096},
                   img.size() / 2, img.size() - 4096}) {
    auto r = se::ElfFile::from_bytes(std::span<const uint8_t>(img.data(), n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_NE(r.error().message.find("ELF"), std::string::npos) << r.error().message;
    if (n >= 4096) {
      EXPECT_NE(r.error().message.find("past the end"), std::string::npos) << r.error().message;
    }
  }
  auto bi = sg::inspect_binary_image(std::span<const uint8_t>(img.data(), img.size() / 2));
  EXPECT_FALSE(bi.ok());
  // Section header table pointing outside the file.
  auto bad_shoff = img;
  bad_shoff[0x28 + 5] = 0x7f;
  auto r = se::ElfFile::from_bytes(bad_shoff);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("section header table"), std::string::npos);
}

// ================================================================== x86 decoder

TEST(GoBinary, X86DecodesGoPatterns) {
  namespace x = sg::x86;
  // lea 0x8d9e6(%rip),%rax at 0x43168b -> 0x4bf078 (sched+0x18, go1.19)
  const uint8_t lea[] = {0x48, 0x8d, 0x05, 0xe6, 0xd9, 0x08, 0x00};
  auto in = x::decode(lea, 0x43168b);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->len, 7);
  EXPECT_TRUE(in->rip_relative);
  EXPECT_EQ(in->target, 0x4bf078u);
  EXPECT_EQ(in->opcode, 0x8d);
  // movslq 0x1d2ab4(%rip),%rcx
  const uint8_t movslq[] = {0x48, 0x63, 0x0d, 0xb4, 0x2a, 0x1d, 0x00};
  in = x::decode(movslq, 0x416e25);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->target, 0x416e25u + 7 + 0x1d2ab4);
  // cmpl $0x1,0x1c1904(%rip): imm8 after the displacement
  const uint8_t cmpl[] = {0x83, 0x3d, 0x04, 0x19, 0x1c, 0x00, 0x01};
  in = x::decode(cmpl, 0x427fa5);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->len, 7);
  EXPECT_EQ(in->target, 0x5e98b0u);
  EXPECT_EQ(in->imm, 1);
  // Lengths of assorted encodings: VEX, EVEX, SSE with prefixes, imm64, lock, fs.
  struct Case {
    std::vector<uint8_t> bytes;
    int len;
  } cases[] = {
      {{0xc5, 0xfe, 0x6f, 0x06}, 4},                                // vmovdqu (%rsi),%ymm0
      {{0xc4, 0xe2, 0x7d, 0x00, 0xc1}, 5},                          // vpshufb
      {{0xc4, 0xe3, 0x7d, 0x39, 0xc1, 0x01}, 6},                    // vextracti128 $1
      {{0x62, 0xf1, 0x7c, 0x48, 0x10, 0x06}, 6},                    // vmovups (%rsi),%zmm0
      {{0x66, 0x0f, 0xd6, 0x44, 0x24, 0x08}, 6},                    // movq %xmm0,8(%rsp)
      {{0xf3, 0x0f, 0x6f, 0x06}, 4},                                // movdqu
      {{0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8}, 10},                   // movabs
      {{0xf0, 0x48, 0x0f, 0xc1, 0x02}, 5},                          // lock xadd %rax,(%rdx)
      {{0x64, 0x48, 0x89, 0x14, 0x25, 0xf8, 0xff, 0xff, 0xff}, 9},  // mov %rdx,%fs:-8
      {{0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00}, 8},        // nopl
      {{0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00}, 6},                    // nopw
      {{0xf6, 0x05, 0x01, 0x02, 0x03, 0x04, 0x01}, 7},              // testb $1,rip
      {{0xf7, 0xc0, 0x01, 0x00, 0x00, 0x00}, 6},                    // test $1,%eax
      {{0x0f, 0x85, 0x49, 0x02, 0x00, 0x00}, 6},                    // jne rel32
      {{0xe8, 0xdb, 0x56, 0x03, 0x00}, 5},                          // call
      {{0xc3}, 1},                                                  // ret
      {{0xcc}, 1},                                                  // int3
      {{0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08}, 6},                    // palignr $8
      {{0x48, 0x69, 0xc0, 0x10, 0x27, 0x00, 0x00}, 7},              // imul $10000
      {{0x66, 0xc7, 0x05, 1, 2, 3, 4, 5, 6}, 9},                    // movw $imm16,rip
  };
  for (const auto& c : cases) {
    auto d = x::decode(c.bytes, 0x1000);
    ASSERT_TRUE(d.has_value()) << "first byte " << int(c.bytes[0]);
    EXPECT_EQ(d->len, c.len) << "first byte " << int(c.bytes[0]);
  }
  // Invalid in 64-bit mode, and truncated.
  const uint8_t invalid[] = {0x06};
  EXPECT_FALSE(x::decode(invalid, 0).has_value());
  const uint8_t trunc[] = {0x48, 0x8d, 0x05, 0xe6};
  EXPECT_FALSE(x::decode(trunc, 0).has_value());
  EXPECT_FALSE(x::decode({}, 0).has_value());
}

TEST(GoBinary, X86TlsWrapperPatterns) {
  namespace x = sg::x86;
  // Static: xorps %xmm15,%xmm15; mov %fs:0xfffffffffffffff8,%r14; jmp
  const uint8_t wrapper[] = {0x45, 0x0f, 0x57, 0xff, 0x64, 0x4c, 0x8b, 0x34, 0x25,
                             0xf8, 0xff, 0xff, 0xff, 0xe9, 0xee, 0x00, 0xfe, 0xff};
  EXPECT_EQ(x::tls_g_offset(wrapper, 0x4570a0), -8);
  // PIE / external linking: mov $-0x400,%r14; mov %fs:(%r14),%r14 (seen in a real
  // boringcrypto cgo binary).
  const uint8_t pie[] = {0x45, 0x0f, 0x57, 0xff, 0x49, 0xc7, 0xc6, 0x00, 0xfc, 0xff,
                         0xff, 0x64, 0x4d, 0x8b, 0x36, 0xe9, 0xac, 0x96, 0xfc, 0xff};
  EXPECT_EQ(x::tls_g_offset(pie, 0x18f38c0), -1024);
  // A method wrapper (no TLS access).
  const uint8_t plain[] = {0x48, 0x8b, 0x00, 0xe9, 0x00, 0x00, 0x00, 0x00};
  EXPECT_FALSE(x::tls_g_offset(plain, 0).has_value());
  // Stores count only when asked for (runtime.gogo's MOVQ DX, g(CX)).
  const uint8_t store[] = {0x64, 0x48, 0x89, 0x14, 0x25, 0xf8, 0xff, 0xff, 0xff};
  EXPECT_FALSE(x::tls_g_offset(store, 0).has_value());
  EXPECT_EQ(x::tls_g_offset(store, 0, true), -8);
}

TEST(GoBinary, X86SweepStaysInSyncOverWholeText) {
  // Every function entry of the symbols build must be an instruction boundary of a linear
  // sweep over .text, with no undecodable bytes (Go pads with int3).
  auto elf = se::ElfFile::open(fixture("hello-symbols"));
  ASSERT_TRUE(elf.ok());
  const auto* text = (*elf)->section(".text");
  ASSERT_NE(text, nullptr);
  size_t bad = 1;
  auto insns = sg::x86::sweep((*elf)->section_data(*text), text->addr, &bad);
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(insns.size(), 50000u);
  std::vector<uint64_t> starts;
  starts.reserve(insns.size());
  for (const auto& i : insns) starts.push_back(i.addr);
  size_t checked = 0;
  for (const auto& s : (*elf)->symbols()) {
    if (s.type != STT_FUNC || s.value < text->addr || s.value >= text->addr + text->size) {
      continue;
    }
    EXPECT_TRUE(std::binary_search(starts.begin(), starts.end(), s.value)) << s.name;
    ++checked;
  }
  EXPECT_GT(checked, 1000u);
}

// ================================================================== build info

TEST(BuildInfo, InlineLayoutFromTestbin) {
  const auto path = testbin("selfreport-go1.21-stripped");
  SKIP_IF_MISSING(path);
  auto elf = se::ElfFile::open(path);
  ASSERT_TRUE(elf.ok());
  const auto* s = (*elf)->section(".go.buildinfo");
  ASSERT_NE(s, nullptr);
  auto data = (*elf)->section_data(*s);
  ASSERT_EQ(sg::find_buildinfo_magic(data, s->addr), std::optional<size_t>(0));
  auto bi = sg::parse_buildinfo(data);
  ASSERT_TRUE(bi.ok()) << bi.error().message;
  EXPECT_TRUE(bi->inline_strings);
  EXPECT_EQ(bi->ptr_size, 8);
  EXPECT_EQ(bi->go_version, "go1.21.13");
  EXPECT_EQ(bi->main_path, "selfreport");
  EXPECT_EQ(bi->module_path, "selfreport");
  EXPECT_EQ(bi->settings.at("CGO_ENABLED"), "0");
  EXPECT_EQ(bi->settings.at("GOAMD64"), "v1");
  EXPECT_EQ(bi->settings.at("-trimpath"), "true");
  EXPECT_EQ(bi->cgo_enabled, std::optional<bool>(false));
}

TEST(BuildInfo, PointerLayout117Synthetic) {
  // Go <= 1.17: header + pointers to two Go string headers, resolved through memory.
  std::string mod = std::string(16, 'S') +
                    "path\texample.com/cmd/tool\nmod\texample.com\tv1.2.3\th1:abc=\n"
                    "dep\tgolang.org/x/sys\tv0.1.0\th1:def=\n" +
                    std::string(16, 'E');
  mod[mod.size() - 17] = '\n';
  const std::string vers = "go1.17.13";
  std::map<uint64_t, std::vector<uint8_t>> mem;  // address -> bytes
  auto put_string_header = [&](uint64_t at, uint64_t ptr, uint64_t len) {
    Bytes b;
    b.u64(ptr);
    b.u64(len);
    mem[at] = b.b;
  };
  mem[0x500000] = std::vector<uint8_t>(vers.begin(), vers.end());
  mem[0x500100] = std::vector<uint8_t>(mod.begin(), mod.end());
  put_string_header(0x600000, 0x500000, vers.size());
  put_string_header(0x600010, 0x500100, mod.size());
  Bytes hdr;
  for (char c : sg::kBuildInfoMagic) hdr.u8(static_cast<uint8_t>(c));
  hdr.u8(8);     // ptrSize
  hdr.u8(0x00);  // flags: little-endian, pointer layout (as a 1.17.13 binary had)
  hdr.u64(0x600000);
  hdr.u64(0x600010);
  const sg::AddrReader reader = [&](uint64_t addr, uint64_t len) -> std::span<const uint8_t> {
    for (const auto& [base, bytes] : mem) {
      if (addr >= base && addr - base + len <= bytes.size()) {
        return std::span<const uint8_t>(bytes).subspan(addr - base, len);
      }
    }
    return {};
  };
  auto bi = sg::parse_buildinfo(hdr.b, reader);
  ASSERT_TRUE(bi.ok()) << bi.error().message;
  EXPECT_FALSE(bi->inline_strings);
  EXPECT_EQ(bi->go_version, "go1.17.13");
  EXPECT_EQ(bi->main_path, "example.com/cmd/tool");
  EXPECT_EQ(bi->module_path, "example.com");
  EXPECT_FALSE(bi->cgo_enabled.has_value());  // 1.17 had no build settings

  // Without a memory reader, or with dangling pointers: errors.
  EXPECT_FALSE(sg::parse_buildinfo(hdr.b).ok());
  hdr.b[16] = 0x77;
  auto bad = sg::parse_buildinfo(hdr.b, reader);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("version"), std::string::npos);
}

TEST(BuildInfo, RejectsCorruptInput) {
  Bytes b;
  for (char c : sg::kBuildInfoMagic) b.u8(static_cast<uint8_t>(c));
  b.u8(8);
  b.u8(2);  // inline
  while (b.size() < 32) b.u8(0);
  EXPECT_FALSE(sg::parse_buildinfo(std::span<const uint8_t>(b.b).first(20)).ok());  // truncated
  auto no_strings = sg::parse_buildinfo(b.b);
  ASSERT_FALSE(no_strings.ok());
  EXPECT_NE(no_strings.error().message.find("truncated"), std::string::npos);
  Bytes huge = b;
  huge.uvarint(uint64_t{1} << 40);  // absurd length
  EXPECT_FALSE(sg::parse_buildinfo(huge.b).ok());
  Bytes empty_version = b;
  empty_version.uvarint(0);
  empty_version.uvarint(0);
  EXPECT_FALSE(sg::parse_buildinfo(empty_version.b).ok());
  Bytes overlong = b;  // a varint that never ends
  for (int i = 0; i < 12; ++i) overlong.u8(0xff);
  EXPECT_FALSE(sg::parse_buildinfo(overlong.b).ok());
  std::vector<uint8_t> garbage(64, 0x41);
  auto g = sg::parse_buildinfo(garbage);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("magic"), std::string::npos);
  Bytes ok = b;
  ok.uvarint(8);
  for (char c : std::string("go1.22.1")) ok.u8(static_cast<uint8_t>(c));
  ok.uvarint(0);
  auto parsed = sg::parse_buildinfo(ok.b);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->go_version, "go1.22.1");
  EXPECT_EQ(parsed->modinfo, "");
}

TEST(BuildInfo, MagicOnlyOn16ByteBoundaries) {
  std::vector<uint8_t> d(96, 0);
  std::memcpy(d.data() + 40, sg::kBuildInfoMagic.data(), sg::kBuildInfoMagic.size());
  EXPECT_FALSE(sg::find_buildinfo_magic(d, 0).has_value());              // 40 is not aligned
  EXPECT_EQ(sg::find_buildinfo_magic(d, 8), std::optional<size_t>(40));  // 8+40 = 48 is
  std::memcpy(d.data() + 64, sg::kBuildInfoMagic.data(), sg::kBuildInfoMagic.size());
  EXPECT_EQ(sg::find_buildinfo_magic(d, 0), std::optional<size_t>(64));
}

TEST(BuildInfo, ModinfoParsing) {
  sg::BuildInfo bi;
  sg::parse_modinfo(
      "path\tcommand-line-arguments\nbuild\t-compiler=gc\nbuild\tCGO_ENABLED=1\n"
      "build\tGOARCH=amd64\nbuild\t-trimpath=true\n",
      &bi);
  EXPECT_EQ(bi.main_path, "command-line-arguments");
  EXPECT_EQ(bi.module_path, "command-line-arguments");  // no mod line: the path line
  EXPECT_EQ(bi.cgo_enabled, std::optional<bool>(true));
  EXPECT_EQ(bi.settings.at("GOARCH"), "amd64");
  sg::BuildInfo m;
  sg::parse_modinfo("path\tk8s.io/kubernetes/cmd/kubectl\nmod\tk8s.io/kubernetes\t(devel)\t\n", &m);
  EXPECT_EQ(m.module_path, "k8s.io/kubernetes");
  EXPECT_FALSE(m.cgo_enabled.has_value());
}

TEST(BuildInfo, VersionStringScan) {
  using namespace std::string_literals;
  const std::string s =
      "xxgo1.21.13yyGODEBUG go1.21 notes; go1.21.13\x00go1.22rc1 go1.2345 go1. gox go1.21.13"s;
  auto m = sg::scan_go_versions(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  std::vector<std::string> got;
  for (const auto& v : m) got.push_back(v.version);
  EXPECT_EQ(got, (std::vector<std::string>{"go1.21.13", "go1.21", "go1.21.13", "go1.22rc1",
                                           "go1.21.13"}));
  EXPECT_EQ(m[0].offset, 2u);
  EXPECT_EQ(sg::pick_go_version(m), std::optional<std::string>("go1.21.13"));
  EXPECT_FALSE(sg::pick_go_version({}).has_value());
}

// ================================================================== pclntab

TEST(Pclntab, ParsesRealTablesOfEveryLayoutPresent) {
  auto t = pclntab_of(fixture("hello-stripped"));  // go1.19: 0xfffffff0
  ASSERT_TRUE(t);
  EXPECT_EQ(t->layout(), sg::Pclntab::Layout::kGo118);
  EXPECT_EQ(t->version_string(), "1.18");
  EXPECT_EQ(t->ptr_size(), 8);
  EXPECT_EQ(t->pc_quantum(), 1);
  EXPECT_EQ(t->header_text_start(), 0x401000u);
  EXPECT_GT(t->function_count(), 1000u);
  const auto p26 = testbin("selfreport-go1.26-stripped");
  SKIP_IF_MISSING(p26);
  auto t26 = pclntab_of(p26);
  ASSERT_TRUE(t26);
  EXPECT_EQ(t26->layout(), sg::Pclntab::Layout::kGo120);
  // Go 1.26 no longer stores textStart: moduledata.text has to be used.
  EXPECT_EQ(t26->header_text_start(), 0u);
}

TEST(Pclntab, WrapperFuncIdPerVersion) {
  // docs/go-runtime.md, "Parsing stripped binaries": 21 (1.18-1.21), 22 (1.22-1.24),
  // 23 (1.25-1.26).
  auto t = pclntab_of(fixture("hello-stripped"));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->wrapper_func_id(), std::optional<uint8_t>(21));
  const std::map<std::string, int> ids = {{"1.21", 21}, {"1.22", 22}, {"1.23", 22},
                                          {"1.24", 22}, {"1.25", 23}, {"1.26", 23}};
  for (const auto& [v, id] : ids) {
    const auto p = testbin("selfreport-go" + v + "-stripped");
    ASSERT_TRUE(exists(p)) << "test binary missing: " << p;  // not a silent pass
    auto tv = pclntab_of(p);
    ASSERT_TRUE(tv);
    EXPECT_EQ(tv->wrapper_func_id(), std::optional<uint8_t>(id)) << v;
    auto goexit1 = tv->find_all("runtime.goexit1");
    ASSERT_EQ(goexit1.size(), 2u) << v;
  }
}

TEST(Pclntab, RejectsGarbageAndTruncation) {
  EXPECT_FALSE(sg::Pclntab::parse({}).ok());
  std::vector<uint8_t> zeros(4096, 0);
  auto z = sg::Pclntab::parse(zeros);
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.error().message.find("magic"), std::string::npos);
  std::vector<uint8_t> garbage(4096);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 131 + 7);
  EXPECT_FALSE(sg::Pclntab::parse(garbage).ok());

  auto elf = se::ElfFile::open(fixture("hello-stripped"));
  ASSERT_TRUE(elf.ok());
  auto real = (*elf)->section_data(*(*elf)->section(".gopclntab"));
  ASSERT_TRUE(sg::Pclntab::parse(real).ok());
  // Bad padding, quantum, pointer size.
  for (auto [at, val] : {std::pair{4, 1}, std::pair{6, 3}, std::pair{7, 5}}) {
    std::vector<uint8_t> bad(real.begin(), real.end());
    bad[at] = static_cast<uint8_t>(val);
    EXPECT_FALSE(sg::Pclntab::parse(bad).ok()) << at;
  }
  // Truncated inside the header and inside the function table.
  for (size_t n : {size_t{8}, size_t{40}, size_t{71}, size_t{4096}}) {
    auto r = sg::Pclntab::parse(real.first(n));
    EXPECT_FALSE(r.ok()) << n;
  }
  // An implausible function count.
  std::vector<uint8_t> big(real.begin(), real.end());
  big[8 + 7] = 0x7f;
  EXPECT_FALSE(sg::Pclntab::parse(big).ok());
  // Unsorted function table.
  std::vector<uint8_t> unsorted(real.begin(), real.end());
  const uint64_t pcln_off = *se::read_u64(real, 8 + 7 * 8);
  const uint32_t e5 = *se::read_u32(real, pcln_off + 5 * 8);
  std::memcpy(unsorted.data() + pcln_off + 6 * 8, &e5, 4);  // functab[6].entry = [5]
  std::memcpy(unsorted.data() + pcln_off + 5 * 8, "\xff\xff\xff\x00", 4);
  auto u = sg::Pclntab::parse(unsorted);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("sorted"), std::string::npos);
  // Truncated after the function table: parses, and lookups past the end fail softly.
  auto tail_cut = sg::Pclntab::parse(real.first(real.size() * 3 / 4));
  if (tail_cut.ok()) {
    size_t found = 0;
    for (size_t i = 0; i < (*tail_cut)->function_count(); ++i) {
      if (auto f = (*tail_cut)->func(i)) {
        ++found;
        (void)(*tail_cut)->lookup(f->entry + 1);
      }
    }
    EXPECT_GT(found, 0u);
  }
}

TEST(Pclntab, SyntheticLayoutsAllVersions) {
  // Same functions in every layout: names, PC lookup, file:line, wrapper selection.
  struct L {
    uint32_t magic;
    int ps;
    const char* version;
  } layouts[] = {{0xfffffff1, 8, "1.20"}, {0xfffffff0, 8, "1.18"}, {0xfffffffa, 8, "1.16"},
                 {0xfffffffa, 4, "1.16"}, {0xfffffffb, 8, "1.2"},  {0xfffffffb, 4, "1.2"}};
  for (const auto& l : layouts) {
    SCOPED_TRACE(std::string(l.version) + " ptr" + std::to_string(l.ps));
    auto fns = kSynFuncs;
    if (l.magic == 0xfffffffb) {
      for (auto& f : fns) f.func_id = 0;  // no ABI wrappers before 1.17
    }
    auto bytes = build_pclntab(l.magic, l.ps, 0x401000, fns, 0x4011e0);
    auto t = sg::Pclntab::parse(bytes);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ((*t)->version_string(), l.version);
    EXPECT_EQ((*t)->function_count(), fns.size());
    EXPECT_EQ((*t)->text_start(), 0x401000u);
    auto loc = (*t)->lookup(0x4010e0 + 0x10);
    ASSERT_TRUE(loc.has_value());
    EXPECT_EQ(loc->func, "main.main");
    EXPECT_EQ(loc->func_entry, 0x4010e0u);
    EXPECT_EQ(loc->file, "main.go");
    EXPECT_EQ(loc->line, 7);
    loc = (*t)->lookup(0x4010e0 + 0x80);  // second half: line + 2
    ASSERT_TRUE(loc.has_value());
    EXPECT_EQ(loc->line, 9);
    loc = (*t)->lookup(0x401041);
    ASSERT_TRUE(loc.has_value());
    EXPECT_EQ(loc->file, "runtime/asm_amd64.s");
    EXPECT_EQ(loc->line, 10);
    EXPECT_FALSE((*t)->lookup(0x400fff).has_value());
    EXPECT_FALSE((*t)->lookup(0x4011e0).has_value());
    auto f = (*t)->find_function("runtime.goexit1");
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->entry, 0x401000u);  // the real one, not the 0x20-byte wrapper
    EXPECT_EQ(f->end, 0x401040u);
    EXPECT_EQ((*t)->find_all("runtime.newproc").size(), 2u);
    EXPECT_FALSE((*t)->find_function("runtime.nothere").has_value());
    EXPECT_TRUE((*t)->has_name_prefix("runtime."));
    EXPECT_FALSE((*t)->has_name_prefix("runtime/cgo."));
    if (l.magic != 0xfffffffb) {
      EXPECT_EQ((*t)->wrapper_func_id(), std::optional<uint8_t>(21));
      EXPECT_EQ((*t)->abi_wrappers().size(), 2u);
    }
    // 1.18+: entries are relative to text_start; an explicit base overrides the header.
    if (l.magic == 0xfffffff0 || l.magic == 0xfffffff1) {
      auto moved = sg::Pclntab::parse(bytes, 0x801000);
      ASSERT_TRUE(moved.ok());
      EXPECT_EQ((*moved)->find_function("main.main")->entry, 0x8010e0u);
    }
    // Every truncation of the synthetic table parses or errors cleanly.
    for (size_t n = 0; n < bytes.size(); n += 3) {
      auto r = sg::Pclntab::parse(std::span<const uint8_t>(bytes).first(n));
      if (r.ok()) {
        for (uint64_t pc = 0x401000; pc < 0x4011e0; pc += 0x18) (void)(*r)->lookup(pc);
      }
    }
  }
}

// ================================================================== inspect_binary

TEST(GoBinary, TestbinsStripped) {
  struct Want {
    const char* minor;
    const char* version;
  } wants[] = {{"1.21", "go1.21.13"}, {"1.22", "go1.22.12"}, {"1.23", "go1.23.5"},
               {"1.24", "go1.24.4"},  {"1.25", "go1.25.12"}, {"1.26", "go1.26.11"}};
  for (const auto& w : wants) {
    const auto path = testbin(std::string("selfreport-go") + w.minor + "-stripped");
    ASSERT_TRUE(exists(path)) << "test binary missing: " << path;  // not a silent pass
    SCOPED_TRACE(path);
    auto b = inspect_ok(path);
    EXPECT_TRUE(b.is_go);
    EXPECT_EQ(b.go_version, w.version);
    EXPECT_EQ(sg::go_minor(b.go_version), std::stoi(std::string(w.minor).substr(2)));
    EXPECT_EQ(b.version_source, "buildinfo");
    EXPECT_TRUE(b.has_buildinfo);
    EXPECT_EQ(b.module_path, "selfreport");
    EXPECT_TRUE(b.stripped);
    EXPECT_FALSE(b.has_dwarf);
    EXPECT_FALSE(b.pie);
    EXPECT_FALSE(b.cgo);  // CGO_ENABLED=0
    EXPECT_EQ(b.tls_g_offset, -8);
    EXPECT_EQ(b.tls_source, "wrapper");
    EXPECT_EQ(b.pclntab_version, "1.20");
    EXPECT_EQ(b.text_start, 0x401000u);
    EXPECT_NE(b.moduledata, 0u);
    EXPECT_EQ(b.globals.source, "patterns");
    EXPECT_NE(b.globals.allp, 0u);
    EXPECT_NE(b.globals.allm, 0u);
    EXPECT_NE(b.globals.sched, 0u);
    EXPECT_NE(b.globals.gomaxprocs, 0u);
    ASSERT_TRUE(b.symbolizer);
    for (const char* fn : {"runtime.execute", "runtime.casgstatus", "runtime.newproc1",
                           "runtime.goexit1", "runtime.mstart1", "runtime.retake",
                           "runtime.GOMAXPROCS", "runtime.sysmon", "runtime.main"}) {
      ASSERT_TRUE(b.functions.count(fn)) << fn;
      auto loc = b.symbolizer->lookup(b.functions.at(fn).entry);
      ASSERT_TRUE(loc.has_value()) << fn;
      EXPECT_EQ(loc->func, fn);
      EXPECT_TRUE(loc->file.starts_with("runtime/")) << fn << " " << loc->file;
    }
    // 1.22 replaced goexit0's body with gdestroy.
    EXPECT_EQ(b.functions.count("runtime.gdestroy"), std::string(w.minor) >= "1.22" ? 1u : 0u);
    EXPECT_TRUE(b.warnings.empty());
  }
}

TEST(GoBinary, Go126StrippedGlobalsAndFunctionsMatchDwarfTwin) {
  const auto stripped = testbin("selfreport-go1.26-stripped");
  const auto dwarf = testbin("selfreport-go1.26-dwarf");
  SKIP_IF_MISSING(stripped);
  SKIP_IF_MISSING(dwarf);
  auto s = inspect_ok(stripped);
  auto d = inspect_ok(dwarf);
  EXPECT_FALSE(d.stripped);
  EXPECT_TRUE(d.has_dwarf);  // compressed .debug_info
  EXPECT_EQ(d.globals.source, "symtab");
  EXPECT_EQ(s.globals.source, "patterns");
  auto elf = se::ElfFile::open(dwarf);
  ASSERT_TRUE(elf.ok());
  auto sym = [&](const char* n) { return (*elf)->symbol(n).value().value; };
  EXPECT_EQ(d.globals.allp, sym("runtime.allp"));
  for (const auto* g : {&s.globals, &d.globals}) {
    EXPECT_EQ(g->allp, sym("runtime.allp"));
    EXPECT_EQ(g->allm, sym("runtime.allm"));
    EXPECT_EQ(g->sched, sym("runtime.sched"));
    EXPECT_EQ(g->gomaxprocs, sym("runtime.gomaxprocs"));
    EXPECT_EQ(g->allgs, sym("runtime.allgs"));
    EXPECT_EQ(g->allglen, sym("runtime.allglen"));
    EXPECT_EQ(g->gcphase, sym("runtime.gcphase"));
  }
  // text_start from moduledata (header says 0 in 1.26); moduledata is firstmoduledata
  // in its own .go.module section.
  EXPECT_EQ(s.text_start, sym("runtime.text"));
  EXPECT_EQ(s.moduledata, sym("runtime.firstmoduledata"));
  ASSERT_EQ(s.functions.size(), d.functions.size());
  for (const auto& [name, f] : s.functions) {
    auto it = d.functions.find(name);
    ASSERT_NE(it, d.functions.end()) << name;
    EXPECT_EQ(f.entry, sym(name.c_str())) << name;  // the real function, not .abi0
    EXPECT_EQ(it->second.entry, f.entry) << name;
  }
  // The wrapper exists under its .abi0 symbol name and is not what we return.
  EXPECT_NE(sym("runtime.goexit1.abi0"), s.functions.at("runtime.goexit1").entry);
}

// True when the code of symbol `a` branches (call/jmp) to address `b`: `a` is then a
// wrapper of `b`. Independent of the pclntab's FuncIDs.
bool branches_to(const se::ElfFile& elf, const se::Symbol& a, uint64_t b) {
  for (const auto& in : sg::x86::sweep(elf.read_vaddr(a.value, a.size), a.value)) {
    if (in.has_rel && in.target == b) return true;
  }
  return false;
}

// Every Go function in .symtab maps back to itself through the pclntab, and
// find_function() never returns an ABI wrapper. A name can have two bodies: `f` and
// `f.abi0`; whichever of the two jumps to the other is the wrapper (asm functions: `f` is
// the ABIInternal wrapper; Go functions called from asm: `f.abi0` is the ABI0 wrapper).
void check_symtab_round_trip(const std::string& path) {
  auto b = inspect_ok(path);
  ASSERT_TRUE(b.symbolizer);
  auto elf = se::ElfFile::open(path);
  ASSERT_TRUE(elf.ok());
  std::map<std::string, se::Symbol> abi0;
  for (const auto& s : (*elf)->symbols()) {
    std::string n(s.name);
    if (s.type == STT_FUNC && n.size() > 5 && n.ends_with(".abi0")) {
      abi0[n.substr(0, n.size() - 5)] = s;
    }
  }
  size_t checked = 0;
  size_t pairs = 0;
  for (const auto& s : (*elf)->symbols()) {
    std::string name(s.name);
    // Linker-only names: section markers, and type..eq.* spelled differently in pclntab.
    if (s.type != STT_FUNC || name == "runtime.text" || name == "runtime.etext" ||
        name.starts_with("type.") || name.starts_with("type:")) {
      continue;
    }
    const bool is_abi0 = name.ends_with(".abi0");
    if (is_abi0) name.resize(name.size() - 5);
    auto loc = b.symbolizer->lookup(s.value);
    ASSERT_TRUE(loc.has_value()) << name;
    EXPECT_EQ(loc->func, name);
    EXPECT_EQ(loc->func_entry, s.value) << name;
    if (s.size > 1) {
      auto last = b.symbolizer->lookup(s.value + s.size - 1);
      ASSERT_TRUE(last.has_value()) << name;
      EXPECT_EQ(last->func_entry, s.value) << name;
    }
    if (!is_abi0) {
      auto f = b.symbolizer->find_function(name);
      ASSERT_TRUE(f.has_value()) << name;
      uint64_t want = s.value;
      if (auto it = abi0.find(name); it != abi0.end()) {
        const bool plain_wraps = branches_to(**elf, s, it->second.value);
        const bool abi0_wraps = branches_to(**elf, it->second, s.value);
        ASSERT_NE(plain_wraps, abi0_wraps) << name;
        want = plain_wraps ? it->second.value : s.value;
        ++pairs;
      }
      EXPECT_EQ(f->entry, want) << name;
    }
    ++checked;
  }
  EXPECT_GT(checked, 1000u);
  EXPECT_GT(pairs, 20u);
  EXPECT_GE(b.symbolizer->function_count(), checked - 2);
}

TEST(GoBinary, PcToFuncRoundTripsEverySymbolGo119) {
  check_symtab_round_trip(fixture("hello-symbols"));
}

TEST(GoBinary, PcToFuncRoundTripsEverySymbolGo126) {
  const auto p = testbin("selfreport-go1.26-dwarf");
  SKIP_IF_MISSING(p);
  check_symtab_round_trip(p);
}

TEST(GoBinary, FileLineMatchesDwarf) {
  // Truth from llvm-symbolizer on the DWARF of the same binaries.
  auto b = inspect_ok(fixture("hello-symbols"));
  ASSERT_TRUE(b.symbolizer);
  auto elf = se::ElfFile::open(fixture("hello-symbols"));
  ASSERT_TRUE(elf.ok());
  const auto work = (*elf)->symbol("main.work").value();
  auto loc = b.symbolizer->lookup(work.value);
  ASSERT_TRUE(loc.has_value());
  EXPECT_EQ(loc->func, "main.work");
  EXPECT_EQ(loc->file, "schedscope.test/fixtures/hello/main.go");
  EXPECT_EQ(loc->line, 6);  // func work(n int) int {
  bool saw_loop_body = false;
  for (uint64_t pc = work.value; pc < work.value + work.size; ++pc) {
    auto l = b.symbolizer->lookup(pc);
    ASSERT_TRUE(l.has_value());
    EXPECT_GE(l->line, 6);
    EXPECT_LE(l->line, 11);
    saw_loop_body |= l->line == 9;  // s += i * i
  }
  EXPECT_TRUE(saw_loop_body);
  loc = b.symbolizer->lookup(b.functions.at("runtime.execute").entry);
  ASSERT_TRUE(loc.has_value());
  EXPECT_EQ(loc->file, "runtime/proc.go");
  EXPECT_EQ(loc->line, 2517);  // go1.19.8

  const auto p26 = testbin("selfreport-go1.26-dwarf");
  SKIP_IF_MISSING(p26);
  auto b26 = inspect_ok(p26);
  ASSERT_TRUE(b26.symbolizer);
  loc = b26.symbolizer->lookup(b26.functions.at("runtime.execute").entry);
  ASSERT_TRUE(loc.has_value());
  EXPECT_EQ(loc->file, "runtime/proc.go");
  EXPECT_EQ(loc->line, 3331);
  auto spinner = b26.symbolizer->find_function("main.knownSpinner");
  ASSERT_TRUE(spinner.has_value());
  loc = b26.symbolizer->lookup(spinner->entry);
  EXPECT_EQ(loc->file, "selfreport/main.go");
  EXPECT_EQ(loc->line, 35);
  loc = b26.symbolizer->lookup(spinner->entry + 0x10);
  EXPECT_EQ(loc->line, 38);
  // The same function in the stripped twin resolves identically.
  const auto s26 = testbin("selfreport-go1.26-stripped");
  ASSERT_TRUE(exists(s26)) << "test binary missing: " << s26;
  auto s = inspect_ok(s26);
  ASSERT_TRUE(s.symbolizer);
  auto l2 = s.symbolizer->lookup(spinner->entry + 0x10);
  ASSERT_TRUE(l2.has_value());
  EXPECT_EQ(l2->func, "main.knownSpinner");
  EXPECT_EQ(l2->line, 38);
}

TEST(GoBinary, FixtureStrippedMatchesSymbolsTwin) {
  auto s = inspect_ok(fixture("hello-stripped"));
  auto y = inspect_ok(fixture("hello-symbols"));
  const std::string version = expected()["go_version"];
  for (const auto* b : {&s, &y}) {
    EXPECT_TRUE(b->is_go);
    EXPECT_EQ(b->go_version, version);
    EXPECT_EQ(b->version_source, "buildinfo");
    EXPECT_EQ(b->module_path, "schedscope.test/fixtures");
    EXPECT_FALSE(b->pie);
    // CGO_ENABLED=1 in the build settings, but runtime/cgo is not linked.
    EXPECT_FALSE(b->cgo);
    EXPECT_EQ(b->cgo_source, "pclntab");
    EXPECT_EQ(b->tls_g_offset, -8);
    EXPECT_EQ(b->tls_source, "wrapper");
    EXPECT_EQ(b->pclntab_version, "1.18");
    EXPECT_EQ(b->text_start, 0x401000u);
    expect_globals_equal(b->globals, expected()["hello-symbols"]);
  }
  EXPECT_TRUE(s.stripped);
  EXPECT_FALSE(s.has_dwarf);
  EXPECT_EQ(s.globals.source, "patterns");
  EXPECT_FALSE(y.stripped);
  EXPECT_TRUE(y.has_dwarf);
  EXPECT_EQ(y.globals.source, "symtab");
  // No GOMAXPROCS in this program (dead code): gomaxprocs came from procresize.
  EXPECT_EQ(s.functions.count("runtime.GOMAXPROCS"), 0u);
  EXPECT_EQ(s.functions.size(), y.functions.size());
  for (const auto& [name, f] : s.functions) EXPECT_EQ(f.entry, y.functions.at(name).entry);
}

TEST(GoBinary, FixtureCgo) {
  auto b = inspect_ok(fixture("cgohello-stripped"));
  EXPECT_TRUE(b.cgo);
  EXPECT_EQ(b.cgo_source, "pclntab");
  EXPECT_FALSE(b.pie);
  EXPECT_TRUE(b.stripped);
  EXPECT_EQ(b.go_version, expected()["go_version"]);
  EXPECT_EQ(b.tls_g_offset, -8);
  EXPECT_EQ(b.tls_source, "wrapper");
  EXPECT_EQ(b.globals.source, "patterns");
  expect_globals_equal(b.globals, expected()["cgohello-symbols"]);
  // External linking: runtime.text is not the start of .text (C code comes first).
  auto elf = se::ElfFile::open(fixture("cgohello-stripped"));
  ASSERT_TRUE(elf.ok());
  EXPECT_GT(b.text_start, (*elf)->section(".text")->addr);
  ASSERT_TRUE(b.symbolizer);
  auto loc = b.symbolizer->lookup(b.text_start);
  ASSERT_TRUE(loc.has_value());
  EXPECT_EQ(loc->func_entry, b.text_start);
  EXPECT_EQ(b.symbolizer->lookup(b.functions.at("runtime.execute").entry)->func, "runtime.execute");
}

TEST(GoBinary, FixturePie) {
  auto b = inspect_ok(fixture("hello-pie-stripped"));
  EXPECT_TRUE(b.pie);
  EXPECT_TRUE(b.stripped);
  EXPECT_FALSE(b.cgo);
  EXPECT_EQ(b.go_version, expected()["go_version"]);
  // PIE code loads g with `mov $-8,%r14; mov %fs:(%r14),%r14`.
  EXPECT_EQ(b.tls_g_offset, -8);
  EXPECT_EQ(b.tls_source, "wrapper");
  EXPECT_EQ(b.pclntab_version, "1.18");
  auto elf = se::ElfFile::open(fixture("hello-pie-stripped"));
  ASSERT_TRUE(elf.ok());
  EXPECT_EQ(b.pclntab_addr, (*elf)->section(".data.rel.ro.gopclntab")->addr);
  EXPECT_EQ(b.globals.source, "patterns");
  expect_globals_equal(b.globals, expected()["hello-pie-symbols"]);
  EXPECT_GE(b.functions.size(), 20u);
}

TEST(GoBinary, FixtureWithoutBuildInfoUsesRodata) {
  auto b = inspect_ok(fixture("hello-nobuildinfo"));
  EXPECT_TRUE(b.is_go);
  EXPECT_FALSE(b.has_buildinfo);
  EXPECT_EQ(b.version_source, "rodata");
  EXPECT_EQ(b.go_version, expected()["go_version"]);
  EXPECT_EQ(b.module_path, "");
  EXPECT_FALSE(b.cgo);
  EXPECT_EQ(b.tls_g_offset, -8);
  expect_globals_equal(b.globals, expected()["hello-symbols"]);
}

TEST(GoBinary, WorksWithoutSectionHeaders) {
  // Drop the section header table: build info is found in the writable segment,
  // the pclntab by magic scan, moduledata in the writable segments.
  auto img = read_file(fixture("hello-stripped"));
  ASSERT_GT(img.size(), 64u);
  std::memset(img.data() + 0x28, 0, 8);  // e_shoff
  std::memset(img.data() + 0x3c, 0, 4);  // e_shnum, e_shstrndx
  auto r = sg::inspect_binary_image(img, "noshdr");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->is_go);
  EXPECT_EQ(r->go_version, expected()["go_version"]);
  EXPECT_EQ(r->version_source, "buildinfo");
  EXPECT_TRUE(r->stripped);
  EXPECT_EQ(r->pclntab_version, "1.18");
  EXPECT_EQ(r->text_start, 0x401000u);
  EXPECT_EQ(r->tls_source, "wrapper");
  expect_globals_equal(r->globals, expected()["hello-symbols"]);
}

TEST(GoBinary, CorruptInputsGiveErrors) {
  auto img = read_file(fixture("hello-stripped"));
  auto elf = se::ElfFile::from_bytes(img);
  ASSERT_TRUE(elf.ok());
  const auto* pcln = (*elf)->section(".gopclntab");
  ASSERT_NE(pcln, nullptr);
  // Corrupt pclntab: an error naming the table.
  auto bad = img;
  bad[pcln->offset + 7] = 3;  // pointer size
  auto r = sg::inspect_binary_image(bad, "bad-pclntab");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("pclntab"), std::string::npos) << r.error().message;
  // Corrupt build info: not fatal, the version comes from rodata and a warning says why.
  const auto* bi = (*elf)->section(".go.buildinfo");
  ASSERT_NE(bi, nullptr);
  auto badbi = img;
  badbi[bi->offset + 32] = 0xff;  // version length varint never terminates ...
  std::memset(badbi.data() + bi->offset + 33, 0xff, 12);
  auto r2 = sg::inspect_binary_image(badbi, "bad-buildinfo");
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  EXPECT_EQ(r2->version_source, "rodata");
  EXPECT_EQ(r2->go_version, expected()["go_version"]);
  ASSERT_EQ(r2->warnings.size(), 1u);
  EXPECT_NE(r2->warnings[0].find("build info"), std::string::npos);
  // Not an ELF / missing.
  EXPECT_FALSE(sg::inspect_binary("/nonexistent/x").ok());
  auto script = sg::inspect_binary(std::string(SCHEDSCOPE_SOURCE_DIR) + "/tests/fixtures/build.sh");
  ASSERT_FALSE(script.ok());
  EXPECT_NE(script.error().message.find("not an ELF"), std::string::npos);
}

TEST(GoBinary, NonGoElfIsNotAnError) {
  auto b = sg::inspect_binary("/proc/self/exe");  // this C++ test binary
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_FALSE(b->is_go);
  EXPECT_EQ(b->go_version, "unknown");
  EXPECT_EQ(b->version_source, "none");
  EXPECT_FALSE(b->symbolizer);
  EXPECT_TRUE(b->functions.empty());
  EXPECT_EQ(b->globals.source, "none");
}

TEST(GoBinary, GoMinor) {
  EXPECT_EQ(sg::go_minor("go1.21.13"), 21);
  EXPECT_EQ(sg::go_minor("go1.9"), 9);
  EXPECT_EQ(sg::go_minor("go1.22rc1"), 22);
  EXPECT_EQ(sg::go_minor("devel go1.23-abcdef Tue"), 23);
  EXPECT_FALSE(sg::go_minor("unknown").has_value());
  EXPECT_FALSE(sg::go_minor("go1.").has_value());
  EXPECT_FALSE(sg::go_minor("").has_value());
}

TEST(GoBinary, InspectJson) {
  auto b = inspect_ok(fixture("hello-stripped"));
  auto j = sg::inspect_to_json(b, {{"offsets", {{"source", "table:go1.19"}}}});
  for (const char* k : {"path", "is_go", "go_version", "version_source", "module_path", "stripped",
                        "dwarf", "cgo", "pie", "tls_g_offset", "tls_source", "pclntab_version",
                        "text_start", "globals", "functions"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["go_version"], expected()["go_version"]);
  EXPECT_EQ(j["tls_g_offset"], -8);
  EXPECT_EQ(j["text_start"], "0x401000");
  EXPECT_EQ(j["globals"]["allp"], expected()["hello-symbols"]["runtime.allp"]);
  EXPECT_EQ(j["globals"]["source"], "patterns");
  EXPECT_EQ(j["functions"]["runtime.execute"],
            schedscope::hex(b.functions.at("runtime.execute").entry));
  EXPECT_EQ(j["offsets"]["source"], "table:go1.19");
}

TEST(GoBinary, InspectIsFast) {
  // The largest binaries at hand: inspect (everything, including the name index) must take
  // well under a second.
  std::vector<std::string> paths = {fixture("hello-symbols"), testbin("selfreport-go1.26-dwarf"),
                                    "/usr/lib/go-1.19/pkg/tool/linux_amd64/compile"};
  for (const auto& p : paths) {
    // The toolchain's compiler is an extra when installed; the fixtures must be there.
    if (p.rfind("/usr/", 0) == 0 && !std::filesystem::exists(p)) continue;
    ASSERT_TRUE(exists(p)) << "binary missing: " << p;  // not a silent pass
    (void)sg::inspect_binary(p);  // warm the page cache
    const auto t0 = std::chrono::steady_clock::now();
    auto b = sg::inspect_binary(p);
    const auto ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(b.ok()) << p;
    EXPECT_TRUE(b->is_go);
    EXPECT_LT(ms, 500.0) << p;
  }
}
