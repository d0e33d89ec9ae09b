#include "app/go_attach.h"

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
  note_ = "offsets: " + off_.source;
  return true;
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
  return o;
}

Expected<go::SchedSample> GoAttach::sample() {
  if (!reader_) return make_error(note_);
  return reader_->sample();
}

std::string GoAttach::frame(uint64_t pc) const {
  if (!bin_.symbolizer || pc < bias_) return "";
  auto loc = bin_.symbolizer->lookup(pc - bias_);
  if (!loc) return "";
  std::string s = loc->func;
  if (!loc->file.empty()) s += " " + loc->file + ":" + std::to_string(loc->line);
  return s;
}

bool GoAttach::is_runtime(uint64_t pc) const {
  if (!bin_.symbolizer || pc < bias_) return true;  // C code (libc, cgo glue)
  auto loc = bin_.symbolizer->lookup(pc - bias_);
  if (!loc) return true;
  const std::string& f = loc->func;
  return f.rfind("runtime.", 0) == 0 || f.rfind("runtime/", 0) == 0 || f.rfind("_cgo_", 0) == 0 ||
         f.rfind("x_cgo_", 0) == 0 || f.rfind("crosscall", 0) == 0;
}

}  // namespace schedscope::app
