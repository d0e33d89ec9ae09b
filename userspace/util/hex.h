// "0x" and lowercase hex digits, no padding ("0x4a2f00"): how addresses, PCs and file
// offsets are shown in messages, JSON and symbol fallbacks.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace schedscope {

inline std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace schedscope
