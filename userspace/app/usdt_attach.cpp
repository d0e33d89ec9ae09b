#include "app/usdt_attach.h"

#include <algorithm>
#include <cstring>

namespace schedscope::app {

namespace {

void copy_tail(char* dst, size_t n, const std::string& s) {
  std::memset(dst, 0, n);
  // Longer strings keep their end (the file name is the useful part of a path).
  const char* p = s.c_str();
  if (s.size() >= n) p += s.size() - (n - 1);
  std::memcpy(dst, p, std::min(s.size(), n - 1));
}

}  // namespace

Expected<std::pair<std::string, std::string>> parse_usdt_spec(const std::string& spec) {
  auto c = spec.find(':');
  if (c == std::string::npos || c == 0 || c + 1 >= spec.size() ||
      spec.find(':', c + 1) != std::string::npos)
    return make_error("--usdt wants PROVIDER:NAME (e.g. hotspot:monitor__contended__enter), got '" +
                      spec + "'");
  std::string prov = spec.substr(0, c), name = spec.substr(c + 1);
  if (prov.size() >= 32 || name.size() >= 64)
    return make_error("--usdt " + spec + ": provider or name too long");
  return std::make_pair(prov, name);
}

std::vector<UsdtWanted> adapter_probes(const std::string& runtime) {
  std::vector<UsdtWanted> v;
  auto add = [&](const char* prov, const char* name, uint32_t role, uint32_t pause,
                 uint32_t flags = SS_USDT_EMIT, uint32_t str_arg = 0) {
    v.push_back({prov, name, role, pause, runtime, flags, str_arg});
  };
  if (runtime == "hotspot") {
    // thread__start/stop(name, name_len, java_tid, native_tid, is_daemon)
    add("hotspot", "thread__start", SS_USDT_ROLE_THREAD_START, SS_PAUSE_NONE,
        SS_USDT_EMIT | SS_USDT_STR, 0);
    add("hotspot", "thread__stop", SS_USDT_ROLE_THREAD_STOP, SS_PAUSE_NONE,
        SS_USDT_EMIT | SS_USDT_STR, 0);
    // Safepoints: hs_private in JDK 17 builds; some builds name the provider hotspot.
    add("hs_private", "safepoint__begin", SS_USDT_ROLE_PAUSE_BEGIN, SS_PAUSE_SAFEPOINT);
    add("hs_private", "safepoint__end", SS_USDT_ROLE_PAUSE_END, SS_PAUSE_SAFEPOINT);
    add("hotspot", "safepoint__begin", SS_USDT_ROLE_PAUSE_BEGIN, SS_PAUSE_SAFEPOINT);
    add("hotspot", "safepoint__end", SS_USDT_ROLE_PAUSE_END, SS_PAUSE_SAFEPOINT);
    // gc__begin(is_full) / gc__end: a collection (inside a safepoint).
    add("hotspot", "gc__begin", SS_USDT_ROLE_PAUSE_BEGIN, SS_PAUSE_GC);
    add("hotspot", "gc__end", SS_USDT_ROLE_PAUSE_END, SS_PAUSE_GC);
  } else if (runtime == "cpython") {
    // gc__start(generation) / gc__done(collected): a collection, holding the GIL.
    add("python", "gc__start", SS_USDT_ROLE_PAUSE_BEGIN, SS_PAUSE_GC);
    add("python", "gc__done", SS_USDT_ROLE_PAUSE_END, SS_PAUSE_GC);
  }
  return v;
}

void UsdtAttacher::scan(probe::Session& s, int pid, bool is_go,
                        const std::function<void(const ss_hdr*, size_t)>& emit) {
  if (!active()) return;
  if (wanted_.empty() && !generic_.empty()) wanted_ = generic_;
  auto files = usdt::mapped_files(pid);
  std::vector<usdt::FileProbes> fresh;
  std::string root = "/proc/" + std::to_string(pid) + "/root";
  for (size_t i = 0; i < files.size(); i++) {
    if (!scanned_.insert(files[i]).second) continue;
    std::string open_path = i == 0 ? "/proc/" + std::to_string(pid) + "/exe" : root + files[i];
    auto fp = usdt::probes_of_file(open_path);
    fp.path = files[i];
    fp.open_path = open_path;
    fp.is_exe = i == 0;
    if (!fp.probes.empty()) {
      fresh.push_back(fp);
      with_probes_.push_back(std::move(fp));
    }
  }
  if (runtime_ == "unknown" || runtime_.empty()) {
    std::string rt = usdt::detect_runtime(is_go, files, with_probes_);
    runtime_ = rt;
  }
  if (adapters_ && !adapter_added_) {
    auto a = adapter_probes(runtime_);
    if (!a.empty()) {
      adapter_added_ = true;
      // A --usdt that names an adapter probe takes the adapter's role (its hits ship
      // with arguments anyway); put the adapter's first so it wins where not attached yet.
      std::vector<UsdtWanted> merged = a;
      for (const auto& w : wanted_) {
        bool dup = false;
        for (const auto& x : a) dup |= x.provider == w.provider && x.name == w.name;
        if (!dup) merged.push_back(w);
      }
      wanted_ = std::move(merged);
      fresh = with_probes_;  // files scanned before the runtime was known
    }
  }
  for (const auto& fp : fresh)
    for (const auto& w : wanted_) attach_from(s, pid, fp, w, emit);
}

void UsdtAttacher::attach_from(probe::Session& s, int pid, const usdt::FileProbes& fp,
                               const UsdtWanted& w,
                               const std::function<void(const ss_hdr*, size_t)>& emit) {
  std::string full = w.provider + ":" + w.name;
  uint32_t locs = 0;
  for (const auto& p : fp.probes)
    if (p.provider == w.provider && p.name == w.name) locs++;
  if (!locs || !attached_.insert({fp.path, full}).second) return;
  uint32_t idx;
  if (auto it = index_.find(full); it != index_.end()) {
    idx = it->second;
  } else {
    if (index_.size() >= SS_USDT_MAX_PROBES) {
      errors_.push_back(full + ": more than " + std::to_string(SS_USDT_MAX_PROBES) + " probes");
      return;
    }
    idx = uint32_t(index_.size());
  }
  ss_usdt_cfg cfg{w.flags, w.str_arg};
  auto r = s.attach_usdt(pid, fp.open_path, w.provider, w.name, idx, cfg);
  if (!r) {
    errors_.push_back(r.error().message);
    return;
  }
  index_[full] = idx;
  locations_[idx] += locs;
  ss_usdt_probe e{};
  e.h.type = SS_EV_USDT_PROBE;
  e.h.size = sizeof e;
  e.h.ts = probe::monotonic_ns();
  e.probe = idx;
  e.role = w.role;
  e.pause = w.pause;
  e.locations = locations_[idx];
  copy_tail(e.runtime, sizeof e.runtime, w.runtime);
  copy_tail(e.provider, sizeof e.provider, w.provider);
  copy_tail(e.name, sizeof e.name, w.name);
  copy_tail(e.file, sizeof e.file, fp.path);
  if (emit) emit(&e.h, sizeof e);
}

std::string UsdtAttacher::note() const {
  std::string s = "runtime " + runtime_ + ", " + std::to_string(index_.size()) + " USDT probe(s) attached";
  std::vector<std::string> missing;
  for (const auto& w : generic_)
    if (!index_.count(w.provider + ":" + w.name)) missing.push_back(w.provider + ":" + w.name);
  if (!missing.empty()) {
    s += "; not found (yet) in the process's files:";
    for (const auto& m : missing) s += " " + m;
  }
  for (const auto& e : errors_) s += "; " + e;
  return s;
}

}  // namespace schedscope::app
