#include "elf/elf_file.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "elf/bytes.h"
#include "util/input_file.h"

namespace schedscope::elf {
namespace {

// Upper bounds that keep a corrupt header from making us allocate or loop forever.
constexpr uint64_t kMaxHeaders = 1 << 16;

std::string errno_message(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

ElfFile::~ElfFile() {
  if (mapped_ && data_ != nullptr) {
    munmap(const_cast<uint8_t*>(data_), size_);
  }
}

Expected<std::unique_ptr<ElfFile>> ElfFile::open(const std::string& path) {
  auto in = open_input_file(path);
  if (!in) {
    return in.error();
  }
  if (in->size() == 0) {
    return make_error(path + ": empty file, not an ELF executable");
  }
  void* m = mmap(nullptr, static_cast<size_t>(in->size()), PROT_READ, MAP_PRIVATE, in->fd(), 0);
  if (m == MAP_FAILED) {
    return make_error(errno_message("cannot map", path));
  }
  std::unique_ptr<ElfFile> f(new ElfFile());
  f->data_ = static_cast<const uint8_t*>(m);
  f->size_ = static_cast<size_t>(in->size());
  f->mapped_ = true;
  if (Status s = f->parse(); !s) {
    return make_error(path + ": " + s.error().message);
  }
  return f;
}

Expected<std::unique_ptr<ElfFile>> ElfFile::from_bytes(std::span<const uint8_t> bytes) {
  std::unique_ptr<ElfFile> f(new ElfFile());
  f->owned_.assign(bytes.begin(), bytes.end());
  f->data_ = f->owned_.data();
  f->size_ = f->owned_.size();
  if (Status s = f->parse(); !s) {
    return s.error();
  }
  return f;
}

Status ElfFile::parse() {
  std::span<const uint8_t> img(data_, size_);
  if (size_ < EI_NIDENT || std::memcmp(data_, ELFMAG, SELFMAG) != 0) {
    return make_error("not an ELF file");
  }
  if (data_[EI_CLASS] != ELFCLASS32 && data_[EI_CLASS] != ELFCLASS64) {
    return make_error("corrupt ELF: bad class");
  }
  is64_ = data_[EI_CLASS] == ELFCLASS64;
  if (data_[EI_DATA] != ELFDATA2LSB) {
    return make_error("unsupported ELF: only little-endian is supported");
  }
  const uint64_t ehsize = is64_ ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
  if (size_ < ehsize) {
    return make_error("corrupt ELF: truncated header");
  }
  const int w = is64_ ? 8 : 4;
  // Field offsets differ between classes only after e_version (offset 20).
  type_ = *read_u16(img, 16);
  machine_ = *read_u16(img, 18);
  entry_ = *read_word(img, 24, w);
  const uint64_t phoff = *read_word(img, 24 + w, w);
  const uint64_t shoff = *read_word(img, 24 + 2 * w, w);
  const uint64_t base = 24 + 3 * w + 4;  // after e_flags
  const uint16_t phentsize = *read_u16(img, base + 2);
  uint64_t phnum = *read_u16(img, base + 4);
  const uint16_t shentsize = *read_u16(img, base + 6);
  uint64_t shnum = *read_u16(img, base + 8);
  uint64_t shstrndx = *read_u16(img, base + 10);

  // Section headers (optional: a file may have none).
  const uint64_t want_sh = is64_ ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
  if (shoff != 0) {
    if (shentsize < want_sh) {
      return make_error("corrupt ELF: bad section header size");
    }
    if (shnum == 0 || shstrndx == SHN_XINDEX || phnum == PN_XNUM) {
      // Extended numbering: the real counts live in section header 0.
      if (!in_bounds(size_, shoff, want_sh)) {
        return make_error("corrupt ELF: section header table out of bounds (truncated file?)");
      }
      if (shnum == 0) {
        shnum = *read_word(img, shoff + (is64_ ? 32 : 20), w);
      }
      if (shstrndx == SHN_XINDEX) {
        shstrndx = *read_u32(img, shoff + (is64_ ? 40 : 24));
      }
      if (phnum == PN_XNUM) {
        phnum = *read_u32(img, shoff + (is64_ ? 44 : 28));
      }
    }
    if (shnum > kMaxHeaders || !in_bounds(size_, shoff, shnum * shentsize)) {
      return make_error("corrupt ELF: section header table out of bounds (truncated file?)");
    }
    sections_.reserve(shnum);
    std::vector<uint32_t> name_offs;
    for (uint64_t i = 0; i < shnum; ++i) {
      const uint64_t o = shoff + i * shentsize;
      Section s;
      name_offs.push_back(*read_u32(img, o));
      s.type = *read_u32(img, o + 4);
      if (is64_) {
        s.flags = *read_u64(img, o + 8);
        s.addr = *read_u64(img, o + 16);
        s.offset = *read_u64(img, o + 24);
        s.size = *read_u64(img, o + 32);
        s.link = *read_u32(img, o + 40);
        s.info = *read_u32(img, o + 44);
        s.addralign = *read_u64(img, o + 48);
        s.entsize = *read_u64(img, o + 56);
      } else {
        s.flags = *read_u32(img, o + 8);
        s.addr = *read_u32(img, o + 12);
        s.offset = *read_u32(img, o + 16);
        s.size = *read_u32(img, o + 20);
        s.link = *read_u32(img, o + 24);
        s.info = *read_u32(img, o + 28);
        s.addralign = *read_u32(img, o + 32);
        s.entsize = *read_u32(img, o + 36);
      }
      sections_.push_back(std::move(s));
    }
    if (shstrndx != SHN_UNDEF && shstrndx < sections_.size()) {
      auto strtab = section_data(sections_[shstrndx]);
      for (size_t i = 0; i < sections_.size(); ++i) {
        sections_[i].name = std::string(cstring_at(strtab, name_offs[i]));
      }
    }
  }

  // Program headers.
  const uint64_t want_ph = is64_ ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
  if (phoff != 0 && phnum != 0) {
    if (phentsize < want_ph) {
      return make_error("corrupt ELF: bad program header size");
    }
    if (phnum > kMaxHeaders || !in_bounds(size_, phoff, phnum * phentsize)) {
      return make_error("corrupt ELF: program header table out of bounds (truncated file?)");
    }
    segments_.reserve(phnum);
    for (uint64_t i = 0; i < phnum; ++i) {
      const uint64_t o = phoff + i * phentsize;
      Segment p;
      p.type = *read_u32(img, o);
      if (is64_) {
        p.flags = *read_u32(img, o + 4);
        p.offset = *read_u64(img, o + 8);
        p.vaddr = *read_u64(img, o + 16);
        p.filesz = *read_u64(img, o + 32);
        p.memsz = *read_u64(img, o + 40);
        p.align = *read_u64(img, o + 48);
      } else {
        p.offset = *read_u32(img, o + 4);
        p.vaddr = *read_u32(img, o + 8);
        p.filesz = *read_u32(img, o + 16);
        p.memsz = *read_u32(img, o + 20);
        p.flags = *read_u32(img, o + 24);
        p.align = *read_u32(img, o + 28);
      }
      segments_.push_back(p);
    }
  }
  if (segments_.empty() && sections_.empty()) {
    return make_error("corrupt ELF: neither program nor section headers");
  }
  // Contents must lie inside the file: a truncated file is an error, not silently empty.
  for (const auto& p : segments_) {
    if (!in_bounds(size_, p.offset, p.filesz)) {
      return make_error("truncated or corrupt ELF: a segment extends past the end of the file");
    }
  }
  for (const auto& s : sections_) {
    if (s.type != SHT_NOBITS && s.type != SHT_NULL && !in_bounds(size_, s.offset, s.size)) {
      return make_error("truncated or corrupt ELF: section " + s.name +
                        " extends past the end of the file");
    }
  }
  return {};
}

std::string_view ElfFile::cstring_at(std::span<const uint8_t> table, uint64_t off) const {
  auto s = read_cstring(table, off);
  return s ? *s : std::string_view();
}

const Section* ElfFile::section(std::string_view name) const {
  for (const auto& s : sections_) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

const Segment* ElfFile::segment(uint32_t type) const {
  for (const auto& p : segments_) {
    if (p.type == type) {
      return &p;
    }
  }
  return nullptr;
}

std::span<const uint8_t> ElfFile::section_data(const Section& s) const {
  if (s.type == SHT_NOBITS) {
    return {};
  }
  return subspan(image(), s.offset, s.size);
}

std::span<const uint8_t> ElfFile::segment_data(const Segment& s) const {
  return subspan(image(), s.offset, s.filesz);
}

std::span<const uint8_t> ElfFile::read_vaddr(uint64_t addr, uint64_t len) const {
  auto from = [&](uint64_t start, uint64_t size, uint64_t offset) -> std::span<const uint8_t> {
    if (addr < start || !in_bounds(size, addr - start, len)) {
      return {};
    }
    return subspan(image(), offset + (addr - start), len);
  };
  if (len == 0) {
    return {};
  }
  bool have_load = false;
  for (const auto& p : segments_) {
    if (p.type != PT_LOAD) {
      continue;
    }
    have_load = true;
    if (auto r = from(p.vaddr, p.filesz, p.offset); !r.empty()) {
      return r;
    }
  }
  if (!have_load) {
    for (const auto& s : sections_) {
      if ((s.flags & SHF_ALLOC) != 0 && s.type != SHT_NOBITS) {
        if (auto r = from(s.addr, s.size, s.offset); !r.empty()) {
          return r;
        }
      }
    }
  }
  return {};
}

std::optional<uint64_t> ElfFile::read_ptr(uint64_t addr) const {
  const int w = is64_ ? 8 : 4;
  return read_word(read_vaddr(addr, w), 0, w);
}

bool ElfFile::has_symtab() const {
  for (const auto& s : sections_) {
    if (s.type == SHT_SYMTAB) {
      return true;
    }
  }
  return false;
}

void ElfFile::build_symbols() const {
  const Section* tab = nullptr;
  for (const auto& s : sections_) {
    if (s.type == SHT_SYMTAB) {
      tab = &s;
      break;
    }
  }
  if (tab == nullptr) {
    for (const auto& s : sections_) {
      if (s.type == SHT_DYNSYM) {
        tab = &s;
        break;
      }
    }
  }
  if (tab == nullptr || tab->link >= sections_.size()) {
    return;
  }
  auto data = section_data(*tab);
  auto strtab = section_data(sections_[tab->link]);
  const uint64_t entsize = is64_ ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
  const uint64_t n = data.size() / entsize;
  symbols_.reserve(n);
  for (uint64_t i = 1; i < n; ++i) {  // entry 0 is the null symbol
    const uint64_t o = i * entsize;
    Symbol sym;
    sym.name = cstring_at(strtab, *read_u32(data, o));
    uint8_t info = 0;
    if (is64_) {
      info = *read_u8(data, o + 4);
      sym.shndx = *read_u16(data, o + 6);
      sym.value = *read_u64(data, o + 8);
      sym.size = *read_u64(data, o + 16);
    } else {
      sym.value = *read_u32(data, o + 4);
      sym.size = *read_u32(data, o + 8);
      info = *read_u8(data, o + 12);
      sym.shndx = *read_u16(data, o + 14);
    }
    sym.type = ELF64_ST_TYPE(info);
    sym.bind = ELF64_ST_BIND(info);
    symbols_.push_back(sym);
  }
  symbol_index_.reserve(symbols_.size());
  for (size_t i = 0; i < symbols_.size(); ++i) {
    if (!symbols_[i].name.empty()) {
      symbol_index_.emplace(symbols_[i].name, i);  // first definition wins
    }
  }
}

const std::vector<Symbol>& ElfFile::symbols() const {
  std::call_once(symbols_once_, [this] { build_symbols(); });
  return symbols_;
}

std::optional<Symbol> ElfFile::symbol(std::string_view name) const {
  std::call_once(symbols_once_, [this] { build_symbols(); });
  auto it = symbol_index_.find(name);
  if (it == symbol_index_.end()) {
    return std::nullopt;
  }
  return symbols_[it->second];
}

std::string ElfFile::interpreter() const {
  const Segment* p = segment(PT_INTERP);
  if (p == nullptr) {
    return "";
  }
  auto d = segment_data(*p);
  auto s = read_cstring(d, 0);
  return s ? std::string(*s) : std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

std::vector<std::string> ElfFile::needed_libraries() const {
  std::vector<std::string> out;
  const Segment* dyn = segment(PT_DYNAMIC);
  if (dyn == nullptr) {
    return out;
  }
  auto d = segment_data(*dyn);
  const int w = is64_ ? 8 : 4;
  std::vector<uint64_t> needed;
  uint64_t strtab = 0;
  uint64_t strsz = 0;
  for (uint64_t o = 0; in_bounds(d.size(), o, 2 * w); o += 2 * w) {
    const uint64_t tag = *read_word(d, o, w);
    const uint64_t val = *read_word(d, o + w, w);
    if (tag == DT_NULL) {
      break;
    }
    if (tag == DT_NEEDED) {
      needed.push_back(val);
    } else if (tag == DT_STRTAB) {
      strtab = val;
    } else if (tag == DT_STRSZ) {
      strsz = val;
    }
  }
  auto strs = read_vaddr(strtab, strsz);
  if (strs.empty()) {
    if (const Section* s = section(".dynstr")) {
      strs = section_data(*s);
    }
  }
  for (uint64_t off : needed) {
    if (auto s = read_cstring(strs, off)) {
      out.emplace_back(*s);
    }
  }
  return out;
}

}  // namespace schedscope::elf
