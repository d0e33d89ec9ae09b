// --annotations: where the uprobes go. The four runtime functions the runtime/trace
// library calls for every task, region and log (they are named in pclntab, stripped
// binaries too), each probed just past its stack-check prologue: a call that grows the
// stack runs the prologue twice (runtime.morestack jumps back to the entry) but the
// instruction after the check once. docs/annotations.md.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "elf/elf_file.h"
#include "go/binary.h"
#include "util/expected.h"

namespace schedscope::annotations {

struct Probe {
  std::string func;    // runtime/trace.userRegion, ...
  uint32_t kind = 0;   // SS_ANNOT_* (the BPF cookie)
  uint64_t entry = 0;  // link-time address of the function
  uint64_t addr = 0;   // link-time address of the probed instruction
  uint64_t offset = 0; // its file offset
  bool past_check = false;  // addr is past the stack check (false: at the entry: no check)
};

// The address of the first instruction after the stack-check prologue of the Go
// function whose code starts at `entry`: `[lea -N(sp),r12;] cmp 0x10(r14),sp|r12;
// jbe morestack` (and the large-frame variant with a second, carry, jump). nullopt when
// the function has no such check (NOSPLIT) or the code does not decode.
std::optional<uint64_t> past_stack_check(std::span<const uint8_t> code, uint64_t entry);

// The probes of the annotation functions the binary has. Error when it has none of them
// ("does not link runtime/trace annotations"), or is not amd64.
Expected<std::vector<Probe>> annotation_probes(const elf::ElfFile& f, const go::BinaryInfo& bin);

// The functions, by SS_ANNOT_* kind (1..4).
const char* kind_func(uint32_t kind);

}  // namespace schedscope::annotations
