#include "app/capacity_attach.h"

#include <sched.h>

#include <cstring>
#include <string>

namespace schedscope::app {

void CapacityProbe::start_sampler(const GoAttach& go) {
  if (sampler_ || !go.ready()) return;
  const go::Offsets& o = go.offsets();
  uint64_t allp = go.binary().globals.allp;
  if (!allp) return;
  capacity::PSamplerConfig c;
  c.pid = pid_;
  c.allp = allp + go.load_bias();
  c.p_status = o.p_status;
  c.p_runqhead = o.p_runqhead;
  c.p_runqtail = o.p_runqtail;
  c.p_runnext = o.p_runnext;
  sampler_ = std::make_unique<capacity::PSampler>(c);
}

ss_cap_sample CapacityProbe::sample(uint64_t ts_ns) const {
  ss_cap_sample r{};
  r.h.type = SS_EV_CAP_SAMPLE;
  r.h.size = sizeof r;
  r.h.ts = ts_ns;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(pid_, sizeof set, &set) == 0) r.cpus = uint32_t(CPU_COUNT(&set));
  if (sampler_) {
    r.counts = sampler_->counts();
    r.period_us = uint32_t(sampler_->period_ns() / 1000);
    r.flags |= SS_CAPF_SAMPLER | SS_CAPF_READS;
    r.reads = uint32_t(sampler_->reads());  // wraps: deltas are taken mod 2^32
    if (sampler_->runq_known()) r.flags |= SS_CAPF_RUNQ;
  }
  capacity::CgroupReading cg = cgroup_.read();
  if (cg.found) {
    r.flags |= SS_CAPF_CGROUP;
    if (cg.v2) r.flags |= SS_CAPF_CGROUP_V2;
    if (cg.quota.limited) {
      r.flags |= SS_CAPF_QUOTA;
      r.quota_us = cg.quota.quota_us;
      r.cfs_period_us = cg.quota.period_us;
    }
    r.nr_periods = cg.stat.nr_periods;
    r.nr_throttled = cg.stat.nr_throttled;
    r.throttled_ns = cg.stat.throttled_ns;
    std::string p = cg.path;
    if (p.size() >= sizeof r.cgroup) p = p.substr(p.size() - (sizeof r.cgroup - 1));
    std::memcpy(r.cgroup, p.data(), p.size());
  }
  return r;
}

}  // namespace schedscope::app
