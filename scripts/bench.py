#!/usr/bin/env python3
"""make bench: what attaching schedscope costs a Go process, beside the floors and the
alternatives a user would reach for (docs/performance.md).

Every run starts a fresh workload, attaches one observer, waits until the observer is
really attached, then lets the workload run a fixed time and takes its own throughput
figure. Configurations are interleaved round by round (the order rotates each round) so
that machine noise lands on all of them alike. A configuration's ratio is its median
throughput over the unobserved median; the spread (min-max) is each round's throughput
over that same unobserved median. The same is done for the work per target CPU-second
(the workloads report their own CPU time), which neighbours on a shared machine disturb
far less than wall throughput.

  scripts/bench.py --build build                full run (table + build/bench/results.json)
  scripts/bench.py --build build --smoke        seconds: one round, a few configurations

Sections after the main matrix: the replay microbenchmark (observer CPU per ring-buffer
event), the steady-state observer CPU, the kernel side (with kernel.bpf_stats_enabled on:
each observer's BPF run time per unit of the target's work, steady round to round, beside
the target's own CPU per unit), and --annotations.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpf_cost  # noqa: E402

# The kernel's BPF run-time statistics (kernel.bpf_stats_enabled): on only during the
# kernel-side section, where every run reads its observer's programs' run time.
BPF_STATS = {"on": False}


# ---------------------------------------------------------------- /proc helpers
def cpu_seconds(pid):
    """utime+stime of a whole process (all its threads), seconds; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_file(path, regex, timeout, proc):
    """Waits until `regex` shows up in the file `path` (an observer's redirected output)."""
    rx = re.compile(regex, re.M)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                if rx.search(f.read()):
                    return True
        except OSError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def tail(path, n=400):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:].strip()
    except OSError:
        return ""


# ---------------------------------------------------------------- observers
class Observer:
    """One way of watching the target. argv(pid, tmp) builds the command; `ready` says how
    to know it is attached: ("stdout"|"stderr", regex) or ("sleep", seconds) when the tool
    prints nothing at attach (then a fixed settle time is used, said in the table)."""

    def __init__(self, name, argv=None, ready=None, wl_args=None, shows="", note=""):
        self.name, self.argv, self.ready, self.shows, self.note = name, argv, ready, shows, note
        self.wl_args = wl_args  # in-process observers: extra workload flags instead of a process


def observers(build, tmp):
    ss = os.path.join(build, "schedscope")
    floor = os.path.join(build, "ss-floor")
    bt = os.path.join(SRC, "tools", "bench")
    both = os.path.join(tmp, "sched+syscalls.bt")
    with open(both, "w") as f:
        for part in ("sched.bt", "syscalls.bt"):
            with open(os.path.join(bt, part)) as p:
                f.write(p.read() + "\n")
    top_ready = ("stdout", r"^\{")  # the first JSON interval: attached and reading
    obs = [
        Observer("unobserved"),
        Observer("floor", lambda pid: [floor, "-p", str(pid)], ("stdout", "^attached"),
                 note="empty tgid-filtered programs, default hooks"),
        # Kernel-side section only: the floor plus the least a per-thread observer keeps.
        Observer("floor state", lambda pid: [floor, "-p", str(pid), "-t"], ("stdout", "^attached"),
                 note="the floor plus one state slot per thread (switch and wakeup times, totals)"),
        Observer("floor -S", lambda pid: [floor, "-p", str(pid), "-S"], ("stdout", "^attached"),
                 note="the same plus raw_syscalls sys_enter/sys_exit"),
        Observer("floor state -S", lambda pid: [floor, "-p", str(pid), "-t", "-S"], ("stdout", "^attached"),
                 note="floor state, and each call's start per CPU, a count and total latency"),
        Observer("top", lambda pid: [ss, "top", "--json", "-p", str(pid)], top_ready, shows="sched"),
        Observer("top -S", lambda pid: [ss, "top", "--json", "-S", "-p", str(pid)], top_ready,
                 shows="syscalls"),
        # Not in any case's list: for --observers, to tell the GC side's share of top's cost.
        Observer("top --no-gc", lambda pid: [ss, "top", "--json", "--no-gc", "-p", str(pid)], top_ready,
                 shows="sched", note="top without the GC uprobes, sampler and census"),
        Observer("record", lambda pid: [ss, "record", "-p", str(pid), "-o",
                                        os.path.join(tmp, f"rec-{pid}.ssr")],
                 ("stderr", r"^recording pid"), shows="sched"),
        Observer("top --goroutines", lambda pid: [ss, "top", "--json", "--goroutines", "-p", str(pid)],
                 top_ready, shows="goroutines"),
        Observer("bpftrace", lambda pid: ["bpftrace", os.path.join(bt, "sched.bt"), str(pid)],
                 ("stdout", "^bpftrace ready"), shows="sched",
                 note="tools/bench/sched.bt: same tracepoints, maps, 1 s print"),
        Observer("bpftrace -S", lambda pid: ["bpftrace", both, str(pid)],
                 ("stdout", "^bpftrace ready"), shows="syscalls",
                 note="sched.bt + syscalls.bt (raw_syscalls latency histograms)"),
        Observer("perf sched record", lambda pid: ["perf", "sched", "record", "-p", str(pid), "-o",
                                                   os.path.join(tmp, f"sched-{pid}.data")],
                 ("sleep", 1.5), shows="sched", note="no attach signal: 1.5 s settle"),
        Observer("perf trace -s", lambda pid: ["perf", "trace", "-s", "-p", str(pid), "-o",
                                               os.path.join(tmp, f"trace-{pid}.txt")],
                 ("sleep", 1.5), shows="syscalls", note="no attach signal: 1.5 s settle"),
        Observer("runtime/trace", wl_args=lambda: ["-runtime-trace", os.path.join(tmp, "rt.trace")],
                 shows="goroutines", note="in process, go1.19 tracer"),
        Observer("top offcpu-min 200ms", lambda pid: [ss, "top", "--json", "--offcpu-min", "200ms", "-p", str(pid)],
                 top_ready, note="long off-CPU intervals shipped as events only from 200 ms"),
        Observer("top --no-gc", lambda pid: [ss, "top", "--json", "--no-gc", "-p", str(pid)], top_ready,
                 note="no GC uprobes, GC tick sampler or census (for --observers ablations)"),
        Observer("top --no-go", lambda pid: [ss, "top", "--json", "--no-go", "-p", str(pid)], top_ready,
                 note="kernel-level only: no Go context, P sampler or GC (for --observers ablations)"),
        Observer("top tiny ring", lambda pid: [ss, "top", "--json", "--ringbuf-size", "4K", "-p", str(pid)],
                 top_ready, note="pushed past the default: 4 KiB ring buffer, drops expected"),
    ]
    return {o.name: o for o in obs}


class Attached:
    def __init__(self, obs, pid, tmp, tag, ready_timeout):
        self.obs, self.proc, self.error = obs, None, None
        self.out = os.path.join(tmp, f"{tag}.out")
        self.err = os.path.join(tmp, f"{tag}.err")
        if obs.argv is None:
            return
        with open(self.out, "w") as o, open(self.err, "w") as e:
            self.proc = subprocess.Popen(obs.argv(pid), stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                                         cwd=tmp, start_new_session=True)
        kind, arg = obs.ready
        if kind == "sleep":
            time.sleep(arg)
            ok = self.proc.poll() is None
        else:
            ok = wait_file(self.out if kind == "stdout" else self.err, arg, ready_timeout, self.proc)
        if not ok:
            self.error = f"{obs.name} did not attach: " + (tail(self.err) or tail(self.out) or "no output")
        self.cpu0 = cpu_seconds(self.proc.pid)
        self.t0 = time.monotonic()
        self.bpf0 = bpf_cost.progs_of(self.proc.pid) if BPF_STATS["on"] else None

    def sample_end(self):
        """Observer CPU% over the measured window and its memory, before it is stopped."""
        if self.proc is None:
            return {}
        cpu1, t1 = cpu_seconds(self.proc.pid), time.monotonic()
        r = {"obs_rss_mb": None, "obs_cpu_pct": None}
        rss = status_kb(self.proc.pid, "VmHWM")
        if rss is not None:
            r["obs_rss_mb"] = round(rss / 1024, 1)
        if cpu1 is not None and self.cpu0 is not None and t1 > self.t0:
            r["obs_cpu_pct"] = round(100 * (cpu1 - self.cpu0) / (t1 - self.t0), 2)
        if self.bpf0 is not None:
            b = bpf_cost.progs_of(self.proc.pid)
            r["bpf_progs"] = {n: {"runs": c - self.bpf0.get(n, (0, 0))[0], "ns": t - self.bpf0.get(n, (0, 0))[1]}
                              for n, (c, t) in b.items()}
            r["bpf_ns"] = sum(x["ns"] for x in r["bpf_progs"].values())
        return r

    def stop(self):
        if self.proc is None:
            return {}
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.events()

    def events(self):
        """Events/s and drops as schedscope itself reports them."""
        r = {}
        if self.obs.name.startswith("top"):
            frames = []
            try:
                with open(self.out) as f:
                    for line in f:
                        if line.startswith("{"):
                            try:
                                frames.append(json.loads(line))
                            except ValueError:
                                pass
            except OSError:
                pass
            if frames:
                r["switches_per_s"] = round(statistics.mean(fr.get("switches_per_s", 0) for fr in frames))
                r["syscalls_per_s"] = round(statistics.mean(fr.get("syscalls_per_s", 0) for fr in frames))
                r["drops"] = frames[-1].get("drops", 0)
        elif self.obs.name == "record":
            m = re.search(r"wrote .*\(([\d.]+)s, .*?, (\d+) events, (\d+) drops", tail(self.err, 4000))
            if m:
                r["events_per_s"] = round(int(m.group(2)) / max(float(m.group(1)), 1e-3))
                r["drops"] = int(m.group(3))
        return r


# ---------------------------------------------------------------- workloads
class Case:
    """A workload configuration: how to start it and how to read its throughput."""

    def __init__(self, name, kind, args, unit, observers, desc, env=None, scaling=False):
        self.name, self.kind, self.args, self.unit = name, kind, args, unit
        self.observers, self.desc, self.env = observers, desc, env
        self.scaling = scaling  # a scaling case: --scale-rounds rounds of --scale-duration


def run_go(build, case, obs, duration, tmp, tag, ready_timeout):
    """A self-measuring Go workload: -wait-stdin, observer attaches, a newline starts the
    measured -duration; throughput = the done line's total / elapsed."""
    _, name, key = case.kind.split(":")
    argv = [os.path.join(build, "workloads", name), "-wait-stdin", "-duration", f"{duration}s"] + case.args
    if obs.wl_args:
        argv += obs.wl_args()
    env = dict(os.environ, **(case.env or {}))
    with open(os.path.join(tmp, f"{tag}.wl.err"), "w") as err:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    att = None
    try:
        ready = json.loads(p.stdout.readline())
        att = Attached(obs, ready["pid"], tmp, tag, ready_timeout)
        if att.error:
            return {"error": att.error}
        p.stdin.write("go\n")
        p.stdin.flush()
        done = None
        for line in p.stdout:
            ev = json.loads(line)
            if ev.get("ev") == "done":
                done = ev
            elif ev.get("ev") == "error":
                return {"error": ev.get("error")}
        res = att.sample_end()
        p.wait(timeout=30)
        if not done:
            return {"error": f"{name} exited {p.returncode} without a done line"}
        res["throughput"] = done[key] / (done["elapsed_ns"] / 1e9)
        res["units"] = done[key]
        if done.get("cpu_ns"):
            res["target_cpu_s"] = done["cpu_ns"] / 1e9
            res["work_per_cpu_s"] = done[key] / res["target_cpu_s"]
        res.update(att.stop())
        return res
    finally:
        if att:
            att.stop()
        if p.poll() is None:
            p.kill()
            p.wait()


def run_http(build, case, obs, duration, tmp, tag, ready_timeout):
    """httpserver on loopback, driven by wrk (its Requests/sec is the throughput)."""
    port = free_port()
    argv = [os.path.join(build, "workloads", "httpserver"), "-forever", "-addr", f"127.0.0.1:{port}"] + case.args
    if obs.wl_args:
        argv += obs.wl_args()
    env = dict(os.environ, **(case.env or {}))
    with open(os.path.join(tmp, f"{tag}.wl.err"), "w") as err:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, env=env)
    att = None
    try:
        pid = None
        for line in p.stdout:
            ev = json.loads(line)
            if ev.get("ev") == "ready":
                pid = ev["pid"]
            elif ev.get("ev") == "listening":
                break
            elif ev.get("ev") == "error":
                return {"error": ev.get("error")}
        att = Attached(obs, pid, tmp, tag, ready_timeout)
        if att.error:
            return {"error": att.error}
        cpu0 = cpu_seconds(p.pid)
        w = subprocess.run(["wrk", "-t1", "-c32", f"-d{duration}s", f"http://127.0.0.1:{port}/"],
                           capture_output=True, text=True, timeout=duration + 60)
        cpu1 = cpu_seconds(p.pid)
        res = att.sample_end()
        n = re.search(r"(\d+) requests in", w.stdout)
        if n:
            res["units"] = int(n.group(1))
        if n and cpu0 is not None and cpu1 is not None and cpu1 > cpu0:
            res["target_cpu_s"] = cpu1 - cpu0
            res["work_per_cpu_s"] = int(n.group(1)) / res["target_cpu_s"]
        m = re.search(r"Requests/sec:\s+([\d.]+)", w.stdout)
        if not m or "Socket errors" in w.stdout:
            return {"error": "wrk: " + (w.stdout + w.stderr)[-300:]}
        res["throughput"] = float(m.group(1))
        res.update(att.stop())
        return res
    finally:
        if att:
            att.stop()
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


MAIN_OBS = ["unobserved", "floor", "floor -S", "top", "top -S", "record", "top --goroutines",
            "bpftrace", "bpftrace -S", "perf sched record", "perf trace -s", "runtime/trace"]


def cases(smoke):
    if smoke:
        return [
            Case("http", "http", [], "req/s", ["unobserved", "top -S"], "httpserver + wrk -t1 -c32"),
            Case("pingpong", "go:pingpong:round_trips", [], "round trips/s",
                 ["unobserved", "floor", "top"], "pingpong, 4 pairs"),
            Case("threads", "go:threads:destroyed", ["-threads", "10", "-churn-max"], "threads/s",
                 ["unobserved", "record"], "threads -threads 10 -churn-max"),
        ]
    scale = ["unobserved", "floor", "top"]
    gor = ["unobserved", "top", "top --goroutines"]
    return [
        Case("http", "http", [], "req/s", MAIN_OBS, "httpserver + wrk -t1 -c32 (loopback)"),
        Case("pingpong", "go:pingpong:round_trips", [], "round trips/s", MAIN_OBS,
             "pingpong, 4 pairs, GOMAXPROCS=2"),
        Case("threads", "go:threads:destroyed", ["-threads", "100", "-churn-max"], "threads/s",
             MAIN_OBS + ["top tiny ring"], "threads: 100 steady + churn as fast as possible"),
        # scaling
        Case("threads-10", "go:threads:destroyed", ["-threads", "10", "-churn-max"], "threads/s", scale,
             "threads: 10 steady + max churn", scaling=True),
        Case("threads-1000", "go:threads:destroyed", ["-threads", "1000", "-churn-max"], "threads/s", scale,
             "threads: 1000 steady + max churn", scaling=True),
        Case("steady-1000", "go:threads:sleeps", ["-threads", "1000", "-churn", "100"], "sleeps/s",
             ["unobserved", "top", "record", "top offcpu-min 200ms"],
             "threads: 1000 steady (10k nanosleeps/s) + 100 threads/s churn",
             scaling=True),
        Case("goroutines-1k", "go:pingpong:round_trips", ["-idle", "1000"], "round trips/s", gor,
             "pingpong + 1,000 parked goroutines", scaling=True),
        Case("goroutines-10k", "go:pingpong:round_trips", ["-idle", "10000"], "round trips/s", gor,
             "pingpong + 10,000 parked goroutines", scaling=True),
        Case("goroutines-100k", "go:pingpong:round_trips", ["-idle", "100000"], "round trips/s", gor,
             "pingpong + 100,000 parked goroutines", scaling=True),
        Case("pingpong-P1", "go:pingpong:round_trips", ["-procs", "1"], "round trips/s", scale,
             "pingpong, GOMAXPROCS=1", scaling=True),
        Case("http-P1", "http", [], "req/s", scale, "httpserver GOMAXPROCS=1 + wrk",
             env={"GOMAXPROCS": "1"}, scaling=True),
    ]


# ---------------------------------------------------------------- summary
def summarize(results, case_list, all_obs):
    """Per case and observer: the median throughput over the rounds and its ratio to the
    unobserved median; the spread is every round's throughput over that median (min-max).
    The same for the work done per target CPU-second."""
    summary = []
    for c in case_list:
        def med(o, k):
            v = [r[k] for r in results if r["case"] == c.name and r["observer"] == o and k in r]
            return statistics.median(v) if v else None
        base, effb = med("unobserved", "throughput"), med("unobserved", "work_per_cpu_s")
        for o in c.observers:
            runs = [r for r in results if r["case"] == c.name and r["observer"] == o]
            ok = [r for r in runs if "throughput" in r]
            row = {"case": c.name, "observer": o, "unit": c.unit, "runs": len(runs), "ok": len(ok),
                   "note": all_obs[o].note, "shows": all_obs[o].shows}
            errs = [r["error"] for r in runs if "error" in r]
            if errs:
                row["error"] = errs[0]
            if ok:
                row["throughput"] = statistics.median(r["throughput"] for r in ok)
                if base:
                    ratios = [r["throughput"] / base for r in ok]
                    row["ratio"] = row["throughput"] / base
                    row["ratio_min"], row["ratio_max"] = min(ratios), max(ratios)
                    row["overhead_pct"] = 100 * (1 - row["ratio"])
                eff = [r["work_per_cpu_s"] for r in ok if "work_per_cpu_s" in r]
                if eff and effb:
                    row["cpu_ratio"] = statistics.median(eff) / effb
                    row["cpu_ratio_min"], row["cpu_ratio_max"] = min(eff) / effb, max(eff) / effb
                    # extra target CPU per unit of work, %
                    row["cpu_overhead_pct"] = 100 * (1 / row["cpu_ratio"] - 1)
                    row["target_cpu_s"] = statistics.median(r["target_cpu_s"] for r in ok if "target_cpu_s" in r)
                for k in ("obs_cpu_pct", "obs_rss_mb", "switches_per_s", "syscalls_per_s", "events_per_s"):
                    v = [r[k] for r in ok if r.get(k) is not None]
                    if v:
                        row[k] = statistics.median(v)
                d = [r["drops"] for r in ok if r.get("drops") is not None]
                if d:
                    row["drops"] = max(d)
            summary.append(row)
    return summary


# Two-sided 95% Student t quantiles by degrees of freedom (1..10; 1.96 beyond).
T95 = [None, 12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23]


def per_round(results, case, obs, metric):
    """{round: overhead %} of one configuration, each round against that round's own
    unobserved run (the configurations of a round run back to back: a paired design)."""
    key = "throughput" if metric == "overhead_pct" else "work_per_cpu_s"
    runs = {r["round"]: r.get(key) for r in results if r["case"] == case and r["observer"] == obs and r.get(key)}
    base = {r["round"]: r.get(key) for r in results
            if r["case"] == case and r["observer"] == "unobserved" and r.get(key)}
    out = {}
    for rnd, v in runs.items():
        b = base.get(rnd)
        if b:
            out[rnd] = 100 * (1 - v / b) if metric == "overhead_pct" else 100 * (b / v - 1)
    return out


def paired(margins):
    """Mean of the per-round margins (limit - measured, points) with its 95% confidence
    interval; the verdict is decided only when the interval is all on one side of 0."""
    n = len(margins)
    if n < 2:
        return None
    m = statistics.mean(margins)
    sd = statistics.stdev(margins)
    t = T95[n - 1] if n - 1 < len(T95) else 1.96
    half = t * sd / n ** 0.5
    verdict = "PASS" if m - half > 0 else "MISS" if m + half < 0 else "undecided"
    return {"n": n, "margin": round(m, 1), "ci": [round(m - half, 1), round(m + half, 1)], "verdict": verdict}


def budgets(summary, metric="overhead_pct", results=None):
    """The overhead budgets, checked on this run's own figures. metric: "overhead_pct" (wall
    throughput lost) or "cpu_overhead_pct" (extra target CPU per unit of work). With the
    runs (`results`), each comparison also gets a paired test over the rounds: the margin
    (limit - measured) of every round, its mean and 95% confidence interval, and whether
    the noise lets it decide."""
    get = {(r["case"], r["observer"]): r for r in summary}
    out = []

    def pr(case, o):
        return per_round(results, case, o, metric) if results else {}

    def oh(case, o):
        r = get.get((case, o))
        return r.get(metric) if r else None

    for case in ("http", "pingpong", "threads"):
        for o, fl in (("top", "floor"), ("record", "floor"), ("top -S", "floor -S")):
            a, f = oh(case, o), oh(case, fl)
            if a is None or f is None:
                continue
            limit = 1.25 * max(f, 0) + 2
            ra, rf = pr(case, o), pr(case, fl)
            margins = [1.25 * max(rf[k], 0) + 2 - ra[k] for k in ra if k in rf]
            out.append({"budget": f"{o} <= 1.25 x {fl} + 2 pts", "metric": metric, "case": case, "value": round(a, 1),
                        "limit": round(limit, 1), "pass": a <= limit, "paired": paired(margins)})
        for o, alts in (("top", ("bpftrace", "perf sched record")),
                        ("top -S", ("bpftrace -S", "perf trace -s")),
                        ("top --goroutines", ("runtime/trace",))):
            a = oh(case, o)
            for alt in alts:
                b = oh(case, alt)
                if a is None or b is None:
                    continue
                ra, rb = pr(case, o), pr(case, alt)
                margins = [rb[k] - ra[k] for k in ra if k in rb]
                out.append({"budget": f"{o} costs less than {alt}", "metric": metric, "case": case, "value": round(a, 1),
                            "limit": round(b, 1), "pass": a < b, "paired": paired(margins)})
    if metric != "overhead_pct":
        return out
    for r in summary:
        if r["observer"] in ("top", "top -S", "record", "top --goroutines") and "drops" in r:
            out.append({"budget": "zero drops at default settings", "case": r["case"],
                        "observer": r["observer"], "value": r["drops"], "limit": 0, "pass": r["drops"] == 0})
    tiny = get.get(("threads", "top tiny ring"))
    if tiny and "drops" in tiny:
        out.append({"budget": "counted drop report past the default (4 KiB ring)", "case": "threads",
                    "value": tiny["drops"], "limit": ">0 reported", "pass": tiny["drops"] > 0})
    st = get.get(("steady-1000", "top"))
    if st and st.get("obs_cpu_pct") is not None:
        out.append({"budget": "observer < 5% of a core at 1 s refresh, 1,000 threads (first frames: the run's "
                              "window from the first frame, attach warm-up in it)", "case": "steady-1000",
                    "value": round(st["obs_cpu_pct"], 1), "limit": 5, "pass": st["obs_cpu_pct"] < 5})
    for case in ("threads", "steady-1000"):
        r = get.get((case, "top"))
        ev = r and ((r.get("switches_per_s") or 0) + (r.get("syscalls_per_s") or 0))
        if r and r.get("obs_cpu_pct") is not None and ev:
            out.append({"budget": "live observer CPU per event handled (us; 1 us budget is the replay's)",
                        "case": case, "value": round(r["obs_cpu_pct"] / 100 * 1e6 / ev, 2), "limit": "-",
                        "pass": True, "info": True})
    if st and st.get("obs_rss_mb") is not None:
        out.append({"budget": "observer < 64 MB RSS, 1,000 threads", "case": "steady-1000",
                    "value": round(st["obs_rss_mb"], 1), "limit": 64, "pass": st["obs_rss_mb"] < 64})
    return out


def fmt(v, spec):
    """format(v, spec), or a right-aligned "-" of the same width when there is no value."""
    if v is None:
        w = re.match(r"\d*", spec).group(0)
        return "-".rjust(int(w) if w else 1)
    return format(v, spec)


def table(summary, bud):
    lines = []
    hdr = (f"{'case':<16} {'observer':<18} {'throughput':>12} {'ratio':>6} {'(min-max)':>11} "
           f"{'slowdown':>8} {'cpu/work':>8} {'(min-max)':>11} {'obs CPU%':>8} {'RSS MB':>7} {'events/s':>9} "
           f"{'drops':>6}")
    lines += [hdr, "-" * len(hdr)]
    last = None
    for r in summary:
        if last and r["case"] != last:
            lines.append("")
        last = r["case"]
        if "ratio" not in r and "throughput" not in r:
            lines.append(f"{r['case']:<16} {r['observer']:<18} FAILED: {r.get('error', 'no result')[:90]}")
            continue
        spread = f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f}" if "ratio_min" in r else ""
        cspread = f"{r['cpu_ratio_min']:.2f}-{r['cpu_ratio_max']:.2f}" if "cpu_ratio_min" in r else ""
        ev = r.get("events_per_s") or (
            (r.get("switches_per_s") or 0) + (r.get("syscalls_per_s") or 0) if "switches_per_s" in r else None)
        lines.append(f"{r['case']:<16} {r['observer']:<18} {fmt(r.get('throughput'), '12.0f')} "
                     f"{fmt(r.get('ratio'), '6.3f')} {spread:>11} "
                     f"{fmt(r.get('overhead_pct'), '7.1f')}% {fmt(r.get('cpu_overhead_pct'), '+7.1f')}% {cspread:>11} "
                     f"{fmt(r.get('obs_cpu_pct'), '8.1f')} "
                     f"{fmt(r.get('obs_rss_mb'), '7.1f')} {fmt(ev, '9.0f')} {fmt(r.get('drops'), '6d')}")
    if bud:
        lines += ["", "budgets (this run's figures):"]
        for b in bud:
            who = f"{b['case']}" + (f" / {b['observer']}" if "observer" in b else "")
            m = {"overhead_pct": "wall", "cpu_overhead_pct": "cpu"}.get(b.get("metric"), "")
            pv = b.get("paired")
            pt = f"  paired: {pv['verdict']} (margin {pv['margin']}, 95% CI {pv['ci'][0]}..{pv['ci'][1]})" if pv else ""
            verdict = "INFO" if b.get("info") else "PASS" if b["pass"] else "MISS"
            lines.append(f"  {verdict}  {m:<4} {b['budget']:<48} {who:<26} "
                         f"{b['value']} vs {b['limit']}{pt}")
    return "\n".join(lines)


def markdown(doc):
    """The results file as the Markdown tables of docs/performance.md."""
    m = doc["machine"]
    out = [f"Run {doc['date']}: `{doc['command']}`, {doc['wall_s']:.0f} s wall; {doc['rounds']} rounds of "
           f"{doc['duration_s']} s (scaling cases: {doc['scale_rounds']} of {doc.get('scale_duration_s', '?')} s).",
           f"Machine: {m.get('cpu', '?')}, {m['cpus']} CPUs, kernel {m['kernel']}; {m.get('bpftrace', '')}, "
           f"{m.get('perf', '')}, {m.get('wrk', '')}.", ""]
    descs = {c["name"]: (c["desc"], c["unit"]) for c in doc["cases"]}
    out += ["| case | observer | throughput | ratio (min–max) | slowdown | target CPU per unit of work "
            "(min–max) | observer CPU % | observer RSS MB | events/s | drops |",
            "|---|---|---:|---|---:|---|---:|---:|---:|---:|"]
    for r in doc["summary"]:
        name = r["case"]
        if "throughput" not in r:
            out.append(f"| {name} | {r['observer']} | failed: {r.get('error', '?')[:80]} | | | | | | | |")
            continue
        spread = f"{r['ratio']:.3f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f})" if "ratio" in r else "-"
        ev = r.get("events_per_s") or (
            (r.get("switches_per_s") or 0) + (r.get("syscalls_per_s") or 0) if "switches_per_s" in r else None)
        cpu = (f"{r['cpu_overhead_pct']:+.1f}% ({1 / r['cpu_ratio_max'] - 1:+.0%}–{1 / r['cpu_ratio_min'] - 1:+.0%})"
               if "cpu_ratio" in r else "-")
        out.append(f"| {name} | {r['observer']} | {r['throughput']:,.0f} {descs[name][1]} | {spread} | "
                   f"{r.get('overhead_pct', 0):.1f}% | {cpu} | {fmt(r.get('obs_cpu_pct'), '.1f').strip()} | "
                   f"{fmt(r.get('obs_rss_mb'), '.1f').strip()} | {fmt(ev, ',.0f').strip()} | "
                   f"{fmt(r.get('drops'), 'd').strip()} |")
    out += ["", "| budget | on | case | measured | limit | median verdict | paired over rounds: margin (95% CI) |",
            "|---|---|---|---:|---:|---|---|"]
    for b in doc["budgets"]:
        who = b["case"] + (f" / {b['observer']}" if "observer" in b else "")
        m = {"overhead_pct": "wall throughput", "cpu_overhead_pct": "CPU per unit of work"}.get(b.get("metric"), "")
        pv = b.get("paired")
        pt = (f"{'**MISS**' if pv['verdict'] == 'MISS' else pv['verdict']}: {pv['margin']:+} "
              f"({pv['ci'][0]:+} .. {pv['ci'][1]:+})" if pv else "")
        verdict = "info" if b.get("info") else "PASS" if b["pass"] else "**MISS**"
        out.append(f"| {b['budget']} | {m} | {who} | {b['value']} | {b['limit']} | {verdict} | {pt} |")
    rp = doc.get("replay")
    if rp:
        out += ["", "Observer CPU per ring-buffer event (`ss-replay-bench`: a recording replayed through the "
                "model, detectors and frame JSON, decoding subtracted; median of its passes):", "",
                "| recording | ring-buffer events | frames | ns per event | budget | |", "|---|---:|---:|---:|---:|---|"]
        for x in rp:
            if "ns_per_event" not in x:
                out.append(f"| {x['name']} | failed: {x.get('error', '?')[:80]} | | | | |")
                continue
            out.append(f"| {x['name']} | {x['raw_records']:,} | {x['frames']} | {x['ns_per_event']:,.0f} | 1,000 | "
                       f"{'PASS' if x['ns_per_event'] < 1000 else '**MISS**'} |")
    ob = doc.get("observer")
    if ob:
        out += ["", f"The observer's own CPU in steady state (`scripts/observer_cpu.py`: `top --json`, CPU over "
                f"{ob[0]['window_s']} s starting {ob[0]['settle_s']} s after the first frame, median of "
                f"{ob[0]['rounds']} attaches; attach = CPU from start to first frame, paid once):", "",
                observer_table(ob, markdown=True)]
    kern = doc.get("kernel")
    if kern:
        def ns(v):
            return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"
        out += ["", "The kernel side (`kernel.bpf_stats_enabled` on for this section only): each observer's "
                "BPF run time per unit of the target's work, and that as a share of the target's own CPU "
                "per unit (its unobserved runs in the same section); the three costliest programs:", "",
                "| case | observer | BPF ns per unit (min–max) | % of the target's CPU | programs (ns per unit) |",
                "|---|---|---:|---:|---|"]
        for r in kern:
            if "error" in r:
                out.append(f"| {r['case']} | {r['observer']} | failed: {r['error'][:80]} | | |")
                continue
            top3 = sorted(r["progs"].items(), key=lambda x: -x[1])[:3]
            pct = f"{r['pct_of_target_cpu']:.2f}%" if r.get("pct_of_target_cpu") is not None else "-"
            out.append(f"| {r['case']} | {r['observer']} | {ns(r['bpf_ns_per_unit'])} ({ns(r['bpf_ns_min'])}–"
                       f"{ns(r['bpf_ns_max'])}) | {pct} | " + ", ".join(f"`{n}` {ns(v)}" for n, v in top3) + " |")
        out += ["", "| kernel-side budget | case | value | limit | | per-thread state alone |",
                "|---|---|---:|---:|---|---|"]
        for b in doc.get("kernel_budgets", []):
            st = "" if "state" not in b else f"{b['state']}" + (" (over)" if b["state_over"] else "")
            out.append(f"| {b['budget']} | {b['case']} | {b['value']} | {b['limit']} | "
                       f"{'PASS' if b['pass'] else '**MISS**'} | {st} |")
    out += ["", "Cases:", ""] + [f"- `{n}`: {d[0]} ({d[1]})" for n, d in descs.items()]
    return "\n".join(out)


OBSERVER_CASES = [
    ("steady-1000", ["-threads", "1000", "-churn", "100"], 2),  # (name, workload args, budget %)
    ("threads churn", ["-threads", "100", "-churn-max"], 5),
]


def observer_bench(build, tmp, rounds=2, settle=10, window=15):
    """The observer's own CPU in steady state, apart from its attach (scripts/observer_cpu.py):
    `top --json` on each OBSERVER_CASES workload, CPU per observer thread over `window` s
    starting `settle` s after the first frame, and the CPU from start to first frame."""
    sys.path.insert(0, os.path.join(SRC, "scripts"))
    import observer_cpu  # noqa: E402 — the same measure as the A/B script
    out = []
    ss = os.path.join(build, "schedscope")
    for name, args, limit in OBSERVER_CASES:
        runs = []
        for r in range(rounds):
            tag = f"obs-{re.sub(r'[^a-z0-9]+', '_', name)}-{r}"
            try:
                x = observer_cpu.one_run(ss, [os.path.join(build, "workloads", "threads")] + args,
                                         settle, window, tmp, tag, [])
            except Exception as e:  # noqa: BLE001 — reported, the bench goes on
                x = {"error": f"{type(e).__name__}: {e}"}
            runs.append(x)
        ok = [x for x in runs if "error" not in x]
        row = {"name": name, "args": args, "rounds": rounds, "settle_s": settle, "window_s": window,
               "limit_pct": limit, "runs": runs}
        if ok:
            for k in ("total_pct", "main_pct", "sampler_pct", "attach_cpu_s", "attach_wall_s", "first2s_pct", "events_per_s",
                      "created_per_s", "rss_mb"):
                v = [x[k] for x in ok if x.get(k) is not None]
                if v:
                    row[k] = round(statistics.median(v), 3)
            row["total_min"] = round(min(x["total_pct"] for x in ok), 2)
            row["total_max"] = round(max(x["total_pct"] for x in ok), 2)
        else:
            row["error"] = runs[-1].get("error", "?")
        out.append(row)
        print(f"  observer {name:<14} " + (
            f"steady {row['total_pct']:.2f}% of a core (main {row['main_pct']:.2f}, sampler {row['sampler_pct']:.2f}; "
            f"{row['total_min']:.2f}-{row['total_max']:.2f}), attach {row['attach_cpu_s']:.2f} CPU-s"
            if ok else "ERROR " + row["error"][:120]), flush=True)
    return out


def observer_table(rows, markdown=False):
    """The steady-state observer CPU section (observer_bench), as text or Markdown."""
    hdr = ["case", "steady CPU % of a core (min–max)", "main thread", "P sampler", "attach CPU-s (wall s)",
           "2 s after first frame %",
           "workload threads/s", "RSS MB", "budget", ""]
    lines = []
    for r in rows:
        if "total_pct" not in r:
            lines.append([r["name"], "failed: " + r.get("error", "?")[:80]] + [""] * 8)
            continue
        ok = r["total_pct"] < r["limit_pct"]
        lines.append([r["name"], f"{r['total_pct']:.2f} ({r['total_min']:.2f}–{r['total_max']:.2f})",
                      f"{r['main_pct']:.2f}", f"{r['sampler_pct']:.2f}",
                      f"{r['attach_cpu_s']:.2f} ({r['attach_wall_s']:.1f})", f"{r.get('first2s_pct', 0):.1f}",
                      f"{r.get('created_per_s', 0):,.0f}",
                      f"{r.get('rss_mb', 0):.1f}", f"< {r['limit_pct']}%",
                      "PASS" if ok else ("**MISS**" if markdown else "MISS")])
    if markdown:
        return "\n".join(["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)] +
                          ["| " + " | ".join(x) + " |" for x in lines])
    return "\n".join("  " + "  ".join(x) for x in [hdr] + lines)


REPLAY_CASES = [
    ("threads churn", ["-threads", "100", "-churn-max"]),
    ("steady-1000", ["-threads", "1000", "-churn", "100"]),
]


KERNEL_CASES = ("threads", "http", "pingpong")
KERNEL_OBS = ["unobserved", "floor", "floor state", "top", "record", "bpftrace", "floor -S", "floor state -S",
              "top -S", "bpftrace -S"]


def kernel_bench(build, tmp, all_cases, all_obs, rounds=2, duration=2, only_cases=None, obs_names=None):
    """The kernel side, program by program: with the kernel's BPF statistics on, the run time
    of each observer's programs per unit of the target's work, as a share of the target's own
    CPU per unit (unobserved, same section). Unlike throughput, these are steady round to
    round: they decide the kernel-side part of the target-CPU budget lines. The statistics
    add two clock reads per program run to every observer alike. `only_cases` and
    `obs_names` narrow it (an A/B of one case and a few observers); "unobserved" is always
    run, since every share is of its CPU per unit."""
    cs = [c for c in all_cases if c.name in KERNEL_CASES and (not only_cases or c.name in only_cases)]
    kobs = KERNEL_OBS if not obs_names else ["unobserved"] + [o for o in obs_names if o != "unobserved"]
    plan = []
    for r in range(rounds):
        for c in cs:
            k = r % len(kobs)
            plan += [(r, c, o) for o in kobs[k:] + kobs[:k]]
    old = open(bpf_cost.STATS).read().strip()
    runs = []
    try:
        with open(bpf_cost.STATS, "w") as f:
            f.write("1")
        BPF_STATS["on"] = True
        for i, (r, c, o) in enumerate(plan):
            tag = f"k{r}-{c.name}-{re.sub(r'[^a-z0-9]+', '_', o)}"
            runner = run_http if c.kind == "http" else run_go
            try:
                res = runner(build, c, all_obs[o], duration, tmp, tag, ready_timeout=30)
            except Exception as e:  # noqa: BLE001
                res = {"error": f"{type(e).__name__}: {e}"}
            res.update({"round": r, "case": c.name, "observer": o})
            runs.append(res)
            print(f"  [kernel {i + 1}/{len(plan)}] round {r + 1} {c.name:<10} {o:<14} "
                  + (f"{res['bpf_ns'] / res['units']:.2f} ns of BPF per {c.unit.split('/')[0]}"
                     if res.get("units") and "bpf_ns" in res else res.get("error", "")[:100]), flush=True)
    finally:
        BPF_STATS["on"] = False
        with open(bpf_cost.STATS, "w") as f:
            f.write(old)
    out = []
    for c in cs:
        base = [1e9 / r["work_per_cpu_s"] for r in runs
                if r["case"] == c.name and r["observer"] == "unobserved" and r.get("work_per_cpu_s")]
        cpu_ns = statistics.median(base) if base else None
        for o in kobs[1:]:
            ok = [r for r in runs if r["case"] == c.name and r["observer"] == o and r.get("units") and "bpf_ns" in r]
            row = {"case": c.name, "observer": o, "unit": c.unit.split("/")[0], "target_cpu_ns_per_unit": cpu_ns}
            if ok:
                per = [r["bpf_ns"] / r["units"] for r in ok]
                row["bpf_ns_per_unit"] = statistics.median(per)
                row["bpf_ns_min"], row["bpf_ns_max"] = min(per), max(per)
                if cpu_ns:
                    row["pct_of_target_cpu"] = 100 * row["bpf_ns_per_unit"] / cpu_ns
                progs = {}
                for r in ok:
                    for n, x in r["bpf_progs"].items():
                        progs.setdefault(n, []).append(x["ns"] / r["units"])
                row["progs"] = {n: statistics.median(v) for n, v in progs.items()}
            else:
                row["error"] = next((r["error"] for r in runs if r["case"] == c.name and r["observer"] == o
                                     and "error" in r), "no run")
            out.append(row)
    return out


def kernel_budgets(rows):
    """Budget lines of the kernel side, from kernel_bench's rows (steady figures: no CI).

    Each floor line also carries `state`: what the floor with state (`floor state`: one
    state slot per thread; `floor state -S` for the -S line: also each call's start per CPU,
    a count and total latency; nothing sent) costs against the same line. A line that
    `state` is over too cannot be met by any observer of per-thread off-CPU time (and call
    latency) on this machine."""
    get = {(r["case"], r["observer"]): r.get("pct_of_target_cpu") for r in rows}
    bud = []
    for case in KERNEL_CASES:
        for o, fl in (("top", "floor"), ("record", "floor"), ("top -S", "floor -S")):
            v, f = get.get((case, o)), get.get((case, fl))
            if v is not None and f is not None:
                lim = 1.25 * f + 2
                b = {"budget": f"kernel side: {o} <= 1.25 x {fl} + 2 pts of the target's CPU", "case": case,
                     "value": round(v, 2), "limit": round(lim, 2), "pass": v <= lim}
                st = get.get((case, fl.replace("floor", "floor state")))
                if st is not None:
                    b["state"] = round(st, 2)
                    b["state_over"] = st > lim
                bud.append(b)
        for o, bt in (("top", "bpftrace"), ("top -S", "bpftrace -S")):
            v, b = get.get((case, o)), get.get((case, bt))
            if v is not None and b is not None:
                bud.append({"budget": f"kernel side: {o} costs less than {bt}", "case": case,
                            "value": round(v, 2), "limit": round(b, 2), "pass": v < b})
    return bud


def kernel_table(rows, bud):
    out = ["kernel side: BPF run time per unit of the target's work (kernel.bpf_stats_enabled), "
           "and as a share of the target's own CPU per unit (unobserved)",
           f"{'case':<10}{'observer':<14}{'ns/unit':>10}{'(min-max)':>18}{'% target CPU':>14}  top programs (ns/unit)",
           "-" * 110]
    for r in rows:
        if "error" in r:
            out.append(f"{r['case']:<10}{r['observer']:<14}  ERROR {r['error'][:80]}")
            continue
        def ns(v):
            return f"{v:.0f}" if v >= 100 else f"{v:.2f}"
        top3 = sorted(r["progs"].items(), key=lambda x: -x[1])[:3]
        pct = f"{r['pct_of_target_cpu']:.2f}%" if r.get("pct_of_target_cpu") is not None else "-"
        out.append(f"{r['case']:<10}{r['observer']:<14}{ns(r['bpf_ns_per_unit']):>10}"
                   f"{ns(r['bpf_ns_min']):>9}-{ns(r['bpf_ns_max']):<8}{pct:>14}  "
                   + ", ".join(f"{n} {ns(v)}" for n, v in top3))
    out.append("")
    for b in bud:
        out.append(f"  {'PASS' if b['pass'] else 'MISS'}  {b['budget']:<62} {b['case']:<10} "
                   f"{b['value']} vs {b['limit']}" + state_note(b))
    return "\n".join(out)


def state_note(b):
    """For a floor line that is missed: where per-thread state alone stands against it."""
    if b["pass"] or "state" not in b:
        return ""
    return (f" (per-thread state alone: {b['state']}, " +
            ("over the line too)" if b["state_over"] else "under the line)"))


def replay_bench(build, tmp, seconds=6):
    """Records each REPLAY_CASES workload with `schedscope record` for `seconds`, then
    replays it with ss-replay-bench: the observer's userspace CPU per ring-buffer event."""
    out = []
    for name, args in REPLAY_CASES:
        path = os.path.join(tmp, f"replay-{re.sub(r'[^a-z0-9]+', '_', name)}.sched")
        wl = subprocess.Popen([os.path.join(build, "workloads", "threads"), "-duration", f"{seconds + 4}s"] + args,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rec = subprocess.run([os.path.join(build, "schedscope"), "record", "-q", "-p", str(wl.pid),
                                  "-d", f"{seconds}s", "-o", path], capture_output=True, text=True, timeout=60)
        finally:
            wl.kill()
            wl.wait()
        if rec.returncode != 0:
            out.append({"name": name, "error": "record: " + rec.stderr[-200:]})
            continue
        r = subprocess.run([os.path.join(build, "ss-replay-bench"), "--check", "--passes", "7", path],
                           capture_output=True, text=True, timeout=300)
        x = {"name": name, "output": r.stdout.strip()}
        for k in ("raw_records", "frames", "ns_per_event", "best_ns_per_event"):
            m = re.search(rf"\b{k}=([\d.]+)", r.stdout)
            if m:
                x[k] = float(m.group(1)) if "ns" in k else int(m.group(1))
        if r.returncode != 0 or "ns_per_event" not in x:
            x["error"] = (r.stdout + r.stderr)[-200:]
            x.pop("ns_per_event", None)
        out.append(x)
        print(f"  replay {name:<16} " + (f"{x['ns_per_event']:.0f} ns/event ({x['raw_records']} events)"
                                          if "ns_per_event" in x else "ERROR " + x["error"]), flush=True)
    return out


def machine():
    info = {"kernel": platform.release(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info["cpu"] = m.group(1) if m else "?"
    except OSError:
        pass
    for tool, argv in (("bpftrace", ["bpftrace", "--version"]), ("perf", ["perf", "--version"]),
                       ("wrk", ["wrk", "-v"]), ("go", None)):
        if argv:
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                info[tool] = (r.stdout + r.stderr).strip().splitlines()[0].split(" Copyright")[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                info[tool] = "not available"
    return info


# ---------------------------------------------------------------- --annotations
ANN_BINARIES = (("go1.19", "annotated-stripped"), ("go1.23", "annotated-go1.23-stripped"))


def ann_run(build, binary, wl_flags, ss_flags, tmp, tag, ev):
    """One run of the annotated workload (-wait-stdin), observed by `top ss_flags` when
    ss_flags is not None; returns the workload's `ev` line, with `ss_hits`: the annotation
    uprobe hits of the observer's final frame (with --annotations)."""
    got = ann_run_once(build, binary, wl_flags, ss_flags, tmp, tag, ev)
    out = os.path.join(tmp, f"{tag}.out")
    if ss_flags and "--annotations" in ss_flags and "error" not in got and os.path.exists(out):
        with open(out) as f:
            frames = [json.loads(x) for x in f if x.startswith("{")]
        if frames and frames[-1].get("final") and "annotations" in frames[-1]:
            got["ss_hits"] = frames[-1]["annotations"]["hits"]
    return got


def ann_run_once(build, binary, wl_flags, ss_flags, tmp, tag, ev):
    wl = subprocess.Popen([os.path.join(build, "workloads", binary), "-wait-stdin", "-requests", "0",
                           "-health", "0", "-bg", "0", *wl_flags], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    obs = None
    try:
        ready = json.loads(wl.stdout.readline())
        if ss_flags is not None:
            out = os.path.join(tmp, f"{tag}.out")
            with open(out, "w") as o, open(os.path.join(tmp, f"{tag}.err"), "w") as e:
                obs = subprocess.Popen([os.path.join(build, "schedscope"), "top", "--batch", "--json",
                                        "-i", "250ms", "-p", str(ready["pid"]), *ss_flags],
                                       stdout=o, stderr=e, stdin=subprocess.DEVNULL, start_new_session=True)
            if not wait_file(out, r"^\{", 30, obs):
                return {"error": "schedscope did not attach: " + tail(os.path.join(tmp, f"{tag}.err"))}
        wl.stdin.write("go\n")
        wl.stdin.flush()
        got = None
        for line in wl.stdout:
            o = json.loads(line)
            if o.get("ev") == ev:
                got = o
        wl.wait(timeout=60)
        return got or {"error": f"no {ev} line (exit {wl.returncode})"}
    finally:
        if obs and obs.poll() is None:
            os.killpg(obs.pid, signal.SIGINT)
            obs.wait(timeout=20)
        if wl.poll() is None:
            wl.kill()
            wl.wait()


def annotations_bench(build, tmp, rounds, loop_calls, paced_rate, paced_for):
    """The cost of one annotated call (an empty trace.WithRegion: 2 runtime calls) with the
    program's tracing off, with runtime/trace on, and observed by --annotations (medians of
    `rounds` runs, configurations interleaved); then the duty cycle's effect: a program
    making `paced_rate` WithRegion calls a second, its CPU per second unobserved, under top,
    under top --annotations (always attached) and with --annotations-duty 250ms/1s; the
    duty cycle's share is its extra CPU over top's divided by --annotations' (ideally
    ON/PERIOD = 0.25)."""
    rows = []
    for tc, binary in ANN_BINARIES:
        if not os.path.exists(os.path.join(build, "workloads", binary)):
            rows.append({"toolchain": tc, "error": f"{binary} not built"})
            continue
        trace = os.path.join(tmp, "ann.trace")
        per_call = {
            "tracing off": (["-loop", str(loop_calls)], None),
            "runtime/trace on": (["-loop", str(loop_calls), "-runtime-trace", trace], None),
            "--annotations": (["-loop", str(loop_calls // 20)], ["--annotations", "--annotations-max-rate", "0"]),
        }
        paced = {
            "paced, unobserved": (None,),
            "paced, top": ([],),
            "paced, --annotations": (["--annotations", "--annotations-max-rate", "0"],),
            "paced, --annotations-duty 250ms/1s": (["--annotations", "--annotations-max-rate", "0",
                                                    "--annotations-duty", "250ms/1s"],),
        }
        got = {k: [] for k in list(per_call) + list(paced)}
        hits = {}
        for r in range(rounds):
            names = list(per_call)
            k = r % len(names)
            for name in names[k:] + names[:k]:
                wlf, ssf = per_call[name]
                o = ann_run(build, binary, wlf, ssf, tmp, f"ann-{tc}-{r}-{len(got[name])}", "loop")
                if "ns_per_region" in o:
                    got[name].append(o["ns_per_region"])
            names = list(paced)
            k = r % len(names)
            for name in names[k:] + names[:k]:
                (ssf,) = paced[name]
                o = ann_run(build, binary, ["-paced", str(paced_rate), "-paced-for", f"{paced_for}s"], ssf,
                            tmp, f"ann-{tc}-{r}-p{len(got[name])}", "paced")
                if "cpu_ns" in o:
                    got[name].append(o["cpu_ns"] / (o["elapsed_ns"] / 1e9) / 1e6)  # target CPU ms/s
                if "ss_hits" in o:
                    hits.setdefault(name, []).append(o["ss_hits"])
            if os.path.exists(trace):
                os.unlink(trace)
        row = {"toolchain": tc, "rounds": rounds, "loop_calls": loop_calls, "paced_rate": paced_rate}
        for name, v in got.items():
            row[name] = round(statistics.median(v), 1) if v else None
        # The duty cycle's share of the annotation uprobes' cost: over top without them (the
        # scheduler tracepoints and samplers cost the target something of their own).
        base, on = row["paced, top"], row["paced, --annotations"]
        duty = row["paced, --annotations-duty 250ms/1s"]
        if None not in (base, on, duty) and on > base:
            row["duty_extra_cpu_share"] = round((duty - base) / (on - base), 2)
        # The same share in uprobe hits: counted, not timed, so one round decides it (the
        # workload calls at a steady rate for whole periods: ideally ON/PERIOD).
        h_on, h_duty = hits.get("paced, --annotations"), hits.get("paced, --annotations-duty 250ms/1s")
        if h_on and h_duty and statistics.median(h_on) > 0:
            row["duty_hits_share"] = round(statistics.median(h_duty) / statistics.median(h_on), 3)
        rows.append(row)
    return rows


def annotations_table(rows):
    out = ["--annotations: ns per trace.WithRegion (2 annotation calls), median; target CPU ms/s "
           "of a program making WithRegion calls at a fixed rate"]
    out.append(f"{'toolchain':<10} {'tracing off':>12} {'trace on':>10} {'--annotations':>14} "
               f"{'paced CPU ms/s: unobserved':>27} {'top':>6} {'--annotations':>14} {'duty 250ms/1s':>14} "
               f"{'duty share':>11} {'duty hits share':>16}")
    for r in rows:
        if "error" in r:
            out.append(f"{r['toolchain']:<10} ERROR {r['error']}")
            continue
        f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        out.append(f"{r['toolchain']:<10} {f(r['tracing off']):>12} {f(r['runtime/trace on']):>10} "
                   f"{f(r['--annotations']):>14} {f(r['paced, unobserved']):>27} {f(r['paced, top']):>6} "
                   f"{f(r['paced, --annotations']):>14} {f(r['paced, --annotations-duty 250ms/1s']):>14} "
                   f"{r.get('duty_extra_cpu_share', '-'):>11} {r.get('duty_hits_share', '-'):>16}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--smoke", action="store_true", help="one short round of a few configurations")
    ap.add_argument("--rounds", type=int, help="rounds of the main matrix (default 4; smoke 1)")
    ap.add_argument("--scale-rounds", type=int, default=2, help="rounds of the scaling cases (default 2; smoke 1)")
    ap.add_argument("--duration", type=int, help="measured seconds per run (default 2; smoke 1)")
    ap.add_argument("--scale-duration", type=int, default=2, help="measured seconds of a scaling run (default 2)")
    ap.add_argument("--only", help="comma-separated case names to run (\"annotations\": the --annotations section, "
                    "\"observer\": the steady-state observer CPU section, \"kernel\": the kernel-side section)")
    ap.add_argument("--observers", help="comma-separated observers for every case instead of its own "
                    "(e.g. \"unobserved,floor,top,top --no-gc\"; see observers() for the names)")
    ap.add_argument("--json", help="results file (default BUILD/bench/results.json)")
    ap.add_argument("--markdown", metavar="RESULTS", help="print RESULTS (a results file) as Markdown and exit")
    ap.add_argument("--no-observer", action="store_true",
                    help="skip the steady-state observer CPU section (not in --smoke)")
    ap.add_argument("--no-kernel", action="store_true",
                    help="skip the kernel-side section (BPF run time per unit of work; not in --smoke)")
    ap.add_argument("--kernel-rounds", type=int, default=2, help="rounds of the kernel-side section (default 2)")
    ap.add_argument("--kernel-cases", help="comma-separated cases of the kernel-side section (default: "
                    + ", ".join(KERNEL_CASES) + ")")
    ap.add_argument("--kernel-observers", help="comma-separated observers of the kernel-side section (default: "
                    + ", ".join(KERNEL_OBS[1:]) + "; unobserved always runs)")
    ap.add_argument("--no-replay", action="store_true",
                    help="skip the replay microbenchmark (observer CPU per ring-buffer event; not in --smoke)")
    a = ap.parse_args()
    if a.markdown:
        with open(a.markdown) as f:
            print(markdown(json.load(f)))
        return 0
    build = os.path.abspath(a.build)
    rounds = a.rounds or (1 if a.smoke else 4)
    duration = a.duration or (1 if a.smoke else 2)
    out_json = a.json or os.path.join(build, "bench", "smoke.json" if a.smoke else "results.json")
    if os.geteuid() != 0:
        sys.exit("bench: needs root (BPF, perf, bpftrace)")
    for tool in ("wrk",):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (scripts/install-deps.sh installs it)")
    case_list = cases(a.smoke)
    if a.only:
        keep = set(a.only.split(","))
        case_list = [c for c in case_list if c.name in keep]
    tmp = tempfile.mkdtemp(prefix="schedscope-bench-")
    all_obs = observers(build, tmp)
    if a.observers:
        pick = [o.strip() for o in a.observers.split(",") if o.strip()]
        unknown = [o for o in pick if o not in all_obs]
        if unknown:
            sys.exit(f"bench: unknown observer(s) {unknown}; known: {sorted(all_obs)}")
        for c in case_list:
            c.observers = pick
    if a.kernel_observers:
        unknown = [o.strip() for o in a.kernel_observers.split(",") if o.strip() and o.strip() not in all_obs]
        if unknown:
            sys.exit(f"bench: unknown observer(s) {unknown}; known: {sorted(all_obs)}")
    if a.kernel_cases:
        unknown = [c.strip() for c in a.kernel_cases.split(",") if c.strip() and c.strip() not in KERNEL_CASES]
        if unknown:
            sys.exit(f"bench: unknown kernel-side case(s) {unknown}; known: {list(KERNEL_CASES)}")
    plan = []  # (round, case, observer)
    for r in range(max(rounds, a.scale_rounds)):
        order = []
        for c in case_list:
            if r >= (a.scale_rounds if c.scaling else rounds):
                continue
            obs = list(c.observers)
            k = r % len(obs)  # rotate the order each round
            order += [(r, c, o) for o in obs[k:] + obs[:k]]
        plan += order
    t_start = time.monotonic()
    results = []
    print(f"bench: {len(plan)} runs of {duration}s, {rounds} round(s) (scaling cases: "
          f"{a.scale_rounds} of {a.scale_duration}s), scratch {tmp}", flush=True)
    for i, (r, c, oname) in enumerate(plan):
        obs = all_obs[oname]
        tag = f"r{r}-{c.name}-{re.sub(r'[^a-z0-9]+', '_', oname)}"
        t0 = time.monotonic()
        runner = run_http if c.kind == "http" else run_go
        try:
            res = runner(build, c, obs, a.scale_duration if c.scaling else duration, tmp, tag, ready_timeout=30)
        except Exception as e:  # noqa: BLE001 — a broken run is reported, the bench goes on
            res = {"error": f"{type(e).__name__}: {e}"}
        res.update({"round": r, "case": c.name, "observer": oname, "secs": round(time.monotonic() - t0, 1)})
        results.append(res)
        thr = f"{res['throughput']:.0f} {c.unit}" if "throughput" in res else "ERROR " + res["error"][:120]
        print(f"  [{i + 1}/{len(plan)}] round {r + 1} {c.name:<16} {oname:<18} {thr}", flush=True)
        for f in os.listdir(tmp):  # keep the scratch small (traces, recordings)
            if f.endswith((".ssr", ".data", ".trace", ".txt")) or ".ssr" in f:
                try:
                    os.unlink(os.path.join(tmp, f))
                except OSError:
                    pass
    replay = [] if a.smoke or a.no_replay else replay_bench(build, tmp)
    obsb = None
    if not a.smoke and not a.no_observer and (not a.only or "observer" in a.only.split(",")):
        print("bench: steady-state observer CPU section", flush=True)
        obsb = observer_bench(build, tmp)
    kern = None
    if not a.smoke and not a.no_kernel and (not a.only or "kernel" in a.only.split(",")):
        print("bench: kernel-side section (BPF run time per unit of work)", flush=True)
        split = lambda v: [x.strip() for x in v.split(",") if x.strip()] if v else None  # noqa: E731
        kern = kernel_bench(build, tmp, cases(False), all_obs, rounds=a.kernel_rounds, duration=duration,
                            only_cases=split(a.kernel_cases), obs_names=split(a.kernel_observers))
    ann = None
    if not a.smoke and (not a.only or "annotations" in a.only.split(",")):
        print("bench: --annotations section", flush=True)
        ann = annotations_bench(build, tmp, rounds=max(1, rounds // 2 + 1), loop_calls=200000,
                                paced_rate=5000, paced_for=2)
    summary = summarize(results, case_list, all_obs)
    bud = budgets(summary, results=results) + budgets(summary, "cpu_overhead_pct", results)
    for r in obsb or []:
        if "total_pct" in r:
            bud.append({"budget": f"observer < {r['limit_pct']}% of a core, steady state ({r['settle_s']} s after "
                                  f"the first frame, {r['window_s']} s)", "case": r["name"],
                        "value": round(r["total_pct"], 2), "limit": r["limit_pct"],
                        "pass": r["total_pct"] < r["limit_pct"]})
            bud.append({"budget": "observer attach: CPU-s from start to first frame (once)", "case": r["name"],
                        "value": round(r["attach_cpu_s"], 2), "limit": "-", "pass": True, "info": True})
    doc = {"machine": machine(), "command": " ".join(sys.argv), "rounds": rounds,
           "scale_rounds": a.scale_rounds, "duration_s": duration, "scale_duration_s": a.scale_duration,
           "smoke": a.smoke,
           "wall_s": round(time.monotonic() - t_start, 1), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "cases": [{"name": c.name, "desc": c.desc, "unit": c.unit} for c in case_list],
           "summary": summary, "budgets": bud, "runs": results, "replay": replay}
    if ann is not None:
        doc["annotations"] = ann
    if obsb is not None:
        doc["observer"] = obsb
    if kern is not None:
        doc["kernel"] = kern
        doc["kernel_budgets"] = kernel_budgets(kern)
    os.makedirs(os.path.dirname(out_json), exist_ok=True)
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=1)
    print()
    for c in case_list:
        print(f"  {c.name:<16} {c.desc}")
    print()
    print(table(summary, bud))
    for x in replay:
        print(f"  {'PASS' if x.get('ns_per_event', 1e9) < 1000 else 'MISS'}  observer CPU per ring-buffer event "
              f"(replay, {x['name']}): " + (f"{x['ns_per_event']:.0f} ns vs 1000" if "ns_per_event" in x
                                            else "ERROR " + x.get("error", "")))
    if obsb is not None:
        print()
        print(observer_table(obsb))
    if kern is not None:
        print()
        print(kernel_table(kern, doc["kernel_budgets"]))
    if ann is not None:
        print()
        print(annotations_table(ann))
    print(f"\nbench: {len(results)} runs in {doc['wall_s']:.0f}s; results in {out_json}")
    shutil.rmtree(tmp, ignore_errors=True)
    failed = [r for r in summary if "throughput" not in r] + [r for r in (ann or []) if "error" in r] + \
        [r for r in (obsb or []) if "total_pct" not in r] + [r for r in (kern or []) if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
