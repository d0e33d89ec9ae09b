// A minimal x86-64 instruction *length* decoder plus the few operand facts the Go
// introspection needs: RIP-relative memory operands, segment prefixes, immediates and
// the ModRM register fields. It covers the general-purpose one-byte and 0F opcode maps,
// 0F38/0F3A, VEX and EVEX encodings, which is everything the Go compiler emits; it does
// not name instructions. Never reads past the given span.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace schedscope::go::x86 {

struct Insn {
  uint64_t addr = 0;
  uint8_t len = 0;
  uint8_t rex = 0;      // REX byte (0x40..0x4f) or 0
  uint8_t seg = 0;      // segment override prefix (0x64 = %fs, 0x65 = %gs) or 0
  uint8_t rep = 0;      // 0xf2 / 0xf3 or 0
  bool lock = false;    // 0xf0
  bool opsize = false;  // 0x66
  bool vex = false;     // VEX or EVEX encoded
  uint8_t map = 0;      // 0: one-byte, 1: 0F, 2: 0F38, 3: 0F3A
  uint8_t opcode = 0;
  bool has_modrm = false;
  uint8_t mod = 0;
  uint8_t reg = 0;  // ModRM.reg extended by REX.R (0..15)
  uint8_t rm = 0;   // ModRM.rm extended by REX.B (0..15); for memory operands with a SIB
                    // byte this is 4 (see base)
  bool has_sib = false;
  uint8_t base = 0xff;   // memory base register (0..15), 0xff when none (RIP or disp32 only)
  uint8_t index = 0xff;  // SIB index register (0..15), 0xff when none
  bool rip_relative = false;
  int64_t disp = 0;
  bool has_imm = false;
  int64_t imm = 0;       // first immediate, sign-extended
  bool has_rel = false;  // relative branch (jcc/jmp/call)
  uint64_t target = 0;   // RIP-relative effective address, or branch target

  [[nodiscard]] bool rex_w() const { return (rex & 0x08) != 0; }
  [[nodiscard]] bool mem_operand() const { return has_modrm && mod != 3; }
};

// Decodes one instruction at the start of `code`, which sits at address `addr`.
// nullopt for invalid opcodes (in 64-bit mode) or when the span is too short.
std::optional<Insn> decode(std::span<const uint8_t> code, uint64_t addr);

// Linear sweep over a function body. Bytes that do not decode are skipped one at a time
// and counted in *undecodable (when given).
std::vector<Insn> sweep(std::span<const uint8_t> code, uint64_t addr,
                        size_t* undecodable = nullptr);

// A data reference found in code: either a RIP-relative operand, or a memory operand
// whose base register was loaded shortly before by `lea X(%rip),reg`.
struct MemRef {
  enum class Kind { kLea, kLoad, kStore, kXchg, kXadd, kCmpxchg, kCmp, kOther };
  uint64_t insn_addr = 0;
  uint64_t target = 0;
  Kind kind = Kind::kOther;
  uint8_t width = 0;  // operand size in bytes (1, 2, 4, 8), 0 when not known
  bool via_lea = false;
  bool sign_extend = false;  // movslq / movsx
  bool locked = false;
  std::optional<int64_t> imm;  // immediate operand (cmp/mov $imm)
};

// All data references of a function, in code order. When the sweep hits undecodable
// bytes, falls back to a byte-pattern scan for REX.W 8d/8b/87/63 with a RIP-relative ModRM.
std::vector<MemRef> memory_refs(std::span<const uint8_t> code, uint64_t addr);

// The %fs displacement of the TLS load of g in an ABI0->ABIInternal wrapper or similar
// runtime code: `mov %fs:disp32,%reg` (64 REX 8b /r, SIB with no base) or the PIE pair
// `mov $imm32,%reg; mov %fs:(%reg),%reg`. Stores (89) to %fs:disp are accepted when
// `allow_store`.
std::optional<int32_t> tls_g_offset(std::span<const uint8_t> code, uint64_t addr,
                                    bool allow_store = false);

}  // namespace schedscope::go::x86
