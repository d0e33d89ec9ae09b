#!/usr/bin/env python3
"""What the agent's per-target -S (--all-syscalls-for) costs a target that asked and one
that did not, and how long the agent takes to stop with many targets.

1. Syscall cost: `knows -calls N` (N getppid(2) on one thread; the workload times them
   itself, start_ns/end_ns of its "calls" line) as target B of an agent that
   (a) traces no syscalls, (b) traces those of another target A only (--all-syscalls-for
   A: the raw_syscalls programs attached, B not asked), (c) traces B's. ns per call of
   B, median of the rounds, each configuration in turn.
2. Stop: `schedscope agent` observing K idle Go processes (pingpong -wait-stdin), from
   SIGTERM to its exit.

  sudo scripts/measure-agent-optin.py --build build [--calls 300000] [--rounds 3] [--stop 20] [--no-syscalls]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def agent(ss, port, exe_glob, extra):
    p = subprocess.Popen([ss, "agent", "--listen", f"127.0.0.1:{port}", "-i", "1s", "--scan", "1s",
                          "--exe", exe_glob, *extra], stderr=subprocess.DEVNULL)
    end = time.time() + 20
    while time.time() < end:
        try:
            get(port, "/healthz")
        except (OSError, ValueError):
            pass
        else:
            break
        time.sleep(0.2)
    return p


def wait_observed(port, pids, opt_pid=None):
    end = time.time() + 30
    while time.time() < end:
        t = {x["pid"]: x for x in get(port, "/targets")["targets"]}
        ok = all(t.get(p, {}).get("state") == "observed" for p in pids)
        if ok and opt_pid is not None:
            ok = t[opt_pid].get("options", {}).get("all_syscalls", {}).get("on", False)
        if ok:
            return
        time.sleep(0.2)
    raise SystemExit(f"targets {pids} not observed")


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(60)


def line(proc, ev):
    for raw in proc.stdout:
        o = json.loads(raw)
        if o.get("ev") == ev:
            return o
    raise SystemExit(f"no {ev} line")


def syscall_cost(ss, knows, tmp, calls, rounds):
    a_bin, b_bin = os.path.join(tmp, "a", "knows"), os.path.join(tmp, "b", "knows")
    for b in (a_bin, b_bin):
        os.makedirs(os.path.dirname(b), exist_ok=True)
        shutil.copy2(knows, b)
    configs = {"none": [], "other target": ["--all-syscalls-for", "*/a/knows"],
               "this target": ["--all-syscalls-for", "*/b/knows"]}
    res = {k: [] for k in configs}
    for _ in range(rounds):
        for name, extra in configs.items():
            a = subprocess.Popen([a_bin, "-wait-stdin", "-calls", "1", "-sleeps", "1", "-duration", "1h"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            b = subprocess.Popen([b_bin, "-wait-stdin", "-calls", str(calls), "-sleeps", "1", "-threads", "1",
                                  "-duration", "1s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            pa, pb = line(a, "ready")["pid"], line(b, "ready")["pid"]
            port = free_port()
            ag = agent(ss, port, os.path.join(tmp, "*"), extra)
            wait_observed(port, [pa, pb], pa if name == "other target" else pb if name == "this target" else None)
            b.stdin.write("go\n")
            b.stdin.flush()
            c = line(b, "calls")
            res[name].append((c["end_ns"] - c["start_ns"]) / calls)
            b.wait(30)
            a.kill()
            a.wait()
            stop(ag)
    return {k: statistics.median(v) for k, v in res.items()}, res


def stop_time(ss, pingpong, tmp, k):
    d = os.path.join(tmp, "idle")
    os.makedirs(d, exist_ok=True)
    wl = os.path.join(d, "pingpong")
    shutil.copy2(pingpong, wl)
    kids = [subprocess.Popen([wl, "-wait-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(k)]
    pids = [line(p, "ready")["pid"] for p in kids]
    port = free_port()
    ag = agent(ss, port, os.path.join(d, "*"), [])
    wait_observed(port, pids)
    time.sleep(2)  # the GC uprobes attached with the first interval
    t0 = time.monotonic()
    stop(ag)
    took = time.monotonic() - t0
    for p in kids:
        p.kill()
        p.wait()
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--calls", type=int, default=300000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stop", type=int, default=20, help="idle targets when stopping (0: skip)")
    ap.add_argument("--no-syscalls", action="store_true", help="only the stop (any build of the agent)")
    a = ap.parse_args()
    ss = os.path.join(a.build, "schedscope")
    tmp = tempfile.mkdtemp(prefix="ss-optin-measure-")
    try:
        med, all_ = ({}, {}) if a.no_syscalls else syscall_cost(ss, os.path.join(a.build, "workloads", "knows"),
                                                                  tmp, a.calls, a.rounds)
        base = med.get("none", 1)
        for k, v in med.items():
            print(f"getppid of B, agent tracing syscalls of {k:12s}: {v:7.1f} ns/call  "
                  f"(x{v / base:.2f}; rounds {', '.join(f'{x:.1f}' for x in all_[k])})")
        if a.stop:
            took = stop_time(ss, os.path.join(a.build, "workloads", "pingpong"), tmp, a.stop)
            print(f"agent stop with {a.stop} idle targets: {took:.2f} s")
    finally:
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
