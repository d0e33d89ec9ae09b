// GC observation for a Go target: where the GC uprobes go, the sampler's offsets, and
// the goroutine census (runtime.allgs by status and wait reason, within a time budget).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "app/go_attach.h"
#include "gc/gc.h"
#include "probe/session.h"

namespace schedscope::app {

// Uprobe file offsets (in /proc/PID/exe) of stopTheWorldWithSema, startTheWorldWithSema
// and gcMarkTermination, and the sampler configuration. Error for a non-amd64 or non-Go
// binary; a missing function leaves its offset 0.
Expected<probe::GcProbeTargets> gc_probe_targets(const GoAttach& go, int pid,
                                                 uint64_t sample_period_ns);

class CensusReader {
 public:
  CensusReader(int pid, const GoAttach& go);
  // One pass over allgs, stopping after budget_ms (then `read` < `allglen`).
  Expected<gc::Census> read(double budget_ms = 20);

 private:
  int pid_;
  const GoAttach& go_;
  std::unique_ptr<go::MemReader> mem_;
  std::map<uint64_t, std::string> func_cache_;  // start PC -> function
  gc::WaitReasonNames names_;  // the binary's runtime.waitReasonStrings, null when not found
};

}  // namespace schedscope::app
