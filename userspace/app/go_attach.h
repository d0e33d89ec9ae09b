// Go awareness for a live target: inspect its binary, resolve and validate runtime
// offsets (DWARF | table | calibration), hand them to BPF, and sample the P table.
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "go/binary.h"
#include "go/offsets.h"
#include "go/runtime_reader.h"
#include "model/model.h"
#include "probe/session.h"
#include "schedscope.h"

namespace schedscope::app {

class GoAttach : public model::Symbolize {
 public:
  // Inspects /proc/PID/exe. Never fails: a non-Go target yields is_go() == false and a note.
  static std::unique_ptr<GoAttach> inspect(int pid);

  [[nodiscard]] bool is_go() const { return bin_.is_go; }
  [[nodiscard]] const go::BinaryInfo& binary() const { return bin_; }
  // Resolves offsets and validates them on the live process. Returns false (with note())
  // while the runtime is not up yet or nothing validates; can be retried.
  bool resolve();
  [[nodiscard]] bool ready() const { return reader_ != nullptr; }
  [[nodiscard]] const std::string& note() const { return note_; }
  [[nodiscard]] const std::vector<std::string>& checks() const { return checks_; }
  [[nodiscard]] const go::Offsets& offsets() const { return off_; }
  [[nodiscard]] uint64_t load_bias() const { return bias_; }
  [[nodiscard]] ss_go_offsets bpf_offsets() const;
  Expected<go::SchedSample> sample();
  // One read of the runtime's goroutine scheduling-latency histogram (sched.timeToRun,
  // go/timehist.h), checked: slots must be plausible and never go backwards between
  // reads, else it is switched off for the session. nullopt with sched_latency_note().
  std::optional<go::TimeHist> sched_latency();
  [[nodiscard]] const std::string& sched_latency_note() const { return lat_note_; }
  // (--goroutines) the uprobe offsets in /proc/PID/exe; needs a Go amd64 binary.
  Expected<probe::GoUprobeTargets> goroutine_uprobes() const;
  // (--goroutines) attaches them for this process in `s`: every RET of runtime.newproc1,
  // and the exit probe (runtime.gdestroy / goexit0) only when `exits`. Says what it
  // attached; the error says why not.
  Expected<std::string> attach_goroutine_uprobes(probe::Session& s, bool exits) const;
  // Goroutines alive now (allgs minus idle/dead); nullopt when allgs is not readable.
  std::optional<uint64_t> live_goroutines();

  // Symbolized user stack from an IP and frame pointer (Go keeps frame pointers on amd64),
  // read from the live process; innermost first, at most max_frames.
  std::vector<std::string> walk_stack(uint64_t ip, uint64_t bp, int max_frames = 16);

  // model::Symbolize
  [[nodiscard]] std::string frame(uint64_t pc) const override;
  [[nodiscard]] bool is_runtime(uint64_t pc) const override;
  [[nodiscard]] std::string start_func(uint64_t pc) const override;

 private:
  // frame() and is_runtime() of one PC, memoized: a pclntab lookup decodes varint
  // streams, and every thread creation asks for the same creation-site PCs again.
  struct SymEntry {
    std::string frame;
    bool runtime = true;
  };
  SymEntry symbolize(uint64_t pc) const;

  int pid_ = 0;
  go::BinaryInfo bin_;
  go::Offsets off_;
  uint64_t bias_ = 0;
  bool bias_known_ = false;
  std::unique_ptr<go::RuntimeReader> reader_;
  std::string note_;
  std::vector<std::string> checks_;
  int attempts_ = 0;
  std::unique_ptr<go::MemReader> stack_mem_;
  std::optional<go::TimeHist> lat_prev_;
  bool lat_off_ = false;
  std::string lat_note_;
  mutable std::mutex sym_mu_;
  mutable std::unordered_map<uint64_t, SymEntry> sym_cache_;
  mutable uint64_t sym_cache_bias_ = 0;  // the load bias the cache was filled with
};

// The window of m that read_goctx reads at once (SS_M_WINDOW bytes): its start, 0 when
// curg, id, p, oldp and incgo do not fit in it; `cache` when it also holds m.procid and
// m.isextra (or the binary has no cgo, hence no extra M), so that a thread's M may be
// read again at its known address (ss_go_offsets.m_cache).
struct MWindow {
  uint32_t start = 0;
  bool cache = false;
};
[[nodiscard]] MWindow m_window(const ss_go_offsets& o, bool cgo);

}  // namespace schedscope::app
