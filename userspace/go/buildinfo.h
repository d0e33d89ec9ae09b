// Go build information (.go.buildinfo, `go version -m`): toolchain version, main module
// path and build settings, in both layouts (see docs/go-runtime.md, "Parsing stripped binaries"):
//   <= 1.17: header + two pointers to Go string headers (version, modinfo);
//   1.18+ : header + two uvarint-length-prefixed strings inline (flags & 2).
// Plus the fallback used when a binary carries no build info: the runtime's version
// string in read-only data.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.h"

namespace schedscope::go {

inline constexpr std::string_view kBuildInfoMagic = "\xff Go buildinf:";

struct BuildInfo {
  std::string go_version;   // "go1.21.13"
  std::string modinfo;      // raw module info, sentinels removed ("" when absent)
  std::string main_path;    // "path\t..." line (the main package path)
  std::string module_path;  // "mod\t<path>\t..." line, else main_path
  std::map<std::string, std::string> settings;  // "build\tKEY=VALUE" lines
  std::optional<bool> cgo_enabled;              // settings["CGO_ENABLED"], when present
  bool inline_strings = false;                  // 1.18+ layout
  int ptr_size = 0;
};

// Reads `len` bytes at a link-time address (for the <= 1.17 pointer layout); returns an
// empty span when the range is not readable.
using AddrReader = std::function<std::span<const uint8_t>(uint64_t addr, uint64_t len)>;

// Offset of the build info magic in `data`, searched on 16-byte boundaries of the
// address `base_addr` + offset (the section/segment is mapped there).
std::optional<size_t> find_buildinfo_magic(std::span<const uint8_t> data, uint64_t base_addr = 0);

// Parses build info starting at `data[0]` (the magic). `read` is needed only for the
// pointer layout; without it that layout is an Error.
Expected<BuildInfo> parse_buildinfo(std::span<const uint8_t> data, const AddrReader& read = {});

// Fills main_path, module_path, settings and cgo_enabled from modinfo text.
void parse_modinfo(std::string_view modinfo, BuildInfo* out);

// One occurrence of go1.N[.M][rcK|betaK] in a byte range.
struct VersionMatch {
  std::string version;
  uint64_t offset = 0;  // within the scanned range
};

// All plausible Go version strings in `data` (regex go1\.\d+(\.\d+)?, plus rc/beta
// suffixes), in order.
std::vector<VersionMatch> scan_go_versions(std::span<const uint8_t> data);

// Picks the most plausible toolchain version among matches: the most frequent full
// "go1.N.M", else the most frequent one; ties broken by the highest version.
std::optional<std::string> pick_go_version(const std::vector<VersionMatch>& matches);

}  // namespace schedscope::go
