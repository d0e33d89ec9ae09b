#include "go/x86.h"

#include <array>

namespace schedscope::go::x86 {
namespace {

// Operand-shape flags of an opcode.
enum : uint8_t {
  kM = 1,         // has a ModRM byte
  kI8 = 2,        // imm8
  kIz = 4,        // imm16/32 (16 with 0x66)
  kI16 = 8,       // imm16
  kRel8 = 16,     // rel8 branch
  kRelZ = 32,     // rel32 branch
  kBad = 64,      // invalid in 64-bit mode
  kSpecial = 128  // handled in code (prefixes, escapes, moffs, mov r64 imm64, f6/f7, c8)
};

constexpr void fill(std::array<uint8_t, 256>& t, int lo, int hi, uint8_t v) {
  for (int i = lo; i < hi; ++i) {
    t[i] = v;
  }
}

constexpr std::array<uint8_t, 256> make_one_byte() {
  std::array<uint8_t, 256> t{};
  for (int base = 0; base < 0x40; base += 8) {  // ALU blocks 00..3f
    t[base + 0] = t[base + 1] = t[base + 2] = t[base + 3] = kM;
    t[base + 4] = kI8;
    t[base + 5] = kIz;
    t[base + 6] = kBad;
    t[base + 7] = kBad;
  }
  t[0x0f] = kSpecial;
  t[0x26] = t[0x2e] = t[0x36] = t[0x3e] = kSpecial;  // segment prefixes
  fill(t, 0x40, 0x50, kSpecial);                     // REX
  // 50..5f push/pop: no operands beyond the opcode.
  t[0x60] = t[0x61] = kBad;
  t[0x62] = kSpecial;  // EVEX
  t[0x63] = kM;
  t[0x64] = t[0x65] = t[0x66] = t[0x67] = kSpecial;
  t[0x68] = kIz;
  t[0x69] = kM | kIz;
  t[0x6a] = kI8;
  t[0x6b] = kM | kI8;
  fill(t, 0x70, 0x80, kRel8);
  t[0x80] = kM | kI8;
  t[0x81] = kM | kIz;
  t[0x82] = kBad;
  t[0x83] = kM | kI8;
  fill(t, 0x84, 0x90, kM);
  t[0x9a] = kBad;
  t[0xa0] = t[0xa1] = t[0xa2] = t[0xa3] = kSpecial;  // mov moffs
  t[0xa8] = kI8;
  t[0xa9] = kIz;
  fill(t, 0xb0, 0xb8, kI8);
  fill(t, 0xb8, 0xc0, kSpecial);  // mov r, imm32/imm64
  t[0xc0] = t[0xc1] = kM | kI8;
  t[0xc2] = kI16;
  t[0xc4] = t[0xc5] = kSpecial;  // VEX
  t[0xc6] = kM | kI8;
  t[0xc7] = kM | kIz;
  t[0xc8] = kSpecial;  // enter imm16, imm8
  t[0xca] = kI16;
  t[0xcd] = kI8;
  t[0xce] = kBad;
  t[0xd0] = t[0xd1] = t[0xd2] = t[0xd3] = kM;
  t[0xd4] = t[0xd5] = t[0xd6] = kBad;
  fill(t, 0xd8, 0xe0, kM);  // x87
  fill(t, 0xe0, 0xe4, kRel8);
  fill(t, 0xe4, 0xe8, kI8);
  t[0xe8] = t[0xe9] = kRelZ;
  t[0xea] = kBad;
  t[0xeb] = kRel8;
  t[0xf0] = t[0xf2] = t[0xf3] = kSpecial;
  t[0xf6] = t[0xf7] = kSpecial;
  t[0xfe] = t[0xff] = kM;
  return t;
}

constexpr std::array<uint8_t, 256> make_two_byte() {
  std::array<uint8_t, 256> t{};
  fill(t, 0x00, 0x100, kM);  // the common case
  t[0x04] = t[0x0a] = t[0x0c] = kBad;
  t[0x05] = t[0x06] = t[0x07] = t[0x08] = t[0x09] = t[0x0b] = t[0x0e] = 0;
  t[0x0f] = kM | kI8;  // 3DNow! suffix byte
  fill(t, 0x24, 0x28, kBad);
  fill(t, 0x30, 0x38, 0);  // wrmsr, rdtsc, rdmsr, rdpmc, sysenter...
  t[0x36] = kBad;
  t[0x38] = t[0x3a] = kSpecial;  // three-byte maps
  fill(t, 0x39, 0x3a, kBad);
  fill(t, 0x3b, 0x40, kBad);
  fill(t, 0x70, 0x74, kM | kI8);
  t[0x77] = 0;  // emms
  fill(t, 0x80, 0x90, kRelZ);
  t[0xa0] = t[0xa1] = t[0xa2] = t[0xa8] = t[0xa9] = t[0xaa] = 0;
  t[0xa4] = t[0xac] = kM | kI8;
  t[0xa6] = t[0xa7] = kBad;
  t[0xba] = kM | kI8;
  t[0xc2] = t[0xc4] = t[0xc5] = t[0xc6] = kM | kI8;
  fill(t, 0xc8, 0xd0, 0);  // bswap
  return t;
}

constexpr auto kOneByte = make_one_byte();
constexpr auto kTwoByte = make_two_byte();

// Opcodes of map 0F that carry an imm8 also under VEX/EVEX.
bool vex_map1_has_imm8(uint8_t op) {
  return (op >= 0x70 && op <= 0x73) || op == 0xc2 || op == 0xc4 || op == 0xc5 || op == 0xc6;
}

class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> c) : code_(c) {}
  bool get(uint8_t* b) {
    if (pos_ >= code_.size() || pos_ >= 15) {
      return false;
    }
    *b = code_[pos_++];
    return true;
  }
  bool peek(uint8_t* b) const {
    if (pos_ >= code_.size()) {
      return false;
    }
    *b = code_[pos_];
    return true;
  }
  // Little-endian signed immediate of n bytes.
  bool imm(int n, int64_t* out) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
      uint8_t b = 0;
      if (!get(&b)) {
        return false;
      }
      v |= static_cast<uint64_t>(b) << (8 * i);
    }
    if (n < 8) {
      const uint64_t sign = uint64_t{1} << (8 * n - 1);
      v = (v ^ sign) - sign;  // sign-extend
    }
    *out = static_cast<int64_t>(v);
    return true;
  }
  [[nodiscard]] size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> code_;
  size_t pos_ = 0;
};

// Reads ModRM (+SIB, +displacement) into `in`.
bool decode_modrm(Cursor& c, Insn& in, bool addr32) {
  (void)addr32;  // 32-bit addressing in 64-bit mode has the same ModRM/SIB shape
  uint8_t modrm = 0;
  if (!c.get(&modrm)) {
    return false;
  }
  in.has_modrm = true;
  in.mod = modrm >> 6;
  const uint8_t rex_r = (in.rex & 4) ? 8 : 0;
  const uint8_t rex_x = (in.rex & 2) ? 8 : 0;
  const uint8_t rex_b = (in.rex & 1) ? 8 : 0;
  in.reg = static_cast<uint8_t>(((modrm >> 3) & 7) | rex_r);
  const uint8_t rm = modrm & 7;
  in.rm = static_cast<uint8_t>(rm | rex_b);
  if (in.mod == 3) {
    return true;
  }
  int disp_size = in.mod == 1 ? 1 : (in.mod == 2 ? 4 : 0);
  if (rm == 4) {
    uint8_t sib = 0;
    if (!c.get(&sib)) {
      return false;
    }
    in.has_sib = true;
    const uint8_t idx = static_cast<uint8_t>(((sib >> 3) & 7) | rex_x);
    in.index = idx == 4 ? 0xff : idx;
    if ((sib & 7) == 5 && in.mod == 0) {
      in.base = 0xff;
      disp_size = 4;
    } else {
      in.base = static_cast<uint8_t>((sib & 7) | rex_b);
    }
  } else if (rm == 5 && in.mod == 0) {
    in.rip_relative = true;
    in.base = 0xff;
    disp_size = 4;
  } else {
    in.base = in.rm;
  }
  if (disp_size != 0 && !c.imm(disp_size, &in.disp)) {
    return false;
  }
  return true;
}

bool read_imm(Cursor& c, Insn& in, int n) {
  int64_t v = 0;
  if (!c.imm(n, &v)) {
    return false;
  }
  if (!in.has_imm) {
    in.has_imm = true;
    in.imm = v;
  }
  return true;
}

}  // namespace

std::optional<Insn> decode(std::span<const uint8_t> code, uint64_t addr) {
  Insn in;
  in.addr = addr;
  Cursor c(code);
  bool addr32 = false;
  uint8_t b = 0;
  // Legacy prefixes and REX. A REX prefix counts only when it immediately precedes the
  // opcode: a legacy prefix after it cancels it.
  for (;;) {
    if (!c.get(&b)) {
      return std::nullopt;
    }
    if (b >= 0x40 && b <= 0x4f) {
      in.rex = b;
      continue;
    }
    if (b == 0x66) {
      in.opsize = true;
    } else if (b == 0x67) {
      addr32 = true;
    } else if (b == 0xf0) {
      in.lock = true;
    } else if (b == 0xf2 || b == 0xf3) {
      in.rep = b;
    } else if (b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x64 || b == 0x65) {
      in.seg = b;
    } else {
      break;
    }
    in.rex = 0;
  }
  // `b` is now the first opcode byte.
  const int full = in.rex_w() ? 8 : (in.opsize ? 2 : 4);
  const int z = in.opsize ? 2 : 4;
  uint8_t flags = 0;

  if (b == 0xc4 || b == 0xc5 || b == 0x62) {
    // VEX (c4: 3-byte, c5: 2-byte) and EVEX (62: 4-byte prefix).
    in.vex = true;
    uint8_t p0 = 0;
    if (!c.get(&p0)) {
      return std::nullopt;
    }
    if (b == 0xc5) {
      in.map = 1;
      in.rex = static_cast<uint8_t>(0x40 | ((p0 & 0x80) ? 0 : 4));
    } else {
      uint8_t p1 = 0;
      if (!c.get(&p1)) {
        return std::nullopt;
      }
      in.map = p0 & (b == 0x62 ? 0x07 : 0x1f);
      in.rex = static_cast<uint8_t>(0x40 | ((p0 & 0x80) ? 0 : 4) | ((p0 & 0x40) ? 0 : 2) |
                                    ((p0 & 0x20) ? 0 : 1) | ((p1 & 0x80) ? 8 : 0));
      if (b == 0x62) {
        uint8_t p2 = 0;
        if (!c.get(&p2)) {
          return std::nullopt;
        }
      }
    }
    if (in.map < 1 || in.map > 3) {
      return std::nullopt;
    }
    if (!c.get(&in.opcode)) {
      return std::nullopt;
    }
    if (!(in.map == 1 && in.opcode == 0x77)) {  // vzeroupper/vzeroall have no ModRM
      if (!decode_modrm(c, in, addr32)) {
        return std::nullopt;
      }
    }
    if (in.map == 3 || (in.map == 1 && vex_map1_has_imm8(in.opcode))) {
      if (!read_imm(c, in, 1)) {
        return std::nullopt;
      }
    }
  } else if (b == 0x0f) {
    uint8_t op2 = 0;
    if (!c.get(&op2)) {
      return std::nullopt;
    }
    if (op2 == 0x38 || op2 == 0x3a) {
      in.map = op2 == 0x38 ? 2 : 3;
      if (!c.get(&in.opcode) || !decode_modrm(c, in, addr32)) {
        return std::nullopt;
      }
      if (in.map == 3 && !read_imm(c, in, 1)) {
        return std::nullopt;
      }
    } else {
      in.map = 1;
      in.opcode = op2;
      flags = kTwoByte[op2];
    }
  } else {
    in.map = 0;
    in.opcode = b;
    flags = kOneByte[b];
    if (flags & kSpecial) {
      flags = 0;
      if (b >= 0xa0 && b <= 0xa3) {
        if (!read_imm(c, in, addr32 ? 4 : 8)) {  // moffs
          return std::nullopt;
        }
      } else if (b >= 0xb8 && b <= 0xbf) {
        if (!read_imm(c, in, full)) {
          return std::nullopt;
        }
      } else if (b == 0xc8) {
        if (!read_imm(c, in, 2) || !read_imm(c, in, 1)) {
          return std::nullopt;
        }
      } else if (b == 0xf6 || b == 0xf7) {
        if (!decode_modrm(c, in, addr32)) {
          return std::nullopt;
        }
        if ((in.reg & 7) <= 1 && !read_imm(c, in, b == 0xf6 ? 1 : z)) {  // test r/m, imm
          return std::nullopt;
        }
      } else {
        return std::nullopt;  // a stray prefix/escape in opcode position
      }
    }
  }

  if (flags & kBad) {
    return std::nullopt;
  }
  if ((flags & kM) && !decode_modrm(c, in, addr32)) {
    return std::nullopt;
  }
  if ((flags & kI8) && !read_imm(c, in, 1)) {
    return std::nullopt;
  }
  if ((flags & kIz) && !read_imm(c, in, z)) {
    return std::nullopt;
  }
  if ((flags & kI16) && !read_imm(c, in, 2)) {
    return std::nullopt;
  }
  int64_t rel = 0;
  if (flags & kRel8) {
    if (!c.imm(1, &rel)) {
      return std::nullopt;
    }
    in.has_rel = true;
  } else if (flags & kRelZ) {
    if (!c.imm(4, &rel)) {
      return std::nullopt;
    }
    in.has_rel = true;
  }
  in.len = static_cast<uint8_t>(c.pos());
  const uint64_t next = addr + in.len;
  if (in.has_rel) {
    in.target = next + static_cast<uint64_t>(rel);
  } else if (in.rip_relative) {
    in.target = next + static_cast<uint64_t>(in.disp);
  }
  return in;
}

std::vector<Insn> sweep(std::span<const uint8_t> code, uint64_t addr, size_t* undecodable) {
  std::vector<Insn> out;
  out.reserve(code.size() / 4);
  size_t off = 0;
  size_t bad = 0;
  while (off < code.size()) {
    auto in = decode(code.subspan(off), addr + off);
    if (!in) {
      ++bad;
      ++off;
      continue;
    }
    off += in->len;
    out.push_back(*in);
  }
  if (undecodable != nullptr) {
    *undecodable = bad;
  }
  return out;
}

namespace {

// Classifies a memory-operand instruction: what it does with the memory and how wide.
void classify(const Insn& in, MemRef* r) {
  const int full = in.rex_w() ? 8 : (in.opsize ? 2 : 4);
  using K = MemRef::Kind;
  r->locked = in.lock;
  if (in.vex) {
    r->kind = K::kOther;
    return;
  }
  if (in.map == 0) {
    const uint8_t op = in.opcode;
    if (op < 0x40 && (op & 7) < 4) {  // ALU r/m forms
      r->width = (op & 1) ? full : 1;
      r->kind = (op >= 0x38) ? K::kCmp : K::kOther;
      return;
    }
    switch (op) {
      case 0x63:
        r->kind = K::kLoad;
        r->width = 4;
        r->sign_extend = true;
        return;
      case 0x80:
      case 0x81:
      case 0x83:
        r->width = op == 0x80 ? 1 : full;
        r->kind = (in.reg & 7) == 7 ? K::kCmp : K::kOther;
        r->imm = in.imm;
        return;
      case 0x84:
      case 0x85:
        r->kind = K::kCmp;
        r->width = op == 0x84 ? 1 : full;
        return;
      case 0x86:
      case 0x87:
        r->kind = K::kXchg;
        r->width = op == 0x86 ? 1 : full;
        return;
      case 0x88:
      case 0x89:
        r->kind = K::kStore;
        r->width = op == 0x88 ? 1 : full;
        return;
      case 0x8a:
      case 0x8b:
        r->kind = K::kLoad;
        r->width = op == 0x8a ? 1 : full;
        return;
      case 0x8d:
        r->kind = K::kLea;
        r->width = 0;
        return;
      case 0xc6:
      case 0xc7:
        r->kind = K::kStore;
        r->width = op == 0xc6 ? 1 : full;
        r->imm = in.imm;
        return;
      case 0xf6:
      case 0xf7:
        r->width = op == 0xf6 ? 1 : full;
        r->kind = (in.reg & 7) <= 1 ? K::kCmp : K::kOther;
        if (in.has_imm) {
          r->imm = in.imm;
        }
        return;
      case 0xfe:
      case 0xff:
        r->width = op == 0xfe ? 1 : full;
        r->kind = K::kOther;
        return;
      default:
        r->kind = K::kOther;
        return;
    }
  }
  if (in.map == 1) {
    switch (in.opcode) {
      case 0xb6:
      case 0xbe:
        r->kind = K::kLoad;
        r->width = 1;
        r->sign_extend = in.opcode == 0xbe;
        return;
      case 0xb7:
      case 0xbf:
        r->kind = K::kLoad;
        r->width = 2;
        r->sign_extend = in.opcode == 0xbf;
        return;
      case 0xb0:
      case 0xb1:
        r->kind = K::kCmpxchg;
        r->width = in.opcode == 0xb0 ? 1 : full;
        return;
      case 0xc0:
      case 0xc1:
        r->kind = K::kXadd;
        r->width = in.opcode == 0xc0 ? 1 : full;
        return;
      default:
        break;
    }
  }
  r->kind = K::kOther;
}

// Registers whose value an instruction overwrites (approximation good enough to expire
// lea-tracked registers): ModRM.reg for loads/lea/ALU-to-reg, ModRM.rm for register forms.
void clobbered(const Insn& in, uint8_t out[2], int* n) {
  *n = 0;
  if (in.map == 0) {
    const uint8_t op = in.opcode;
    if (op >= 0xb8 && op <= 0xbf) {
      out[(*n)++] = static_cast<uint8_t>((op & 7) | ((in.rex & 1) ? 8 : 0));
      return;
    }
    if (!in.has_modrm) {
      return;
    }
    const bool to_reg = op == 0x8b || op == 0x8a || op == 0x8d || op == 0x63 ||
                        (op < 0x40 && (op & 7) >= 2 && (op & 7) <= 3 && op < 0x38) || op == 0x69 ||
                        op == 0x6b || op == 0x86 || op == 0x87;
    if (to_reg) {
      out[(*n)++] = in.reg;
    }
    if (in.mod == 3) {
      out[(*n)++] = in.rm;
    }
    return;
  }
  if (in.has_modrm) {
    out[(*n)++] = in.reg;  // most 0F forms with a GPR destination write ModRM.reg
    if (in.mod == 3 && *n < 2) {
      out[(*n)++] = in.rm;
    }
  }
}

bool is_control_flow(const Insn& in) {
  if (in.has_rel) {
    return true;
  }
  if (in.map == 0) {
    const uint8_t op = in.opcode;
    if (op == 0xc3 || op == 0xc2 || op == 0xcc) {
      return true;
    }
    if (op == 0xff && ((in.reg & 7) == 2 || (in.reg & 7) == 4)) {  // indirect call/jmp
      return true;
    }
  }
  return false;
}

// Fallback when the linear sweep desynchronises: scan every byte for REX.W + 8d/8b/87/63
// with a RIP-relative ModRM.
std::vector<MemRef> pattern_scan(std::span<const uint8_t> code, uint64_t addr) {
  std::vector<MemRef> out;
  for (size_t i = 0; i + 7 <= code.size(); ++i) {
    const uint8_t rex = code[i];
    if ((rex & 0xf8) != 0x48) {
      continue;
    }
    const uint8_t op = code[i + 1];
    const uint8_t modrm = code[i + 2];
    if ((modrm & 0xc7) != 0x05) {
      continue;
    }
    MemRef r;
    if (op == 0x8d) {
      r.kind = MemRef::Kind::kLea;
    } else if (op == 0x8b) {
      r.kind = MemRef::Kind::kLoad;
      r.width = 8;
    } else if (op == 0x87) {
      r.kind = MemRef::Kind::kXchg;
      r.width = 8;
    } else if (op == 0x63) {
      r.kind = MemRef::Kind::kLoad;
      r.width = 4;
      r.sign_extend = true;
    } else {
      continue;
    }
    const int32_t disp = static_cast<int32_t>(
        static_cast<uint32_t>(code[i + 3]) | (static_cast<uint32_t>(code[i + 4]) << 8) |
        (static_cast<uint32_t>(code[i + 5]) << 16) | (static_cast<uint32_t>(code[i + 6]) << 24));
    r.insn_addr = addr + i;
    r.target = addr + i + 7 + static_cast<uint64_t>(static_cast<int64_t>(disp));
    out.push_back(r);
  }
  return out;
}

}  // namespace

std::vector<MemRef> memory_refs(std::span<const uint8_t> code, uint64_t addr) {
  size_t bad = 0;
  const auto insns = sweep(code, addr, &bad);
  if (bad > 0) {
    return pattern_scan(code, addr);
  }
  constexpr int kLeaWindow = 4;  // instructions a lea-loaded register is trusted for
  struct Tracked {
    uint64_t value = 0;
    int ttl = 0;
  };
  std::array<Tracked, 16> regs{};
  std::vector<MemRef> out;
  for (const auto& in : insns) {
    if (in.mem_operand()) {
      MemRef r;
      r.insn_addr = in.addr;
      bool have = false;
      if (in.rip_relative) {
        r.target = in.target;
        have = true;
      } else if (in.base < 16 && in.index == 0xff && regs[in.base].ttl > 0) {
        r.target = regs[in.base].value + static_cast<uint64_t>(in.disp);
        r.via_lea = true;
        have = true;
      }
      if (have) {
        classify(in, &r);
        out.push_back(r);
      }
    }
    for (auto& t : regs) {
      if (t.ttl > 0) {
        --t.ttl;
      }
    }
    if (is_control_flow(in)) {
      regs.fill({});
      continue;
    }
    uint8_t clob[2];
    int n = 0;
    clobbered(in, clob, &n);
    for (int i = 0; i < n; ++i) {
      regs[clob[i] & 15] = {};
    }
    if (!in.vex && in.map == 0 && in.opcode == 0x8d && in.rip_relative && in.rex_w()) {
      regs[in.reg & 15] = {in.target, kLeaWindow};
    }
  }
  return out;
}

std::optional<int32_t> tls_g_offset(std::span<const uint8_t> code, uint64_t addr,
                                    bool allow_store) {
  size_t bad = 0;
  const auto insns = sweep(code, addr, &bad);
  for (size_t i = 0; i < insns.size(); ++i) {
    const Insn& in = insns[i];
    if (in.vex || in.map != 0 || !in.rex_w()) {
      continue;
    }
    const bool load = in.opcode == 0x8b;
    const bool store = allow_store && in.opcode == 0x89;
    // mov %fs:disp32,%reg : 64 REX.W 8b /r with SIB "no base, no index".
    if (in.seg == 0x64 && (load || store) && in.mod == 0 && in.has_sib && in.base == 0xff &&
        in.index == 0xff) {
      return static_cast<int32_t>(in.disp);
    }
    // PIE: mov $imm32,%reg ; mov %fs:(%reg),%reg2
    if (in.opcode == 0xc7 && in.mod == 3 && (in.reg & 7) == 0 && in.has_imm &&
        i + 1 < insns.size()) {
      const Insn& nx = insns[i + 1];
      if (nx.seg == 0x64 && !nx.vex && nx.map == 0 && nx.rex_w() &&
          (nx.opcode == 0x8b || (allow_store && nx.opcode == 0x89)) && nx.mem_operand() &&
          nx.base == in.rm && nx.index == 0xff && nx.disp == 0) {
        return static_cast<int32_t>(in.imm);
      }
    }
  }
  return std::nullopt;
}

}  // namespace schedscope::go::x86
