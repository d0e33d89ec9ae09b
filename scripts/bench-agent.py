#!/usr/bin/env python3
"""make bench (agent part): the node agent's own cost and what it costs its targets.

1. 50 idle Go processes (pingpong held at -wait-stdin: a Go runtime with its threads,
   doing nothing), observed by `schedscope agent` with its defaults: the agent's CPU
   (share of one core, from /proc/PID/stat over a measured window) and memory (VmRSS,
   VmHWM). Budgets: under 1% of a core and under 100 MB. The same at -i 1s, for reference.
2. The bench workload pingpong (4 pairs, round trips/s): unobserved, under the
   single-target `schedscope top -p`, and as one more target of the agent that already
   watches the 50 idle ones; each ratio against unobserved, alternated over rounds.

  scripts/bench-agent.py --build build [--idle 50] [--window 60] [--rounds 3]
Exit status 1 when a budget is missed. Results: BUILD/bench/agent.json.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

CPU_BUDGET_PCT = 1.0
RSS_BUDGET_MB = 100.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


class Agent:
    def __init__(self, build, exe_glob, interval, tmp):
        self.port = free_port()
        self.err = open(os.path.join(tmp, f"agent-{interval}.err"), "w")
        self.p = subprocess.Popen([os.path.join(build, "schedscope"), "agent", "--listen", f"127.0.0.1:{self.port}",
                                   "-i", interval, "--exe", exe_glob], stdout=subprocess.DEVNULL, stderr=self.err)

    def observed(self):
        try:
            return json.loads(get(f"http://127.0.0.1:{self.port}/targets"))["counts"].get("observed", 0)
        except (OSError, ValueError):
            return -1

    def wait_observed(self, n, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if self.p.poll() is not None:
                sys.exit(f"bench-agent: the agent exited ({self.p.returncode}): see {self.err.name}")
            if self.observed() >= n:
                return True
            time.sleep(0.5)
        return False

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


def start_idle(build, n):
    procs = []
    for _ in range(n):
        p = subprocess.Popen([os.path.join(build, "workloads", "pingpong"), "-wait-stdin"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(p)
    for p in procs:
        json.loads(p.stdout.readline())  # ready: its runtime is up
    return procs


def measure_agent(agent, window):
    c0, t0 = cpu_seconds(agent.p.pid), time.monotonic()
    time.sleep(window)
    c1, t1 = cpu_seconds(agent.p.pid), time.monotonic()
    return {"cpu_pct_of_core": round(100 * (c1 - c0) / (t1 - t0), 3),
            "rss_mb": round(status_kb(agent.p.pid, "VmRSS") / 1024, 1),
            "hwm_mb": round(status_kb(agent.p.pid, "VmHWM") / 1024, 1),
            "window_s": round(t1 - t0, 1)}


def pingpong(build, duration, observer, tmp, tag):
    """Round trips/s of one pingpong run; observer: None, "top" or an Agent (already running)."""
    p = subprocess.Popen([os.path.join(build, "workloads", "pingpong"), "-wait-stdin", "-duration", f"{duration}s"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    top = None
    try:
        ready = json.loads(p.stdout.readline())
        if observer == "top":
            top = subprocess.Popen([os.path.join(build, "schedscope"), "top", "--json", "-p", str(ready["pid"])],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            top.stdout.readline()  # the first interval: attached and reading
        elif observer is not None:
            end = time.time() + 30
            while str(ready["pid"]) not in get(f"http://127.0.0.1:{observer.port}/targets") or \
                    f'schedscope_ps{{pid="{ready["pid"]}"' not in get(f"http://127.0.0.1:{observer.port}/metrics"):
                if time.time() > end:
                    return None
                time.sleep(0.5)
        p.stdin.write("go\n")
        p.stdin.flush()
        done = None
        for line in p.stdout:
            ev = json.loads(line)
            if ev.get("ev") == "done":
                done = ev
        p.wait(30)
        return done["round_trips"] / (done["elapsed_ns"] / 1e9) if done else None
    finally:
        if top and top.poll() is None:
            top.send_signal(signal.SIGINT)
            try:
                top.wait(10)
            except subprocess.TimeoutExpired:
                top.kill()
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--idle", type=int, default=50)
    ap.add_argument("--window", type=int, default=60, help="measured seconds of the agent's CPU (default 60)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the slowdown comparison (default 3)")
    ap.add_argument("--duration", type=int, default=5, help="seconds of one pingpong run (default 5)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-agent: needs root (BPF)")
    build = os.path.abspath(a.build)
    tmp = os.path.join(build, "bench")
    os.makedirs(tmp, exist_ok=True)
    glob = os.path.realpath(os.path.join(build, "workloads", "pingpong"))  # as /proc/PID/exe names it
    out = {"idle_targets": a.idle, "cpu_budget_pct": CPU_BUDGET_PCT, "rss_budget_mb": RSS_BUDGET_MB}
    idle = start_idle(build, a.idle)
    agents = []
    try:
        for interval in ("10s", "1s"):
            ag = Agent(build, glob, interval, tmp)
            agents.append(ag)
            if not ag.wait_observed(a.idle, 120):
                sys.exit(f"bench-agent: the agent observes {ag.observed()} of {a.idle} targets after 120 s")
            time.sleep(2 * float(interval[:-1]) + 5)  # warm: a few intervals, a scan or two
            out[f"agent -i {interval}"] = measure_agent(ag, a.window if interval == "10s" else a.window // 2)
            if interval == "1s":
                break
            ag.stop()
            agents.pop()
        # The slowdown: the agent at -i 1s keeps running with its idle targets.
        rates = {"unobserved": [], "top": [], "agent": []}
        for r in range(a.rounds):
            for name, obs in (("unobserved", None), ("top", "top"), ("agent", agents[-1])):
                v = pingpong(build, a.duration, obs, tmp, f"{name}-{r}")
                if v:
                    rates[name].append(v)
        base = statistics.median(rates["unobserved"]) if rates["unobserved"] else 0
        out["pingpong_round_trips_per_s"] = {k: round(statistics.median(v)) if v else None for k, v in rates.items()}
        out["pingpong_ratio"] = {k: round(statistics.median(v) / base, 3) if v and base else None
                                 for k, v in rates.items()}
    finally:
        for ag in agents:
            ag.stop()
        for p in idle:
            p.kill()
            p.wait()
    main_run = out["agent -i 10s"]
    ok_cpu = main_run["cpu_pct_of_core"] < CPU_BUDGET_PCT
    ok_rss = main_run["hwm_mb"] < RSS_BUDGET_MB
    out["pass"] = ok_cpu and ok_rss
    with open(os.path.join(tmp, "agent.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(f"agent, {a.idle} idle Go targets:")
    for k in ("agent -i 10s", "agent -i 1s"):
        m = out[k]
        print(f"  {k:<12} CPU {m['cpu_pct_of_core']:.3f}% of a core over {m['window_s']} s, "
              f"RSS {m['rss_mb']} MB (peak {m['hwm_mb']} MB)")
    print(f"  budget: CPU < {CPU_BUDGET_PCT}% of a core ({'ok' if ok_cpu else 'MISSED'}), "
          f"memory < {RSS_BUDGET_MB:.0f} MB ({'ok' if ok_rss else 'MISSED'}) at the default interval")
    print("pingpong (round trips/s, median of %d rounds; ratio to unobserved):" % a.rounds)
    for k, v in out["pingpong_round_trips_per_s"].items():
        print(f"  {k:<11} {v!s:>10}  {out['pingpong_ratio'][k]}")
    print(f"results: {os.path.join(tmp, 'agent.json')}")
    return 0 if out["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
