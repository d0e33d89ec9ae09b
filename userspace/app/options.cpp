#include "app/options.h"

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "app/cli_checks.h"
#include "detect/options.h"
#include "util/units.h"

namespace schedscope::app {

namespace {
uint64_t ns_of(const std::string& v) { return uint64_t(*parse_duration(v) * 1e9); }
}  // namespace

const std::vector<ObserveFlag>& observe_flags() {
  using F = ObserveFlag;
  using O = ObserveOptions;
  using J = nlohmann::json;
  static const std::vector<ObserveFlag> flags = {
      {"-p,--pid", F::kPid, "attach to this running process", {},
       [](O& o, const std::string& v) { o.pid = int(std::strtol(v.c_str(), nullptr, 10)); },
       nullptr, true},
      {"command", F::kCommand,
       "or launch this command (after --), observed (and recorded) from its first instruction", {},
       [](O& o, const std::string& v) { o.command.push_back(v); },
       [](const O& o, J& m) {
         m["launched"] = !o.command.empty();
         m["command"] = o.command;
       },
       true},
      {"-u,--user", F::kUser,
       "run the launched command as this user (name or uid: setgroups/setgid/setuid before exec), "
       "not as root",
       {}, [](O& o, const std::string& v) { o.user = v; }, nullptr, true},
      {"-i,--interval", F::kDuration, "snapshot interval, one frame each (default 1s; 10ms to 1h)",
       kIntervalRange, [](O& o, const std::string& v) { o.interval_s = *parse_duration(v); },
       [](const O& o, J& m) { m["interval_s"] = o.interval_s; }},
      {"-S,--all-syscalls", F::kSwitch,
       "trace every syscall (raw_syscalls): exact counts and latencies; costs the target a "
       "syscall-heavy 20-25% on some machines. Default: only syscalls a thread blocks in, read "
       "from its registers at switch-out, nearly free",
       {}, [](O& o, const std::string&) { o.all_syscalls = true; },
       [](const O& o, J& m) { m["mode"] = o.all_syscalls ? "all-syscalls" : "default"; }},
      {"--ringbuf-size", F::kSize,
       "BPF ring buffer size: a power of two multiple of the page size, 4K to 1G (default 8M)", {},
       [](O& o, const std::string& v) { o.ringbuf_bytes = *parse_size(v); },
       [](const O& o, J& m) { m["ringbuf_bytes"] = o.ringbuf_bytes; }},
      {"--offcpu-min", F::kDuration,
       "record off-CPU intervals at least this long as events (default 1ms; 1us to 1h)",
       kThresholdRange, [](O& o, const std::string& v) { o.offcpu_min_ns = ns_of(v); },
       [](const O& o, J& m) { m["offcpu_min_ns"] = o.offcpu_min_ns; }},
      {"--slow-syscall", F::kDuration,
       "with -S, record calls at least this long as events (default 1ms; 1us to 1h)",
       kThresholdRange, [](O& o, const std::string& v) { o.slow_syscall_ns = ns_of(v); },
       [](const O& o, J& m) { m["slow_syscall_ns"] = o.slow_syscall_ns; }},
      {"--no-go", F::kSwitch, "skip Go awareness (kernel-level observation only)", {},
       [](O& o, const std::string&) { o.go = false; },
       [](const O& o, J& m) { m["go_awareness"] = o.go; }},
      {"--goroutines", F::kSwitch,
       "count goroutines created by start function and by creator: entry uprobes on every RET "
       "of runtime.newproc1 (amd64), one hit per goroutine, ~16us each on the measured VM; "
       "exits and the live count come from the goroutine census, an estimate "
       "(docs/goroutines.md)",
       {}, [](O& o, const std::string&) { o.goroutines = true; }},
      {"--goroutine-exits", F::kSwitch,
       "with --goroutines (implied), count exits exactly too: one more uprobe, on "
       "runtime.gdestroy/goexit0, a second hit per goroutine (docs/goroutines.md)",
       {}, [](O& o, const std::string&) { o.goroutines = o.goroutine_exits = true; }},
      {"--annotations", F::kSwitch,
       "runtime/trace tasks, regions and logs of the program, with its tracing off: entry "
       "uprobes on runtime/trace.userTaskCreate/userTaskEnd/userRegion/userLog past their stack "
       "check (amd64). Costs the target ~16us per annotation call on the measured VM; "
       "trace.StartRegion and Logf are not seen with tracing off (docs/annotations.md)",
       {}, [](O& o, const std::string&) { o.annotations.on = true; },
       [](const O& o, J& m) {
         if (o.annotations.on) m["annotations"] = true;
       }},
      {"--annotations-max-rate", F::kRate,
       "with --annotations, detach the uprobes for good when they are hit more than this many "
       "times a second (default 20000, about 0.3 CPU of the target; 0: no ceiling)",
       {}, [](O& o, const std::string& v) { o.annotations.max_rate = std::strtod(v.c_str(), nullptr); }},
      {"--annotations-duty", F::kDuty,
       "with --annotations, attach the uprobes for ON of every PERIOD (e.g. 2s/10s): the cost "
       "times ON/PERIOD, and only what the windows saw (default: always attached)",
       {}, [](O& o, const std::string& v) {
         parse_duty(v, &o.annotations.duty_on_s, &o.annotations.duty_period_s);
       }},
      {"--no-gc", F::kSwitch,
       "no GC uprobes, GC sampler or goroutine census (on by default for Go targets; "
       "docs/gc-netpoll.md gives their cost)",
       {}, [](O& o, const std::string&) { o.gc = false; }},
      {"--usdt", F::kList,
       "count hits of this USDT probe per thread (PROVIDER:NAME, repeatable; list them with "
       "`schedscope probes -p PID`); libraries loaded later are scanned each interval. `record` "
       "also keeps every hit with its arguments",
       {}, [](O& o, const std::string& v) { o.usdt.push_back(v); }},
      {"--no-runtime-probes", F::kSwitch,
       "do not attach the runtime adapter's USDT probes (HotSpot: thread names, safepoints, GC; "
       "CPython: GC)",
       {}, [](O& o, const std::string&) { o.runtime_probes = false; }},
      {"-v,--verbose", F::kSwitch, "explain what was attached and validated", {},
       [](O& o, const std::string&) { o.verbose = true; }},
  };
  return flags;
}

void add_observe_flags(CLI::App& cmd, ObserveOptions& o, bool target) {
  for (const auto& f : observe_flags()) {
    if (f.target != target) continue;
    auto apply = f.apply;
    auto one = [&o, apply](const std::string& v) { apply(o, v); };
    auto many = [&o, apply](const std::vector<std::string>& vs) {
      for (const auto& v : vs) apply(o, v);
    };
    switch (f.kind) {
      case ObserveFlag::kSwitch:
        cmd.add_flag_function(f.names, [&o, apply](int64_t) { apply(o, ""); }, f.help);
        break;
      case ObserveFlag::kList:
      case ObserveFlag::kCommand:
        cmd.add_option_function<std::vector<std::string>>(f.names, many, f.help);
        break;
      case ObserveFlag::kPid:
        cmd.add_option_function<std::string>(f.names, one, f.help)->type_name("INT")->check(pid_flag());
        break;
      case ObserveFlag::kUser:
        cmd.add_option_function<std::string>(f.names, one, f.help)->type_name("USER");
        break;
      case ObserveFlag::kSize:
        cmd.add_option_function<std::string>(f.names, one, f.help)->check(ringbuf_flag());
        break;
      case ObserveFlag::kDuration:
        cmd.add_option_function<std::string>(f.names, one, f.help)->check(duration_flag(f.duration));
        break;
      case ObserveFlag::kRate:
        cmd.add_option_function<std::string>(f.names, one, f.help)->check(rate_flag());
        break;
      case ObserveFlag::kDuty:
        cmd.add_option_function<std::string>(f.names, one, f.help)->check(duty_flag());
        break;
    }
  }
}

void observe_to_json(const ObserveOptions& o, nlohmann::json& meta) {
  for (const auto& f : observe_flags())
    if (f.to_json) f.to_json(o, meta);
}

void add_detector_flags(CLI::App& app, detect::DetectOptions& d) {
  for (const auto& s : detect::threshold_specs()) {
    if (!s.flag) continue;
    CLI::Option* o = std::visit([&](auto mp) { return app.add_option(s.flag, d.*mp, s.help); }, s.field);
    o->group("Detectors")->capture_default_str();
    if (s.bounded()) o->check(CLI::Range(s.min, s.max));
  }
}

}  // namespace schedscope::app
