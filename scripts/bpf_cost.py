#!/usr/bin/env python3
"""The kernel side's cost, program by program: where an observed process's time goes in
schedscope's BPF programs.

Turns on the kernel's BPF run-time statistics (sysctl kernel.bpf_stats_enabled, restored
after), starts the workload (default `threads -threads 100 -churn-max`, the thread churn
case of docs/performance.md), attaches an observer (`top --json` by default, or the
benchmark's floor: empty programs on the same hooks, or its bpftrace script) and, over --window seconds that
start --settle seconds after attach, reads every program the observer loaded
(`bpftool prog show`: run_cnt and run_time_ns; the GC sampler's timer callbacks, which
those statistics do not count, as `ss_gc_tick` from the counts they keep in their map).
Prints per program: runs per second, ns
per run, and the share of one CPU it takes, next to the workload's own rate (threads
created per second) and the observer's CPU; then the kernel-side ns per thread created.

Statistics add two clock reads to every run: the absolute ns are a little high, the
shares between programs are what the numbers are for. Needs root (BPF).

  sudo scripts/bpf_cost.py --build build                     (top on thread churn)
  sudo scripts/bpf_cost.py --build build --observer floor
  sudo scripts/bpf_cost.py --build build --rounds 3 -- -threads 1000 -churn 100
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import observer_cpu  # noqa: E402

STATS = "/proc/sys/kernel/bpf_stats_enabled"


def bpf_ids(pid, kind="prog_id"):
    """The ids of the BPF programs (kind prog_id) or maps (map_id) `pid` holds open or
    attached (from /proc/PID/fdinfo)."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if "bpf" not in os.readlink(f"/proc/{pid}/fd/{fd}"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith(kind + ":"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def gc_ticks_of(pid):
    """(ticks, run_ns) of the GC sampler's timer callbacks, summed over CPUs, from the
    `gc_timers` map `pid` holds; None without one. The kernel's statistics do not count a
    BPF timer's callbacks: the callback times itself into its CPU's entry."""
    out = subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True, text=True, check=True).stdout
    ids = bpf_ids(pid, "map_id")
    for m in json.loads(out):
        if m.get("id") in ids and m.get("name") == "gc_timers":
            dump = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(m["id"])],
                                  capture_output=True, text=True, check=True).stdout
            vals = [e["formatted"]["value"] for e in json.loads(dump)]
            return sum(v["ticks"] for v in vals), sum(v["run_ns"] for v in vals)
    return None


def progs_of(pid):
    """{prog name: (run_cnt, run_time_ns)} of the BPF programs `pid` holds (summed by name),
    and the GC sampler's timer callbacks as `ss_gc_tick` (ticks, their run time)."""
    ids = bpf_ids(pid)
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    res = {}
    for p in json.loads(out):
        if p.get("id") not in ids:
            continue
        name = p.get("name", str(p.get("id")))
        c, t = res.get(name, (0, 0))
        res[name] = (c + p.get("run_cnt", 0), t + p.get("run_time_ns", 0))
    ticks = gc_ticks_of(pid)
    if ticks:
        res["ss_gc_tick"] = ticks
    return res


def one_run(build, observer, wl_args, settle, window, extra, tmp):
    ticks = []
    wl = observer_cpu.start_workload([os.path.join(build, "workloads", "threads")] + wl_args,
                                     lambda ev: ticks.append((time.monotonic(), ev.get("created", 0))))
    time.sleep(1.5)
    if observer == "floor":
        argv = [os.path.join(build, "ss-floor"), "-p", str(wl.pid)] + extra
    elif observer == "bpftrace":
        argv = ["bpftrace", os.path.join(SRC, "tools", "bench", "sched.bt"), str(wl.pid)] + extra
    else:
        argv = [os.path.join(build, "schedscope"), "top", "--json", "-p", str(wl.pid)] + extra
    err = open(os.path.join(tmp, "err"), "w")
    obs = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        time.sleep(settle)
        if obs.poll() is not None:
            raise SystemExit(f"{observer} exited: " + open(os.path.join(tmp, "err")).read()[-400:])
        a, ca, t0 = progs_of(obs.pid), observer_cpu.proc_cpu(obs.pid), time.monotonic()
        time.sleep(window)
        b, cb, t1 = progs_of(obs.pid), observer_cpu.proc_cpu(obs.pid), time.monotonic()
    finally:
        observer_cpu.stop(obs, wl)
    dt = t1 - t0
    w = [tk for tk in ticks if t0 <= tk[0] <= t1]
    created = sum(tk[1] for tk in w[1:]) / (w[-1][0] - w[0][0]) if len(w) >= 2 else 0.0
    progs = {}
    for name, (c, t) in b.items():
        c0, t0_ = a.get(name, (0, 0))
        if c - c0 > 0:
            progs[name] = {"runs_per_s": (c - c0) / dt, "ns_per_run": (t - t0_) / (c - c0),
                           "cpu_pct": 100 * (t - t0_) / 1e9 / dt}
    return {"created_per_s": created, "observer_cpu_pct": 100 * (cb - ca) / observer_cpu.HZ / dt,
            "progs": progs}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory (default build)")
    ap.add_argument("--observer", choices=("top", "floor", "bpftrace"), default="top",
                    help="schedscope top --json (default), the benchmark's floor, or the benchmark's "
                         "bpftrace script (tools/bench/sched.bt: the same hooks, maps only)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--settle", type=float, default=4.0, help="seconds after attach before the window")
    ap.add_argument("--window", type=float, default=10.0, help="seconds measured")
    ap.add_argument("--observer-arg", action="append", default=[], help="one more observer argument (repeatable)")
    ap.add_argument("--json", help="also write the runs here")
    ap.add_argument("workload", nargs="*", help="threads workload arguments (after --)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bpf_cost.py: needs root (BPF and the BPF statistics sysctl)")
    wl_args = a.workload or ["-threads", "100", "-churn-max"]
    old = open(STATS).read().strip()
    runs = []
    try:
        with open(STATS, "w") as f:
            f.write("1")
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(a.rounds):
                runs.append(one_run(a.build, a.observer, wl_args, a.settle, a.window, a.observer_arg, tmp))
                print(f"round {r + 1}/{a.rounds}: {runs[-1]['created_per_s']:.0f} threads/s", file=sys.stderr)
    finally:
        with open(STATS, "w") as f:
            f.write(old)
    med = lambda xs: statistics.median(xs) if xs else 0.0  # noqa: E731
    names = sorted({n for r in runs for n in r["progs"]},
                   key=lambda n: -med([r["progs"].get(n, {}).get("cpu_pct", 0) for r in runs]))
    created = med([r["created_per_s"] for r in runs])
    print(f"{a.observer} on threads {' '.join(wl_args)}: {created:.0f} threads created/s, "
          f"observer CPU {med([r['observer_cpu_pct'] for r in runs]):.2f}% of a core "
          f"(medians of {len(runs)} round(s) of {a.window:.0f} s)")
    print(f"{'program':<28}{'runs/s':>12}{'ns/run':>10}{'% of a CPU':>12}{'ns/thread':>12}")
    total = 0.0
    for n in names:
        rs = [r["progs"].get(n, {"runs_per_s": 0, "ns_per_run": 0, "cpu_pct": 0}) for r in runs]
        cpu = med([x["cpu_pct"] for x in rs])
        total += cpu
        per_thread = cpu / 100 * 1e9 / created if created else 0.0
        print(f"{n:<28}{med([x['runs_per_s'] for x in rs]):>12.0f}{med([x['ns_per_run'] for x in rs]):>10.0f}"
              f"{cpu:>12.2f}{per_thread:>12.0f}")
    per_thread = total / 100 * 1e9 / created if created else 0.0
    print(f"{'all programs':<28}{'':>12}{'':>10}{total:>12.2f}{per_thread:>12.0f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"observer": a.observer, "workload": wl_args, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
