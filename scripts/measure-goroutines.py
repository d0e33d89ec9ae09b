#!/usr/bin/env python3
"""Cost of `schedscope top --goroutines` on the target: gospawn -churn (spawn and join
goroutines as fast as possible, GOMAXPROCS=1) with and without the uprobes, interleaved.
Every goroutine costs 1 uprobe hit (newproc1 RET; exits come from the census), or 2 with
--goroutine-exits (+ gdestroy/goexit0) and with builds before the census estimate (their
frames have no "exited_source"), so
    per-hit cost = (1/rate_with - 1/rate_without) / hits per goroutine.
Usage (root): scripts/measure-goroutines.py [BUILD_DIR] [ROUNDS] [SECONDS] [EXTRA TOP FLAGS...]"""
import json
import os
import subprocess
import sys
import time

build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "build")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
secs = int(sys.argv[3]) if len(sys.argv) > 3 else 4
extra = sys.argv[4:]  # e.g. --goroutine-exits
wl = os.path.join(build, "workloads", "gospawn")
ss = os.path.join(build, "schedscope")


hits_per_g = set()


def run(with_probes):
    env = dict(os.environ, GOMAXPROCS="1")
    p = subprocess.Popen([wl, "-churn", "-wait-stdin", "-duration", f"{secs}s"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env=env, text=True)
    ready = json.loads(p.stdout.readline())
    top = None
    if with_probes:
        top = subprocess.Popen([ss, "top", "-p", str(ready["pid"]), "--batch", "--json", "--goroutines",
                                *extra, "-i", "1s"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # the first frame is printed once the uprobes are attached
        while True:
            line = top.stdout.readline()
            if not line or '"goroutines"' in line:
                break
        g = json.loads(line)["goroutines"] if line else {}
        if not g.get("enabled"):
            sys.exit(f"uprobes not attached: {g.get('note')}")
        hits_per_g.add(1 if g.get("exited_source") == "census" else 2)
    else:
        time.sleep(0.5)
    p.stdin.write("go\n")
    p.stdin.flush()
    ticks, hits = [], []
    for line in p.stdout:
        o = json.loads(line)
        if o.get("ev") == "tick":
            ticks.append(o["spawned"])
        if o.get("ev") == "done":
            break
    p.wait()
    if top:
        for line in top.stdout:
            o = json.loads(line)
            hits.append(o["goroutines"]["uprobe_hits_per_s"])
        top.wait()
    rate = sum(ticks[1:]) / max(1, len(ticks[1:]))  # skip the first (warm-up) second
    return rate, (max(hits) if hits else 0)


res = {False: [], True: []}
for r in range(rounds):
    for w in (False, True):
        rate, h = run(w)
        res[w].append(rate)
        print(f"round {r + 1} {'with   ' if w else 'without'} --goroutines: {rate:10.0f} goroutines/s"
              + (f"  (schedscope saw up to {h:.0f} uprobe hits/s)" if w else ""), flush=True)
off = sorted(res[False])[len(res[False]) // 2]
on = sorted(res[True])[len(res[True]) // 2]
print(f"median without: {off:.0f}/s  with: {on:.0f}/s  ratio with/without: {on / off:.4f}")
k = max(hits_per_g)
print(f"per goroutine: {1e6 / off:.2f} us without, {1e6 / on:.2f} us with -> "
      f"{(1e6 / on - 1e6 / off) / k:.2f} us per uprobe hit ({k} hit{'s' if k > 1 else ''} per goroutine)")
