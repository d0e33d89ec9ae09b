#include "go/buildinfo.h"

#include <algorithm>
#include <cstring>

#include "elf/bytes.h"

namespace schedscope::go {

using elf::read_uvarint;
using elf::read_word;

namespace {

constexpr size_t kHeaderSize = 32;
constexpr uint64_t kMaxString = 1 << 20;  // as debug/buildinfo: refuse absurd lengths
constexpr uint8_t kFlagBigEndian = 1;
constexpr uint8_t kFlagInline = 2;

bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

// Strips the 16-byte sentinels that frame modinfo (debug/buildinfo does the same).
std::string strip_sentinels(std::string mod) {
  if (mod.size() >= 33 && mod[mod.size() - 17] == '\n') {
    return mod.substr(16, mod.size() - 32);
  }
  return "";
}

// Reads a Go string header {ptr, len} at `addr`, then the bytes it points to.
std::optional<std::string> read_go_string(const AddrReader& read, uint64_t addr, int ps) {
  auto hdr = read(addr, 2 * static_cast<uint64_t>(ps));
  if (hdr.size() != 2 * static_cast<size_t>(ps)) {
    return std::nullopt;
  }
  const uint64_t ptr = *read_word(hdr, 0, ps);
  const uint64_t len = *read_word(hdr, ps, ps);
  if (len > kMaxString) {
    return std::nullopt;
  }
  if (len == 0) {
    return std::string();
  }
  auto bytes = read(ptr, len);
  if (bytes.size() != len) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::optional<std::string> read_inline_string(std::span<const uint8_t> d, uint64_t* off) {
  auto len = read_uvarint(d, off);
  if (!len || *len > kMaxString || !elf::in_bounds(d.size(), *off, *len)) {
    return std::nullopt;
  }
  std::string s(reinterpret_cast<const char*>(d.data() + *off), static_cast<size_t>(*len));
  *off += *len;
  return s;
}

}  // namespace

std::optional<size_t> find_buildinfo_magic(std::span<const uint8_t> data, uint64_t base_addr) {
  const size_t n = kBuildInfoMagic.size();
  // First offset whose address is 16-byte aligned.
  size_t off = static_cast<size_t>((16 - (base_addr % 16)) % 16);
  for (; off + n <= data.size(); off += 16) {
    if (std::memcmp(data.data() + off, kBuildInfoMagic.data(), n) == 0) {
      return off;
    }
  }
  return std::nullopt;
}

void parse_modinfo(std::string_view modinfo, BuildInfo* out) {
  size_t pos = 0;
  while (pos < modinfo.size()) {
    size_t nl = modinfo.find('\n', pos);
    if (nl == std::string_view::npos) {
      nl = modinfo.size();
    }
    const std::string_view line = modinfo.substr(pos, nl - pos);
    pos = nl + 1;
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos) {
      continue;
    }
    const std::string_view key = line.substr(0, tab);
    std::string_view rest = line.substr(tab + 1);
    if (key == "path") {
      out->main_path = std::string(rest);
    } else if (key == "mod") {
      out->module_path = std::string(rest.substr(0, rest.find('\t')));
    } else if (key == "build") {
      const size_t eq = rest.find('=');
      if (eq != std::string_view::npos) {
        out->settings[std::string(rest.substr(0, eq))] = std::string(rest.substr(eq + 1));
      } else {
        out->settings[std::string(rest)] = "";
      }
    }
  }
  if (out->module_path.empty()) {
    out->module_path = out->main_path;
  }
  if (auto it = out->settings.find("CGO_ENABLED"); it != out->settings.end()) {
    out->cgo_enabled = it->second == "1";
  }
}

Expected<BuildInfo> parse_buildinfo(std::span<const uint8_t> data, const AddrReader& read) {
  if (data.size() < kHeaderSize) {
    return make_error("build info: truncated header");
  }
  if (std::memcmp(data.data(), kBuildInfoMagic.data(), kBuildInfoMagic.size()) != 0) {
    return make_error("build info: bad magic");
  }
  BuildInfo bi;
  bi.ptr_size = data[14];
  const uint8_t flags = data[15];
  bi.inline_strings = (flags & kFlagInline) != 0;
  std::string mod;
  if (bi.inline_strings) {
    uint64_t off = kHeaderSize;
    auto vers = read_inline_string(data, &off);
    if (!vers) {
      return make_error("build info: truncated version string");
    }
    auto m = read_inline_string(data, &off);
    if (!m) {
      return make_error("build info: truncated module info");
    }
    bi.go_version = std::move(*vers);
    mod = std::move(*m);
  } else {
    if (bi.ptr_size != 4 && bi.ptr_size != 8) {
      return make_error("build info: bad pointer size " + std::to_string(bi.ptr_size));
    }
    if ((flags & kFlagBigEndian) != 0) {
      return make_error("build info: big-endian binaries are not supported");
    }
    if (!read) {
      return make_error("build info: pointer layout needs the binary's memory");
    }
    const int ps = bi.ptr_size;
    const uint64_t vaddr = *read_word(data, 16, ps);
    const uint64_t maddr = *read_word(data, 16 + ps, ps);
    auto vers = read_go_string(read, vaddr, ps);
    if (!vers) {
      return make_error("build info: unreadable version string");
    }
    bi.go_version = std::move(*vers);
    mod = read_go_string(read, maddr, ps).value_or("");
  }
  if (bi.go_version.empty()) {
    return make_error("build info: empty Go version");
  }
  bi.modinfo = strip_sentinels(std::move(mod));
  parse_modinfo(bi.modinfo, &bi);
  return bi;
}

std::vector<VersionMatch> scan_go_versions(std::span<const uint8_t> data) {
  std::vector<VersionMatch> out;
  static constexpr std::string_view kPrefix = "go1.";
  const uint8_t* begin = data.data();
  const size_t size = data.size();
  size_t pos = 0;
  while (pos + kPrefix.size() < size) {
    const void* hit = memmem(begin + pos, size - pos, kPrefix.data(), kPrefix.size());
    if (hit == nullptr) {
      break;
    }
    const size_t start = static_cast<size_t>(static_cast<const uint8_t*>(hit) - begin);
    pos = start + 1;
    size_t i = start + kPrefix.size();
    auto digits = [&](size_t max) {
      size_t n = 0;
      while (i < size && is_digit(begin[i]) && n <= max) {
        ++i;
        ++n;
      }
      return n;
    };
    const size_t minor = digits(3);
    if (minor == 0 || minor > 3) {
      continue;
    }
    size_t end = i;
    if (i + 1 < size && begin[i] == '.' && is_digit(begin[i + 1])) {
      ++i;
      const size_t patch = digits(3);
      if (patch > 3) {
        continue;
      }
      end = i;
    } else {
      for (std::string_view pre : {"rc", "beta"}) {
        if (i + pre.size() < size && std::memcmp(begin + i, pre.data(), pre.size()) == 0 &&
            is_digit(begin[i + pre.size()])) {
          i += pre.size();
          digits(2);
          end = i;
          break;
        }
      }
    }
    out.push_back({std::string(reinterpret_cast<const char*>(begin + start), end - start), start});
  }
  return out;
}

std::optional<std::string> pick_go_version(const std::vector<VersionMatch>& matches) {
  if (matches.empty()) {
    return std::nullopt;
  }
  std::map<std::string, size_t> counts;
  for (const auto& m : matches) {
    ++counts[m.version];
  }
  // Numeric key for tie-breaking: (minor, patch).
  auto key = [](const std::string& v) {
    int minor = 0;
    int patch = 0;
    std::sscanf(v.c_str(), "go1.%d.%d", &minor, &patch);  // NOLINT(cert-err34-c)
    return std::make_pair(minor, patch);
  };
  auto full = [](const std::string& v) { return std::count(v.begin(), v.end(), '.') == 2; };
  const std::string* best = nullptr;
  size_t best_n = 0;
  for (const auto& [v, n] : counts) {
    if (best == nullptr) {
      best = &v;
      best_n = n;
      continue;
    }
    const bool fv = full(v);
    const bool fb = full(*best);
    if (fv != fb) {
      if (fv) {
        best = &v;
        best_n = n;
      }
      continue;
    }
    if (n > best_n || (n == best_n && key(v) > key(*best))) {
      best = &v;
      best_n = n;
    }
  }
  return *best;
}

}  // namespace schedscope::go
