#include "app/doctor.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "probe/session.h"
#include "util/json_out.h"

namespace schedscope::app {
namespace {

uint64_t cap_eff() {
  std::ifstream st("/proc/self/status");
  for (std::string line; std::getline(st, line);)
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

bool readable(const char* p) { return access(p, R_OK) == 0; }

}  // namespace

std::vector<Check> run_doctor() {
  std::vector<Check> out;
  utsname u{};
  uname(&u);
  out.push_back(
      {"kernel", true, false, std::string(u.sysname) + " " + u.release + " " + u.machine, ""});

  uint64_t caps = cap_eff();
  bool root = geteuid() == 0;
  bool bpf_caps = (caps >> 39 & 1) && (caps >> 38 & 1);  // CAP_BPF, CAP_PERFMON
  bool sys_admin = caps >> 21 & 1;
  out.push_back(
      {"privileges", root || bpf_caps || sys_admin, true,
       root ? "running as root"
            : (bpf_caps ? "CAP_BPF + CAP_PERFMON" : (sys_admin ? "CAP_SYS_ADMIN" : "none")),
       "run as root (sudo), or grant CAP_BPF,CAP_PERFMON (+CAP_SYS_PTRACE to read Go "
       "runtime memory): sudo setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep schedscope"});

  bool has_btf = readable("/sys/kernel/btf/vmlinux");
  out.push_back(
      {"kernel BTF", has_btf, true,
       has_btf ? "/sys/kernel/btf/vmlinux" : "/sys/kernel/btf/vmlinux missing",
       "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distributions since 2020)"});

  if (has_btf) {
    struct btf* vm = btf__load_vmlinux_btf();
    const char* tps[] = {"btf_trace_sched_switch", "btf_trace_sched_wakeup",
                         "btf_trace_task_newtask", "btf_trace_sched_process_exit",
                         "btf_trace_sys_enter",    "btf_trace_sys_exit"};
    std::string missing;
    for (const char* t : tps)
      if (!vm || btf__find_by_name_kind(vm, t, BTF_KIND_TYPEDEF) < 0)
        missing += std::string(missing.empty() ? "" : ", ") + (t + 10);
    out.push_back({"tracepoints (tp_btf)", missing.empty(), true,
                   missing.empty() ? "sched_switch, sched_wakeup(_new), task_newtask, "
                                     "sched_process_exit, sys_enter/exit"
                                   : "missing: " + missing,
                   "needs Linux 5.5+ with BTF"});
    btf__free(vm);
  }

  bool rb = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
  out.push_back(
      {"BPF ring buffer", rb, true, rb ? "supported" : "not supported", "needs Linux 5.8+"});

  // The kernel creates a uprobe perf event only for CAP_SYS_ADMIN (perf_uprobe_event_init;
  // CAP_PERFMON is not enough): without it the GC probes, --goroutines and USDT stay off.
  bool uprobe = readable("/sys/bus/event_source/devices/uprobe/type");
  out.push_back(
      {"uprobes", uprobe && sys_admin, false,
       !uprobe     ? "no uprobe PMU"
       : sys_admin ? "uprobe PMU present"
                   : "uprobe PMU present, but creating uprobes needs CAP_SYS_ADMIN: the GC "
                     "probes, --goroutines and USDT will be off",
       !uprobe ? "needed for the GC probes, --goroutines and USDT: kernel with "
                 "CONFIG_UPROBE_EVENTS=y"
               : "run as root, or add CAP_SYS_ADMIN for the GC probes, --goroutines and USDT"});

  bool tracefs = readable("/sys/kernel/tracing/events");
  out.push_back({"tracefs", tracefs, false, tracefs ? "/sys/kernel/tracing" : "not mounted",
                 "not needed by schedscope itself (tp_btf); for perf/bpftrace comparisons: "
                 "mount -t tracefs nodev /sys/kernel/tracing"});

  // The real thing: load and attach our programs on ourselves and see our own thread.
  Check live{"load + attach (self test)", false, true, "", ""};
  if (root || bpf_caps || sys_admin) {
    probe::SessionConfig cfg;
    cfg.tgid = uint32_t(getpid());
    cfg.ringbuf_bytes = 1 << 16;
    cfg.gc = true;  // every program the observation may load goes through the verifier
    auto s = probe::Session::open(cfg);
    if (!s) {
      live.detail = s.error().message;
    } else if (auto st = (*s)->attach(); !st) {
      live.detail = st.error().message;
    } else {
      for (int i = 0; i < 5; i++) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      auto snap = (*s)->snapshot();
      bool seen = false;
      if (snap)
        for (const auto& t : snap->threads)
          if (t.tid == uint32_t(gettid())) seen = t.st.offcpu_count[SS_OFF_SLEEP] > 0;
      live.ok = seen;
      live.detail =
          seen ? "sched_switch saw this process sleep" : "programs attached but saw no events";
    }
  } else {
    live.detail = "skipped: no privileges";
  }
  live.fix = "run with --verbose / SCHEDSCOPE_LIBBPF_DEBUG=1 for the verifier log";
  out.push_back(live);
  return out;
}

int print_doctor(const std::vector<Check>& checks, FILE* out, bool json) {
  int rc = 0;
  for (const auto& c : checks)
    if (c.required && !c.ok) rc = 1;
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& c : checks)
      j.push_back({{"name", c.name},
                   {"ok", c.ok},
                   {"required", c.required},
                   {"detail", c.detail},
                   {"fix", c.ok ? "" : c.fix}});
    fprintf(out, "%s\n", dump_json(nlohmann::json{{"checks", j}, {"ok", rc == 0}}).c_str());
    return rc;
  }
  for (const auto& c : checks) {
    const char* mark = c.ok ? "ok  " : (c.required ? "FAIL" : "warn");
    fprintf(out, "[%s] %-26s %s\n", mark, c.name.c_str(), c.detail.c_str());
    if (!c.ok && !c.fix.empty()) fprintf(out, "       fix: %s\n", c.fix.c_str());
  }
  fprintf(out, rc == 0 ? "schedscope can run here.\n"
                       : "schedscope cannot run here: fix the FAIL lines above.\n");
  return rc;
}

}  // namespace schedscope::app
