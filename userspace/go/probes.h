// Uprobe placement for --goroutines: file offsets of every RET instruction of
// runtime.newproc1 (found by a linear x86-64 sweep over the function, see x86.h) and of the
// entry of runtime.gdestroy (1.22+) or runtime.goexit0 (<=1.21). No uretprobes: Go breaks
// them (docs/go-runtime.md, "Why uretprobes break Go").
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "elf/elf_file.h"
#include "go/binary.h"
#include "util/expected.h"

namespace schedscope::go {

struct GoroutineProbes {
  std::vector<uint64_t> create_rets;     // link-time addresses of newproc1's RETs
  std::vector<uint64_t> create_offsets;  // the same as file offsets
  uint64_t exit_entry = 0;               // link-time entry of exit_func
  uint64_t exit_offset = 0;              // file offset of exit_func's entry
  std::string exit_func;                 // "runtime.gdestroy" | "runtime.goexit0"
  size_t undecodable = 0;                // bytes the sweep skipped in newproc1 (should be 0)
};

// The file offset of a link-time address: vaddr - p_vaddr + p_offset of the PT_LOAD that
// holds it in its file-backed part. nullopt when none does.
std::optional<uint64_t> vaddr_to_file_offset(const elf::ElfFile& f, uint64_t vaddr);

// RET (0xC3) instruction addresses of the code [entry, end) at link-time address `entry`.
std::vector<uint64_t> ret_addresses(std::span<const uint8_t> code, uint64_t entry,
                                    size_t* undecodable = nullptr);

// Errors: amd64 only, newproc1 / gdestroy / goexit0 not found, no RET, undecodable code.
Expected<GoroutineProbes> goroutine_probes(const elf::ElfFile& f, const BinaryInfo& bin);

}  // namespace schedscope::go
