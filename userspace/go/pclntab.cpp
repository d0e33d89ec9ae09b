#include "go/pclntab.h"

#include <algorithm>
#include <map>

#include "elf/bytes.h"

namespace schedscope::go {

using elf::in_bounds;
using elf::read_cstring;
using elf::read_u32;
using elf::read_u8;
using elf::read_uvarint;
using elf::read_word;

namespace {

constexpr uint32_t kMagic12 = 0xfffffffb;
constexpr uint32_t kMagic116 = 0xfffffffa;
constexpr uint32_t kMagic118 = 0xfffffff0;
constexpr uint32_t kMagic120 = 0xfffffff1;

// More functions than any real binary has (large binaries have ~200k); bounds work.
constexpr uint64_t kMaxFuncs = uint64_t{1} << 26;

}  // namespace

Expected<std::shared_ptr<Pclntab>> Pclntab::parse(std::span<const uint8_t> data,
                                                  uint64_t text_start) {
  std::shared_ptr<Pclntab> t(new Pclntab());
  // Validate on the caller's bytes, copy only what is accepted (a magic scan may try many
  // candidates over a large segment).
  t->view_ = data;
  if (Status s = t->init(text_start); !s) {
    return s.error();
  }
  t->data_.assign(data.begin(), data.end());
  t->view_ = t->data_;
  return t;
}

uint64_t Pclntab::plausible(std::span<const uint8_t> data) {
  Pclntab t;
  t.view_ = data;
  if (!t.init(0, /*header_only=*/true)) {
    return 0;
  }
  return t.nfunc_;
}

Status Pclntab::init(uint64_t text_start, bool header_only) {
  const std::span<const uint8_t> d = view_;
  if (d.size() < 16) {
    return make_error("pclntab: truncated header");
  }
  const uint32_t magic = *read_u32(d, 0);
  switch (magic) {
    case kMagic12:
      layout_ = Layout::kGo12;
      break;
    case kMagic116:
      layout_ = Layout::kGo116;
      break;
    case kMagic118:
      layout_ = Layout::kGo118;
      break;
    case kMagic120:
      layout_ = Layout::kGo120;
      break;
    default:
      return make_error("pclntab: bad magic (not a Go 1.2+ pclntab, or big-endian)");
  }
  quantum_ = d[6];
  ptr_size_ = d[7];
  if (d[4] != 0 || d[5] != 0 || (quantum_ != 1 && quantum_ != 2 && quantum_ != 4) ||
      (ptr_size_ != 4 && ptr_size_ != 8)) {
    return make_error("pclntab: bad header (padding, pc quantum or pointer size)");
  }
  const int ps = ptr_size_;
  auto word = [&](int k) -> std::optional<uint64_t> { return read_word(d, 8 + k * ps, ps); };
  auto need = [&](int k) -> bool { return in_bounds(d.size(), 0, 8 + (k + 1) * ps); };

  if (layout_ == Layout::kGo118 || layout_ == Layout::kGo120) {
    if (!need(7)) {
      return make_error("pclntab: truncated header");
    }
    nfunc_ = *word(0);
    nfiles_ = *word(1);
    header_text_start_ = *word(2);
    funcname_off_ = *word(3);
    cu_off_ = *word(4);
    filetab_off_ = *word(5);
    pctab_off_ = *word(6);
    functab_off_ = funcdata_off_ = *word(7);
    functab_field_ = 4;
    text_start_ = text_start != 0 ? text_start : header_text_start_;
  } else if (layout_ == Layout::kGo116) {
    if (!need(6)) {
      return make_error("pclntab: truncated header");
    }
    nfunc_ = *word(0);
    nfiles_ = *word(1);
    funcname_off_ = *word(2);
    cu_off_ = *word(3);
    filetab_off_ = *word(4);
    pctab_off_ = *word(5);
    functab_off_ = funcdata_off_ = *word(6);
    functab_field_ = ps;
  } else {
    nfunc_ = *word(0);
    functab_off_ = 8 + static_cast<uint64_t>(ps);
    funcdata_off_ = 0;
    functab_field_ = ps;
  }
  if (nfunc_ == 0 || nfunc_ > kMaxFuncs) {
    return make_error("pclntab: implausible function count " + std::to_string(nfunc_));
  }
  const uint64_t functab_size = (2 * nfunc_ + 1) * static_cast<uint64_t>(functab_field_);
  if (!in_bounds(d.size(), functab_off_, functab_size)) {
    return make_error("pclntab: function table out of bounds (truncated?)");
  }
  if (layout_ == Layout::kGo12) {
    auto fileoff = read_u32(d, functab_off_ + functab_size);
    if (!fileoff) {
      return make_error("pclntab: truncated file table offset");
    }
    filetab_off_ = *fileoff;
    auto nf = read_u32(d, filetab_off_);
    nfiles_ = nf ? *nf : 0;
  }
  for (uint64_t off : {funcname_off_, cu_off_, filetab_off_, pctab_off_}) {
    if (off > d.size()) {
      return make_error("pclntab: table offset out of bounds (truncated?)");
    }
  }
  if (header_only) {
    // O(1) instead of O(nfunc): a handful of entries spread over the table must be in
    // order (a magic scan validates every candidate this way before a full parse).
    constexpr uint64_t kSamples = 16;
    uint64_t prev = 0;
    for (uint64_t k = 0; k <= kSamples; ++k) {
      const uint64_t i = nfunc_ * k / kSamples;
      auto e = read_word(d, functab_off_ + 2 * i * functab_field_, functab_field_);
      if (!e || *e < prev) {
        return make_error("pclntab: function table is not sorted");
      }
      prev = *e;
    }
    return {};
  }
  // The function table must be sorted for the binary search; checking it once here also
  // makes every entry_at() below infallible.
  uint64_t prev = 0;
  for (uint64_t i = 0; i <= nfunc_; ++i) {
    auto e = read_word(d, functab_off_ + 2 * i * functab_field_, functab_field_);
    if (!e || *e < prev) {
      return make_error("pclntab: function table is not sorted");
    }
    prev = *e;
  }
  if (layout_ == Layout::kGo12 || layout_ == Layout::kGo116) {
    text_start_ = *entry_at(0);
  }
  return {};
}

std::string Pclntab::version_string() const {
  switch (layout_) {
    case Layout::kGo12:
      return "1.2";
    case Layout::kGo116:
      return "1.16";
    case Layout::kGo118:
      return "1.18";
    case Layout::kGo120:
      return "1.20";
  }
  return "";
}

std::optional<uint64_t> Pclntab::entry_at(size_t i) const {
  auto v = read_word(view_, functab_off_ + 2 * i * functab_field_, functab_field_);
  if (!v) {
    return std::nullopt;
  }
  if (layout_ == Layout::kGo118 || layout_ == Layout::kGo120) {
    return text_start_ + *v;
  }
  return *v;
}

std::optional<uint64_t> Pclntab::func_offset(size_t i) const {
  auto v = read_word(view_, functab_off_ + (2 * i + 1) * functab_field_, functab_field_);
  if (!v || *v > view_.size() || funcdata_off_ > view_.size() - *v) {
    return std::nullopt;
  }
  return funcdata_off_ + *v;
}

uint64_t Pclntab::min_pc() const { return entry_at(0).value_or(0); }
uint64_t Pclntab::max_pc() const { return entry_at(nfunc_).value_or(0); }

std::optional<PclnFunc> Pclntab::func(size_t index) const {
  if (index >= nfunc_) {
    return std::nullopt;
  }
  const std::span<const uint8_t> d = view_;
  auto fo = func_offset(index);
  if (!fo) {
    return std::nullopt;
  }
  const uint64_t sz0 = (layout_ == Layout::kGo118 || layout_ == Layout::kGo120) ? 4 : ptr_size_;
  auto nameoff = read_u32(d, *fo + sz0);
  if (!nameoff || static_cast<int32_t>(*nameoff) < 0) {
    return std::nullopt;
  }
  PclnFunc f;
  f.index = static_cast<uint32_t>(index);
  f.entry = *entry_at(index);
  f.end = *entry_at(index + 1);
  auto name = read_cstring(d, (layout_ == Layout::kGo12 ? 0 : funcname_off_) + *nameoff);
  if (!name) {
    return std::nullopt;
  }
  f.name = *name;
  if (layout_ != Layout::kGo12) {
    const uint64_t id_off = *fo + sz0 + (layout_ == Layout::kGo120 ? 36 : 32);
    f.func_id = read_u8(d, id_off).value_or(0);
    f.flag = read_u8(d, id_off + 1).value_or(0);
  }
  return f;
}

std::optional<size_t> Pclntab::find_index(uint64_t pc) const {
  if (pc < min_pc() || pc >= max_pc()) {
    return std::nullopt;
  }
  // Largest i with entry(i) <= pc.
  size_t lo = 0;
  size_t hi = nfunc_;  // entry(hi) > pc is known for hi == nfunc
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    if (*entry_at(mid) <= pc) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

std::optional<int32_t> Pclntab::pcvalue(uint64_t table_off, uint64_t entry, uint64_t target) const {
  if (table_off == 0) {
    return std::nullopt;  // no table
  }
  const std::span<const uint8_t> d = view_;
  uint64_t p = pctab_off_ + table_off;
  if (p < table_off || p >= d.size()) {
    return std::nullopt;
  }
  uint32_t val = static_cast<uint32_t>(-1);  // unsigned: wrap-around is defined
  uint64_t pc = entry;
  // Each step consumes at least two bytes, so this terminates within d.size() steps.
  for (bool first = true;; first = false) {
    auto uvdelta = read_uvarint(d, &p);
    if (!uvdelta || *uvdelta > 0xffffffffu) {
      return std::nullopt;
    }
    if (*uvdelta == 0 && !first) {
      return std::nullopt;  // end of table before reaching target
    }
    const uint32_t u = static_cast<uint32_t>(*uvdelta);
    const uint32_t vdelta = (u & 1) ? ~(u >> 1) : (u >> 1);  // zig-zag
    auto pcdelta = read_uvarint(d, &p);
    if (!pcdelta || *pcdelta > 0xffffffffu) {
      return std::nullopt;
    }
    pc += *pcdelta * static_cast<uint64_t>(quantum_);
    val += vdelta;
    if (target < pc) {
      return static_cast<int32_t>(val);
    }
  }
}

std::optional<std::pair<std::string, int>> Pclntab::file_line(size_t index, uint64_t pc) const {
  auto fo = func_offset(index);
  auto entry = entry_at(index);
  if (!fo || !entry || index >= nfunc_) {
    return std::nullopt;
  }
  const std::span<const uint8_t> d = view_;
  const uint64_t sz0 = (layout_ == Layout::kGo118 || layout_ == Layout::kGo120) ? 4 : ptr_size_;
  auto pcfile = read_u32(d, *fo + sz0 + 16);
  auto pcln = read_u32(d, *fo + sz0 + 20);
  if (!pcfile || !pcln) {
    return std::nullopt;
  }
  auto line = pcvalue(*pcln, *entry, pc);
  auto fno = pcvalue(*pcfile, *entry, pc);
  if (!line || !fno || *fno < 0) {
    return std::nullopt;
  }
  std::optional<std::string_view> file;
  if (layout_ == Layout::kGo12) {
    if (*fno == 0 || static_cast<uint64_t>(*fno) >= nfiles_) {
      return std::nullopt;
    }
    auto soff = read_u32(d, filetab_off_ + 4 * static_cast<uint64_t>(*fno));
    if (soff) {
      file = read_cstring(d, *soff);
    }
  } else {
    auto cu = read_u32(d, *fo + sz0 + 28);
    if (!cu) {
      return std::nullopt;
    }
    auto foff = read_u32(d, cu_off_ + 4 * (static_cast<uint64_t>(*cu) + *fno));
    if (foff && *foff != 0xffffffffu) {
      file = read_cstring(d, filetab_off_ + *foff);
    }
  }
  if (!file) {
    return std::nullopt;
  }
  return std::make_pair(std::string(*file), *line);
}

std::optional<SourceLoc> Pclntab::lookup(uint64_t pc) const {
  auto idx = find_index(pc);
  if (!idx) {
    return std::nullopt;
  }
  auto f = func(*idx);
  if (!f) {
    return std::nullopt;
  }
  SourceLoc loc;
  loc.func = std::string(f->name);
  loc.func_entry = f->entry;
  if (auto fl = file_line(*idx, pc)) {
    loc.file = std::move(fl->first);
    loc.line = fl->second;
  }
  return loc;
}

void Pclntab::build_name_index() const {
  by_name_.reserve(nfunc_);
  for (size_t i = 0; i < nfunc_; ++i) {
    if (auto f = func(i)) {
      by_name_.emplace_back(f->name, static_cast<uint32_t>(i));
    }
  }
  std::sort(by_name_.begin(), by_name_.end());
  // ABI wrappers share their target's name: the most common non-zero FuncID among
  // duplicated names is the wrapper id of this toolchain.
  std::map<uint8_t, size_t> counts;
  for (size_t i = 0; i < by_name_.size();) {
    size_t j = i + 1;
    while (j < by_name_.size() && by_name_[j].first == by_name_[i].first) {
      ++j;
    }
    if (j - i > 1) {
      for (size_t k = i; k < j; ++k) {
        if (auto f = func(by_name_[k].second); f && f->func_id != 0) {
          ++counts[f->func_id];
        }
      }
    }
    i = j;
  }
  size_t best = 0;
  for (const auto& [id, n] : counts) {
    if (n > best) {
      best = n;
      wrapper_id_ = id;
    }
  }
}

std::vector<PclnFunc> Pclntab::find_all(std::string_view name) const {
  std::call_once(index_once_, [this] { build_name_index(); });
  std::vector<PclnFunc> out;
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), std::make_pair(name, uint32_t{0}));
  for (; it != by_name_.end() && it->first == name; ++it) {
    if (auto f = func(it->second)) {
      out.push_back(*f);
    }
  }
  return out;
}

bool Pclntab::has_name_prefix(std::string_view prefix) const {
  std::call_once(index_once_, [this] { build_name_index(); });
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), std::make_pair(prefix, uint32_t{0}));
  return it != by_name_.end() && it->first.substr(0, prefix.size()) == prefix;
}

std::optional<uint8_t> Pclntab::wrapper_func_id() const {
  std::call_once(index_once_, [this] { build_name_index(); });
  return wrapper_id_;
}

std::vector<PclnFunc> Pclntab::abi_wrappers() const {
  std::vector<PclnFunc> out;
  auto id = wrapper_func_id();
  if (!id) {
    return out;
  }
  for (size_t i = 0; i < by_name_.size();) {
    size_t j = i + 1;
    while (j < by_name_.size() && by_name_[j].first == by_name_[i].first) {
      ++j;
    }
    for (size_t k = i; j - i > 1 && k < j; ++k) {
      if (auto f = func(by_name_[k].second); f && f->func_id == *id) {
        out.push_back(*f);
      }
    }
    i = j;
  }
  return out;
}

std::optional<FuncInfo> Pclntab::find_function(const std::string& name) const {
  auto all = find_all(name);
  if (all.empty()) {
    return std::nullopt;
  }
  const PclnFunc* pick = nullptr;
  if (all.size() == 1) {
    pick = &all[0];
  } else {
    // Prefer FuncID normal; else anything that is not the wrapper id; ties: the largest
    // (a wrapper is a few bytes long).
    auto wid = wrapper_func_id();
    auto better = [&](const PclnFunc& a, const PclnFunc* b) {
      if (b == nullptr) {
        return true;
      }
      const int ra = a.func_id == 0 ? 0 : (wid && a.func_id == *wid ? 2 : 1);
      const int rb = b->func_id == 0 ? 0 : (wid && b->func_id == *wid ? 2 : 1);
      if (ra != rb) {
        return ra < rb;
      }
      return (a.end - a.entry) > (b->end - b->entry);
    };
    for (const auto& f : all) {
      if (better(f, pick)) {
        pick = &f;
      }
    }
  }
  return FuncInfo{std::string(pick->name), pick->entry, pick->end};
}

}  // namespace schedscope::go
