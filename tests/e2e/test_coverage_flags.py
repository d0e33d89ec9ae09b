"""`top` flags that change what is reported, each against a run without the flag:
--no-go, --no-gc, --no-runtime-probes, --offcpu-min, --slow-syscall (record -S, seen in
the Perfetto export), and two detector thresholds live (--stuck-ms, --blocked-m-ms:
two observers on the same target at the same time, one with the flag).
Ground truth: the workloads' own lines (knows: sleeps of 50 ms, reads of ~100 ms;
stuckp_raw / stuckp_cgo: the blocked thread)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from common import (SCHEDSCOPE, SRC, Proc, frames_until_final, require_root, thread, top_json,
                    usdt_python, workload)

PYTHON, NO_PYTHON_WHY = usdt_python()  # a CPython with the python:* probes
PYPROG = os.path.join(SRC, "tools", "runtimes", "usdt_python.py")
SLEEPS, SLEEP_MS, READS, READ_DELAY_MS = 6, 50, 4, 100
KNOWS = ["-threads", "2", "-sleeps", str(SLEEPS), "-sleep-len", f"{SLEEP_MS}ms", "-calls", "10",
         "-reads", str(READS), "-read-delay", f"{READ_DELAY_MS}ms", "-duration", "300ms"]


def facts(lines):
    return {o["ev"]: o for o in (json.loads(l) for l in lines if l.startswith("{")) if "ev" in o}


class Flags(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.dir = tempfile.mkdtemp(prefix="schedscope-flags-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def start(self, argv, stdin=False):
        wl = Proc(argv, stdin=stdin)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 60)
        self.assertIsNotNone(ready, wl.stderr_text())
        return wl, ready

    def frames(self, pid, *flags, n=4):
        top = top_json(pid, "-i", "500ms", "-n", str(n), *flags)
        self.addCleanup(top.stop)
        fr = frames_until_final(top, 30)
        self.assertEqual(top.p.wait(10), 0, top.stderr_text())
        self.assertTrue(fr and fr[-1].get("final"), top.stderr_text())
        return fr

    def launch_knows(self, *flags):
        """top --json <flags> -- knows: returns (truth, final frame)."""
        out = os.path.join(self.dir, "top.json")
        p = Proc([SCHEDSCOPE, "top", "--batch", "--json", "-i", "500ms", "-o", out, *flags, "--",
                  workload("knows"), *KNOWS])
        self.addCleanup(p.stop)
        self.assertIsNotNone(p.wait_for(lambda o: o.get("ev") == "done", 60), p.stderr_text())
        self.assertEqual(p.p.wait(30), 0, p.stderr_text())
        frames = [json.loads(l) for l in open(out) if l.strip()]
        self.assertTrue(frames[-1].get("final"))
        return facts(p.lines), frames[-1]

    def test_no_go_reports_kernel_level_only(self):
        _, ready = self.start([workload("healthy_cpu"), "-duration", "30s"])
        on = self.frames(ready["pid"])[-2]
        off = self.frames(ready["pid"], "--no-go")[-2]
        self.assertTrue(on["target"]["go_enabled"])
        self.assertEqual(on["target"]["go_version"], ready["go"])
        self.assertEqual(len(on["ps"]), ready["gomaxprocs"])
        self.assertTrue(any(t["goid"] > 0 for t in on["threads"]), on["threads"])
        self.assertFalse(off["target"]["go_enabled"])
        self.assertEqual(off.get("ps", []), [])
        self.assertEqual(off.get("ms", []), [])
        self.assertTrue(all(t["goid"] <= 0 and t["m"] < 0 for t in off["threads"]), off["threads"])
        self.assertFalse(off["gc"]["enabled"])
        # Kernel-level observation goes on: the same threads, on-CPU.
        self.assertIn(ready["pid"], {t["tid"] for t in off["threads"]})
        # (a spinner: on-CPU whenever the loaded machine lets it)
        self.assertGreater(sum(t["oncpu_pct"] for t in off["threads"]), 5)

    def test_no_gc_drops_the_gc_probes_and_census(self):
        _, ready = self.start([workload("stwloop"), "-duration", "30s"])
        on = self.frames(ready["pid"])
        off = self.frames(ready["pid"], "--no-gc")
        self.assertTrue(on[-1]["gc"]["enabled"])
        self.assertGreater(sum(f["gc"].get("stw_count", 0) for f in on[:-1]), 0)
        self.assertTrue(any("census" in f for f in on))
        self.assertFalse(off[-1]["gc"]["enabled"])
        self.assertEqual(sum(f["gc"].get("stw_count", 0) or 0 for f in off), 0)
        self.assertFalse(any("census" in f for f in off))
        # The stop-the-world loop goes on; only schedscope stopped looking.
        self.assertTrue(off[-1]["target"]["go_enabled"])

    def test_no_runtime_probes_leaves_cpython_gc_unseen(self):
        if PYTHON is None:
            self.skipTest(NO_PYTHON_WHY)
        seen = {}
        for flags in ((), ("--no-runtime-probes",)):
            p, ready = self.start([PYTHON, PYPROG, "3"], stdin=True)
            top = top_json(ready["pid"], "-i", "500ms", *flags)
            self.addCleanup(top.stop)
            self.assertIsNotNone(top.wait_for(lambda o: "target" in o, 30))
            p.send()
            self.assertIsNotNone(p.wait_for(lambda o: o.get("ev") == "done", 60))
            fr = frames_until_final(top, 30)
            self.assertTrue(fr and fr[-1].get("final"))
            seen[flags] = fr[-1]
        on, off = seen[()], seen[("--no-runtime-probes",)]
        self.assertEqual(on["usdt"]["runtime"], "cpython")
        self.assertGreaterEqual(len([x for x in on["usdt"]["pause_list"] if x["kind"] == "gc"]), 3)
        u = off.get("usdt", {})
        self.assertEqual(u.get("pause_list", []), [], u)
        self.assertEqual(u.get("pauses", []), [], u)

    def test_offcpu_min_sets_which_blocks_become_events(self):
        truth, default = self.launch_knows()
        truth2, raised = self.launch_knows("--offcpu-min", "75ms")
        sl, rd = truth["sleeps"]["tid"], truth["reads"]["tid"]
        # Default 1 ms: every 50 ms sleep and every 100 ms read.
        self.assertEqual(thread(default, sl)["blocked_in"]["nanosleep"]["count"], SLEEPS)
        self.assertEqual(thread(default, rd)["blocked_in"]["read"]["count"], READS)
        # 75 ms: the sleeps are under it, the reads over it (the new run has new tids).
        sl2, rd2 = truth2["sleeps"]["tid"], truth2["reads"]["tid"]
        self.assertNotIn("nanosleep", thread(raised, sl2)["blocked_in"])
        self.assertEqual(thread(raised, rd2)["blocked_in"]["read"]["count"], READS)
        # The off-CPU time itself is still counted in full (the threshold is for events).
        self.assertGreaterEqual(thread(raised, sl2)["offcpu_ms"]["sleep"], SLEEPS * SLEEP_MS - 1)

    def slices(self, trace, category):
        """Names of the slices of a category in a Perfetto trace (protoc --decode_raw:
        TrackEvent name = field 23, categories = field 22)."""
        tr = subprocess.run(["protoc", "--decode_raw"], stdin=open(trace, "rb"), capture_output=True,
                            text=True, timeout=120)
        self.assertEqual(tr.returncode, 0, tr.stderr)
        names, depth, cur = [], 0, {}
        for line in tr.stdout.splitlines():
            s = line.strip()
            if s.endswith("{"):
                depth += 1
                if depth == 2:
                    cur = {}
            elif s == "}":
                if depth == 2 and cur.get("cat") == category and "name" in cur:
                    names.append(cur["name"])
                depth -= 1
            elif s.startswith('22: "'):
                cur["cat"] = s[5:-1]
            elif s.startswith('23: "'):
                cur["name"] = s[5:-1]
        return names

    def test_slow_syscall_sets_which_calls_become_slices(self):
        if shutil.which("protoc") is None:
            self.skipTest("protoc missing")
        got = {}
        for thr in ("1ms", "75ms"):
            rec = os.path.join(self.dir, f"k{thr}.sched")
            p = Proc([SCHEDSCOPE, "record", "-S", "--slow-syscall", thr, "-i", "500ms", "-q", "-o", rec,
                      "--", workload("knows"), *KNOWS])
            self.addCleanup(p.stop)
            self.assertIsNotNone(p.wait_for(lambda o: o.get("ev") == "done", 60), p.stderr_text())
            self.assertEqual(p.p.wait(30), 0, p.stderr_text())
            out = rec + ".pftrace"
            r = subprocess.run([SCHEDSCOPE, "export", rec, "--format", "perfetto", "-o", out],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            got[thr] = self.slices(out, "syscall")
        fast, slow = got["1ms"], got["75ms"]
        # 1 ms: the 50 ms sleeps are slices; 75 ms: none of them (nor sysmon's <= 10 ms
        # naps), while the ~100 ms reads stay.
        self.assertGreaterEqual(fast.count("nanosleep"), SLEEPS, fast)
        self.assertEqual(slow.count("nanosleep"), 0, slow)
        self.assertGreaterEqual(slow.count("read"), READS, slow)
        self.assertGreaterEqual(fast.count("read"), READS, fast)
        self.assertLess(len(slow), len(fast))

    def two_observers(self, argv, truth_ev, flag):
        """The same target under two `top`s at once, the second with flag."""
        wl, ready = self.start([*argv, "-wait-stdin"], stdin=True)
        a = top_json(ready["pid"], "-i", "500ms")
        b = top_json(ready["pid"], "-i", "500ms", *flag)
        for t in (a, b):
            self.addCleanup(t.stop)
            self.assertIsNotNone(t.wait_for(lambda o: "target" in o, 15), t.stderr_text())
        wl.send()
        truth = wl.wait_for(lambda o: o.get("ev") == truth_ev, 15)
        self.assertIsNotNone(truth)
        end = time.time() + 6
        fa, fb = [], []
        while time.time() < end:
            fa += a.json_lines(0.3)
            fb += b.json_lines(0.3)
        return truth, fa, fb

    def test_stuck_ms_live(self):
        truth, fa, fb = self.two_observers([workload("stuckp_raw"), "-hold", "12s"], "stuck", ["--stuck-ms", "60000"])
        a_stuck = [x for f in fa for x in f["alerts"] if x["kind"] == "stuck_p" and x["active"]]
        self.assertTrue(a_stuck, "default --stuck-ms: no stuck_p")
        self.assertEqual(a_stuck[0]["tid"], truth["tid"])
        self.assertGreaterEqual(len(fb), 8)
        self.assertEqual([x for f in fb for x in f["alerts"] if x["kind"] == "stuck_p"], [])

    def test_blocked_m_ms_live(self):
        truth, fa, fb = self.two_observers([workload("stuckp_cgo"), "-hold", "12s"], "blocked",
                                           ["--blocked-m-ms", "60000"])
        a_bm = [x for f in fa for x in f["notices"] if x["kind"] == "blocked_m"]
        self.assertTrue(a_bm, "default --blocked-m-ms: no blocked_m notice")
        self.assertEqual(a_bm[0]["tid"], truth["tid"])
        self.assertGreaterEqual(len(fb), 8)
        self.assertEqual([x for f in fb for x in f["notices"] if x["kind"] == "blocked_m"], [])


if __name__ == "__main__":
    unittest.main()
