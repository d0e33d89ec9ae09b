// libFuzzer target: the USDT note parser (issue 7). Input: the bytes of a .note.stapsdt
// section, wrapped into a minimal ELF64 (one PT_LOAD, .note.stapsdt, .stapsdt.base) so the
// whole path runs: note headers, descriptors, strings, prelink adjustment, file offsets,
// and the argument-spec decoder on each probe's argument string. Built by `make fuzz`.
#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "elf/elf_file.h"
#include "usdt/notes.h"

// Compiled into this translation unit so it gets the fuzzer's instrumentation (see
// fuzz_pclntab.cpp).
#include "usdt/notes.cpp"  // NOLINT(bugprone-suspicious-include)

namespace {

void put(std::vector<uint8_t>& v, const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  v.insert(v.end(), b, b + n);
}

std::vector<uint8_t> wrap(const uint8_t* notes, size_t n) {
  constexpr uint64_t kVaddr = 0x400000;
  std::vector<uint8_t> img(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), 0);
  size_t note_off = img.size();
  put(img, notes, n);
  while (img.size() % 8) img.push_back(0);
  size_t base_off = img.size();
  img.push_back(0);
  static const char kShstr[] = "\0.note.stapsdt\0.stapsdt.base\0.shstrtab";
  size_t shstr_off = img.size();
  put(img, kShstr, sizeof kShstr);
  while (img.size() % 8) img.push_back(0);
  size_t sh_off = img.size();
  Elf64_Shdr sh[4] = {};
  sh[1] = {1, SHT_NOTE, SHF_ALLOC, kVaddr + note_off, note_off, n, 0, 0, 4, 0};
  sh[2] = {15, SHT_PROGBITS, SHF_ALLOC, kVaddr + base_off, base_off, 1, 0, 0, 1, 0};
  sh[3] = {29, SHT_STRTAB, 0, 0, shstr_off, sizeof kShstr, 0, 0, 1, 0};
  put(img, sh, sizeof sh);
  Elf64_Ehdr eh = {};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_DYN;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_shoff = sh_off;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 1;
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = 4;
  eh.e_shstrndx = 3;
  std::memcpy(img.data(), &eh, sizeof eh);
  Elf64_Phdr ph = {PT_LOAD, PF_R | PF_X, 0, kVaddr, kVaddr, img.size(), img.size(), 0x1000};
  std::memcpy(img.data() + sizeof eh, &ph, sizeof ph);
  return img;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace su = schedscope::usdt;
  auto img = wrap(data, size);
  auto f = schedscope::elf::ElfFile::from_bytes(img);
  if (!f) return 0;
  if (auto probes = su::parse_notes(**f)) {
    for (const auto& p : *probes) {
      for (const auto& a : p.args) (void)a.describe();
      (void)su::probe_to_json(p).dump();
    }
  }
  (void)su::parse_args(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
