#include "annotations/probes.h"

#include <elf.h>

#include <algorithm>

#include "annotations.h"
#include "go/probes.h"
#include "go/x86.h"

namespace schedscope::annotations {

const char* kind_func(uint32_t kind) {
  switch (kind) {
    case SS_ANNOT_TASK_CREATE: return "runtime/trace.userTaskCreate";
    case SS_ANNOT_TASK_END: return "runtime/trace.userTaskEnd";
    case SS_ANNOT_REGION: return "runtime/trace.userRegion";
    case SS_ANNOT_LOG: return "runtime/trace.userLog";
    default: return "?";
  }
}

std::optional<uint64_t> past_stack_check(std::span<const uint8_t> code, uint64_t entry) {
  constexpr uint8_t kR14 = 14;
  bool cmp_seen = false;
  std::optional<uint64_t> after;
  size_t off = 0;
  for (int n = 0; n < 6 && off < code.size(); n++) {
    auto in = go::x86::decode(code.subspan(off), entry + off);
    if (!in) return std::nullopt;
    off += in->len;
    // cmp 0x10(%r14), reg: 3b /r with a [r14 + 0x10] memory operand (g.stackguard0).
    if (!in->vex && in->map == 0 && (in->opcode == 0x3b || in->opcode == 0x39) && in->mem_operand() &&
        in->base == kR14 && in->disp == 0x10) {
      cmp_seen = true;
      continue;
    }
    bool jcc = !in->vex && in->has_rel &&
               ((in->map == 0 && in->opcode >= 0x70 && in->opcode <= 0x7f) ||
                (in->map == 1 && in->opcode >= 0x80 && in->opcode <= 0x8f));
    if (jcc && in->target > in->addr) {
      after = entry + off;
      if (cmp_seen) return after;  // the jump to morestack
      continue;                   // the large-frame carry check comes before the cmp
    }
    if (cmp_seen) return std::nullopt;  // a cmp not followed by its jump
  }
  return std::nullopt;
}

Expected<std::vector<Probe>> annotation_probes(const elf::ElfFile& f, const go::BinaryInfo& bin) {
  if (f.machine() != EM_X86_64)
    return make_error("--annotations supports amd64 binaries only (registers and prologues are x86-64)");
  if (!bin.symbolizer) return make_error("no pclntab: not a Go program, or a damaged one");
  std::vector<Probe> out;
  for (uint32_t kind = SS_ANNOT_TASK_CREATE; kind <= SS_ANNOT_LOG; kind++) {
    auto fi = bin.symbolizer->find_function(kind_func(kind));
    if (!fi || fi->end <= fi->entry) continue;
    Probe p;
    p.func = kind_func(kind);
    p.kind = kind;
    p.entry = fi->entry;
    uint64_t len = std::min<uint64_t>(fi->end - fi->entry, 64);
    auto code = f.read_vaddr(fi->entry, len);
    if (code.size() != len) return make_error("cannot read the code of " + p.func);
    auto past = past_stack_check(code, p.entry);
    p.addr = past ? *past : p.entry;
    p.past_check = past.has_value();
    auto o = go::vaddr_to_file_offset(f, p.addr);
    if (!o) return make_error(p.func + " is not file-backed");
    p.offset = *o;
    out.push_back(std::move(p));
  }
  if (out.empty())
    return make_error(
        "the program does not link runtime/trace annotations (no runtime/trace.userTaskCreate, "
        "userTaskEnd, userRegion or userLog in its symbol table): it never calls trace.NewTask, "
        "WithRegion or Log");
  return out;
}

}  // namespace schedscope::annotations
