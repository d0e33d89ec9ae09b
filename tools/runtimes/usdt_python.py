"""A small Python program for schedscope's USDT e2e tests. Prints JSON lines:
  {"ev":"ready","pid":N}      then waits for a line on stdin
  {"ev":"done", ...}          after N forced collections, then exits
Automatic collection is off; every collection after the trigger is seen through gc.callbacks:
the generation, duration and CLOCK_MONOTONIC span of each, the ground truth of
python:gc__start/done. (Interpreter shutdown collects again, after "done".)
Then it imports two modules not loaded yet and lists every module that brought in.
With SLOW_MS, the first collection's garbage holds one object whose finalizer sleeps that
long: finalizers run inside the collection (between python:gc__start and gc__done), so
that collection is a pause of at least SLOW_MS however fast the machine is.
Usage: PYTHON usdt_python.py N [SLOW_MS]   (a CPython with the python:* probes: tests/fixtures/usdt_python.py)"""
import gc
import json
import os
import sys
import time


class Slow:
    """Cyclic garbage whose finalizer takes ms milliseconds (inside the collection)."""

    def __init__(self, ms):
        self.ms = ms

    def __del__(self):
        time.sleep(self.ms / 1e3)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    slow_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    print(json.dumps({"ev": "ready", "pid": os.getpid()}), flush=True)
    sys.stdin.readline()
    seen = []
    t0 = [0]

    # time.monotonic_ns() is CLOCK_MONOTONIC, the clock of schedscope's timestamps.
    def cb(phase, info):
        if phase == "start":
            t0[0] = time.monotonic_ns()
        else:
            t1 = time.monotonic_ns()
            seen.append({"gen": info["generation"], "ms": (t1 - t0[0]) / 1e6,
                         "start_ns": t0[0], "end_ns": t1})

    gc.disable()  # only the forced collections: the cyclic garbage below would trigger more
    gc.callbacks.append(cb)
    forced = []
    for _ in range(n):
        # Cyclic garbage, so each full collection has work to do.
        junk = []
        for i in range(150000):
            a = [i]
            a.append(a)
            junk.append(a)
        if slow_ms and not forced:
            slow = Slow(slow_ms)
            slow.self = slow  # a cycle: only the collector frees it, running __del__
            del slow
        del junk
        s = time.perf_counter_ns()
        gc.collect()
        forced.append((time.perf_counter_ns() - s) / 1e6)
        time.sleep(0.05)
    gc.callbacks.remove(cb)
    # Modules imported through the C import path (python:import__find__load__start/done
    # fire once per module found and loaded), with the CLOCK_MONOTONIC span of the imports.
    before = set(sys.modules)
    i0 = time.monotonic_ns()
    __import__("fractions")
    __import__("colorsys")
    i1 = time.monotonic_ns()
    imported = sorted(set(sys.modules) - before)
    print(json.dumps({"ev": "done", "forced": n, "slow_ms": slow_ms, "forced_ms": forced, "collections": seen,
                      "imported": imported, "import_span": [i0, i1]}), flush=True)
    time.sleep(0.3)


if __name__ == "__main__":
    main()
