// Internal helpers shared by runtime_reader.cpp and calibrate.cpp (not a public API).
#pragma once
#include <dirent.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "go/runtime_reader.h"
#include "util/hex.h"

namespace schedscope::go::detail {

inline constexpr uint32_t kPidle = 0, kPrunning = 1, kPsyscall = 2;
inline constexpr uint32_t kGrunning = 2, kGsyscall = 3, kGscan = 0x1000;
inline constexpr size_t kMaxMs = 20000;     // allm walk cap (the runtime's default limit is 10000)
inline constexpr int64_t kMaxPs = 1 << 16;  // sanity bound on len(allp)
// Calibration snapshots copy kPBlock bytes of each P, 12 times a round: they read at most
// this many Ps (the first ones of allp), so that a huge GOMAXPROCS (or a hostile len(allp))
// costs at most 12 MiB.
inline constexpr size_t kMaxCalibratePs = 256;
inline constexpr size_t kMBlock = 1024;     // bytes of an m read at once
inline constexpr size_t kPBlock = 4096;     // bytes of a p read at once
inline constexpr size_t kGBlock = 512;      // bytes of a g read at once

inline uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// A user-space pointer that could point at a Go heap/bss object.
inline bool plausible_ptr(uint64_t v) { return v >= 0x1000 && v < (1ull << 47) && (v & 7) == 0; }

// A copy of the first bytes of a runtime struct; out-of-range fields read as 0.
struct Block {
  uint64_t addr = 0;
  std::vector<uint8_t> b;
  template <typename T>
  [[nodiscard]] T at(uint64_t off) const {
    T v{};
    if (off + sizeof(T) <= b.size()) std::memcpy(&v, b.data() + off, sizeof v);
    return v;
  }
  [[nodiscard]] uint64_t u64(uint64_t off) const { return at<uint64_t>(off); }
  [[nodiscard]] uint32_t u32(uint64_t off) const { return at<uint32_t>(off); }
};

// len is computed from offsets: more than a struct can be is refused (the offsets were
// checked by check_offset_bounds(); this keeps a bad one from allocating gigabytes).
inline bool read_block(MemReader& mem, uint64_t addr, size_t len, Block& out) {
  out.addr = addr;
  if (len > kMaxGoStructOffset + 64) {
    out.b.clear();
    return false;
  }
  out.b.assign(len, 0);
  if (!plausible_ptr(addr)) return false;
  if (mem.read(addr, out.b.data(), len)) return true;
  for (size_t l = len / 2; l >= 128; l /= 2) {  // the struct may end near a mapping's end
    if (mem.read(addr, out.b.data(), l)) {
      out.b.resize(l);
      return true;
    }
  }
  return false;
}

inline std::vector<int> read_tids(int pid) {
  std::vector<int> tids;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return tids;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') tids.push_back(std::atoi(e->d_name));
  }
  closedir(d);
  std::sort(tids.begin(), tids.end());
  return tids;
}

struct AllmWalk {
  std::vector<uint64_t> ms;
  bool complete = false;  // ended at nil (no cycle, under the cap, all readable)
};

inline AllmWalk walk_allm(MemReader& mem, uint64_t head, uint32_t alllink, size_t cap = kMaxMs) {
  AllmWalk w;
  std::unordered_set<uint64_t> seen;
  uint64_t m = head;
  while (m != 0) {
    if (!plausible_ptr(m) || !seen.insert(m).second || w.ms.size() >= cap) return w;
    w.ms.push_back(m);
    auto next = mem.get<uint64_t>(m + alllink);
    if (!next) return w;
    m = *next;
  }
  w.complete = true;
  return w;
}

}  // namespace schedscope::go::detail
