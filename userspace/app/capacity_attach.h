// The capacity data of a live observation: the P sampler's counts (capacity/psampler.h)
// and the target's cgroup, read once per interval into an SS_EV_CAP_SAMPLE record that
// the model consumes and recordings carry.
#pragma once
#include <memory>

#include "app/go_attach.h"
#include "capacity/cgroup.h"
#include "capacity/psampler.h"
#include "schedscope.h"

namespace schedscope::app {

class CapacityProbe {
 public:
  explicit CapacityProbe(int pid) : pid_(pid), cgroup_(capacity::CgroupReader::for_pid(pid)) {}
  // Once the runtime offsets are validated: start the P sampler.
  void start_sampler(const GoAttach& go);
  // The record for this interval (counts and cgroup as they are now).
  [[nodiscard]] ss_cap_sample sample(uint64_t ts_ns) const;

 private:
  int pid_;
  capacity::CgroupReader cgroup_;
  std::unique_ptr<capacity::PSampler> sampler_;
};

}  // namespace schedscope::app
