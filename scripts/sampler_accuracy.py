#!/usr/bin/env python3
"""The P sampler's accuracy, A/B between builds, against the workload's own numbers.

For each case and round (builds alternate): start the `capacity` workload, attach
`schedscope top --json -i 1s` for --seconds, and compare what the capacity section shows
with what the workload measured itself:
  duty   (-mode duty: every P busy a known share of each randomly long cycle)
         the share of the time with all Ps running (procs_running.hist[GOMAXPROCS]),
         mean over the live frames after the first two, against the workload's measured
         all_busy_share over the same seconds;
  burst  (-mode burst: goroutines created in bursts, queues near full): runq max and p99,
         and the share of samples with a queue of 64 or more, beside the workload's
         largest backlog.
Also the sampler's reads per second (procs_running.reads_hz, when the build has it) and
sample slots per second (sample_hz). Needs root (BPF).

  sudo scripts/sampler_accuracy.py --build old=/path/to/old/build --build new=build --rounds 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, "scripts"))
from observer_cpu import start_workload  # noqa: E402

CASES = {
    "duty-5ms-30": ["-mode", "duty", "-procs", "2", "-duty", "0.3", "-cycle", "5ms"],
    "duty-20ms-50": ["-mode", "duty", "-procs", "2", "-duty", "0.5", "-cycle", "20ms"],
    "duty-200ms-20": ["-mode", "duty", "-procs", "2", "-duty", "0.2", "-cycle", "200ms"],
    "burst": ["-mode", "burst", "-procs", "1", "-burst", "2000", "-pause", "50ms"],
}


def one_run(ss, wl, args, seconds):
    ticks = []
    p = start_workload([wl] + args, lambda ev: ticks.append((time.monotonic(), ev)))
    time.sleep(1.5)
    frames = []
    try:
        t0 = time.monotonic()
        out = subprocess.run([ss, "top", "--json", "-p", str(p.pid), "-i", "1s", "-d", f"{seconds}s"],
                             capture_output=True, text=True, timeout=seconds + 60)
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                try:
                    frames.append((json.loads(line)))
                except ValueError:
                    pass
        t1 = time.monotonic()
    finally:
        p.kill()
        p.wait()
    live = [f for f in frames if not f.get("final") and isinstance(f.get("capacity"), dict)]
    if len(live) < 4:
        return {"error": "too few frames: " + out.stderr[-300:]}
    use = live[2:]
    pr = [f["capacity"]["procs_running"] for f in use]
    rq = [f["capacity"]["runq"] for f in use]
    gmp = use[-1]["capacity"]["gomaxprocs"]
    r = {"frames": len(use), "load1": os.getloadavg()[0],
         "sample_hz": statistics.mean(x["sample_hz"] for x in pr)}
    if all(x.get("reads_hz") is not None for x in pr):
        r["reads_hz"] = statistics.mean(x["reads_hz"] for x in pr)
    r["all_running"] = statistics.mean(x["hist"][gmp] if len(x["hist"]) > gmp else 0 for x in pr)
    r["runq_max"] = max(x["max"] or 0 for x in rq)
    r["runq_p99"] = statistics.median(x["p99"] or 0 for x in rq)
    # The workload's seconds that fall inside the frames used (the frames after the second).
    w = [ev for t, ev in ticks if t0 + 3 <= t <= t1]
    if w and "all_busy_share" in w[0]:
        r["truth_all_busy"] = statistics.mean(ev["all_busy_share"] for ev in w)
        r["error"] = None
    if w and "max_backlog" in w[0]:
        r["truth_max_backlog"] = max(ev["max_backlog"] for ev in w)
    r.pop("error", None)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, metavar="NAME=DIR|BINARY")
    ap.add_argument("--workload", default=os.path.join(SRC, "build", "workloads", "capacity"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    ap.add_argument("--json", help="write every run here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("sampler_accuracy: needs root (BPF)")
    builds = []
    for spec in a.build:
        name, _, path = spec.partition("=")
        if os.path.isdir(path):
            path = os.path.join(path, "schedscope")
        builds.append((name, os.path.abspath(path)))
    runs = []
    for case in a.case or list(CASES):
        for rnd in range(a.rounds):
            for name, ss in (builds if rnd % 2 == 0 else builds[::-1]):
                r = one_run(ss, a.workload, CASES[case], a.seconds)
                r.update({"case": case, "build": name, "round": rnd})
                runs.append(r)
                if "error" in r:
                    print(f"{case:<14} {name:<6} ERROR {r['error']}", flush=True)
                    continue
                line = f"{case:<14} {name:<6} reads/s {r.get('reads_hz', float('nan')):6.0f}  slots/s {r['sample_hz']:5.0f}  "
                if "truth_all_busy" in r:
                    line += (f"all Ps running {r['all_running']:.3f}  truth {r['truth_all_busy']:.3f}  "
                             f"diff {r['all_running'] - r['truth_all_busy']:+.3f}")
                else:
                    line += (f"runq max {r['runq_max']}  p99 {r['runq_p99']}  "
                             f"(workload max backlog {r.get('truth_max_backlog')})")
                print(line + f"  | load {r['load1']:.1f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
