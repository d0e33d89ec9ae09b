#!/usr/bin/env python3
"""The observer's own CPU, steady state and attach apart, A/B between builds.

For each round and each build (the order alternates round by round): start the workload
(default `threads -threads 1000 -churn 100`, the steady-1000 case of docs/performance.md),
attach `schedscope top --json` at its default 1 s interval, and read the observer's CPU
from /proc/PID/task/*/stat:
  attach  CPU the observer used from its start to its first JSON frame (one-off: BPF load,
          Go runtime offsets, first reads of the M list and census), and that wall time;
  first2s CPU over the 2 s after the first frame (the window of `make bench`'s observer
          CPU column: what is left of the warm-up is in it);
  steady  CPU over --window seconds that start --settle seconds after the first frame,
          per observer thread (main = the frame loop and ring-buffer events, sampler = the
          P sampler; from schedstat, in ns) and in total, as % of one core.
Also the workload's own rate over the window (threads created/s, from its tick lines),
the events/s the observer reports, and its RSS. Needs root (BPF).

  sudo scripts/observer_cpu.py --build A=/tmp/old/build --build B=build --rounds 3
  sudo scripts/observer_cpu.py --build B=build -- -threads 100 -churn-max   (thread churn)
A --build is a build directory (its schedscope) or a schedscope binary.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HZ = os.sysconf("SC_CLK_TCK")


def per_task(pid, name, value):
    """{tid: value(text of /proc/PID/task/TID/NAME)} of every thread of pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/{name}") as f:
                out[int(t)] = value(f.read())
        except (OSError, ValueError, IndexError):
            pass
    return out


def task_cpu(pid):
    """{tid: utime+stime ticks} of every thread of pid."""
    def ticks(stat):
        fields = stat[stat.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])
    return per_task(pid, "stat", ticks)


def task_runtime_ns(pid):
    """{tid: ns on a CPU} of every thread of pid (schedstat: exact, not in 10 ms ticks)."""
    return per_task(pid, "schedstat", lambda s: int(s.split()[0]))


def task_comm(pid, tid):
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def task_switches(pid, tid):
    """voluntary context switches of one thread: its wake-ups (sleeps that ended)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu(pid):
    """utime+stime ticks of the whole process (exited threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def start_workload(argv, on_tick):
    """The workload, run until killed; on_tick(event) for each of its tick lines (a thread)."""
    wl = subprocess.Popen(argv + ["-forever"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def reader():
        for line in wl.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("ev") == "tick":
                on_tick(ev)
    threading.Thread(target=reader, daemon=True).start()
    return wl


def stop(obs, wl, timeout=20):
    """SIGINT to the observer (its process group; SIGKILL past `timeout` s), then the workload."""
    if obs.poll() is None:
        os.killpg(obs.pid, signal.SIGINT)
        try:
            obs.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(obs.pid, signal.SIGKILL)
            obs.wait()
    wl.kill()
    wl.wait()


def one_run(ss, wl_argv, settle, window, tmp, tag, extra):
    """One attach: returns a dict of figures (see the module doc)."""
    ticks = []  # (monotonic, created, destroyed)
    wl = start_workload(wl_argv, lambda ev: ticks.append(
        (time.monotonic(), ev.get("created", 0), ev.get("destroyed", 0))))
    time.sleep(1.5)  # its steady threads started
    out = os.path.join(tmp, f"{tag}.out")
    err = os.path.join(tmp, f"{tag}.err")
    t_start = time.monotonic()
    with open(out, "w") as o, open(err, "w") as e:
        obs = subprocess.Popen([ss, "top", "--json", "-p", str(wl.pid)] + extra, stdout=o, stderr=e,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    r = {}
    try:
        attached = False
        deadline = t_start + 60
        while time.monotonic() < deadline and obs.poll() is None:
            with open(out) as f:
                if f.read(1) == "{":
                    attached = True
                    break
            time.sleep(0.01)
        if not attached:
            return {"error": "no first frame: " + open(err).read()[-300:]}
        r["attach_wall_s"] = time.monotonic() - t_start
        r["attach_cpu_s"] = proc_cpu(obs.pid) / HZ
        # The 2 s after the first frame: the window `make bench`'s observer CPU column uses.
        t_first = time.monotonic()
        time.sleep(2)
        r["first2s_pct"] = 100 * (proc_cpu(obs.pid) / HZ - r["attach_cpu_s"]) / (time.monotonic() - t_first)
        time.sleep(max(0.0, settle - 2))
        a, pa, t0 = task_cpu(obs.pid), proc_cpu(obs.pid), time.monotonic()
        ra = task_runtime_ns(obs.pid)
        sw_a = {t: task_switches(obs.pid, t) for t in a}
        frames_before = sum(1 for _ in open(out))
        time.sleep(window)
        b, pb, t1 = task_cpu(obs.pid), proc_cpu(obs.pid), time.monotonic()
        rb = task_runtime_ns(obs.pid)
        sw_b = {t: task_switches(obs.pid, t) for t in b}
        dt = t1 - t0
        r["rss_mb"] = rss_mb(obs.pid)
        r["window_s"] = dt
        r["total_pct"] = 100 * (pb - pa) / HZ / dt
        # Per thread from schedstat (ns): the sampler is the thread named ss-psampler (older
        # builds: the non-main thread that used most CPU over the window).
        deltas = {t: (rb[t] - ra.get(t, 0)) / 1e9 for t in rb}
        others = sorted((t for t in deltas if t != obs.pid), key=lambda t: -deltas[t])
        named = [t for t in others if task_comm(obs.pid, t) == "ss-psampler"]
        if named:
            others = named + [t for t in others if t != named[0]]
        r["main_pct"] = 100 * deltas.get(obs.pid, 0) / dt
        r["sampler_pct"] = 100 * deltas[others[0]] / dt if others else 0.0
        r["main_wakeups_per_s"] = (sw_b.get(obs.pid, 0) - sw_a.get(obs.pid, 0)) / dt
        if others:
            r["sampler_wakeups_per_s"] = (sw_b.get(others[0], 0) - sw_a.get(others[0], 0)) / dt
        r["other_pct"] = 100 * sum(deltas[t] for t in others[1:]) / dt
        r["threads"] = len(b)
        frames = []
        with open(out) as f:
            for i, line in enumerate(f):
                if i >= frames_before and line.startswith("{"):
                    try:
                        frames.append(json.loads(line))
                    except ValueError:
                        pass
        reads = [fr["capacity"]["procs_running"].get("reads_hz") for fr in frames
                 if isinstance(fr.get("capacity"), dict) and isinstance(fr["capacity"].get("procs_running"), dict)]
        if reads and all(x is not None for x in reads):
            r["sampler_reads_per_s"] = statistics.mean(reads)
        if frames:
            r["events_per_s"] = statistics.mean(fr.get("switches_per_s", 0) + fr.get("syscalls_per_s", 0)
                                                for fr in frames)
        w = [tk for tk in ticks if t0 <= tk[0] <= t1]
        if len(w) >= 2:
            r["created_per_s"] = sum(tk[1] for tk in w[1:]) / (w[-1][0] - w[0][0])
        return r
    finally:
        stop(obs, wl)


def binary(spec):
    name, _, path = spec.partition("=")
    if not path:
        name, path = os.path.basename(os.path.normpath(spec)), spec
    if os.path.isdir(path):
        path = os.path.join(path, "schedscope")
    return name, os.path.abspath(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, metavar="[NAME=]DIR|BINARY",
                    help="a build to measure (repeat for A/B)")
    ap.add_argument("--workload", default=os.path.join(SRC, "build", "workloads", "threads"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=10, help="seconds after the first frame (default 10)")
    ap.add_argument("--window", type=float, default=15, help="measured seconds (default 15)")
    ap.add_argument("--json", help="write every run and the medians here")
    ap.add_argument("--ss-arg", action="append", default=[], help="extra schedscope top argument")
    ap.add_argument("wl_args", nargs="*", help="workload arguments (default: -threads 1000 -churn 100)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("observer_cpu: needs root (BPF)")
    builds = [binary(b) for b in a.build]
    wl_argv = [a.workload] + (a.wl_args or ["-threads", "1000", "-churn", "100"])
    tmp = tempfile.mkdtemp(prefix="schedscope-obscpu-")
    runs = []
    keys = ["total_pct", "main_pct", "sampler_pct", "other_pct", "attach_cpu_s", "attach_wall_s", "first2s_pct",
            "events_per_s", "created_per_s", "main_wakeups_per_s", "sampler_wakeups_per_s",
            "sampler_reads_per_s", "rss_mb"]
    print(f"observer_cpu: {' '.join(wl_argv[1:])}; settle {a.settle:g}s, window {a.window:g}s, "
          f"{a.rounds} round(s)", flush=True)
    for rnd in range(a.rounds):
        order = builds if rnd % 2 == 0 else builds[::-1]
        for name, ss in order:
            r = one_run(ss, wl_argv, a.settle, a.window, tmp, f"r{rnd}-{name}", a.ss_arg)
            r.update({"round": rnd, "build": name, "load1": os.getloadavg()[0]})
            runs.append(r)
            if "error" in r:
                print(f"  round {rnd + 1} {name:<10} ERROR {r['error']}", flush=True)
                continue
            print(f"  round {rnd + 1} {name:<10} total {r['total_pct']:5.2f}%  main {r['main_pct']:5.2f}% ({r.get('main_wakeups_per_s', 0):3.0f} wake/s)  "
                  f"sampler {r['sampler_pct']:5.2f}% ({r.get('sampler_wakeups_per_s', 0):4.0f} wake/s"
                  + (f", {r['sampler_reads_per_s']:.0f} reads/s" if r.get("sampler_reads_per_s") is not None else "")
                  + ")  "
                  f"other {r['other_pct']:4.2f}%  | attach {r['attach_cpu_s']:.2f} CPU-s in "
                  f"{r['attach_wall_s']:.1f}s, next 2 s {r['first2s_pct']:.1f}% | {r.get('events_per_s', 0):,.0f} events/s, "
                  f"{r.get('created_per_s', 0):,.0f} threads/s | RSS {r['rss_mb']:.1f} MB | "
                  f"load {r['load1']:.1f}", flush=True)
    med = {}
    for name, _ in builds:
        ok = [r for r in runs if r["build"] == name and "error" not in r]
        med[name] = {k: statistics.median([r[k] for r in ok if r.get(k) is not None])
                     for k in keys if any(r.get(k) is not None for r in ok)}
        m = med[name]
        if m:
            print(f"median {name:<10} total {m['total_pct']:5.2f}%  main {m['main_pct']:5.2f}%  "
                  f"sampler {m['sampler_pct']:5.2f}%  attach {m['attach_cpu_s']:.2f} CPU-s, next 2 s "
                  f"{m['first2s_pct']:.1f}% "
                  f"({len(ok)} runs, min-max total {min(r['total_pct'] for r in ok):.2f}-"
                  f"{max(r['total_pct'] for r in ok):.2f}%)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"workload": wl_argv[1:], "settle_s": a.settle, "window_s": a.window,
                       "builds": dict(builds), "runs": runs, "median": med}, f, indent=1)
    return 0 if all("error" not in r for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
