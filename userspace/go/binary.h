// Static introspection of a Go ELF binary: version, build info, pclntab symbolizer,
// TLS slot of g, runtime globals, probe-point functions. No process needed.
// Contract shared by userspace/go/*, the probe session and the CLI `inspect`.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/expected.h"

namespace schedscope::go {

struct FuncInfo {
  std::string name;
  uint64_t entry = 0;  // link-time address
  uint64_t end = 0;    // link-time address one past the last byte
};

struct SourceLoc {
  std::string func;
  std::string file;
  int line = 0;
  uint64_t func_entry = 0;
};

// PC -> function / file:line, and name -> function, from .gopclntab (1.16+; 1.2 layout best effort).
class Symbolizer {
 public:
  virtual ~Symbolizer() = default;
  // Link-time PC. nullopt when pc is not inside any function.
  [[nodiscard]] virtual std::optional<SourceLoc> lookup(uint64_t pc) const = 0;
  // The real function (funcID normal), never an ABI wrapper. nullopt when absent.
  [[nodiscard]] virtual std::optional<FuncInfo> find_function(const std::string& name) const = 0;
  [[nodiscard]] virtual size_t function_count() const = 0;
};

// Addresses (link-time) of runtime globals, 0 when not found, and how they were found.
struct Globals {
  uint64_t allp = 0;        // &runtime.allp ([]*p: ptr, len, cap)
  uint64_t allm = 0;        // &runtime.allm (*m)
  uint64_t sched = 0;       // &runtime.sched (schedt)
  uint64_t gomaxprocs = 0;  // &runtime.gomaxprocs (int32)
  uint64_t allgs = 0;       // &runtime.allgs ([]*g), optional
  uint64_t allglen = 0;     // &runtime.allglen (uintptr), optional
  uint64_t gcphase = 0;     // &runtime.gcphase (uint32), optional
  std::string source;       // "symtab" | "patterns" | "symtab+patterns" | "none"
};

// runtime.sched.timeToRun (go/timehist.h): where the runtime's goroutine scheduling
// latency histogram lives, found from casgstatus's code (the address it hands to
// timeHistogram.record, or the base and underflow slot of an inlined record), else from
// the per-release table, and which layout it has.
struct TimeToRun {
  uint64_t addr = 0;    // link-time address, 0 when not found
  uint32_t offset = 0;  // inside schedt
  int layout = 0;       // kTimeHistV1 | kTimeHistV2, 0 unknown
  std::string source;   // "code" | "table" | why it is not available
};

struct BinaryInfo {
  std::string path;
  bool is_go = false;
  std::string go_version;      // "go1.21.13" or "unknown"
  std::string version_source;  // "buildinfo" | "rodata" | "none"
  std::string module_path;     // main module path from modinfo ("" when absent)
  bool has_buildinfo = false;
  bool stripped = false;       // no .symtab
  bool has_dwarf = false;
  bool cgo = false;            // from build settings CGO_ENABLED=1, or runtime/cgo symbols/pclntab funcs
  std::string cgo_source;      // "pclntab" | "dynamic" | "buildinfo" | "none" (see binary.cpp)
  bool pie = false;            // ET_DYN
  int tls_g_offset = -8;       // g lives at fsbase + tls_g_offset
  std::string tls_source;      // "wrapper" | "code" (other runtime asm) | "pt_tls" | "default"
  uint64_t text_start = 0;     // runtime.text / moduledata.text (link-time)
  std::string pclntab_version; // "1.2" | "1.16" | "1.18" | "1.20"
  uint64_t pclntab_addr = 0;   // link-time address of the pclntab (0 when none)
  uint64_t moduledata = 0;     // &runtime.firstmoduledata (link-time), 0 when not found
  Globals globals;
  TimeToRun time_to_run;
  std::map<std::string, FuncInfo> functions;  // the probe points found (see kProbeFunctions)
  std::shared_ptr<const Symbolizer> symbolizer;  // null when no pclntab
  // runtime.waitReasonStrings (go/waitreasons.h): the name of each g.waitreason value,
  // index = value, [0] == "". Empty when not found (names fall back to gc::wait_reason_name).
  std::vector<std::string> wait_reasons;
  std::string wait_reasons_source;  // "data+code" | "data" | "none" (go/waitreasons.h)
  uint64_t wait_reasons_addr = 0;   // link-time address of the array, 0 when not found
  // runtime.stwReasonStrings (go/waitreasons.h, Go 1.21 on): the name of each stwReason
  // value, [0] "unknown", [1] "GC mark termination", [2] "GC sweep termination". Empty
  // when not found (before 1.21 there is none).
  std::vector<std::string> stw_reasons;
  std::string stw_reasons_source;  // "data" | "none"
  std::vector<std::string> warnings;  // recoverable problems (e.g. corrupt build info)
};

// The runtime functions `inspect` reports and uprobes may use.
extern const std::vector<std::string> kProbeFunctions;

// Parses the binary at `path`. Errors: unreadable, not ELF, corrupt. A non-Go ELF
// is not an error: is_go=false.
Expected<BinaryInfo> inspect_binary(const std::string& path);
// The same over an in-memory ELF image (tests, fuzzing); `path` is only reported.
Expected<BinaryInfo> inspect_binary_image(std::span<const uint8_t> image,
                                          const std::string& path = "");

// Minor version from "go1.21.13" -> 21; nullopt for "unknown"/garbage.
std::optional<int> go_minor(const std::string& version);

}  // namespace schedscope::go
