"""USDT e2e: `probes` lists the notes of a live JVM and of CPython (one whose ELF
has the python:* probes, found by tests/fixtures/usdt_python.py); `top`
on a JVM names Java threads from hotspot:thread__start, reports GC pauses inside
safepoints and counts a --usdt probe per thread; `top` on CPython reports every
collection as a GC pause with its generation and length; `record` carries --usdt hits
with their arguments and the pauses into report and the Perfetto export.
Timestamps are compared directly: Java's System.nanoTime() and Python's
time.monotonic_ns() are CLOCK_MONOTONIC, like bpf_ktime_get_ns(). Ground truth:
what the Java and Python programs (tools/runtimes/) print about themselves."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from common import BUILD, SCHEDSCOPE, SRC, Proc, frames_until_final, require_root, schedscope, usdt_python

JAVA = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
PYTHON, NO_PYTHON_WHY = usdt_python()  # e.g. Debian's python3.11 (not a pyenv shim)
RUNTIMES = os.path.join(BUILD, "runtimes")
PYPROG = os.path.join(SRC, "tools", "runtimes", "usdt_python.py")


def run(*args, timeout=60):
    return subprocess.run([SCHEDSCOPE, *args], capture_output=True, text=True, timeout=timeout)


def need(tc, path, what):
    if not os.path.exists(path):
        tc.skipTest(f"{what} missing: {path} (scripts/install-deps.sh, make runtimes)")


def start_target(argv):
    p = Proc(argv, stdin=True)
    ready = p.wait_for(lambda o: o.get("ev") == "ready", 60)
    if ready is None:
        p.stop()
        raise AssertionError("target did not start: " + p.stderr_text())
    return p, ready["pid"]


def attached(top):
    """Waits for the first frame of `top --json` (the probes are attached by then)."""
    return top.wait_for(lambda o: "target" in o, 30)


def final_of(frames):
    fin = [f for f in frames if f.get("final")]
    return fin[-1] if fin else None


def observe_until_done(tc, p, top):
    """With `top` attached to the target `p`: lets the target run its work, and returns
    its "done" line and top's final frame (both asserted present); stops both."""
    try:
        tc.assertIsNotNone(attached(top), "no first frame")
        p.send()
        done = p.wait_for(lambda o: o.get("ev") == "done", 60)
        tc.assertIsNotNone(done, p.stderr_text())
        frames = frames_until_final(top, 30)
    finally:
        p.stop()
        top.stop()
    fin = final_of(frames)
    tc.assertIsNotNone(fin, "no final frame")
    return done, fin


class HotSpot(unittest.TestCase):
    def setUp(self):
        require_root(self)
        need(self, JAVA, "OpenJDK 17")
        need(self, os.path.join(RUNTIMES, "UsdtJava.class"), "UsdtJava.class")

    def java(self, *args):
        return start_target([JAVA, "-Xmx128m", "-XX:+ExtendedDTraceProbes", "-cp", RUNTIMES,
                             "UsdtJava", *args])

    def test_probes_of_a_live_jvm(self):
        p, pid = self.java("0", "0", "0")
        try:
            r = run("probes", "-p", str(pid), "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            j = json.loads(r.stdout)
            files = {os.path.basename(f["file"]): f for f in j["files"]}
            self.assertIn("libjvm.so", files)
            probes = {p["provider"] + ":" + p["name"]: p for p in files["libjvm.so"]["probes"]}
            for name in ("hotspot:thread__start", "hotspot:thread__stop", "hotspot:gc__begin",
                         "hotspot:monitor__contended__enter"):
                self.assertIn(name, probes)
            ts = probes["hotspot:thread__start"]
            self.assertEqual(len(ts["args"]), 5)
            self.assertEqual(ts["semaphore"], 0)
            t = run("probes", "-p", str(pid), "-f", "thread__start")
            self.assertEqual(t.returncode, 0, t.stderr)
            self.assertIn("hotspot:thread__start", t.stdout)
            self.assertIn("arg0", t.stdout)
            self.assertNotIn("gc__begin", t.stdout)
            i = run("inspect", "-p", str(pid), "--json")
            self.assertEqual(i.returncode, 0, i.stderr)
            self.assertEqual(json.loads(i.stdout)["runtime"], "hotspot")
        finally:
            p.send()
            p.stop()

    def test_top_names_java_threads_gc_in_safepoints_and_contention(self):
        p, pid = self.java("20", "3", "4")
        top = schedscope("top", "-p", str(pid), "--batch", "--json", "-i", "500ms",
                         "--usdt", "hotspot:monitor__contended__enter")
        done, fin = observe_until_done(self, p, top)
        u = fin["usdt"]
        self.assertEqual(u["runtime"], "hotspot")
        # What the program was asked to do (the loops below must not run over nothing).
        self.assertEqual((len(done["burst"]), len(done["gc_spans"]), len(done["contenders"])),
                         (20, 3, 4), done)
        # Every thread of the burst and the contenders, by name and java.lang.Thread id.
        started = {t["name"]: t for t in u["started"]}
        for t in done["burst"] + done["contenders"]:
            self.assertIn(t["name"], started)
            self.assertEqual(started[t["name"]]["id"], t["id"])
            self.assertNotEqual(started[t["name"]]["stop_ns"], 0, t["name"] + " stopped")
        self.assertGreaterEqual(u["threads_started"], len(done["burst"]) + len(done["contenders"]))
        # The threads table shows the Java names for those tids.
        # (The final frame's rows cover the whole run, exited threads included.)
        rows = {r["tid"]: r["name"] for r in fin["threads"]}
        for t in done["burst"]:
            tid = started[t["name"]]["tid"]
            self.assertIn(tid, rows, t["name"])
            self.assertEqual(rows[tid], t["name"])
        # Each System.gc() (its CLOCK_MONOTONIC span, from Java) holds a GC pause, and every
        # GC pause lies inside a safepoint.
        gcs = [x for x in u["pause_list"] if x["kind"] == "gc"]
        sps = [x for x in u["pause_list"] if x["kind"] == "safepoint"]
        for g in gcs:
            self.assertTrue(any(s["start_ns"] <= g["start_ns"] and g["end_ns"] <= s["end_ns"]
                                for s in sps), f"gc pause {g} not inside a safepoint")
        for (t0, t1), ms in zip(done["gc_spans"], done["gc_ms"]):
            inside = [g for g in gcs if t0 <= g["start_ns"] and g["end_ns"] <= t1]
            self.assertEqual(len(inside), 1, f"System.gc() [{t0},{t1}]: {inside}")
            self.assertLessEqual(inside[0]["ms"], ms)
            self.assertGreater(inside[0]["ms"], 0)
        # Every collection the JVM counted (GarbageCollectorMXBean) during the GC phase is
        # one GC pause in that phase's span.
        p0, p1 = done["gc_phase"]
        phase = [g for g in gcs if p0 <= g["start_ns"] and g["end_ns"] <= p1]
        self.assertEqual(len(phase), done["gc_collections"])
        # The contended monitor: every contender entered it contended at least once.
        mon = [x for x in u["probes"] if x["probe"] == "hotspot:monitor__contended__enter"]
        self.assertEqual(len(mon), 1)
        names = {t["name"] for t in mon[0]["threads"]}
        for t in done["contenders"]:
            self.assertIn(t["name"], names)
        self.assertGreaterEqual(mon[0]["total"], len(done["contenders"]))


class CPython(unittest.TestCase):
    def setUp(self):
        require_root(self)
        if PYTHON is None:
            self.skipTest(NO_PYTHON_WHY)

    def test_gc_pauses_match_gc_callbacks(self):
        # The first collection runs a finalizer that sleeps 120 ms: a pause above
        # --pause-ms 50 on any machine, so the gc_pause alert is always due.
        p, pid = start_target([PYTHON, PYPROG, "3", "120"])
        top = schedscope("top", "-p", str(pid), "--batch", "--json", "-i", "500ms",
                         "--pause-ms", "50")
        done, fin = observe_until_done(self, p, top)
        u = fin["usdt"]
        self.assertEqual(u["runtime"], "cpython")
        gcs = [x for x in u["pause_list"] if x["kind"] == "gc"]
        truth = done["collections"]
        self.assertEqual(len(truth), 3)
        # Every collection (gc.callbacks span, CLOCK_MONOTONIC) holds exactly one pause of
        # its generation, nearly as long; none other falls in the run (shutdown collects later).
        for t in truth:
            inside = [g for g in gcs if t["start_ns"] <= g["start_ns"] and g["end_ns"] <= t["end_ns"]]
            self.assertEqual(len(inside), 1, f"collection {t}: {inside}")
            self.assertEqual(inside[0]["arg"], t["gen"])
            self.assertLessEqual(inside[0]["ms"], t["ms"])
            self.assertGreaterEqual(inside[0]["ms"], 0.5 * t["ms"])
        run_span = [g for g in gcs if truth[0]["start_ns"] <= g["start_ns"] <= truth[-1]["end_ns"]]
        self.assertEqual(len(run_span), len(truth))
        self.assertGreaterEqual(truth[0]["ms"], 120, truth[0])
        self.assertGreaterEqual(max(g["ms"] for g in gcs), 120 * 0.5, gcs)
        kinds = {a["kind"] for a in fin["alerts"]}
        self.assertIn("gc_pause", kinds)

    def test_record_carries_usdt_hits_and_pauses(self):
        d = tempfile.mkdtemp(prefix="schedscope-e2e-usdt-")
        self.addCleanup(shutil.rmtree, d, True)
        out = os.path.join(d, "py.sched")
        p, pid = start_target([PYTHON, PYPROG, "3"])
        rec = Proc([SCHEDSCOPE, "record", "-q", "-p", str(pid), "-i", "500ms", "-o", out,
                    "--usdt", "python:import__find__load__start"])
        try:
            rec.wait_ready(30)  # every probe attached before the program runs its work
            p.send()
            done = p.wait_for(lambda o: o.get("ev") == "done", 60)
            self.assertIsNotNone(done, p.stderr_text())
            self.assertEqual(rec.p.wait(30), 0)
        finally:
            p.stop()
            rec.stop()
        r = run("report", out, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rep = json.loads(r.stdout)
        u = rep["usdt"]
        self.assertEqual(u["runtime"], "cpython")
        # The detectors on the recording raise what was raised live (gc_pause included).
        self.assertTrue(rep["alerts_check"]["match"], rep["alerts_check"])
        gcs = [x for x in u["pause_list"] if x["kind"] == "gc"]
        self.assertEqual(len(done["collections"]), 3, done)
        for t in done["collections"]:
            self.assertEqual(sum(1 for g in gcs if t["start_ns"] <= g["start_ns"] and
                                 g["end_ns"] <= t["end_ns"]), 1)
        # One import__find__load__start hit per module the two imports loaded, all inside
        # the imports' CLOCK_MONOTONIC span, each with its one argument (the name pointer).
        fl = [x for x in u["probes"] if x["probe"] == "python:import__find__load__start"]
        self.assertEqual(len(fl), 1)
        self.assertTrue(done["imported"], done)
        i0, i1 = done["import_span"]
        hits = [h for h in u["hits"] if h["probe"] == "python:import__find__load__start"]
        inside = [h for h in hits if i0 <= h["ts_ns"] <= i1]
        self.assertEqual(len(inside), len(done["imported"]), done["imported"])
        self.assertGreaterEqual(fl[0]["total"], len(done["imported"]))
        self.assertTrue(all(len(h["args"]) == 1 and h["args"][0] != 0 for h in inside))
        self.assertEqual({h["tid"] for h in inside}, {pid})
        t = run("report", out)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("USDT  runtime cpython", t.stdout)
        e = run("export", out, "-o", os.path.join(d, "py.pftrace"))
        self.assertEqual(e.returncode, 0, e.stderr)
        self.assertGreater(os.path.getsize(os.path.join(d, "py.pftrace")), 0)
        tr = subprocess.run(["protoc", "--decode_raw"], stdin=open(os.path.join(d, "py.pftrace"), "rb"),
                            capture_output=True, text=True, timeout=60)
        self.assertIn("stop-the-world: gc (cpython)", tr.stdout)


if __name__ == "__main__":
    unittest.main()
