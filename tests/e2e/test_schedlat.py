"""Goroutine scheduling latency e2e: schedscope reads the runtime's own
runnable -> running histogram (sched.timeToRun) from outside, and the numbers equal what
the program reads from inside through runtime/metrics /sched/latencies:seconds, bucket by
bucket, on both histogram layouts: tools/workloads/schedlat built by Debian's go1.19
(layout 1.17-1.19) and by go1.23 stripped (layout 1.20+). -hogs spinning goroutines
keep the wakers runnable for milliseconds; with -hogs 0 (the healthy control) they run at
once. A recording reports the same histogram."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from common import SCHEDSCOPE, Proc, frames_until_final, require_root, top_json, workload

GO123 = "schedlat-go1.23-stripped"


def goroutine_latency(frame):
    return frame.get("sched_latency", {}).get("goroutine") or {}


class SchedLatency(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def observe(self, name, args, extra=()):
        """Starts schedlat (-wait-stdin, GOMAXPROCS=2), attaches top --json, releases the
        load once schedscope has read the histogram, waits for the workload's final line
        and two more reads, then stops schedscope. Returns (final line, frames)."""
        env = dict(os.environ, GOMAXPROCS="2")
        wl = Proc([workload(name), "-wait-stdin", *args], stdin=True, env=env)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        top = top_json(ready["pid"], "-i", "500ms", *extra)
        self.addCleanup(top.stop)
        first = top.wait_for(lambda o: goroutine_latency(o).get("available"), 20)
        if first is None:
            top.stop()
            self.fail("no goroutine latency in the frames: " + top.stderr_text())
        frames = [first]
        wl.send()
        final = wl.wait_for(lambda o: o.get("ev") == "final", 30)
        self.assertIsNotNone(final, "workload did not finish its load")
        # Two more frames (two more reads) after the workload's own read, however slow.
        while True:  # the frames already sent
            got = [f for f in top.json_lines(0.05) if "target" in f]
            if not got:
                break
            frames += got
        after = []
        end = time.time() + 20
        while len(after) < 2 and time.time() < end:
            after += [f for f in top.json_lines(0.5) if "target" in f]
        self.assertGreaterEqual(len(after), 2, "no frames after the workload's final read")
        frames += after
        top.p.send_signal(signal.SIGINT)
        frames += frames_until_final(top, 20)
        self.assertTrue(frames[-1].get("final"), "no final frame")
        return final, frames

    def assert_equals_runtime(self, final, lat):
        """schedscope's histogram since attach vs the runtime's new samples since the load
        started: the same buckets with the same counts, plus at most a few samples from the
        program's quiet moments before and after (its main goroutine, timers)."""
        truth = final["runtime_samples"]
        self.assertGreater(truth, 20, final)
        self.assertGreaterEqual(lat["samples"], truth)
        self.assertLessEqual(lat["samples"] - truth, 3 + truth // 50, (lat["samples"], truth))
        ours = {b["ge_ns"]: b for b in lat["buckets"]}
        extra = 0
        for b in final["buckets"]:
            mine = ours.get(b["ge_ns"])
            self.assertIsNotNone(mine, "bucket %s missing: ours %s" % (b, lat["buckets"]))
            self.assertEqual(mine["lt_ns"], b["lt_ns"], (mine, b))
            self.assertGreaterEqual(mine["count"], b["count"], (mine, b))
            extra += mine["count"] - b["count"]
        self.assertLessEqual(extra, 3 + truth // 50)
        # p99 lies in (or, with the extra samples, next to) the runtime's p99 bucket.
        lo, hi = final["p99_bucket"]["ge_ns"], final["p99_bucket"]["lt_ns"]
        self.assertGreaterEqual(lat["p99_us"] * 1e3, lo * 0.75, (lat, final["p99_bucket"]))
        self.assertLessEqual(lat["p99_us"] * 1e3, hi * 1.34, (lat, final["p99_bucket"]))

    def run_pair(self, name):
        final, frames = self.observe(name, ["-hogs", "4", "-duration", "3s"])
        lat = goroutine_latency(frames[-1])
        self.assertIn("sched.timeToRun", lat["source"])
        self.assert_equals_runtime(final, lat)
        # Runnable behind spinning hogs that only sysmon preempts (about every 10 ms):
        # milliseconds, and the wakers overslept by as much.
        self.assertGreater(lat["p99_us"], 2000, lat)
        self.assertGreater(final["late_p99_ns"], 2e6, final)
        # The intervals during the load carry the samples.
        busy = [goroutine_latency(f) for f in frames[:-1] if goroutine_latency(f).get("samples")]
        self.assertTrue(busy)
        self.assertTrue(any(b["p99_us"] > 2000 for b in busy), busy)

        ctl_final, ctl_frames = self.observe(name, ["-hogs", "0", "-duration", "3s"])
        ctl = goroutine_latency(ctl_frames[-1])
        self.assert_equals_runtime(ctl_final, ctl)
        self.assertLess(ctl["p99_us"], 2000, ctl)
        self.assertLess(ctl["p99_us"] * 5, lat["p99_us"], (ctl, lat))

    def test_go119_layout_equals_runtime_metrics(self):
        self.run_pair("schedlat")

    def test_go123_stripped_layout_equals_runtime_metrics(self):
        self.run_pair(GO123)

    def test_recording_reports_the_same_histogram(self):
        env = dict(os.environ, GOMAXPROCS="2")
        wl = Proc([workload(GO123), "-wait-stdin", "-hogs", "4", "-duration", "2s"],
                  stdin=True, env=env)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        d = tempfile.mkdtemp()
        out = os.path.join(d, "lat.sched")
        # Without -q: a progress line per frame on stderr (not a terminal).
        rec = Proc([SCHEDSCOPE, "record", "-p", str(ready["pid"]), "-i", "500ms", "-o", out])
        self.addCleanup(rec.stop, signal.SIGKILL)
        rec.wait_ready(30)  # attached and the histogram read once: its baseline
        wl.send()
        final = wl.wait_for(lambda o: o.get("ev") == "final", 30)
        self.assertIsNotNone(final)
        # Two more frames (two more reads of the histogram) after the workload's own read.
        frames_then = rec.stderr_so_far().count("recording pid ")
        end = time.time() + 20
        while rec.stderr_so_far().count("recording pid ") < frames_then + 2 and time.time() < end:
            time.sleep(0.05)
        self.assertGreaterEqual(rec.stderr_so_far().count("recording pid "), frames_then + 2,
                                rec.stderr_so_far())
        rec.p.send_signal(signal.SIGINT)
        if rec.p.wait(20) != 0:
            self.fail("record failed: " + rec.stderr_text())
        rep = subprocess.run([SCHEDSCOPE, "report", "--json", out], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(rep.returncode, 0, rep.stderr)
        r = json.loads(rep.stdout)
        lat = r["sched_latency"]["goroutine"]
        self.assert_equals_runtime(final, lat)
        self.assertTrue(any(i["p99_us"] > 2000 for i in lat["intervals"]), lat["intervals"])
        text = subprocess.run([SCHEDSCOPE, "report", out], capture_output=True, text=True,
                              timeout=60).stdout
        self.assertIn("GOROUTINE SCHEDULING LATENCY", text)
        self.assertIn("worst interval p99", text)


if __name__ == "__main__":
    unittest.main()
