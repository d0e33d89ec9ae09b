#include "app/gc_attach.h"

#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>

#include "elf/elf_file.h"
#include "go/probes.h"
#include "probe/session.h"

namespace schedscope::app {

Expected<probe::GcProbeTargets> gc_probe_targets(const GoAttach& go, int pid,
                                                 uint64_t sample_period_ns) {
  const go::BinaryInfo& bin = go.binary();
  if (!bin.is_go || !bin.symbolizer) return make_error("not a Go program with a pclntab");
  probe::GcProbeTargets t;
  t.path = "/proc/" + std::to_string(pid) + "/exe";
  auto f = elf::ElfFile::open(t.path);
  if (!f) return f.error();
  if ((*f)->machine() != EM_X86_64)
    return make_error("GC probes support amd64 binaries only (registers read as x86-64)");
  auto off = [&](const char* name) -> uint64_t {
    auto fn = bin.symbolizer->find_function(name);
    if (!fn) return 0;
    return go::vaddr_to_file_offset(**f, fn->entry).value_or(0);
  };
  t.stw_stop = off("runtime.stopTheWorldWithSema");
  t.stw_start = off("runtime.startTheWorldWithSema");
  t.markterm = off("runtime.gcMarkTermination");
  t.sample_period_ns = sample_period_ns;
  const go::Offsets& o = go.offsets();
  t.cfg.g_atomicstatus = o.g_atomicstatus;
  t.cfg.g_waitreason = o.g_waitreason;
  t.cfg.p_gcmarkworkermode = o.p_gcmarkworkermode;
  t.cfg.wr_assist = gc::kWaitReasonGCAssistMarking;
  t.cfg.enabled = (o.g_atomicstatus && o.g_waitreason && o.m_p && o.m_curg) ? 1 : 0;
  // The sampler reads the target only inside a mark phase, opened by the stop-the-world
  // that starts it: stwGCSweepTerm where the reason is known (the binary's own table, or a
  // checked release), any stop elsewhere.
  int minor = go::go_minor(bin.go_version).value_or(0);
  t.cfg.mark_stw_reason =
      gc::stw_reasons_known(minor, !bin.stw_reasons.empty()) ? gc::kStwGCSweepTerm : SS_GC_ANY_STW;
  return t;
}

CensusReader::CensusReader(int pid, const GoAttach& go) : pid_(pid), go_(go) {
  std::string err;
  mem_ = go::open_process_memory(pid, &err);
  if (!go.binary().wait_reasons.empty())
    names_ = std::make_shared<const std::vector<std::string>>(go.binary().wait_reasons);
}

namespace {
uint64_t rss_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/statm");
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * uint64_t(sysconf(_SC_PAGESIZE));
}
}  // namespace

Expected<gc::Census> CensusReader::read(double budget_ms) {
  if (!mem_) return make_error("process memory not readable");
  const go::BinaryInfo& bin = go_.binary();
  const go::Offsets& o = go_.offsets();
  uint64_t bias = go_.load_bias();
  if (!bin.globals.allgs) return make_error("runtime.allgs not found in the binary");
  if (!o.g_atomicstatus) return make_error("g.atomicstatus offset unknown");
  uint64_t t0 = probe::monotonic_ns();
  gc::Census c;
  c.reason_names = names_;
  auto ptr = mem_->get<uint64_t>(bin.globals.allgs + bias);
  auto len = mem_->get<int64_t>(bin.globals.allgs + bias + 8);
  if (!ptr || !len) return make_error("cannot read runtime.allgs");
  int64_t n = *len;
  if (bin.globals.allglen) n = mem_->get<int64_t>(bin.globals.allglen + bias).value_or(n);
  if (n < 0 || n > (1 << 24)) return make_error("implausible allglen " + std::to_string(n));
  c.allglen = uint32_t(n);
  // The g fields we need: atomicstatus (u32) and waitreason (u8), within one small read
  // (bounded offsets, 64-bit arithmetic: at most kMaxGoStructOffset + 8 bytes).
  if (Status b = go::check_offset_bounds(o); !b) return b.error();
  uint64_t lo = o.g_atomicstatus, hi = uint64_t{o.g_atomicstatus} + 4;
  if (o.g_waitreason) {
    lo = std::min<uint64_t>(lo, o.g_waitreason);
    hi = std::max<uint64_t>(hi, uint64_t{o.g_waitreason} + 1);
  }
  if (o.g_startpc) {  // the start function of the Gs in IO wait (where they park)
    lo = std::min<uint64_t>(lo, o.g_startpc);
    hi = std::max<uint64_t>(hi, uint64_t{o.g_startpc} + 8);
  }
  std::map<uint64_t, uint32_t> io_pcs, live_pcs;
  const size_t glen = size_t(hi - lo);
  uint64_t budget_ns = uint64_t(budget_ms * 1e6);
  const size_t kBatch = 512;
  std::vector<uint64_t> gptrs;
  std::vector<uint8_t> bufs(kBatch * glen);
  std::vector<go::ReadSpan> spans;
  for (int64_t base = 0; base < n; base += int64_t(kBatch)) {
    size_t cnt = size_t(std::min<int64_t>(int64_t(kBatch), n - base));
    gptrs.resize(cnt);
    if (!mem_->read(*ptr + uint64_t(base) * 8, gptrs.data(), cnt * 8)) break;
    spans.clear();  // the batch's Gs in one read_many (one process_vm_readv)
    for (size_t i = 0; i < cnt; i++)
      if (gptrs[i]) spans.push_back({gptrs[i] + lo, bufs.data() + i * glen, glen, false});
    mem_->read_many(spans);
    for (const auto& sp : spans) {
      if (!sp.ok) continue;
      const uint8_t* buf = static_cast<const uint8_t*>(sp.buf);
      uint32_t st = 0;
      std::memcpy(&st, buf + (o.g_atomicstatus - lo), 4);
      st &= ~0x1000u;
      c.by_status[std::min<uint32_t>(st, 15)]++;
      c.read++;
      if (st != 0 && st != 6 && o.g_startpc) {  // live: by start function
        uint64_t pc = 0;
        std::memcpy(&pc, buf + (o.g_startpc - lo), 8);
        if (live_pcs.size() < 4096 || live_pcs.count(pc)) live_pcs[pc]++;
      }
      if (st == 4 && o.g_waitreason) {
        uint8_t wr = buf[o.g_waitreason - lo];
        c.waiting_by_reason[wr]++;
        if (wr == gc::kWaitReasonIOWait && o.g_startpc) {
          uint64_t pc = 0;
          std::memcpy(&pc, buf + (o.g_startpc - lo), 8);
          if (io_pcs.size() < 4096 || io_pcs.count(pc)) io_pcs[pc]++;
        }
      }
    }
    if (probe::monotonic_ns() - t0 > budget_ns) break;
  }
  // Symbolize the start functions (merged by name: closures of one function share it),
  // most first, at most `max`.
  auto top_funcs = [&](const std::map<uint64_t, uint32_t>& pcs,
                       std::vector<std::pair<std::string, uint32_t>>& out, size_t max) {
    std::map<std::string, uint32_t> by_func;
    for (const auto& [pc, cnt] : pcs) {
      auto it = func_cache_.find(pc);
      if (it == func_cache_.end()) {
        std::string f = go_.start_func(pc);
        it = func_cache_.emplace(pc, f.empty() ? "?" : f).first;
      }
      by_func[it->second] += cnt;
    }
    out.assign(by_func.begin(), by_func.end());
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (out.size() > max) out.resize(max);
  };
  top_funcs(io_pcs, c.io_wait_funcs, 8);
  top_funcs(live_pcs, c.live_funcs, gc::kCensusLiveFuncsMax);
  c.rss_bytes = rss_bytes(pid_);
  c.ts_ns = probe::monotonic_ns();
  c.read_ms = double(c.ts_ns - t0) / 1e6;
  return c;
}

}  // namespace schedscope::app
