// Go's .gopclntab: function table, names, and the pc-value tables for file:line.
// Layouts (magic, little-endian): 0xfffffffb Go 1.2-1.15 (best effort), 0xfffffffa
// 1.16/1.17, 0xfffffff0 1.18/1.19, 0xfffffff1 1.20+. See docs/go-runtime.md, "Parsing
// stripped binaries".
//
// Parsing validates the header and the function table (bounds, sorted entries) up
// front; everything else is bounds-checked on access, so garbage yields an Error from
// parse() or empty results, never an out-of-bounds read.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "go/binary.h"
#include "util/expected.h"

namespace schedscope::go {

// One functab entry with the _func fields we use.
struct PclnFunc {
  uint32_t index = 0;     // position in the function table
  uint64_t entry = 0;     // link-time address
  uint64_t end = 0;       // entry of the next function (includes inter-function padding)
  uint8_t func_id = 0;    // abi.FuncID: 0 normal; the ABI wrapper id is version dependent
  uint8_t flag = 0;       // abi.FuncFlag (1.17+)
  std::string_view name;  // points into the table (valid while the Pclntab lives)
};

class Pclntab final : public Symbolizer {
 public:
  enum class Layout { kGo12, kGo116, kGo118, kGo120 };

  // Parses a copy of `data` (the table starts at data[0]). `text_start` is the address
  // function entry offsets are relative to in the 1.18+ layouts (runtime.text /
  // moduledata.text); 0 means "use the header's textStart". Older layouts store absolute
  // entries and ignore it.
  static Expected<std::shared_ptr<Pclntab>> parse(std::span<const uint8_t> data,
                                                  uint64_t text_start = 0);

  // O(1) plausibility of a table starting at data[0]: the header, the bounds of every
  // table and 17 function-table entries spread over it in order. Returns the function
  // count it declares (the cost of a full parse()), 0 when not plausible. parse() can
  // still refuse what passes (it checks every entry); a magic scan calls this first.
  static uint64_t plausible(std::span<const uint8_t> data);

  // Symbolizer.
  [[nodiscard]] std::optional<SourceLoc> lookup(uint64_t pc) const override;
  [[nodiscard]] std::optional<FuncInfo> find_function(const std::string& name) const override;
  [[nodiscard]] size_t function_count() const override { return nfunc_; }

  [[nodiscard]] Layout layout() const { return layout_; }
  // "1.2" | "1.16" | "1.18" | "1.20"
  [[nodiscard]] std::string version_string() const;
  [[nodiscard]] int ptr_size() const { return ptr_size_; }
  [[nodiscard]] int pc_quantum() const { return quantum_; }
  // textStart as written in the header (1.18+; 0 in Go 1.26 and for older layouts).
  [[nodiscard]] uint64_t header_text_start() const { return header_text_start_; }
  // The base actually used for entry offsets (1.18+), else the first function's entry.
  [[nodiscard]] uint64_t text_start() const { return text_start_; }
  // Header offset of the function name table (1.16+), for moduledata validation.
  [[nodiscard]] uint64_t funcname_offset() const { return funcname_off_; }
  // First function entry and end of the last function.
  [[nodiscard]] uint64_t min_pc() const;
  [[nodiscard]] uint64_t max_pc() const;

  // Function by table index (0..function_count()-1).
  [[nodiscard]] std::optional<PclnFunc> func(size_t index) const;
  // Index of the function containing pc (binary search).
  [[nodiscard]] std::optional<size_t> find_index(uint64_t pc) const;
  // Every function with this exact name, wrappers included, in table order.
  [[nodiscard]] std::vector<PclnFunc> find_all(std::string_view name) const;
  // True when some function name starts with `prefix`.
  [[nodiscard]] bool has_name_prefix(std::string_view prefix) const;
  // The FuncID this binary uses for ABI wrappers, inferred from duplicated names (the
  // most common non-zero FuncID among them); nullopt when there are no duplicates.
  [[nodiscard]] std::optional<uint8_t> wrapper_func_id() const;
  // ABI wrappers: functions with the wrapper FuncID whose name is shared with another
  // function (compiler-generated method wrappers carry the same FuncID but a unique name).
  [[nodiscard]] std::vector<PclnFunc> abi_wrappers() const;
  // File and line of pc inside function `index`; nullopt when the tables do not say.
  [[nodiscard]] std::optional<std::pair<std::string, int>> file_line(size_t index,
                                                                     uint64_t pc) const;

 private:
  Pclntab() = default;
  Status init(uint64_t text_start, bool header_only = false);
  [[nodiscard]] std::optional<uint64_t> entry_at(size_t i) const;     // functab[i].entry
  [[nodiscard]] std::optional<uint64_t> func_offset(size_t i) const;  // _func offset in view_
  [[nodiscard]] std::optional<int32_t> pcvalue(uint64_t table_off, uint64_t entry,
                                               uint64_t target) const;
  void build_name_index() const;

  std::vector<uint8_t> data_;      // owned copy of the table
  std::span<const uint8_t> view_;  // data_ (or the caller's bytes while validating)
  Layout layout_ = Layout::kGo120;
  int ptr_size_ = 8;
  int quantum_ = 1;
  uint64_t nfunc_ = 0;
  uint64_t nfiles_ = 0;
  uint64_t header_text_start_ = 0;
  uint64_t text_start_ = 0;
  uint64_t funcname_off_ = 0;
  uint64_t cu_off_ = 0;
  uint64_t filetab_off_ = 0;
  uint64_t pctab_off_ = 0;
  uint64_t functab_off_ = 0;   // start of the functab entries
  uint64_t funcdata_off_ = 0;  // base of _func offsets (pclnOffset; 0 for 1.2)
  int functab_field_ = 4;      // bytes per functab field

  mutable std::once_flag index_once_;
  mutable std::vector<std::pair<std::string_view, uint32_t>> by_name_;  // sorted
  mutable std::optional<uint8_t> wrapper_id_;
};

}  // namespace schedscope::go
