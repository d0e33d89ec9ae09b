// USDT attachment for one observed process: the generic --usdt PROVIDER:NAME
// probes and the runtime adapters' probes (HotSpot, CPython), found in the .note.stapsdt
// of the executable and of every mapped library, attached through the Session, and
// re-scanned every interval so libraries loaded later (a JVM's libjvm.so) are covered.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "probe/session.h"
#include "usdt/notes.h"
#include "util/expected.h"

namespace schedscope::app {

// "provider:name" -> {provider, name}; error on a malformed spec.
Expected<std::pair<std::string, std::string>> parse_usdt_spec(const std::string& spec);

struct UsdtWanted {
  std::string provider, name;
  uint32_t role = SS_USDT_ROLE_GENERIC;
  uint32_t pause = SS_PAUSE_NONE;
  std::string runtime;  // adapter that wants it ("" for --usdt)
  uint32_t flags = 0;   // SS_USDT_*
  uint32_t str_arg = 0;
};

// The probes a runtime adapter attaches (empty for go/unknown).
std::vector<UsdtWanted> adapter_probes(const std::string& runtime);

class UsdtAttacher {
 public:
  // `generic`: the --usdt specs; `args`: ship their hits with arguments (record).
  // `adapters`: attach the runtime adapter's probes when a runtime is detected.
  UsdtAttacher(std::vector<UsdtWanted> generic, bool adapters)
      : generic_(std::move(generic)), adapters_(adapters) {}

  // Scans the process's mappings for files not scanned yet and attaches what is wanted.
  // `emit` receives the SS_EV_USDT_PROBE record of every probe attached (or extended).
  void scan(probe::Session& s, int pid, bool is_go, const std::function<void(const ss_hdr*, size_t)>& emit);
  [[nodiscard]] const std::string& runtime() const { return runtime_; }
  [[nodiscard]] uint32_t probe_count() const { return uint32_t(index_.size()); }
  // One line: what is attached, what is missing, errors.
  [[nodiscard]] std::string note() const;
  [[nodiscard]] bool active() const { return !generic_.empty() || adapters_; }

 private:
  void attach_from(probe::Session& s, int pid, const usdt::FileProbes& fp, const UsdtWanted& w,
                   const std::function<void(const ss_hdr*, size_t)>& emit);
  std::vector<UsdtWanted> generic_;
  bool adapters_;
  std::string runtime_ = "unknown";
  bool adapter_added_ = false;
  std::vector<UsdtWanted> wanted_;          // generic + adapter
  std::set<std::string> scanned_;           // files looked at
  std::vector<usdt::FileProbes> with_probes_;  // files that have notes
  std::map<std::string, uint32_t> index_;   // provider:name -> probe index
  std::map<uint32_t, uint32_t> locations_;  // probe index -> attach points
  std::set<std::pair<std::string, std::string>> attached_;  // (file, provider:name)
  std::vector<std::string> errors_;
};

}  // namespace schedscope::app
