#!/usr/bin/env python3
"""The observer's memory over a long run: is its RSS flat once warm?

Starts the workload (default `threads -threads 100 -churn-max`: thread churn, where the
observer sees the most new tids, names and exits), attaches `schedscope top --json` at its
default 1 s interval for --minutes, and reads the observer's VmRSS every --every seconds.
Prints each sample and the verdict: the growth over the second half of the run (from the
first sample at or after half-time to the last) against --flat-mb. The first half is the
warm-up (allocator arenas, the capped tables of exited threads filling up).

Also counts what the observer went through: frames written, the workload's threads created
(its tick lines) and the observer's CPU over the run. Needs root (BPF).

  sudo scripts/observer_rss.py --build build                    (10 minutes of thread churn)
  sudo scripts/observer_rss.py --build build --minutes 10 -- -threads 1000 -churn 100
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from observer_cpu import HZ, SRC, binary, proc_cpu, rss_mb, start_workload, stop  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, metavar="DIR|BINARY", help="the build to measure")
    ap.add_argument("--workload", default=os.path.join(SRC, "build", "workloads", "threads"))
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--every", type=float, default=30, help="seconds between RSS samples (default 30)")
    ap.add_argument("--flat-mb", type=float, default=1.0,
                    help="most growth over the second half that still counts as flat (default 1 MB)")
    ap.add_argument("--json", help="write the samples and the verdict here")
    ap.add_argument("wl_args", nargs="*", help="workload arguments (default: -threads 100 -churn-max)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("observer_rss: needs root (BPF)")
    _, ss = binary(a.build)
    wl_argv = [a.workload] + (a.wl_args or ["-threads", "100", "-churn-max"])
    created = [0]

    def tick(ev):
        created[0] += ev.get("created", 0)
    wl = start_workload(wl_argv, tick)
    time.sleep(1.5)
    out = f"/tmp/schedscope-rss-{os.getpid()}.out"
    err = out[:-4] + ".err"
    with open(out, "w") as o, open(err, "w") as e:
        obs = subprocess.Popen([ss, "top", "--json", "-p", str(wl.pid)], stdout=o, stderr=e,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    samples = []  # (seconds since start, RSS MB, threads created so far)
    try:
        t0 = time.monotonic()
        print(f"observer_rss: {' '.join(wl_argv[1:])}; {a.minutes:g} min, RSS every {a.every:g} s",
              flush=True)
        end = t0 + 60 * a.minutes
        nxt = t0 + a.every
        while time.monotonic() < end:
            time.sleep(max(0.0, min(nxt, end) - time.monotonic()))
            if obs.poll() is not None:
                sys.exit("observer_rss: the observer exited: " + open(err).read()[-400:])
            t = time.monotonic() - t0
            r = rss_mb(obs.pid)
            samples.append((round(t, 1), round(r, 2), created[0]))
            print(f"  {t:6.0f} s  RSS {r:7.2f} MB  threads created {created[0]:>10,}", flush=True)
            nxt += a.every
        cpu_s = proc_cpu(obs.pid) / HZ
        wall = time.monotonic() - t0
    finally:
        stop(obs, wl, timeout=30)
    frames = sum(1 for line in open(out) if line.startswith("{"))
    os.unlink(out)
    if len(samples) < 2:
        sys.exit("observer_rss: too short a run for a verdict")
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    growth = half[-1][1] - half[0][1]
    flat = growth <= a.flat_mb
    print(f"observer_rss: {frames} frames, {created[0]:,} threads created ({created[0] / wall:,.0f}/s), "
          f"observer CPU {100 * cpu_s / wall:.2f}% of a core")
    print(f"observer_rss: RSS {samples[0][1]:.1f} MB at {samples[0][0]:.0f} s, {half[0][1]:.1f} MB at "
          f"{half[0][0]:.0f} s, {half[-1][1]:.1f} MB at {half[-1][0]:.0f} s: {growth:+.2f} MB over the "
          f"second half: {'FLAT' if flat else 'GROWS'} (limit {a.flat_mb:g} MB)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"workload": wl_argv[1:], "minutes": a.minutes, "samples": samples, "frames": frames,
                       "created": created[0], "observer_cpu_pct": 100 * cpu_s / wall,
                       "second_half_growth_mb": growth, "flat": flat}, f, indent=1)
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
