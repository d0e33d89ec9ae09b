// libFuzzer target: Go build info parsing (both layouts), modinfo, and the version-string
// scan. Input: bytes as found at .go.buildinfo; for the <= 1.17 pointer layout the same
// buffer doubles as the binary's memory, mapped at address 0x1000. Built by `make fuzz`.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "go/buildinfo.h"

// Compiled into this translation unit so it gets the fuzzer's instrumentation (see
// fuzz_pclntab.cpp).
#include "go/buildinfo.cpp"  // NOLINT(bugprone-suspicious-include)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace sg = schedscope::go;
  const std::span<const uint8_t> in(data, size);
  constexpr uint64_t kBase = 0x1000;
  const sg::AddrReader reader = [in](uint64_t addr, uint64_t len) -> std::span<const uint8_t> {
    if (addr < kBase || addr - kBase > in.size() || len > in.size() - (addr - kBase)) {
      return {};
    }
    return in.subspan(addr - kBase, len);
  };
  if (auto bi = sg::parse_buildinfo(in, reader); bi.ok()) {
    (void)bi->module_path.size();
  }
  if (auto off = sg::find_buildinfo_magic(in, kBase)) {
    (void)sg::parse_buildinfo(in.subspan(*off), reader);
  }
  sg::BuildInfo m;
  sg::parse_modinfo(std::string_view(reinterpret_cast<const char*>(data), size), &m);
  (void)sg::pick_go_version(sg::scan_go_versions(in));
  return 0;
}
