// libFuzzer target: Pclntab::parse() and every query on whatever it accepts, and the
// magic scan's Pclntab::plausible() (it must accept every table parse() accepts).
// Input: the raw table bytes (as found at .gopclntab). Built by `make fuzz`.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "go/pclntab.h"

// The parser is compiled into this translation unit, with the fuzzer's instrumentation
// (coverage + ASan): schedscope_core itself is built without -fsanitize. The archive's
// pclntab.o is then never pulled in, so there is no duplicate definition.
#include "go/pclntab.cpp"  // NOLINT(bugprone-suspicious-include)

namespace {

void exercise(const schedscope::go::Pclntab& t, std::span<const uint8_t> in) {
  const size_t n = t.function_count();
  const uint64_t lo = t.min_pc();
  const uint64_t hi = t.max_pc();
  (void)t.lookup(lo - 1);
  (void)t.lookup(hi);
  (void)t.wrapper_func_id();
  (void)t.abi_wrappers();
  (void)t.has_name_prefix("runtime.");
  (void)t.find_function("runtime.execute");
  for (size_t i = 0; i < n && i < 512; ++i) {
    auto f = t.func(i);
    if (!f) {
      continue;
    }
    (void)t.lookup(f->entry);
    (void)t.lookup(f->entry + (f->end - f->entry) / 2);
    (void)t.file_line(i, f->end);
    (void)t.find_function(std::string(f->name));
  }
  // PCs taken from the input itself.
  for (size_t off = 0; off + 8 <= in.size() && off < 256; off += 8) {
    uint64_t pc = 0;
    for (int k = 0; k < 8; ++k) pc |= static_cast<uint64_t>(in[off + k]) << (8 * k);
    const uint64_t span = hi - lo + 1;  // 0 only when the table covers all 2^64 PCs
    (void)t.lookup(span == 0 ? pc : lo + pc % span);
    (void)t.lookup(pc);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  // The magic scan's O(1) check never refuses what a full parse accepts.
  const uint64_t plausible = schedscope::go::Pclntab::plausible(in);
  for (uint64_t text : {uint64_t{0}, uint64_t{0x401000}}) {
    auto t = schedscope::go::Pclntab::parse(in, text);
    if (t.ok()) {
      if (plausible != (*t)->function_count()) __builtin_trap();
      exercise(**t, in);
    }
  }
  return 0;
}
