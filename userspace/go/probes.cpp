#include "go/probes.h"

#include <elf.h>

#include "go/x86.h"

namespace schedscope::go {

std::optional<uint64_t> vaddr_to_file_offset(const elf::ElfFile& f, uint64_t vaddr) {
  for (const auto& s : f.segments()) {
    if (s.type != PT_LOAD) continue;
    if (vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
  }
  return std::nullopt;
}

std::vector<uint64_t> ret_addresses(std::span<const uint8_t> code, uint64_t entry,
                                    size_t* undecodable) {
  std::vector<uint64_t> out;
  for (const auto& in : x86::sweep(code, entry, undecodable)) {
    // A plain near return: c3, no prefixes (Go emits no `rep ret` / `ret imm16`).
    if (!in.vex && in.map == 0 && in.opcode == 0xc3 && in.len == 1) out.push_back(in.addr);
  }
  return out;
}

Expected<GoroutineProbes> goroutine_probes(const elf::ElfFile& f, const BinaryInfo& bin) {
  if (f.machine() != EM_X86_64)
    return make_error("--goroutines supports amd64 binaries only (RET offsets are decoded as x86-64)");
  auto np = bin.functions.find("runtime.newproc1");
  if (np == bin.functions.end() || np->second.end <= np->second.entry)
    return make_error("runtime.newproc1 not found in the binary");
  GoroutineProbes p;
  auto ex = bin.functions.find("runtime.gdestroy");
  if (ex == bin.functions.end()) ex = bin.functions.find("runtime.goexit0");
  if (ex == bin.functions.end()) return make_error("neither runtime.gdestroy nor runtime.goexit0 found");
  p.exit_func = ex->first;
  p.exit_entry = ex->second.entry;

  uint64_t len = np->second.end - np->second.entry;
  auto code = f.read_vaddr(np->second.entry, len);
  if (code.size() != len) return make_error("cannot read the code of runtime.newproc1");
  p.create_rets = ret_addresses(code, np->second.entry, &p.undecodable);
  if (p.undecodable)
    return make_error("runtime.newproc1 did not decode cleanly (" + std::to_string(p.undecodable) +
                      " bytes skipped): RET offsets would not be instruction boundaries");
  if (p.create_rets.empty()) return make_error("runtime.newproc1 has no RET instruction");
  for (uint64_t a : p.create_rets) {
    auto off = vaddr_to_file_offset(f, a);
    if (!off) return make_error("runtime.newproc1 RET is not file-backed");
    p.create_offsets.push_back(*off);
  }
  auto eo = vaddr_to_file_offset(f, p.exit_entry);
  if (!eo) return make_error(p.exit_func + " is not file-backed");
  p.exit_offset = *eo;
  return p;
}

}  // namespace schedscope::go
