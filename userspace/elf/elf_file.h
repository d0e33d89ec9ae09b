// A small, bounds-checked ELF reader over a read-only mapping of the file (or an owned
// byte buffer, for tests and fuzzing). Little-endian ELF32/ELF64 only. Every accessor
// checks ranges against the file size: a corrupt or truncated file yields an Error from
// open()/from_bytes() or an empty span from the accessors, never a read out of bounds.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/expected.h"

namespace schedscope::elf {

struct Section {
  std::string name;
  uint32_t type = 0;   // SHT_*
  uint64_t flags = 0;  // SHF_*
  uint64_t addr = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t link = 0;
  uint32_t info = 0;
  uint64_t addralign = 0;
  uint64_t entsize = 0;
};

struct Segment {
  uint32_t type = 0;   // PT_*
  uint32_t flags = 0;  // PF_R | PF_W | PF_X
  uint64_t offset = 0;
  uint64_t vaddr = 0;
  uint64_t filesz = 0;
  uint64_t memsz = 0;
  uint64_t align = 0;
};

struct Symbol {
  std::string_view name;  // points into the file image (valid while the ElfFile lives)
  uint64_t value = 0;
  uint64_t size = 0;
  uint8_t type = 0;  // STT_*
  uint8_t bind = 0;  // STB_*
  uint16_t shndx = 0;
};

class ElfFile {
 public:
  // Maps `path` read-only. Errors: unreadable, empty, not ELF, unsupported class or
  // byte order, header tables out of the file's bounds.
  static Expected<std::unique_ptr<ElfFile>> open(const std::string& path);
  // Parses an in-memory image (copied).
  static Expected<std::unique_ptr<ElfFile>> from_bytes(std::span<const uint8_t> bytes);

  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  [[nodiscard]] std::span<const uint8_t> image() const { return {data_, size_}; }
  [[nodiscard]] bool is_64() const { return is64_; }
  [[nodiscard]] uint16_t type() const { return type_; }  // ET_EXEC, ET_DYN, ...
  [[nodiscard]] uint16_t machine() const { return machine_; }
  [[nodiscard]] uint64_t entry() const { return entry_; }

  [[nodiscard]] const std::vector<Section>& sections() const { return sections_; }
  [[nodiscard]] const std::vector<Segment>& segments() const { return segments_; }
  // First section with this name, or null.
  [[nodiscard]] const Section* section(std::string_view name) const;
  // First segment of this type (e.g. PT_TLS, PT_INTERP), or null.
  [[nodiscard]] const Segment* segment(uint32_t type) const;
  // File bytes of a section; empty for SHT_NOBITS or when out of the file's bounds.
  [[nodiscard]] std::span<const uint8_t> section_data(const Section& s) const;
  // File bytes of a segment (filesz part), empty when out of bounds.
  [[nodiscard]] std::span<const uint8_t> segment_data(const Segment& s) const;

  // `len` file-backed bytes at link-time address `addr`, through the PT_LOAD segments
  // (sections when there are no program headers). Empty when not entirely backed by
  // the file (e.g. .bss) or out of range.
  [[nodiscard]] std::span<const uint8_t> read_vaddr(uint64_t addr, uint64_t len) const;
  // Little-endian pointer-sized value at `addr` (4 or 8 bytes by ELF class).
  [[nodiscard]] std::optional<uint64_t> read_ptr(uint64_t addr) const;

  // .symtab present (the binary is not stripped).
  [[nodiscard]] bool has_symtab() const;
  // Symbol by exact name, from .symtab, else .dynsym. The index is built on first use
  // (thread-safe).
  [[nodiscard]] std::optional<Symbol> symbol(std::string_view name) const;
  // All symbols of .symtab (or .dynsym when there is no .symtab).
  [[nodiscard]] const std::vector<Symbol>& symbols() const;

  // PT_INTERP string ("" when static).
  [[nodiscard]] std::string interpreter() const;
  // DT_NEEDED entries of the dynamic segment.
  [[nodiscard]] std::vector<std::string> needed_libraries() const;

 private:
  ElfFile() = default;
  Status parse();
  void build_symbols() const;
  [[nodiscard]] std::string_view cstring_at(std::span<const uint8_t> table, uint64_t off) const;

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;         // data_ is an mmap to release
  std::vector<uint8_t> owned_;  // from_bytes storage
  bool is64_ = true;
  uint16_t type_ = 0;
  uint16_t machine_ = 0;
  uint64_t entry_ = 0;
  std::vector<Section> sections_;
  std::vector<Segment> segments_;

  mutable std::once_flag symbols_once_;
  mutable std::vector<Symbol> symbols_;
  mutable std::unordered_map<std::string_view, size_t> symbol_index_;
};

}  // namespace schedscope::elf
