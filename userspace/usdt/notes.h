// USDT probes (SystemTap SDT notes, .note.stapsdt) of an ELF file: parsing the notes and
// their argument specs, and discovering the probes of a running process (its executable
// and every file-backed ELF it has mapped).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "elf/elf_file.h"
#include "util/expected.h"

namespace schedscope::usdt {

// One argument spec of a probe, e.g. "-4@-60(%rbp)": size 4, signed, memory at rbp-60.
struct Arg {
  enum Kind { kConst, kReg, kMem, kUnknown };
  Kind kind = kUnknown;
  int size = 0;          // bytes (1, 2, 4, 8); 0 when the spec has no size
  bool is_signed = false;
  std::string reg;       // "rax" (without %) for kReg / kMem
  int64_t value = 0;     // the constant (kConst) or the displacement (kMem)
  std::string spec;      // the spec text as written
  [[nodiscard]] std::string describe() const;  // "s32 mem -60(%rbp)"
};

struct Probe {
  std::string provider, name;
  uint64_t pc = 0;          // link-time address of the probe (corrected for prelink)
  uint64_t file_offset = 0; // of pc in the file (0: not in a loadable segment)
  uint64_t semaphore = 0;   // link-time address of the semaphore, 0 if none
  uint64_t semaphore_offset = 0;  // its file offset (what libbpf passes as ref_ctr_offset)
  std::string args_spec;    // the raw argument string
  std::vector<Arg> args;
  [[nodiscard]] std::string full_name() const { return provider + ":" + name; }
};

// Parses one argument string ("8@%rdi -4@$5 ..."). Unknown operands give kUnknown args
// (never an error: the note is still listed).
std::vector<Arg> parse_args(const std::string& spec);

// The probes of an ELF image, in note order. No .note.stapsdt: an empty list. A
// malformed note ends the list with an error.
Expected<std::vector<Probe>> parse_notes(const elf::ElfFile& f);

// The probes of one file (path may be a /proc/PID/root/... path).
struct FileProbes {
  std::string path;     // as the process maps it
  std::string open_path;  // what was opened (a /proc/PID/root/... or /proc/PID/exe path)
  bool is_exe = false;
  std::string error;    // why the file could not be read ("" when fine)
  std::vector<Probe> probes;
};

// Distinct file-backed mappings of a process (executable first), as in /proc/PID/maps.
std::vector<std::string> mapped_files(int pid);

// Probes of the executable and every mapped library of `pid`. Files without notes are
// left out unless keep_empty.
std::vector<FileProbes> discover(int pid, bool keep_empty = false);
// Probes of one file.
FileProbes probes_of_file(const std::string& path);

nlohmann::json probe_to_json(const Probe& p);
nlohmann::json files_to_json(const std::vector<FileProbes>& files);

// Runtime of a process or binary: "go" | "hotspot" | "cpython" | "unknown".
// `is_go` comes from the Go inspector (build info / pclntab).
std::string detect_runtime(bool is_go, const std::vector<std::string>& files,
                           const std::vector<FileProbes>& probes);

}  // namespace schedscope::usdt
