// Synthetic ELF images with a .note.stapsdt section, for the USDT note parser's unit
// tests and its fuzz target.
#pragma once
#include <elf.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace schedscope::test_elf {

struct NoteSpec {
  uint64_t pc, base, sem;
  std::string provider, name, args;
};

inline void put(std::vector<uint8_t>& v, const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  v.insert(v.end(), b, b + n);
}
inline void align4(std::vector<uint8_t>& v) {
  while (v.size() % 4) v.push_back(0);
}

inline std::vector<uint8_t> note_bytes(const std::vector<NoteSpec>& notes) {
  std::vector<uint8_t> d;
  for (const auto& n : notes) {
    std::vector<uint8_t> desc;
    put(desc, &n.pc, 8);
    put(desc, &n.base, 8);
    put(desc, &n.sem, 8);
    for (const auto* s : {&n.provider, &n.name, &n.args}) put(desc, s->c_str(), s->size() + 1);
    uint32_t hdr[3] = {8, uint32_t(desc.size()), 3};
    put(d, hdr, sizeof hdr);
    put(d, "stapsdt", 8);
    put(d, desc.data(), desc.size());
    align4(d);
  }
  return d;
}

// A minimal ELF64: one PT_LOAD mapping the whole file at `vaddr`, sections
// .note.stapsdt, .stapsdt.base (at base_addr; nullopt: at its own place in the file, as
// an unprelinked object has it) and .shstrtab.
inline std::vector<uint8_t> make_elf(const uint8_t* notes, size_t notes_len, uint64_t vaddr,
                                     std::optional<uint64_t> base_addr) {
  std::vector<uint8_t> img(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), 0);
  size_t note_off = img.size();
  put(img, notes, notes_len);
  align4(img);
  size_t base_off = img.size();
  img.push_back(0);
  align4(img);
  std::string shstr = std::string("\0.note.stapsdt\0.stapsdt.base\0.shstrtab\0", 39);
  size_t shstr_off = img.size();
  put(img, shstr.data(), shstr.size());
  while (img.size() % 8) img.push_back(0);
  size_t sh_off = img.size();
  Elf64_Shdr sh[4] = {};
  sh[1].sh_name = 1;
  sh[1].sh_type = SHT_NOTE;
  sh[1].sh_flags = SHF_ALLOC;
  sh[1].sh_addr = vaddr + note_off;
  sh[1].sh_offset = note_off;
  sh[1].sh_size = notes_len;
  sh[2].sh_name = 15;
  sh[2].sh_type = SHT_PROGBITS;
  sh[2].sh_flags = SHF_ALLOC;
  sh[2].sh_addr = base_addr ? *base_addr : vaddr + base_off;
  sh[2].sh_offset = base_off;
  sh[2].sh_size = 1;
  sh[3].sh_name = 29;
  sh[3].sh_type = SHT_STRTAB;
  sh[3].sh_offset = shstr_off;
  sh[3].sh_size = shstr.size();
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
  Elf64_Phdr ph = {};
  ph.p_type = PT_LOAD;
  ph.p_flags = PF_R | PF_X;
  ph.p_offset = 0;
  ph.p_vaddr = vaddr;
  ph.p_filesz = img.size();
  ph.p_memsz = img.size();
  std::memcpy(img.data() + sizeof eh, &ph, sizeof ph);
  return img;
}

inline std::vector<uint8_t> make_elf(const std::vector<uint8_t>& notes, uint64_t vaddr,
                                     std::optional<uint64_t> base_addr) {
  return make_elf(notes.data(), notes.size(), vaddr, base_addr);
}

}  // namespace schedscope::test_elf
