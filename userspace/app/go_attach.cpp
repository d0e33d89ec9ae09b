#include "app/go_attach.h"

#include <algorithm>

#include "elf/elf_file.h"
#include "go/probes.h"
#include "go/runtime_json.h"

namespace schedscope::app {

std::unique_ptr<GoAttach> GoAttach::inspect(int pid) {
  auto g = std::unique_ptr<GoAttach>(new GoAttach());
  g->pid_ = pid;
  auto bin = go::inspect_binary("/proc/" + std::to_string(pid) + "/exe");
  if (!bin) {
    g->note_ = "binary not readable (" + bin.error().message + "): kernel-level observation only";
    return g;
  }
  g->bin_ = std::move(bin.value());
  if (!g->bin_.is_go) g->note_ = "not a Go program: kernel-level observation only";
  return g;
}

bool GoAttach::resolve() {
  if (!bin_.is_go || reader_) return reader_ != nullptr;
  attempts_++;
  if (!bias_known_) {
    auto b = go::load_bias(pid_, bin_);
    if (!b) {
      note_ = "cannot map the binary in memory: " + b.error().message;
      return false;
    }
    bias_ = *b;
    bias_known_ = true;
  }
  std::string err;
  auto mem = go::open_process_memory(pid_, &err);
  if (!mem) {
    note_ = "cannot read process memory: " + err;
    return false;
  }
  auto r = go::resolve_offsets(*mem, bin_, bias_, pid_);
  if (!r) {
    note_ = "Go runtime offsets did not validate (" + r.error().message +
            "): Go-level features off, kernel-level observation goes on";
    return false;
  }
  off_ = r->first;
  checks_ = r->second.checks;
  auto mem2 = go::open_process_memory(pid_, &err);
  if (!mem2) {
    note_ = "cannot read process memory: " + err;
    return false;
  }
  reader_ = std::make_unique<go::RuntimeReader>(std::move(mem2), bin_, off_, bias_);
  reader_->map_namespace_tids(pid_);
  note_ = "offsets: " + off_.source;
  return true;
}

// The window starts 8-aligned; the 8-byte fields are 8-aligned and end within it, the
// bytes start within it (the BPF side's masks). Zero when `fields8` or `fields1` do not fit.
static uint32_t window_for(std::initializer_list<uint32_t> fields8,
                           std::initializer_list<uint32_t> fields1) {
  uint32_t lo = UINT32_MAX;
  for (auto list : {fields8, fields1})
    for (uint32_t off : list)
      if (off) lo = std::min(lo, off);
  if (lo == UINT32_MAX) return 0;
  lo &= ~7u;
  if (!lo) return 0;  // m.g0 is at 0: no field read_goctx wants starts there
  for (uint32_t off : fields8)
    if (off && (off % 8 || off - lo > SS_M_WINDOW - 8)) return 0;
  for (uint32_t off : fields1)
    if (off && off - lo > SS_M_WINDOW - 1) return 0;
  return lo;
}

MWindow m_window(const ss_go_offsets& o, bool cgo) {
  if (!o.m_curg || !o.m_id || !o.m_p) return {};
  // With procid (and isextra, which tells a cgo callback's M, unless there is no cgo).
  if (o.m_procid && (o.m_isextra || !cgo)) {
    if (uint32_t w =
            window_for({o.m_curg, o.m_id, o.m_p, o.m_oldp, o.m_procid}, {o.m_incgo, o.m_isextra}))
      return {w, true};
  }
  return {window_for({o.m_curg, o.m_id, o.m_p, o.m_oldp}, {o.m_incgo}), false};
}

ss_go_offsets GoAttach::bpf_offsets() const {
  ss_go_offsets o{};
  if (!reader_) return o;
  o.enabled = 1;
  o.tls_g = bin_.tls_g_offset;
  o.g_m = off_.g_m;
  o.g_goid = off_.g_goid;
  o.m_procid = off_.m_procid;
  o.m_curg = off_.m_curg;
  o.m_p = off_.m_p;
  o.m_oldp = off_.m_oldp;
  o.m_id = off_.m_id;
  o.m_incgo = off_.m_incgo;
  o.p_id = off_.p_id;
  o.g_startpc = off_.g_startpc;
  o.m_isextra = off_.m_isextra;
  const MWindow w = m_window(o, bin_.cgo);
  o.m_win = w.start;
  o.m_cache = w.cache ? 1 : 0;
  // Without cgo every thread is the runtime's own (runtime.clone), its FS base 8 bytes
  // past its M's tls: the M needs no read to be found (checked by its procid).
  if (o.m_cache && !bin_.cgo && off_.m_tls && o.tls_g == -8) o.m_fs = 8 + off_.m_tls;
  return o;
}

Expected<go::SchedSample> GoAttach::sample() {
  if (!reader_) return make_error(note_);
  return reader_->sample();
}

std::optional<go::TimeHist> GoAttach::sched_latency() {
  if (lat_off_ || !reader_) return std::nullopt;
  const go::TimeToRun& t = bin_.time_to_run;
  auto off = [&](const std::string& why) -> std::optional<go::TimeHist> {
    lat_off_ = true;
    lat_note_ = why;
    return std::nullopt;
  };
  auto h = reader_->time_to_run();
  if (!h) return off(h.error().message);
  const std::string where = "sched.timeToRun (sched+" + std::to_string(t.offset) + ", " + t.source +
                            ")";
  for (uint64_t v : h->slots)
    if (v > (uint64_t(1) << 50)) return off(where + " holds implausible counts: not read");
  if (lat_prev_ && !go::time_hist_monotonic(*h, *lat_prev_))
    return off(where + " went backwards between reads: not the histogram; off");
  lat_prev_ = *h;
  lat_note_ = where;
  return *h;
}

std::vector<std::string> GoAttach::walk_stack(uint64_t ip, uint64_t bp, int max_frames) {
  std::vector<std::string> out;
  if (!bin_.is_go) return out;
  if (!stack_mem_) {
    std::string err;
    stack_mem_ = go::open_process_memory(pid_, &err);
    if (!stack_mem_) return out;
  }
  auto add = [&](uint64_t pc) {
    std::string f = frame(pc);
    if (!f.empty()) out.push_back(f);
    return !f.empty();
  };
  add(ip);
  // Frame chain: [bp] = caller's bp, [bp+8] = return address.
  for (int i = 0; i < max_frames && bp; i++) {
    auto next_bp = stack_mem_->get<uint64_t>(bp);
    auto ret = stack_mem_->get<uint64_t>(bp + 8);
    if (!next_bp || !ret || *ret == 0) break;
    if (!add(*ret - 1)) break;  // -1: the call instruction, for the right line
    if (*next_bp <= bp) break;  // stacks grow down: callers are at higher addresses
    bp = *next_bp;
  }
  return out;
}

Expected<probe::GoUprobeTargets> GoAttach::goroutine_uprobes() const {
  if (!bin_.is_go) return make_error("not a Go program");
  // The kernel resolves the path to the inode: /proc/PID/exe reaches the very file the
  // process runs, even across mount namespaces or after the file was replaced.
  std::string path = "/proc/" + std::to_string(pid_) + "/exe";
  auto f = elf::ElfFile::open(path);
  if (!f) return f.error();
  auto p = go::goroutine_probes(**f, bin_);
  if (!p) return p.error();
  probe::GoUprobeTargets t;
  t.path = path;
  t.create_offsets = p->create_offsets;
  t.exit_offset = p->exit_offset;
  return t;
}

Expected<std::string> GoAttach::attach_goroutine_uprobes(probe::Session& s, bool exits) const {
  auto targets = goroutine_uprobes();
  if (!targets) return targets.error();
  if (!exits) targets->exit_offset = 0;  // exits from the census
  if (auto st = s.attach_go_uprobes(pid_, *targets); !st) return st.error();
  std::string note = std::to_string(targets->create_offsets.size()) + " uprobe(s) at the RETs of runtime.newproc1";
  if (exits)
    note += " + 1 at the entry of " +
            std::string(bin_.functions.count("runtime.gdestroy") ? "runtime.gdestroy" : "runtime.goexit0");
  else
    note += "; exits from the goroutine census";
  return note;
}

std::optional<uint64_t> GoAttach::live_goroutines() {
  if (!reader_) return std::nullopt;
  auto gs = reader_->goroutines();
  if (!gs) return std::nullopt;
  uint64_t n = 0;
  for (const auto& g : *gs)
    if (g.status != 0 && g.status != 6) n++;  // not _Gidle, not _Gdead
  return n;
}

std::string GoAttach::start_func(uint64_t pc) const {
  if (reader_) {
    std::string f = reader_->start_func(pc);
    if (!f.empty()) return f;
  }
  return model::Symbolize::start_func(pc);
}

GoAttach::SymEntry GoAttach::symbolize(uint64_t pc) const {
  if (!bin_.symbolizer || pc < bias_) return {};  // C code (libc, cgo glue)
  std::lock_guard<std::mutex> lk(sym_mu_);
  if (sym_cache_bias_ != bias_ || sym_cache_.size() > 100000) {
    sym_cache_.clear();
    sym_cache_bias_ = bias_;
  }
  if (auto it = sym_cache_.find(pc); it != sym_cache_.end()) return it->second;
  SymEntry e;
  if (auto loc = bin_.symbolizer->lookup(pc - bias_)) {
    const std::string& f = loc->func;
    e.frame = f;
    if (!loc->file.empty()) e.frame += " " + loc->file + ":" + std::to_string(loc->line);
    e.runtime = f.rfind("runtime.", 0) == 0 || f.rfind("runtime/", 0) == 0 || f.rfind("_cgo_", 0) == 0 ||
                f.rfind("x_cgo_", 0) == 0 || f.rfind("crosscall", 0) == 0;
  }
  sym_cache_.emplace(pc, e);
  return e;
}

std::string GoAttach::frame(uint64_t pc) const { return symbolize(pc).frame; }

bool GoAttach::is_runtime(uint64_t pc) const { return symbolize(pc).runtime; }

}  // namespace schedscope::app
