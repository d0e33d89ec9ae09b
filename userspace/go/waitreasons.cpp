// find_wait_reasons(): runtime.waitReasonStrings from the binary (see waitreasons.h).
#include "go/waitreasons.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include "elf/bytes.h"
#include "elf/elf_file.h"
#include "go/binary.h"
#include "go/x86.h"

namespace schedscope::go {

namespace {

constexpr std::string_view kAssist = "GC assist marking";  // waitReasonGCAssistMarking (1)
constexpr std::string_view kIOWait = "IO wait";            // waitReasonIOWait (2)

// Every address in `ranges` where `needle` starts (Go strings are not NUL-terminated, so
// the bytes may be followed by anything, and the linker may share them).
std::unordered_set<uint64_t> occurrences(const std::vector<ByteRange>& ranges,
                                         std::string_view needle) {
  std::unordered_set<uint64_t> out;
  for (const auto& r : ranges) {
    const auto* begin = reinterpret_cast<const char*>(r.bytes.data());
    std::string_view hay(begin, r.bytes.size());
    for (size_t pos = hay.find(needle); pos != std::string_view::npos;
         pos = hay.find(needle, pos + 1)) {
      out.insert(r.addr + pos);
    }
  }
  return out;
}

std::span<const uint8_t> read_mapped(const WaitReasonImage& img, uint64_t addr, uint64_t len) {
  for (const auto& r : img.mapped) {
    if (addr >= r.addr && elf::in_bounds(r.bytes.size(), addr - r.addr, len)) {
      return elf::subspan(r.bytes, addr - r.addr, len);
    }
  }
  return {};
}

// One data range, read as Go string headers, with PIE relocations applied to the pointers.
class Headers {
 public:
  Headers(const WaitReasonImage& img, const ByteRange& r) : img_(img), r_(r), ps_(img.ptr_size) {}
  // The pointer and length of the header at byte offset `off` of the range.
  [[nodiscard]] std::optional<std::pair<uint64_t, uint64_t>> at(uint64_t off) const {
    auto ptr = elf::read_word(r_.bytes, off, ps_);
    auto len = elf::read_word(r_.bytes, off + static_cast<uint64_t>(ps_), ps_);
    if (!ptr || !len) {
      return std::nullopt;
    }
    if (auto it = img_.relative.find(r_.addr + off); it != img_.relative.end()) {
      ptr = it->second;
    }
    return std::pair{*ptr, *len};
  }
  [[nodiscard]] std::optional<std::string> string_at(uint64_t off) const {
    auto h = at(off);
    if (!h || h->second == 0 || h->second > kMaxWaitReasonLen) {
      return std::nullopt;
    }
    auto bytes = read_mapped(img_, h->first, h->second);
    if (bytes.empty() ||
        !std::all_of(bytes.begin(), bytes.end(), [](uint8_t c) { return c >= 0x20 && c < 0x7f; })) {
      return std::nullopt;
    }
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }

 private:
  const WaitReasonImage& img_;
  const ByteRange& r_;
  int ps_;
};

// Ranges of an ELF file, by section name when there are section headers, else by segment.
std::vector<ByteRange> ranges_of(const elf::ElfFile& elf, std::initializer_list<const char*> names,
                                 uint32_t want_flags, uint32_t reject_flags) {
  std::vector<ByteRange> out;
  for (const char* name : names) {
    if (const auto* s = elf.section(name)) {
      auto d = elf.section_data(*s);
      if (!d.empty()) {
        out.push_back({s->addr, d});
      }
    }
  }
  if (out.empty()) {
    for (const auto& p : elf.segments()) {
      if (p.type == PT_LOAD && (p.flags & want_flags) == want_flags &&
          (p.flags & reject_flags) == 0) {
        auto d = elf.segment_data(p);
        if (!d.empty()) {
          out.push_back({p.vaddr, d});
        }
      }
    }
  }
  return out;
}

void add_rela(const elf::ElfFile& elf, std::span<const uint8_t> rela,
              std::unordered_map<uint64_t, uint64_t>* out) {
  const uint32_t relative = elf.machine() == EM_AARCH64 ? R_AARCH64_RELATIVE : R_X86_64_RELATIVE;
  for (uint64_t o = 0; elf::in_bounds(rela.size(), o, 24); o += 24) {
    const uint64_t off = *elf::read_u64(rela, o);
    const uint64_t info = *elf::read_u64(rela, o + 8);
    if ((info & 0xffffffff) == relative) {
      (*out)[off] = *elf::read_u64(rela, o + 16);
    }
  }
}

}  // namespace

std::optional<WaitReasonImage::Bound> wait_reason_bound_from_code(std::span<const uint8_t> code,
                                                                  uint64_t entry) {
  const auto insns = x86::sweep(code, entry);
  std::optional<size_t> len;
  for (size_t i = 0; i < insns.size() && i < 16; ++i) {
    const auto& in = insns[i];
    if (in.vex || in.map != 0) {
      continue;
    }
    // The bounds check: cmp $imm8,%al (3c ib) or cmp $imm8,%r8 (80 /7 ib, register).
    const bool cmp_al = in.opcode == 0x3c && in.has_imm;
    const bool cmp_r8 =
        in.opcode == 0x80 && in.has_modrm && in.mod == 3 && (in.reg & 7) == 7 && in.has_imm;
    if (!len && (cmp_al || cmp_r8)) {
      len = static_cast<size_t>(in.imm & 0xff);
      continue;
    }
    // The array: lea X(%rip),reg then a load through (reg,index). (The other lea loads
    // "unknown wait reason" for the out-of-range case.)
    if (!len || in.opcode != 0x8d || !in.rip_relative || !in.rex_w()) {
      continue;
    }
    for (size_t k = i + 1; k < insns.size() && k <= i + 3; ++k) {
      const auto& ld = insns[k];
      if (!ld.vex && ld.map == 0 && ld.opcode == 0x8b && ld.mem_operand() && ld.has_sib &&
          ld.base == in.reg && ld.index != 0xff) {
        if (*len < 3 || *len > kMaxWaitReasons) {
          return std::nullopt;
        }
        return WaitReasonImage::Bound{in.target, *len};
      }
    }
  }
  return std::nullopt;
}

namespace {

// The first three elements of a `[...]string` enum table: [0] (empty: a zero-length
// header), [1] and [2], which anchor the search.
struct Anchors {
  std::string_view e0, e1, e2;
};

std::optional<WaitReasonTable> find_table(const WaitReasonImage& img, const Anchors& a,
                                          const std::optional<WaitReasonImage::Bound>& bound) {
  if (img.ptr_size != 4 && img.ptr_size != 8) {
    return std::nullopt;
  }
  const auto first = occurrences(img.rodata, a.e1);
  const auto second = occurrences(img.rodata, a.e2);
  if (first.empty() || second.empty()) {
    return std::nullopt;
  }
  const uint64_t ps = static_cast<uint64_t>(img.ptr_size);
  const uint64_t hs = 2 * ps;  // one string header
  std::vector<WaitReasonTable> found;
  for (const auto& r : img.data) {
    const Headers h(img, r);
    // Element 1 sits one header after the (pointer-aligned) start of the array.
    for (uint64_t off = (ps - (r.addr + hs) % ps) % ps + hs; off + 2 * hs <= r.bytes.size();
         off += ps) {
      if (elf::read_word(r.bytes, off + ps, img.ptr_size) != a.e1.size()) {
        continue;  // cheap test first: the length
      }
      auto e1 = h.at(off);
      auto e2 = h.at(off + hs);
      if (!e1 || !first.count(e1->first) || !e2 || e2->second != a.e2.size() ||
          !second.count(e2->first)) {
        continue;
      }
      if (a.e0.empty()) {
        auto e0 = h.at(off - hs);
        if (!e0 || e0->second != 0) {
          continue;
        }
      } else if (h.string_at(off - hs) != a.e0) {
        continue;
      }
      WaitReasonTable t;
      t.addr = r.addr + off - hs;
      t.source = "data";
      size_t cap = kMaxWaitReasons;
      if (bound && bound->addr == t.addr) {
        cap = bound->len;
        t.source = "data+code";
      }
      t.names.emplace_back(a.e0);
      for (uint64_t e = off; t.names.size() < cap && e + hs <= r.bytes.size(); e += hs) {
        auto s = h.string_at(e);
        if (!s) {
          break;
        }
        t.names.push_back(std::move(*s));
      }
      found.push_back(std::move(t));
    }
  }
  if (found.empty()) {
    return std::nullopt;
  }
  // One array in a real binary; if several match, they must agree.
  for (const auto& t : found) {
    if (t.names != found.front().names) {
      return std::nullopt;
    }
  }
  return std::move(found.front());
}

}  // namespace

std::optional<WaitReasonTable> find_wait_reasons(const WaitReasonImage& img) {
  return find_table(img, {"", kAssist, kIOWait}, img.bound);
}

std::optional<WaitReasonTable> find_stw_reasons(const WaitReasonImage& img) {
  return find_table(img, {kStwUnknown, kStwMarkTerm, kStwSweepTerm}, std::nullopt);
}

WaitReasonImage wait_reason_image(const elf::ElfFile& elf, const Symbolizer* syms) {
  WaitReasonImage img;
  if (syms != nullptr && elf.machine() == EM_X86_64) {
    if (auto f = syms->find_function("runtime.waitReason.String"); f && f->end > f->entry) {
      const uint64_t len = std::min<uint64_t>(f->end - f->entry, 128);
      img.bound = wait_reason_bound_from_code(elf.read_vaddr(f->entry, len), f->entry);
    }
  }
  img.ptr_size = elf.is_64() ? 8 : 4;
  img.rodata = ranges_of(elf, {".rodata"}, PF_R, PF_W | PF_X);
  img.data = ranges_of(elf, {".data", ".noptrdata", ".data.rel.ro", ".go.module"}, PF_W, 0);
  for (const auto& p : elf.segments()) {
    if (p.type == PT_LOAD) {
      auto d = elf.segment_data(p);
      if (!d.empty()) {
        img.mapped.push_back({p.vaddr, d});
      }
    }
  }
  if (img.mapped.empty()) {  // no program headers: the allocated sections
    for (const auto& s : elf.sections()) {
      if ((s.flags & SHF_ALLOC) != 0 && s.type != SHT_NOBITS) {
        auto d = elf.section_data(s);
        if (!d.empty()) {
          img.mapped.push_back({s.addr, d});
        }
      }
    }
  }
  if (elf.type() == ET_DYN && elf.is_64()) {
    bool any = false;
    for (const auto& s : elf.sections()) {
      if (s.type == SHT_RELA) {
        add_rela(elf, elf.section_data(s), &img.relative);
        any = true;
      }
    }
    if (!any) {  // no section headers: DT_RELA / DT_RELASZ of the dynamic segment
      if (const auto* dyn = elf.segment(PT_DYNAMIC)) {
        auto d = elf.segment_data(*dyn);
        uint64_t rela = 0;
        uint64_t relasz = 0;
        for (uint64_t o = 0; elf::in_bounds(d.size(), o, 16); o += 16) {
          const uint64_t tag = *elf::read_u64(d, o);
          const uint64_t val = *elf::read_u64(d, o + 8);
          if (tag == DT_NULL) {
            break;
          }
          if (tag == DT_RELA) {
            rela = val;
          } else if (tag == DT_RELASZ) {
            relasz = val;
          }
        }
        if (rela != 0 && relasz != 0) {
          add_rela(elf, elf.read_vaddr(rela, relasz), &img.relative);
        }
      }
    }
  }
  return img;
}

std::optional<WaitReasonTable> find_wait_reasons(const elf::ElfFile& elf, const Symbolizer* syms) {
  return find_wait_reasons(wait_reason_image(elf, syms));
}

std::optional<WaitReasonTable> find_stw_reasons(const elf::ElfFile& elf, const Symbolizer* syms) {
  return find_stw_reasons(wait_reason_image(elf, syms));
}

}  // namespace schedscope::go
