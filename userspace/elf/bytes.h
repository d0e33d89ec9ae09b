// Bounds-checked little-endian reads from untrusted byte buffers. Every accessor returns
// nullopt (or an empty span) instead of reading past the end, and all offset arithmetic
// is overflow-checked, so parsers built on these cannot read out of bounds.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace schedscope::elf {

// True when [off, off+len) lies inside a buffer of `size` bytes (no overflow).
inline bool in_bounds(uint64_t size, uint64_t off, uint64_t len) {
  return off <= size && len <= size - off;
}

inline std::span<const uint8_t> subspan(std::span<const uint8_t> b, uint64_t off, uint64_t len) {
  if (!in_bounds(b.size(), off, len)) {
    return {};
  }
  return b.subspan(static_cast<size_t>(off), static_cast<size_t>(len));
}

// The tail of `b` from `off` (empty when off is past the end).
inline std::span<const uint8_t> tail(std::span<const uint8_t> b, uint64_t off) {
  if (off > b.size()) {
    return {};
  }
  return b.subspan(static_cast<size_t>(off));
}

inline std::optional<uint8_t> read_u8(std::span<const uint8_t> b, uint64_t off) {
  if (off >= b.size()) {
    return std::nullopt;
  }
  return b[static_cast<size_t>(off)];
}

inline std::optional<uint16_t> read_u16(std::span<const uint8_t> b, uint64_t off) {
  if (!in_bounds(b.size(), off, 2)) {
    return std::nullopt;
  }
  const uint8_t* p = b.data() + off;
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

inline std::optional<uint32_t> read_u32(std::span<const uint8_t> b, uint64_t off) {
  if (!in_bounds(b.size(), off, 4)) {
    return std::nullopt;
  }
  const uint8_t* p = b.data() + off;
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

inline std::optional<uint64_t> read_u64(std::span<const uint8_t> b, uint64_t off) {
  auto lo = read_u32(b, off);
  auto hi = read_u32(b, off + 4);
  if (!lo || !hi || off + 4 < off) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(*lo) | (static_cast<uint64_t>(*hi) << 32);
}

// 4- or 8-byte little-endian word.
inline std::optional<uint64_t> read_word(std::span<const uint8_t> b, uint64_t off, int size) {
  if (size == 4) {
    auto v = read_u32(b, off);
    return v ? std::optional<uint64_t>(*v) : std::nullopt;
  }
  if (size == 8) {
    return read_u64(b, off);
  }
  return std::nullopt;
}

// Unsigned LEB128 varint as used by Go (at most 10 bytes for 64 bits). Advances *off.
inline std::optional<uint64_t> read_uvarint(std::span<const uint8_t> b, uint64_t* off) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    auto byte = read_u8(b, *off);
    if (!byte) {
      return std::nullopt;
    }
    ++*off;
    if (shift == 63 && *byte > 1) {
      return std::nullopt;  // overflows 64 bits
    }
    v |= static_cast<uint64_t>(*byte & 0x7f) << shift;
    if ((*byte & 0x80) == 0) {
      return v;
    }
  }
  return std::nullopt;
}

// NUL-terminated string starting at `off`; nullopt when no NUL before the end.
inline std::optional<std::string_view> read_cstring(std::span<const uint8_t> b, uint64_t off) {
  if (off >= b.size()) {
    return std::nullopt;
  }
  const auto* start = b.data() + off;
  const void* nul = std::memchr(start, 0, b.size() - static_cast<size_t>(off));
  if (nul == nullptr) {
    return std::nullopt;
  }
  return std::string_view(reinterpret_cast<const char*>(start),
                          static_cast<size_t>(static_cast<const uint8_t*>(nul) - start));
}

}  // namespace schedscope::elf
