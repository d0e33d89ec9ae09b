// libFuzzer target: the USDT note parser. Input: the bytes of a .note.stapsdt
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
#include "../common/stapsdt_elf.h"

// Compiled into this translation unit so it gets the fuzzer's instrumentation (see
// fuzz_pclntab.cpp).
#include "usdt/notes.cpp"  // NOLINT(bugprone-suspicious-include)

namespace {

std::vector<uint8_t> wrap(const uint8_t* notes, size_t n) {
  return schedscope::test_elf::make_elf(notes, n, 0x400000, std::nullopt);
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
