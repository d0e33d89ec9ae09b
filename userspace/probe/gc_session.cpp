// Session::attach_gc: the GC uprobes and the per-CPU GC sampler of gc.bpf.c.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "probe/session.h"
#include "schedscope.skel.h"

namespace schedscope::probe {

namespace {
std::string hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

Status Session::attach_gc(int pid, const GcProbeTargets& t) {
  if (!gc_links_.empty() || !gc_perf_fds_.empty()) return {};
  std::string errors;
  auto add_err = [&](const std::string& e) { errors += (errors.empty() ? "" : "; ") + e; };

  uint32_t zero = 0;
  ss_gc_cfg cfg = t.cfg;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.gc_cfg), &zero, &cfg, BPF_ANY) != 0)
    add_err(std::string("cannot write gc_cfg: ") + std::strerror(errno));

  struct Probe {
    bpf_program* prog;
    uint64_t off;
    const char* what;
  };
  for (const Probe& p : {Probe{skel_->progs.ss_gc_stw_stop, t.stw_stop, "stopTheWorldWithSema"},
                         Probe{skel_->progs.ss_gc_stw_start, t.stw_start, "startTheWorldWithSema"},
                         Probe{skel_->progs.ss_gc_markterm, t.markterm, "gcMarkTermination"}}) {
    if (!p.off) {
      add_err(std::string("runtime.") + p.what + " not found");
      continue;
    }
    LIBBPF_OPTS(bpf_uprobe_opts, o);
    o.retprobe = false;
    bpf_link* l = bpf_program__attach_uprobe_opts(p.prog, pid, t.path.c_str(), size_t(p.off), &o);
    if (!l) {
      add_err(std::string("uprobe runtime.") + p.what + " at " + hex(p.off) + ": " +
              std::strerror(errno));
      continue;
    }
    gc_links_.push_back(l);
    gc_uprobes_++;
  }

  if (t.sample_period_ns) {  // sampling starts once gc_cfg is enabled (set_gc_cfg)
    for (int cpu = 0; cpu < ncpus_; cpu++) {
      perf_event_attr a{};
      a.size = sizeof a;
      a.type = PERF_TYPE_SOFTWARE;
      a.config = PERF_COUNT_SW_CPU_CLOCK;
      a.sample_period = t.sample_period_ns;
      int fd = int(syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
      if (fd < 0) {
        if (errno == ENODEV) continue;  // possible but offline CPU
        add_err("perf_event_open(cpu-clock, cpu " + std::to_string(cpu) +
                "): " + std::strerror(errno));
        break;
      }
      bpf_link* l = bpf_program__attach_perf_event(skel_->progs.ss_gc_sampler, fd);
      if (!l) {
        add_err(std::string("attach GC sampler: ") + std::strerror(errno));
        close(fd);
        break;
      }
      gc_links_.push_back(l);
      gc_perf_fds_.push_back(fd);
    }
  }
  if (!errors.empty()) return make_error(errors);
  return {};
}

Status Session::set_gc_cfg(const ss_gc_cfg& cfg) {
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.gc_cfg), &zero, &cfg, BPF_ANY) != 0)
    return make_error(std::string("cannot write gc_cfg: ") + std::strerror(errno));
  return {};
}

}  // namespace schedscope::probe
