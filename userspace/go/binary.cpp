// inspect_binary(): static introspection of a Go ELF executable. The pieces:
//   build info (version, module, settings)  -> go/buildinfo.*
//   .gopclntab (functions, file:line)        -> go/pclntab.*
//   instruction patterns (TLS slot, globals) -> go/x86.* (+ the heuristics below)
// Facts and patterns are from docs/go-runtime.md ("Finding the current g, m and p",
// "Parsing stripped binaries", "Observing Ps and Ms from outside").
#include "go/binary.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "elf/bytes.h"
#include "elf/elf_file.h"
#include "go/buildinfo.h"
#include "go/pclntab.h"
#include "go/timehist.h"
#include "go/waitreasons.h"
#include "go/x86.h"
#include "util/stop.h"

namespace schedscope::go {

const std::vector<std::string> kProbeFunctions = {
    "runtime.execute",
    "runtime.casgstatus",
    "runtime.newproc1",
    "runtime.goexit1",
    "runtime.goexit0",
    "runtime.gdestroy",
    "runtime.entersyscall",
    "runtime.reentersyscall",
    "runtime.entersyscallblock",
    "runtime.exitsyscall",
    "runtime.retake",
    "runtime.handoffp",
    "runtime.newm",
    "runtime.mstart1",
    "runtime.mexit",
    "runtime.stopTheWorldWithSema",
    "runtime.startTheWorldWithSema",
    "runtime.gcStart",
    "runtime.gcMarkDone",
    "runtime.gcAssistAlloc",
    "runtime.netpoll",
    "runtime.sysmon",
    "runtime.mcommoninit",
    "runtime.GOMAXPROCS",
    "runtime.procresize",
    "runtime.main",
};

std::optional<int> go_minor(const std::string& version) {
  const size_t p = version.find("go1.");
  if (p == std::string::npos) {
    return std::nullopt;
  }
  int minor = 0;
  size_t i = p + 4;
  size_t n = 0;
  for (; i < version.size() && version[i] >= '0' && version[i] <= '9' && n < 4; ++i, ++n) {
    minor = minor * 10 + (version[i] - '0');
  }
  if (n == 0 || n > 3) {
    return std::nullopt;
  }
  return minor;
}

namespace {

using elf::ElfFile;
using elf::Segment;
using MemRef = x86::MemRef;
using Kind = x86::MemRef::Kind;

struct PclnLocation {
  std::span<const uint8_t> data;
  uint64_t addr = 0;
};

// ---------------------------------------------------------------- build info

std::optional<BuildInfo> load_buildinfo(const ElfFile& elf, std::string* err) {
  const AddrReader reader = [&elf](uint64_t addr, uint64_t len) {
    return elf.read_vaddr(addr, len);
  };
  auto try_range = [&](std::span<const uint8_t> data, uint64_t base) -> std::optional<BuildInfo> {
    auto off = find_buildinfo_magic(data, base);
    if (!off) {
      return std::nullopt;
    }
    auto bi = parse_buildinfo(elf::tail(data, *off), reader);
    if (!bi) {
      *err = bi.error().message;
      return std::nullopt;
    }
    return std::move(*bi);
  };
  if (const auto* s = elf.section(".go.buildinfo")) {
    if (auto bi = try_range(elf.section_data(*s), s->addr)) {
      return bi;
    }
  }
  // No section (or headers stripped): the magic sits at the start of the writable data.
  for (const auto& p : elf.segments()) {
    if (p.type == PT_LOAD && (p.flags & PF_W) != 0) {
      if (auto bi = try_range(elf.segment_data(p), p.vaddr)) {
        return bi;
      }
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- pclntab

// Section headers missing: the pclntab is found by its magic in the non-executable
// segments. Linear in the segment size whatever the bytes are: candidates are found with
// memchr on the magic's first byte at 8-byte aligned offsets, each gets an O(1) check
// (Pclntab::plausible), and the full parses of candidates that pass it and still fail
// share a budget of one function-table entry per 8 segment bytes (a real table has fewer
// entries than that). A crafted segment full of almost-valid headers ends the scan with
// "no pclntab", quickly. A stop request (Ctrl-C, util/stop.h) ends it at once.
std::optional<PclnLocation> scan_segment_for_pclntab(std::span<const uint8_t> seg, uint64_t vaddr) {
  uint64_t budget = seg.size() / 8 + 1024;
  const uint8_t* base = seg.data();
  size_t off = 0;
  for (uint64_t n = 0; off + 16 <= seg.size(); n++) {
    if ((n & 0xfff) == 0 && g_stop) {
      return std::nullopt;
    }
    // Every pclntab magic (0xfffffff?, little-endian) starts with a byte >= 0xf0; the
    // magic's last three bytes are 0xff.
    const void* hit = std::memchr(base + off, 0xff, seg.size() - off);
    if (hit == nullptr) {
      break;
    }
    size_t at = static_cast<size_t>(static_cast<const uint8_t*>(hit) - base);
    // The magic's byte 1 is the first 0xff; align its start (at - 1) to 8.
    size_t cand = at == 0 ? 0 : ((at - 1) & ~size_t{7});
    if (cand < off) {
      cand = off;
    }
    if (cand + 16 > seg.size()) {
      break;
    }
    auto c = seg.subspan(cand);
    if (const uint64_t cost = Pclntab::plausible(c); cost != 0) {
      if (cost <= budget) {
        if (Pclntab::parse(c)) {
          return PclnLocation{c, vaddr + cand};
        }
        budget -= cost;
      }
    }
    off = cand + 8;
  }
  return std::nullopt;
}

std::optional<PclnLocation> locate_pclntab(const ElfFile& elf) {
  for (const char* name : {".gopclntab", ".data.rel.ro.gopclntab"}) {
    if (const auto* s = elf.section(name)) {
      auto d = elf.section_data(*s);
      if (!d.empty()) {
        return PclnLocation{d, s->addr};
      }
    }
  }
  for (const auto& p : elf.segments()) {
    if (p.type != PT_LOAD || (p.flags & PF_X) != 0) {
      continue;
    }
    if (auto loc = scan_segment_for_pclntab(elf.segment_data(p), p.vaddr)) {
      return loc;
    }
  }
  return std::nullopt;
}

bool in_exec_segment(const ElfFile& elf, uint64_t addr) {
  for (const auto& p : elf.segments()) {
    if (p.type == PT_LOAD && (p.flags & PF_X) != 0 && addr >= p.vaddr && addr - p.vaddr < p.memsz) {
      return true;
    }
  }
  if (elf.segments().empty()) {
    if (const auto* t = elf.section(".text")) {
      return addr >= t->addr && addr - t->addr < t->size;
    }
  }
  return false;
}

bool in_writable_segment(const ElfFile& elf, uint64_t addr) {
  for (const auto& p : elf.segments()) {
    if (p.type == PT_LOAD && (p.flags & PF_W) != 0 && addr >= p.vaddr && addr - p.vaddr < p.memsz) {
      return true;
    }
  }
  return false;
}

// Writable ranges that may hold runtime.firstmoduledata or string headers: named
// sections when present, else the writable segments.
std::vector<std::pair<std::span<const uint8_t>, uint64_t>> writable_data(const ElfFile& elf) {
  std::vector<std::pair<std::span<const uint8_t>, uint64_t>> out;
  for (const char* name : {".go.module", ".noptrdata", ".data", ".data.rel.ro"}) {
    if (const auto* s = elf.section(name)) {
      out.emplace_back(elf.section_data(*s), s->addr);
    }
  }
  if (out.empty()) {
    for (const auto& p : elf.segments()) {
      if (p.type == PT_LOAD && (p.flags & PF_W) != 0) {
        out.emplace_back(elf.segment_data(p), p.vaddr);
      }
    }
  }
  return out;
}

// Finds runtime.firstmoduledata: a pointer-aligned word equal to the pclntab address
// (moduledata.pcHeader / .pclntable), validated by a second field. Returns its address.
std::optional<uint64_t> find_moduledata(const ElfFile& elf, const Pclntab& pcln,
                                        uint64_t pclntab_addr) {
  const int ps = pcln.ptr_size();
  const bool old = pcln.layout() == Pclntab::Layout::kGo12;
  for (const auto& [data, base] : writable_data(elf)) {
    for (uint64_t off = (ps - base % ps) % ps; off + ps <= data.size(); off += ps) {
      if (elf::read_word(data, off, ps) != pclntab_addr) {
        continue;
      }
      const uint64_t md = base + off;
      if (!old) {
        // moduledata.funcnametab.ptr == pcHeader + funcnameOffset
        auto names = elf.read_ptr(md + ps);
        if (!names || *names != pclntab_addr + pcln.funcname_offset()) {
          continue;
        }
      }
      return md;
    }
  }
  return std::nullopt;
}

// moduledata.text: word 22 in the 1.16+ layout, word 12 in 1.8-1.15.
std::optional<uint64_t> moduledata_text(const ElfFile& elf, const Pclntab& pcln, uint64_t md) {
  const int word = pcln.layout() == Pclntab::Layout::kGo12 ? 12 : 22;
  auto text = elf.read_ptr(md + static_cast<uint64_t>(word) * pcln.ptr_size());
  if (!text || *text == 0 || !in_exec_segment(elf, *text)) {
    return std::nullopt;
  }
  return text;
}

// ---------------------------------------------------------------- version from rodata

std::optional<std::string> read_go_string_at(const ElfFile& elf, uint64_t addr) {
  const int ps = elf.is_64() ? 8 : 4;
  auto hdr = elf.read_vaddr(addr, 2 * static_cast<uint64_t>(ps));
  if (hdr.empty()) {
    return std::nullopt;
  }
  const uint64_t ptr = *elf::read_word(hdr, 0, ps);
  const uint64_t len = *elf::read_word(hdr, ps, ps);
  if (len == 0 || len > 256) {
    return std::nullopt;
  }
  auto bytes = elf.read_vaddr(ptr, len);
  if (bytes.empty()) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// The runtime's version string (runtime.buildVersion), for binaries without build info.
std::optional<std::string> version_from_rodata(const ElfFile& elf) {
  // With symbols: the variable itself.
  if (auto sym = elf.symbol("runtime.buildVersion")) {
    if (auto s = read_go_string_at(elf, sym->value)) {
      auto m = scan_go_versions(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s->data()), s->size()));
      if (!m.empty()) {
        return *s;
      }
    }
  }
  // Read-only data: .rodata, else every read-only non-executable segment.
  std::vector<std::pair<std::span<const uint8_t>, uint64_t>> ranges;
  if (const auto* s = elf.section(".rodata")) {
    ranges.emplace_back(elf.section_data(*s), s->addr);
  } else {
    for (const auto& p : elf.segments()) {
      if (p.type == PT_LOAD && (p.flags & (PF_W | PF_X)) == 0) {
        ranges.emplace_back(elf.segment_data(p), p.vaddr);
      }
    }
  }
  std::vector<VersionMatch> all;
  std::map<uint64_t, std::string> by_addr;  // candidate string address -> text
  for (const auto& [data, base] : ranges) {
    for (auto& m : scan_go_versions(data)) {
      by_addr[base + m.offset] = m.version;
      all.push_back(std::move(m));
    }
  }
  if (all.empty()) {
    return std::nullopt;
  }
  // runtime.buildVersion is a Go string variable: a {ptr, len} header in writable data
  // that points at exactly one candidate with exactly its length.
  const int ps = elf.is_64() ? 8 : 4;
  std::set<std::string> referenced;
  for (const auto& [data, base] : writable_data(elf)) {
    for (uint64_t off = 0; off + 2 * ps <= data.size(); off += ps) {
      const uint64_t ptr = *elf::read_word(data, off, ps);
      auto it = by_addr.find(ptr);
      if (it != by_addr.end() && *elf::read_word(data, off + ps, ps) == it->second.size()) {
        referenced.insert(it->second);
      }
    }
  }
  if (referenced.size() == 1) {
    return *referenced.begin();
  }
  return pick_go_version(all);
}

// ---------------------------------------------------------------- code access

std::vector<MemRef> refs_of(const ElfFile& elf, const Pclntab& pcln, const char* fn) {
  auto f = pcln.find_function(fn);
  if (!f || f->end <= f->entry || f->end - f->entry > (1 << 20)) {
    return {};
  }
  return x86::memory_refs(elf.read_vaddr(f->entry, f->end - f->entry), f->entry);
}

// ---------------------------------------------------------------- TLS slot of g

void find_tls(const ElfFile& elf, const Pclntab* pcln, BinaryInfo* info) {
  info->tls_g_offset = -8;
  info->tls_source = "default";
  if (elf.machine() == EM_X86_64 && pcln != nullptr) {
    // ABI0 -> ABIInternal wrappers reload g into R14 from TLS.
    std::map<int32_t, int> votes;
    int tried = 0;
    for (const auto& w : pcln->abi_wrappers()) {
      if (tried++ >= 64) {
        break;
      }
      const uint64_t len = std::min<uint64_t>(w.end - w.entry, 64);
      if (auto off = x86::tls_g_offset(elf.read_vaddr(w.entry, len), w.entry)) {
        ++votes[*off];
      }
    }
    if (!votes.empty()) {
      auto best = std::max_element(votes.begin(), votes.end(), [](const auto& a, const auto& b) {
        return a.second < b.second;
      });
      info->tls_g_offset = best->first;
      info->tls_source = "wrapper";
      return;
    }
    // No wrappers (pre-1.17): runtime assembly that loads or stores g via TLS.
    for (const char* fn : {"runtime.gogo", "runtime.mcall", "runtime.systemstack",
                           "runtime.morestack", "runtime.rt0_go"}) {
      for (const auto& f : pcln->find_all(fn)) {
        const uint64_t len = std::min<uint64_t>(f.end - f.entry, 512);
        if (auto off = x86::tls_g_offset(elf.read_vaddr(f.entry, len), f.entry, true)) {
          info->tls_g_offset = *off;
          info->tls_source = "code";
          return;
        }
      }
    }
  }
  // The executable's TLS block ends at the thread pointer (x86-64 variant II).
  if (const Segment* tls = elf.segment(PT_TLS); tls != nullptr && tls->memsz > 0) {
    const uint64_t align = tls->align > 1 ? tls->align : 1;
    const uint64_t block = (tls->memsz + align - 1) / align * align;
    if (block <= 1 << 20) {
      uint64_t var = 0;  // runtime.tlsg's offset inside the block; 0 when unknown
      if (auto sym = elf.symbol("runtime.tlsg"); sym && sym->type == STT_TLS) {
        var = sym->value;
      }
      info->tls_g_offset =
          static_cast<int>(static_cast<int64_t>(var) - static_cast<int64_t>(block));
      info->tls_source = "pt_tls";
    }
  }
}

// ---------------------------------------------------------------- runtime globals

bool has_target(const std::vector<MemRef>& refs, uint64_t t) {
  return std::any_of(refs.begin(), refs.end(), [t](const MemRef& r) { return r.target == t; });
}

// A slice global X: X is loaded as a pointer and X+8 (len) is referenced too.
std::optional<uint64_t> slice_global(const std::vector<MemRef>& refs, bool need_cap) {
  for (const auto& r : refs) {
    if (r.kind != Kind::kLoad || r.width != 8) {
      continue;
    }
    if (has_target(refs, r.target + 8) && (!need_cap || has_target(refs, r.target + 16))) {
      return r.target;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> first_ref(const std::vector<MemRef>& refs, Kind kind, int width,
                                  bool sign_extend = false, bool rip_only = false) {
  for (const auto& r : refs) {
    if (r.kind == kind && (width == 0 || r.width == width) && (!sign_extend || r.sign_extend) &&
        (!rip_only || !r.via_lea)) {
      return r.target;
    }
  }
  return std::nullopt;
}

// sched.npidle/nmspinning offsets per layout of schedt, used to confirm a sched base.
bool retake_confirms_sched(const std::vector<MemRef>& retake, uint64_t sched, int lock_off) {
  if (lock_off == 24) {
    return has_target(retake, sched + 88) && has_target(retake, sched + 92);  // <= 1.24
  }
  return (has_target(retake, sched + 96) && has_target(retake, sched + 100)) ||  // 1.25
         (has_target(retake, sched + 112) && has_target(retake, sched + 116));   // 1.26
}

Globals globals_by_patterns(const ElfFile& elf, const Pclntab& pcln, std::optional<int> minor) {
  Globals g;
  auto ok = [&](std::optional<uint64_t> a) -> uint64_t {
    return a && in_writable_segment(elf, *a) ? *a : 0;
  };
  const auto mcommoninit = refs_of(elf, pcln, "runtime.mcommoninit");
  const auto retake = refs_of(elf, pcln, "runtime.retake");
  const auto procresize = refs_of(elf, pcln, "runtime.procresize");
  const auto gomaxprocs_fn = refs_of(elf, pcln, "runtime.GOMAXPROCS");
  const auto newproc1 = refs_of(elf, pcln, "runtime.newproc1");

  // allm: atomicstorep(&allm, mp) in mcommoninit: lea allm(%rip),%rcx; xchg %rbx,(%rcx).
  g.allm = ok(first_ref(mcommoninit, Kind::kXchg, 8));

  // allp: in retake, the slice whose len (X+8) is also read; procresize reads ptr/len/cap.
  auto allp = slice_global(retake, false);
  if (auto p2 = slice_global(procresize, true); p2 && (!allp || !has_target(procresize, *allp))) {
    allp = p2;
  }
  g.allp = ok(allp);

  // gomaxprocs: ret := int(gomaxprocs) in GOMAXPROCS (movslq), else `old := gomaxprocs` at
  // the top of procresize (32-bit load).
  auto gmp = first_ref(gomaxprocs_fn, Kind::kLoad, 4, true, true);
  if (!gmp) {
    gmp = first_ref(procresize, Kind::kLoad, 4, false, true);
  }
  g.gomaxprocs = ok(gmp);

  // sched: goidgen (offset 0) is the 64-bit `lock xadd` in newproc1; &sched.lock is the
  // first lea in GOMAXPROCS (lock(&sched.lock)), else in mcommoninit. They must agree.
  auto goidgen = first_ref(newproc1, Kind::kXadd, 8);
  auto lock = first_ref(gomaxprocs_fn, Kind::kLea, 0, false, true);
  if (!lock) {
    lock = first_ref(mcommoninit, Kind::kLea, 0, false, true);
  }
  std::optional<uint64_t> sched;
  if (goidgen && lock && (*lock - *goidgen == 24 || *lock - *goidgen == 32)) {
    sched = goidgen;
  } else if (lock) {
    // Decide the lock offset by the version, else by retake's reads of npidle/nmspinning.
    const bool c24 = retake_confirms_sched(retake, *lock - 24, 24);
    const bool c32 = retake_confirms_sched(retake, *lock - 32, 32);
    if (minor) {
      sched = *lock - (*minor <= 24 ? 24 : 32);
    } else if (c24 != c32) {
      sched = *lock - (c24 ? 24 : 32);
    } else {
      sched = *lock - 32;
    }
  }
  g.sched = ok(sched);

  // allgs / allglen (optional): allgadd appends to allgs (ptr, len, cap) and publishes
  // atomicstorep(&allgptr, ..) then atomic.Storeuintptr(&allglen, ..): the last xchg.
  const auto allgadd = refs_of(elf, pcln, "runtime.allgadd");
  if (auto allgs = slice_global(allgadd, true)) {
    g.allgs = ok(allgs);
    for (auto it = allgadd.rbegin(); it != allgadd.rend(); ++it) {
      if (it->kind == Kind::kXchg && it->width == 8) {
        if (it->target < *allgs || it->target > *allgs + 16) {
          g.allglen = ok(it->target);
        }
        break;
      }
    }
  }

  // gcphase (optional): setGCPhase(_GCmark) in gcStart is a 32-bit xchg; gcMarkDone
  // compares it with _GCmark (1).
  const auto gcstart = refs_of(elf, pcln, "runtime.gcStart");
  if (auto phase = first_ref(gcstart, Kind::kXchg, 4)) {
    const auto done = refs_of(elf, pcln, "runtime.gcMarkDone");
    const bool confirmed =
        done.empty() || std::any_of(done.begin(), done.end(), [&](const MemRef& r) {
          return r.target == *phase && r.kind == Kind::kCmp && r.imm && *r.imm == 1;
        });
    if (confirmed) {
      g.gcphase = ok(phase);
    }
  }

  g.source = (g.allp || g.allm || g.sched || g.gomaxprocs) ? "patterns" : "none";
  return g;
}

Globals find_globals(const ElfFile& elf, const Pclntab* pcln, std::optional<int> minor) {
  Globals g;
  auto sym = [&](const char* name) -> uint64_t {
    auto s = elf.symbol(name);
    return s && s->type == STT_OBJECT ? s->value : 0;
  };
  if (elf.has_symtab()) {
    g.allp = sym("runtime.allp");
    g.allm = sym("runtime.allm");
    g.sched = sym("runtime.sched");
    g.gomaxprocs = sym("runtime.gomaxprocs");
    g.allgs = sym("runtime.allgs");
    g.allglen = sym("runtime.allglen");
    g.gcphase = sym("runtime.gcphase");
  }
  const bool complete = g.allp && g.allm && g.sched && g.gomaxprocs;
  const bool any = g.allp || g.allm || g.sched || g.gomaxprocs;
  if (complete) {
    g.source = "symtab";
    return g;
  }
  if (elf.machine() != EM_X86_64 || pcln == nullptr) {
    g.source = any ? "symtab" : "none";
    return g;
  }
  const Globals p = globals_by_patterns(elf, *pcln, minor);
  for (auto [dst, src] :
       {std::pair{&g.allp, p.allp}, std::pair{&g.allm, p.allm}, std::pair{&g.sched, p.sched},
        std::pair{&g.gomaxprocs, p.gomaxprocs}, std::pair{&g.allgs, p.allgs},
        std::pair{&g.allglen, p.allglen}, std::pair{&g.gcphase, p.gcphase}}) {
    if (*dst == 0) {
      *dst = src;
    }
  }
  if (any) {
    g.source = p.source == "patterns" ? "symtab+patterns" : "symtab";
  } else {
    g.source = p.source;
  }
  return g;
}

// ---------------------------------------------------------------- sched.timeToRun

// schedt.timeToRun per release, read from casgstatus's code on real binaries of each
// (and from DWARF for 1.19 and 1.26): the fallback when the code pattern is not found.
std::optional<uint32_t> time_to_run_table(int minor) {
  if (minor == 17) return 360;
  if (minor == 18 || minor == 19) return 312;
  if (minor >= 20 && minor <= 24) return 320;
  if (minor == 25) return 344;
  if (minor == 26 || minor == 27) return 360;
  return std::nullopt;
}

// casgstatus records the latency when a tracked goroutine starts running:
// `sched.timeToRun.record(gp.runnableTime)`. Either a call to
// runtime.(*timeHistogram).record with `lea sched+X(%rip)` just before it, or the record
// inlined, which indexes counts from `lea sched+X(%rip)` and bumps the underflow slot at
// X + 8 * counts.
TimeToRun find_time_to_run(const ElfFile& elf, const Pclntab* pcln, uint64_t sched,
                           std::optional<int> minor, const std::string& pclntab_version) {
  TimeToRun t;
  if (minor) {
    t.layout = *minor >= 20 ? kTimeHistV2 : kTimeHistV1;
  } else if (pclntab_version == "1.20") {
    t.layout = kTimeHistV2;
  } else if (pclntab_version == "1.18" || pclntab_version == "1.16") {
    t.layout = kTimeHistV1;
  }
  if (minor && *minor < 17) {
    t.source = "Go 1." + std::to_string(*minor) + " has no scheduling-latency histogram (1.17+)";
    t.layout = 0;
    return t;
  }
  if (sched == 0 || t.layout == 0 || pcln == nullptr) {
    t.source = sched == 0 ? "runtime.sched not found" : "runtime version unknown";
    return t;
  }
  std::optional<uint32_t> from_code;
  if (elf.machine() == EM_X86_64) {
    auto cas = pcln->find_function("runtime.casgstatus");
    auto record = pcln->find_function("runtime.(*timeHistogram).record");
    if (cas && cas->end > cas->entry && cas->end - cas->entry < (1 << 16)) {
      const auto code = elf.read_vaddr(cas->entry, cas->end - cas->entry);
      const auto insns = x86::sweep(code, cas->entry);
      std::set<uint64_t> targets;
      for (const auto& r : x86::memory_refs(code, cas->entry)) targets.insert(r.target);
      const uint64_t lo = sched + 64, hi = sched + 0x4000;
      const uint64_t underflow = 8 * time_hist_counts(t.layout);
      std::set<uint64_t> called, inlined;
      for (size_t i = 0; i < insns.size(); i++) {
        const auto& in = insns[i];
        if (in.map != 0 || in.opcode != 0x8d || !in.rip_relative || in.target < lo ||
            in.target >= hi || in.target % 8 != 0)
          continue;
        for (size_t k = i + 1; record && k < insns.size() && k <= i + 4; k++)
          if (insns[k].map == 0 && insns[k].opcode == 0xe8 && insns[k].target == record->entry)
            called.insert(in.target);
        if (targets.count(in.target + underflow)) inlined.insert(in.target);
      }
      const auto& pick = called.size() == 1 ? called : inlined;
      if (pick.size() == 1) from_code = uint32_t(*pick.begin() - sched);
    }
  }
  const auto table = minor ? time_to_run_table(*minor) : std::nullopt;
  if (from_code) {
    t.offset = *from_code;
    t.source = "code";
  } else if (table) {
    t.offset = *table;
    t.source = "table";
  } else {
    t.source = "timeToRun not found in casgstatus and no table entry for this release";
    return t;
  }
  t.addr = sched + t.offset;
  return t;
}

// ---------------------------------------------------------------- cgo

// Whether the binary actually links runtime/cgo. Build settings only say CGO_ENABLED was
// on at build time, which is the default whenever a C compiler is present, even for a
// pure-Go program; what matters to observers (pthread-created Ms, TLS layout) is whether
// runtime/cgo is in the binary. Order: pclntab evidence, dynamic libc/libpthread
// dependency, build setting.
void detect_cgo(const ElfFile& elf, const Pclntab* pcln, const std::optional<BuildInfo>& bi,
                BinaryInfo* info) {
  if (pcln != nullptr) {
    info->cgo = pcln->has_name_prefix("runtime/cgo.") || pcln->has_name_prefix("_cgo_") ||
                pcln->has_name_prefix("x_cgo_") || !pcln->find_all("crosscall2").empty();
    if (info->cgo) {
      info->cgo_source = "pclntab";
      return;
    }
  }
  for (const auto& lib : elf.needed_libraries()) {
    if (lib.rfind("libc.so", 0) == 0 || lib.rfind("libpthread.so", 0) == 0 ||
        lib.rfind("libc.musl", 0) == 0) {
      info->cgo = true;
      info->cgo_source = "dynamic";
      return;
    }
  }
  if (pcln != nullptr) {
    info->cgo = false;
    info->cgo_source = "pclntab";
    return;
  }
  if (bi && bi->cgo_enabled) {
    info->cgo = *bi->cgo_enabled;
    info->cgo_source = "buildinfo";
    return;
  }
  info->cgo = false;
  info->cgo_source = "none";
}

// ---------------------------------------------------------------- the whole thing

Expected<BinaryInfo> inspect_elf(const ElfFile& elf, const std::string& path) {
  BinaryInfo info;
  info.path = path;
  info.pie = elf.type() == ET_DYN;
  info.stripped = !elf.has_symtab();
  info.has_dwarf = elf.section(".debug_info") != nullptr || elf.section(".zdebug_info") != nullptr;
  info.go_version = "unknown";
  info.version_source = "none";
  info.tls_source = "default";
  info.globals.source = "none";
  info.cgo_source = "none";
  info.wait_reasons_source = "none";
  info.stw_reasons_source = "none";

  std::string bi_err;
  std::optional<BuildInfo> bi = load_buildinfo(elf, &bi_err);
  if (!bi && !bi_err.empty()) {
    info.warnings.push_back(bi_err + " (falling back to the version string in rodata)");
  }

  std::shared_ptr<Pclntab> pcln;
  if (auto loc = locate_pclntab(elf)) {
    auto parsed = Pclntab::parse(loc->data);
    if (!parsed) {
      // A Go binary whose pclntab is corrupt: report it rather than guessing.
      return make_error(path + ": " + parsed.error().message);
    }
    pcln = std::move(*parsed);
    info.pclntab_addr = loc->addr;
    if (auto md = find_moduledata(elf, *pcln, loc->addr)) {
      info.moduledata = *md;
    }
    // Entry offsets are relative to runtime.text: moduledata.text is authoritative (Go 1.26
    // writes 0 in the header); then the header; then the .text section.
    if (pcln->layout() == Pclntab::Layout::kGo118 || pcln->layout() == Pclntab::Layout::kGo120) {
      std::optional<uint64_t> text;
      if (info.moduledata != 0) {
        text = moduledata_text(elf, *pcln, info.moduledata);
      }
      if (!text && pcln->header_text_start() != 0) {
        text = pcln->header_text_start();
      }
      if (!text) {
        if (const auto* t = elf.section(".text")) {
          text = t->addr;
        }
      }
      if (text && *text != pcln->text_start()) {
        auto again = Pclntab::parse(loc->data, *text);
        if (!again) {
          return make_error(path + ": " + again.error().message);
        }
        pcln = std::move(*again);
      }
    }
    info.text_start = pcln->text_start();
    info.pclntab_version = pcln->version_string();
  }

  info.is_go = bi.has_value() || pcln != nullptr;
  if (!info.is_go) {
    return info;
  }

  if (bi) {
    info.has_buildinfo = true;
    info.go_version = bi->go_version;
    info.version_source = "buildinfo";
    info.module_path = bi->module_path;
  } else if (auto v = version_from_rodata(elf)) {
    info.go_version = *v;
    info.version_source = "rodata";
  }
  const std::optional<int> minor = go_minor(info.go_version);

  detect_cgo(elf, pcln.get(), bi, &info);
  find_tls(elf, pcln.get(), &info);
  info.globals = find_globals(elf, pcln.get(), minor);
  info.time_to_run =
      find_time_to_run(elf, pcln.get(), info.globals.sched, minor, info.pclntab_version);
  if (info.time_to_run.source == "code" && minor)
    if (auto table = time_to_run_table(*minor); table && *table != info.time_to_run.offset)
      info.warnings.push_back("sched.timeToRun at +" + std::to_string(info.time_to_run.offset) +
                              " by code, +" + std::to_string(*table) + " by the table");
  if (pcln) {
    for (const auto& name : kProbeFunctions) {
      if (auto f = pcln->find_function(name)) {
        info.functions[name] = *f;
      }
    }
  }
  const WaitReasonImage img = wait_reason_image(elf, pcln.get());
  if (auto wr = find_wait_reasons(img)) {
    info.wait_reasons = std::move(wr->names);
    info.wait_reasons_addr = wr->addr;
    info.wait_reasons_source = wr->source;
  }
  if (auto sr = find_stw_reasons(img)) {
    info.stw_reasons = std::move(sr->names);
    info.stw_reasons_source = sr->source;
  }
  info.symbolizer = std::move(pcln);
  return info;
}

}  // namespace

Expected<BinaryInfo> inspect_binary(const std::string& path) {
  auto elf = ElfFile::open(path);
  if (!elf) {
    return elf.error();
  }
  return inspect_elf(**elf, path);
}

Expected<BinaryInfo> inspect_binary_image(std::span<const uint8_t> image, const std::string& path) {
  auto elf = ElfFile::from_bytes(image);
  if (!elf) {
    return elf.error();
  }
  return inspect_elf(**elf, path);
}

}  // namespace schedscope::go
