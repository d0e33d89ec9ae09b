// schedscope — observe the Go scheduler of a live process from the outside with eBPF.
// The thin CLI: parses flags (CLI11) and calls into libschedscope.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "agent/opt_in.h"
#include "agent/serve.h"
#include "app/cli_checks.h"
#include "app/commands.h"
#include "app/output_watch.h"
#include "app/probes_cmd.h"
#include "app/record_cmd.h"
#include "app/target.h"
#include "util/units.h"
#include "util/version.h"

using namespace schedscope;

static int run(int argc, char** argv);

int main(int argc, char** argv) { return app::finish_stdout(run(argc, argv)); }

static int run(int argc, char** argv) {
  CLI::App app{
      "schedscope — see the Go scheduler of a running process from the outside: which G runs\n"
      "on which P and M, who is off-CPU and why, which syscalls block, who spawns threads.\n"
      "No code change, no restart, no GODEBUG. Needs root (or CAP_BPF+CAP_PERFMON).\n\n"
      "  sudo schedscope doctor                       can schedscope run here?\n"
      "  sudo schedscope top -p PID                   live view of a running process\n"
      "  sudo schedscope top --batch -i 1s -n 10 -p PID\n"
      "  sudo schedscope top --batch --json -S -- ./my-service --flag\n"
      "  sudo schedscope top -p PID --goroutines      goroutine creations/exits by function\n"
      "  sudo schedscope top -p PID --annotations     runtime/trace tasks, regions, logs\n"
      "  sudo schedscope top -p PID --flight-recorder 30s --dir /var/lib/schedscope\n"
      "                                               keep the last 30s, write them when an alert fires\n"
      "  sudo schedscope record -p PID -d 10s -o incident.sched\n"
      "  schedscope report incident.sched             Ps, threads, syscalls, alerts of a recording\n"
      "  schedscope replay incident.sched             the live view over a recording\n"
      "  schedscope inspect ./my-service              Go version, offsets, probe points\n"
      "  sudo schedscope probes -p PID                USDT probes (a JVM, CPython, any .note.stapsdt)\n"
      "  sudo schedscope agent --listen 127.0.0.1:9464\n"
      "                                               every Go process of the machine, into Prometheus\n"
      "  sudo schedscope agent --flight-recorder 30s --dir /var/lib/schedscope\n"
      "                                               ... and a recording of the 30s before each alert\n"
      "  sudo schedscope agent --all-syscalls-for '*/my-service'\n"
      "                                               ... and every syscall of my-service (top's -S) only\n",
      "schedscope"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("schedscope ") + kSchedscopeVersion);

  // ---- doctor
  bool doctor_json = false;
  auto* doctor =
      app.add_subcommand("doctor", "check that this machine can run schedscope, with fixes");
  doctor->add_flag("--json", doctor_json, "machine-readable output");

  // ---- top
  app::TopOptions top;
  std::string duration_s;
  auto* topc = app.add_subcommand(
      "top",
      "observe a process: live view on a terminal, or a snapshot every interval (--batch/--json)");
  app::add_observe_flags(*topc, top.observe, /*target=*/true);
  topc->add_flag("-b,--batch", top.batch, "print text snapshots instead of the live view");
  topc->add_flag("--json", top.json, "print one JSON object per interval (implies --batch)");
  topc->add_option("-o,--output", top.output, "write the batch/JSON output to this file");
  topc->add_option(
          "-n,--count", top.count,
          "stop after this many intervals (0, the default: until the target exits or Ctrl-C)")
      ->check(app::count_flag());
  topc->add_option("-d,--duration", duration_s, "stop after this long (10ms to 8760h)")
      ->check(app::duration_flag(app::kDurationRange));
  app::add_observe_flags(*topc, top.observe, /*target=*/false);
  std::string flight_window, flight_max_bytes, flight_memory = "256M";
  auto* fg = "Flight recorder";
  topc->add_option("--flight-recorder", flight_window,
                   "keep the last WINDOW (e.g. 30s) of events in memory and write them as a "
                   "recording (see report/replay/export) when an alert fires (1s to 24h)")
      ->group(fg)
      ->check(app::duration_flag(app::kFlightWindowRange));
  topc->add_option("--dir", top.flight.dir, "where --flight-recorder writes its recordings (default .)")
      ->group(fg);
  topc->add_option(
          "--max-bytes", flight_max_bytes,
          "after each flight recording delete the oldest recordings in --dir to stay under this")
      ->group(fg)
      ->check(app::size_flag(app::kMaxBytesRange));
  topc->add_option(
          "--flight-memory", flight_memory,
          "cap of the window kept in memory; the oldest seconds go first (default 256M; 1M to 64G)")
      ->group(fg)
      ->check(app::size_flag(app::kFlightMemoryRange));
  app::add_detector_flags(*topc, top.detect);

  // ---- probes
  app::ProbesOptions probes_opt;
  auto* probesc = app.add_subcommand(
      "probes", "list the USDT probes (.note.stapsdt) of a process's executable and mapped "
                "libraries, or of one ELF file: arguments, semaphores, files");
  probesc->add_option("binary", probes_opt.path, "an executable or library");
  probesc->add_option("-p,--pid", probes_opt.pid, "a running process")->check(app::pid_flag());
  probesc->add_option("-f,--filter", probes_opt.filter, "only probes whose PROVIDER:NAME contains this");
  probesc->add_flag("--json", probes_opt.json, "machine-readable output");

  // ---- inspect
  app::InspectOptions insp;
  auto* inspc = app.add_subcommand(
      "inspect",
      "describe a Go binary: version, build info, TLS slot of g, runtime offsets and "
      "their source, runtime globals, probe points");
  inspc->add_option("binary", insp.path, "path of the binary");
  inspc->add_option("-p,--pid", insp.pid, "inspect a running process (adds live validation)")
      ->check(app::pid_flag());
  inspc->add_flag("--json", insp.json, "machine-readable output");

  // ---- agent
  agent::AgentOptions agent_opt;
  std::string agent_interval = "10s", agent_scan = "3s", agent_log_max = "16M";
  std::string agent_flight, agent_flight_max = "1G", agent_flight_memory = "32M";
  auto* agentc = app.add_subcommand(
      "agent",
      "observe every Go process of this machine (or those the filters keep), always on, and "
      "serve Prometheus metrics (/metrics), /targets and /healthz");
  agentc->add_option("--listen", agent_opt.listen, "ADDR:PORT to serve on, :PORT for every address (default 127.0.0.1:9464)");
  agentc->add_option("--exe", agent_opt.filter.exe, "only processes whose executable path matches this glob (repeatable)");
  agentc->add_option("--comm", agent_opt.filter.comm, "only processes whose comm matches this glob (repeatable)");
  agentc->add_option("--cgroup", agent_opt.filter.cgroup, "only processes whose cgroup path matches this glob (repeatable)");
  agentc->add_option("--exclude", agent_opt.filter.exclude, "leave out processes whose exe path or comm matches this glob (repeatable)");
  agentc->add_option("-i,--interval", agent_interval, "how often each target is read and its detectors run (100ms to 1h, default 10s)")
      ->check(app::duration_flag(app::kDurationRange));
  agentc->add_option("--scan", agent_scan, "how often /proc is scanned for new processes (100ms to 1h, default 3s)")
      ->check(app::duration_flag(app::kDurationRange));
  agentc->add_option("--max-targets", agent_opt.max_targets, "most processes observed at once (1 to 64, default 64)");
  agentc->add_option("--top-syscalls", agent_opt.top_syscalls, "syscall names exported per target, the rest summed as \"other\" (default 10)");
  agentc->add_flag("!--no-gc", agent_opt.gc, "no GC uprobes, sampler or goroutine census");
  agentc->add_option("--alerts-log", agent_opt.alerts_log, "append one JSON line per alert raised to this file");
  agentc->add_option("--alerts-log-max", agent_log_max, "rotate the alerts log (to FILE.1) past this size (default 16M)")
      ->check(app::size_flag(app::kMaxBytesRange));
  auto* afg = "Flight recorder";
  agentc->add_option("--flight-recorder", agent_flight,
                     "per target, keep its last DUR (e.g. 30s) in memory and, on each of its alerts, "
                     "write them as a recording (schedscope-HOST-PID-KIND-TIME.sched, read by "
                     "report/replay/export) into --dir; at most one file per DUR per target (1s to 24h)")
      ->group(afg)
      ->check(app::duration_flag(app::kFlightWindowRange));
  agentc->add_option("--dir", agent_opt.flight.dir, "where --flight-recorder writes (default .)")->group(afg);
  agentc->add_option("--flight-max-bytes", agent_flight_max,
                     "after each flight recording delete the oldest recordings in --dir to stay under "
                     "this (default 1G)")
      ->group(afg)
      ->check(app::size_flag(app::kMaxBytesRange));
  agentc->add_option("--flight-memory", agent_flight_memory,
                     "cap of the history kept in memory per target; the oldest seconds go first "
                     "(default 32M; 1M to 64G)")
      ->group(afg)
      ->check(app::size_flag(app::kFlightMemoryRange));
  agent::add_opt_in_flags(*agentc, agent_opt.opt_in);
  agentc->add_flag("-v,--verbose", agent_opt.verbose, "say which processes are observed and dropped");
  app::add_detector_flags(*agentc, agent_opt.detect);

  // ---- record, report, replay, export (app/record_cmd.h)
  app::RecordingCli recording;
  recording.add(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // One line: CLI11's message names the flag and the reason.
    std::cerr << "schedscope: " << e.what() << " (see --help)\n";
    return app::kExitUsage;
  }

  try {
    if (doctor->parsed()) return app::cmd_doctor(doctor_json);
    if (auto rc = recording.run()) return *rc;
    if (probesc->parsed()) {
      if (probes_opt.path.empty() == (probes_opt.pid == 0)) {
        std::cerr << "schedscope probes: give either a binary path or -p PID\n";
        return app::kExitUsage;
      }
      return app::cmd_probes(probes_opt);
    }
    if (inspc->parsed()) {
      if (insp.path.empty() && insp.pid == 0) {
        std::cerr << "schedscope inspect: give a binary path or -p PID\n";
        return app::kExitUsage;
      }
      return app::cmd_inspect(insp);
    }
    if (agentc->parsed()) {
      agent_opt.interval_s = *parse_duration(agent_interval);
      agent_opt.scan_s = *parse_duration(agent_scan);
      agent_opt.alerts_log_max_bytes = *parse_size(agent_log_max);
      if (!agent_flight.empty()) {
        agent_opt.flight.window_s = *parse_duration(agent_flight);
        agent_opt.flight.max_bytes = *parse_size(agent_flight_max);
        agent_opt.flight.memory_bytes = *parse_size(agent_flight_memory);
      } else if (agentc->count("--dir") || agentc->count("--flight-max-bytes") || agentc->count("--flight-memory")) {
        std::cerr << "schedscope agent: --dir, --flight-max-bytes and --flight-memory go with --flight-recorder DUR\n";
        return app::kExitUsage;
      }
      return agent::cmd_agent(agent_opt);
    }
    if (topc->parsed()) {
      if ((top.observe.pid != 0) == !top.observe.command.empty()) {
        std::cerr << "schedscope top: give either -p PID or a command after --\n";
        return app::kExitUsage;
      }
      if (!top.observe.user.empty() && top.observe.command.empty()) {
        std::cerr << "schedscope top: -u/--user runs a launched command as that user: give the "
                     "command after --\n";
        return app::kExitUsage;
      }
      if (!top.observe.user.empty())
        if (auto ra = app::resolve_user(top.observe.user); !ra) {
          std::cerr << "schedscope top: " << ra.error().message << "\n";
          return app::kExitUsage;
        }
      if (!duration_s.empty()) top.duration_s = *parse_duration(duration_s);
      if (top.json) top.batch = true;
      if (!flight_window.empty()) {
        top.flight.window_s = *parse_duration(flight_window);
        if (!flight_max_bytes.empty()) top.flight.max_bytes = *parse_size(flight_max_bytes);
        top.flight.memory_bytes = *parse_size(flight_memory);
      } else if (topc->count("--dir") || !flight_max_bytes.empty()) {
        std::cerr << "schedscope top: --dir and --max-bytes go with --flight-recorder WINDOW\n";
        return app::kExitUsage;
      }
      return app::cmd_top(top);
    }
    return app::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "schedscope: " << e.what() << "\n";
    return app::kExitError;
  }
}
