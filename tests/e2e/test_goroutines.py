"""--goroutines e2e: entry uprobes at the RETs of runtime.newproc1 count and attribute
goroutines, the census gives their exits (with --goroutine-exits an uprobe at
runtime.gdestroy/goexit0 counts them exactly); the target must survive them. Without
--goroutines: counts from goidgen and the census, no uprobe."""
import json
import os
import signal
import subprocess
import tempfile
import unittest

from common import SCHEDSCOPE, Proc, frames_until_final, require_root, testbins, top_json, workload


class Goroutines(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def gospawn_under_top(self, n, *flags):
        """gospawn spawns n goroutines of main.spawned in 4 bursts under `top --goroutines
        <flags>` (attached before the first burst) and holds 1.5 s once all have exited.
        Returns the frames, the last one final."""
        wl = Proc([workload("gospawn"), "-wait-stdin", "-n", str(n), "-bursts", "4",
                   "-gap", "200ms", "-hold", "1500ms"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready, "gospawn did not start")
        top = top_json(ready["pid"], "--goroutines", *flags, "-i", "500ms")
        self.addCleanup(top.stop)
        # Wait until the uprobes are attached (first frame says so), then start spawning.
        first = top.wait_for(lambda o: "target" in o, 15)
        if first is None:
            top.stop()  # stderr reads to EOF: only once schedscope has ended
            self.fail("no frame: " + top.stderr_text())
        self.assertIn("goroutines", first)
        self.assertTrue(first["goroutines"]["enabled"], first["goroutines"].get("note"))
        wl.send()
        spawned = wl.wait_for(lambda o: o.get("ev") == "spawned", 20)
        self.assertIsNotNone(spawned)
        self.assertEqual(spawned["func"], "main.spawned")
        frames = frames_until_final(top, 20)
        done = [o for o in wl.rest(5) if o.get("ev") == "done"]
        self.assertTrue(done, "gospawn did not finish (crashed under the uprobes?)")
        self.assertEqual(wl.p.wait(5), 0)
        self.assertTrue(frames and frames[-1].get("final"), "no final frame")
        return frames

    def check_counts(self, frames, n):
        """What both modes give alike: gospawn's n goroutines of main.spawned created (and,
        by then, exited), all by main.main (goid 1)."""
        g = frames[-1]["goroutines"]
        by_func = {r["func"]: r for r in g["top"]}
        self.assertIn("main.spawned", by_func, g["top"])
        self.assertEqual(by_func["main.spawned"]["count"], n)
        self.assertEqual(by_func["main.spawned"]["exited"], n)
        # Nothing else is counted but what the table names (the runtime's own goroutines,
        # e.g. a first GC cycle's mark workers, if any started while observed).
        self.assertEqual(g["created"], sum(r["count"] for r in g["top"]), g)
        self.assertEqual(g["exited"], sum(r["exited"] for r in g["top"]), g)
        # Every per-interval frame adds up to the total.
        self.assertEqual(sum(f["goroutines"]["created"] for f in frames[:-1]), g["created_total"])
        self.assertEqual(frames[-1]["drops"], 0)  # no record lost
        self.assertIsNotNone(g["live"])
        self.assertIn("hits/s", g["cost"])
        # main.main (goid 1) created them all.
        self.assertEqual(g["top_creators"][0]["goid"], 1)
        self.assertEqual(g["top_creators"][0]["count"], n)
        return g

    def test_gospawn_counts_and_attributes(self):
        """--goroutines: one uprobe trap per goroutine (newproc1's RETs), none at exit. The
        exits come from the census (created - growth of the live count between the first
        and the last census): exact when nothing starts or exits while those two censuses
        read allgs, as here (gospawn is idle before its first burst and during its hold)."""
        n = 2000
        frames = self.gospawn_under_top(n)
        g = self.check_counts(frames, n)
        self.assertEqual(g["exited_source"], "census", g)
        self.assertRegex(g["note"], r"uprobe\(s\) at the RETs of runtime\.newproc1; exits from the goroutine census$")
        # One uprobe hit per goroutine created, no more: the hits (go_hits, per CPU in the
        # kernel) equal the creation records, and main.spawned's records are gospawn's own
        # count (a probe firing twice would double both).
        self.assertEqual(g["uprobe_hits"], g["created"], g)
        self.assertLessEqual(g["uprobe_hits"], n + 16, g)  # gospawn's, + the runtime's few
        # The live count is the census's (no estimate of its own).
        self.assertEqual(g["live"], frames[-1]["goroutine_counts"]["live"], g)
        self.assertLess(g["live"], n // 10, g)

    def test_gospawn_exact_exits(self):
        """--goroutine-exits: the exit uprobe too (runtime.gdestroy / goexit0), exits
        counted one by one and matched to their creation: two traps per goroutine."""
        n = 2000
        frames = self.gospawn_under_top(n, "--goroutine-exits")
        g = self.check_counts(frames, n)
        self.assertEqual(g["exited_source"], "uprobe", g)
        self.assertRegex(g["note"], r"\+ 1 at the entry of runtime\.(gdestroy|goexit0)$")
        # One uprobe hit per creation and per exit, no more.
        self.assertEqual(g["uprobe_hits"], g["created"] + g["exited"], g)

    def test_created_without_uprobes(self):
        """The default mode (no --goroutines, no uprobe) counts created goroutines from the
        runtime's goid generator: the final frame's count is gospawn's own, within the
        bound the frame states (16 ids per P cached ahead), plus the few the runtime may
        start itself (GC mark workers); the live count comes from the census."""
        n = 3000
        wl = Proc([workload("gospawn"), "-wait-stdin", "-n", str(n), "-bursts", "3",
                   "-gap", "200ms", "-hold", "1500ms"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready, "gospawn did not start")
        top = top_json(ready["pid"], "-i", "500ms")
        self.addCleanup(top.stop)
        # Two reads of goidgen before the spawning starts: the count has its base.
        first = top.wait_for(lambda o: "goroutine_counts" in o, 15)
        if first is None:
            top.stop()
            self.fail("no frame with goroutine_counts: " + top.stderr_text())
        self.assertNotIn("goroutines", first)  # no --goroutines: no uprobe section
        self.assertEqual(first["goroutine_counts"]["created"], 0, first["goroutine_counts"])
        wl.send()
        spawned = wl.wait_for(lambda o: o.get("ev") == "spawned", 20)
        self.assertIsNotNone(spawned)
        self.assertEqual(spawned["count"], n)
        frames = frames_until_final(top, 20)
        self.assertTrue(frames and frames[-1].get("final"), "no final frame")
        g = frames[-1]["goroutine_counts"]
        err = g["error_max"]
        self.assertEqual(err, 16 * frames[-1]["target"]["gomaxprocs"], g)
        self.assertGreaterEqual(g["created"], n - err, g)
        self.assertLessEqual(g["created"], n + err + 16, g)
        self.assertEqual(g["created"], g["created_total"], g)
        # Per interval: the frames that saw the bursts add up to them, a rate is given.
        during = [f["goroutine_counts"] for f in frames[:-1] if "goroutine_counts" in f]
        self.assertGreaterEqual(sum(c["created"] for c in during), n - err)
        self.assertGreater(max(c["created_per_s"] for c in during), 0)
        # Alive at the end of the hold: the spawned ones have exited (census).
        self.assertIsNotNone(g["live"], g)
        self.assertLess(g["live"], n // 10, g)
        self.assertGreater(max(c["live"] or 0 for c in during), 0)

    def test_top_start_functions_without_uprobes(self):
        """The census (one pass over allgs per interval, no uprobe) names the start
        functions of the live goroutines: while gospawn holds its n goroutines of
        main.spawned (each sleeping 3 s), main.spawned leads the census's live_funcs with
        at least n of them, as gospawn says it started them."""
        n = 2000
        wl = Proc([workload("gospawn"), "-wait-stdin", "-n", str(n), "-bursts", "1",
                   "-sleep", "3s", "-hold", "500ms"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready, "gospawn did not start")
        top = top_json(ready["pid"], "-i", "500ms")
        self.addCleanup(top.stop)
        first = top.wait_for(lambda o: "census" in o, 15)
        if first is None:
            top.stop()
            self.fail("no frame with a census: " + top.stderr_text())
        self.assertNotIn("goroutines", first)  # no --goroutines: no uprobe section
        wl.send()
        spawned = wl.wait_for(lambda o: o.get("ev") == "spawned", 20)
        self.assertIsNotNone(spawned)
        self.assertEqual(spawned["count"], n)
        self.assertEqual(spawned["func"], "main.spawned")
        frames = frames_until_final(top, 20)
        tops = [f["census"]["live_funcs"] for f in frames if f.get("census")]
        held = [t for t in tops if t and t[0]["func"] == spawned["func"]]
        self.assertTrue(held, tops[-4:])
        best = max(t[0]["count"] for t in held)
        self.assertGreaterEqual(best, n, held)
        self.assertLessEqual(best, n + 16, held)  # only gospawn's; nothing else starts there
        for t in tops:  # most first
            counts = [e["count"] for e in t]
            self.assertEqual(counts, sorted(counts, reverse=True), t)

    def test_recording_keeps_goroutines_and_uprobe_hits(self):
        """What --goroutines showed live comes back from a recording: per-function counts and
        the uprobe hits (the cost line) — not zeros."""
        n = 1000
        d = tempfile.mkdtemp(prefix="schedscope-e2e-gor-")
        self.addCleanup(subprocess.run, ["rm", "-rf", d])
        out = os.path.join(d, "g.sched")
        wl = Proc([workload("gospawn"), "-wait-stdin", "-n", str(n), "-bursts", "2",
                   "-gap", "200ms", "-hold", "1s"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready, "gospawn did not start")
        rec = Proc([SCHEDSCOPE, "record", "-q", "-p", str(ready["pid"]), "--goroutines", "-i", "500ms",
                    "-o", out])
        self.addCleanup(rec.stop)
        rec.wait_ready(30)  # the goroutine uprobes are attached before the spawning starts
        wl.send()
        self.assertIsNotNone(wl.wait_for(lambda o: o.get("ev") == "spawned", 20))
        self.assertEqual(rec.p.wait(30), 0, rec.stderr_text())
        r = subprocess.run([SCHEDSCOPE, "replay", out, "--json"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        frames = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        self.assertTrue(frames and frames[-1].get("final"), r.stdout[-500:])
        g = frames[-1]["goroutines"]
        self.assertTrue(g["enabled"])
        by_func = {x["func"]: x for x in g["top"]}
        self.assertIn("main.spawned", by_func, g["top"])
        self.assertEqual(by_func["main.spawned"]["count"], n)
        # Exits from the recorded censuses, as live (nothing started or exited while the
        # first and last of them read allgs: exact here).
        self.assertEqual(g["exited_source"], "census", g)
        self.assertEqual(by_func["main.spawned"]["exited"], n)
        # One uprobe hit per creation, as live.
        self.assertEqual(g["uprobe_hits"], g["created"], g)
        self.assertGreaterEqual(g["created"], n)
        self.assertGreater(max(f["goroutines"]["uprobe_hits_per_s"] for f in frames[:-1]), 0)

    def test_testbins_survive_uprobes(self):
        for exe in testbins():
            with self.subTest(exe=os.path.basename(exe)):
                sr = Proc([exe])
                try:
                    # Its last startup line: every goroutine it will ever have exists.
                    self.assertIsNotNone(sr.wait_for(lambda o: "reader_goid" in o, 10), exe)
                    truth = json.loads(sr.lines[0])
                    top = top_json(truth["pid"], "--goroutines", "-i", "1s", "-d", "3s")
                    frames = frames_until_final(top, 30)
                    top.stop()
                    if not frames:
                        self.fail("no frames: " + top.stderr_text())
                    for f in frames:
                        self.assertIn("goroutines", f)
                    g = frames[-1]["goroutines"]
                    self.assertTrue(g["enabled"], g.get("note"))
                    self.assertRegex(g.get("note", ""), r"^[1-9]\d* uprobe\(s\) at the RETs of runtime\.newproc1", g)
                    # selfreport starts no goroutine and none ends once it has printed its
                    # reader line (its goroutines spin, read and sleep forever; it allocates
                    # a byte per 100 ms, far from a first GC): nothing to count, exactly.
                    self.assertEqual((g["created"], g["exited"], g["uprobe_hits"]), (0, 0, 0), g)
                    self.assertIsNone(sr.p.poll(), f"{exe} died under the uprobes")
                finally:
                    sr.stop(signal.SIGKILL)


if __name__ == "__main__":
    unittest.main()
