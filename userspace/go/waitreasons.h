// The names of the runtime's wait reasons (g.waitreason), read from the binary itself:
// `runtime.waitReasonStrings` is a `[...]string` in writable data whose element 1 is
// "GC assist marking" and element 2 "IO wait" in every release from 1.17 on; the rest
// of the enum is reordered and extended between releases, so the table is taken from
// the binary rather than from a per-version list. Works on stripped binaries (no
// symbols, no DWARF) and PIE (pointers as R_*_RELATIVE relocations).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace schedscope::elf {
class ElfFile;
}

namespace schedscope::go {

class Symbolizer;

// A file-backed range of the image at a link-time address.
struct ByteRange {
  uint64_t addr = 0;
  std::span<const uint8_t> bytes;
};

// What the search needs from an image (pure: tests build it from plain bytes).
struct WaitReasonImage {
  int ptr_size = 8;
  std::vector<ByteRange> rodata;  // read-only data: where the string bytes are looked for
  std::vector<ByteRange> data;    // writable data: where the array of string headers may be
  std::vector<ByteRange> mapped;  // every loaded file-backed range: string bytes are read here
  // PIE: slot address -> addend of its R_*_RELATIVE relocation (the file may hold 0 there).
  std::unordered_map<uint64_t, uint64_t> relative;
  // The array's address and length from the code of runtime.waitReason.String, when known:
  // it ends the table exactly (another string array may follow it in .data).
  struct Bound {
    uint64_t addr = 0;
    size_t len = 0;
  };
  std::optional<Bound> bound;
};

struct WaitReasonTable {
  std::vector<std::string> names;  // index = g.waitreason; names[0] == ""
  uint64_t addr = 0;               // link-time address of the array
  std::string source;              // "data" (found by its contents) | "data+code" (its
                                   // length confirmed by runtime.waitReason.String)
};

inline constexpr size_t kMaxWaitReasons = 64;    // entries read at most
inline constexpr size_t kMaxWaitReasonLen = 64;  // longest plausible name

// runtime.waitReason.String (amd64) starts with the bounds check `cmp $len,%al` and indexes
// the array with `lea waitReasonStrings(%rip),reg`. nullopt when the code does not match.
std::optional<WaitReasonImage::Bound> wait_reason_bound_from_code(std::span<const uint8_t> code,
                                                                  uint64_t entry);

// Finds the array: a header {ptr -> "GC assist marking", 17} immediately followed by
// {ptr -> "IO wait", 7}, with an empty string before them; then reads entries until one
// is not a plausible name (pointer outside the mapped ranges, length 0 or > 64,
// non-printable bytes), kMaxWaitReasons, or the length in img.bound when its address is
// the one found. nullopt when absent or ambiguous.
std::optional<WaitReasonTable> find_wait_reasons(const WaitReasonImage& img);

// The image view of an ELF file: .rodata (else the read-only segments), the writable data
// sections (else the writable segments), the PT_LOAD segments, and the RELATIVE
// relocations of .rela.dyn (else DT_RELA); the bound from runtime.waitReason.String when
// `syms` (the pclntab) has it.
WaitReasonImage wait_reason_image(const elf::ElfFile& elf, const Symbolizer* syms = nullptr);
std::optional<WaitReasonTable> find_wait_reasons(const elf::ElfFile& elf,
                                                 const Symbolizer* syms = nullptr);

// The names of the runtime's stop-the-world reasons (the `stwReason` that
// runtime.stopTheWorldWithSema takes in RAX, Go 1.21 on), read from the binary the same
// way: `runtime.stwReasonStrings` is a `[...]string` whose elements 0, 1 and 2 are
// "unknown", "GC mark termination" and "GC sweep termination" (stwUnknown, stwGCMarkTerm,
// stwGCSweepTerm). Found, it says both that the stop takes a reason (no such table before
// 1.21) and that those three values are the binary's own, whatever its version. The
// table ends at the first implausible entry (runtime.stwReason.String, whose bounds check
// gives the wait reasons' length, is not linked in: the runtime indexes the array inline).
inline constexpr std::string_view kStwUnknown = "unknown";
inline constexpr std::string_view kStwMarkTerm = "GC mark termination";
inline constexpr std::string_view kStwSweepTerm = "GC sweep termination";
std::optional<WaitReasonTable> find_stw_reasons(const WaitReasonImage& img);
std::optional<WaitReasonTable> find_stw_reasons(const elf::ElfFile& elf,
                                                const Symbolizer* syms = nullptr);

}  // namespace schedscope::go
