"""Every detector threshold flag changes what fires. Each scenario workload is recorded
once (`record`, default thresholds); then `report --json` runs the detectors on that
same recording with the defaults (the alert fires, as it did live) and with one flag
moved past what the recording shows (the alert does not fire, or fires only then).
Same input, one flag apart: the difference is the flag.

The thresholds are shared by top, record, report, replay and export
(app::add_detector_flags); test_coverage_flags.py checks a few of them live on `top`."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from common import SCHEDSCOPE, Proc, require_root, usdt_python, workload

PYTHON, NO_PYTHON_WHY = usdt_python()  # a CPython with the python:* probes
PYPROG = os.path.join(os.environ.get("SCHEDSCOPE_SRC") or os.path.join(os.path.dirname(__file__), "..", ".."),
                      "tools", "runtimes", "usdt_python.py")


def record(tc, out, argv, seconds, until=None, interval="500ms"):
    """Starts argv (a workload with -wait-stdin), records it for `seconds` from before
    its start, returns the workload's JSON lines (up to the line `until`, if given)."""
    wl = Proc(argv, stdin=True)
    tc.addCleanup(wl.stop, signal.SIGKILL)
    ready = wl.wait_for(lambda o: o.get("ev") == "ready", 60)
    tc.assertIsNotNone(ready, wl.stderr_text())
    rec = Proc([SCHEDSCOPE, "record", "-p", str(ready["pid"]), "-i", interval, "-d", f"{seconds}s",
                "-o", out])
    tc.addCleanup(rec.stop)
    rec.wait_ready()  # attached, baseline taken, Go layer read: the workload may start
    wl.send()
    tc.assertEqual(rec.p.wait(seconds + 30), 0, rec.stderr_text())
    if until:
        tc.assertIsNotNone(wl.wait_for(lambda o: o.get("ev") == until, 30), wl.stderr_text())
    return [json.loads(l) for l in wl.lines if l.startswith("{")]


def kinds(tc, path, *flags):
    r = subprocess.run([SCHEDSCOPE, "report", path, "--json", *flags], capture_output=True,
                       text=True, timeout=120)
    tc.assertEqual(r.returncode, 0, r.stderr)
    return {a["kind"] for a in json.loads(r.stdout)["alerts"]}


class Thresholds(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.dir = tempfile.mkdtemp(prefix="schedscope-thresholds-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "r.sched")

    def fires(self, kind, *flags):
        self.assertIn(kind, kinds(self, self.path, *flags), f"{kind} should fire with {flags}")

    def silent(self, kind, *flags):
        self.assertNotIn(kind, kinds(self, self.path, *flags), f"{kind} should not fire with {flags}")

    def test_stuck_ms(self):
        # 6 s of an 8 s hold: even a slow start leaves well over 1.5 s of it in the window
        record(self, self.path, [workload("stuckp_raw"), "-wait-stdin", "-hold", "8s"], 6)
        self.fires("stuck_p")
        self.fires("stuck_p", "--stuck-ms", "1500")
        self.silent("stuck_p", "--stuck-ms", "60000")  # the hold never lasts a minute

    def test_storm_rate_threads_blocked(self):
        record(self, self.path, [workload("storm_cgo"), "-wait-stdin", "-duration", "8s"], 5)
        self.fires("syscall_storm")
        self.silent("syscall_storm", "--storm-threads", "100000")  # ~200 threads
        self.silent("syscall_storm", "--storm-rate", "100000")     # ~100 creations/s
        self.silent("syscall_storm", "--storm-blocked", "1")       # idle Ms, sysmon: never all

    def test_thread_limit_warn(self):
        truth = record(self, self.path, [workload("threadlimit"), "-wait-stdin", "-max", "100",
                                         "-threads", "85", "-duration", "8s"], 4, until="held")
        held = [o for o in truth if o.get("ev") == "held"]
        self.assertTrue(held)
        frac = held[0]["threads"] / 100  # ~0.89: over the 0.8 default, under 0.95
        self.assertGreaterEqual(frac, 0.85)
        self.fires("thread_limit")
        self.silent("thread_limit", "--thread-limit-warn", "0.95")
        self.fires("thread_limit", "--thread-limit-warn", "0.5")

    def test_gc_assist_and_mmu(self):
        # As test_gc_netpoll: 1 s intervals over the whole run (heap build included).
        record(self, self.path, [workload("gcstress"), "-wait-stdin", "-live-mb", "128", "-duration", "8s"],
               10, interval="1s")
        self.fires("gc_stall")
        self.silent("gc_stall", "--gc-assist", "1")
        self.silent("gc_stall", "--gc-mmu-10ms", "0", "--gc-mmu-100ms", "0")

    def test_stw_share_and_rate(self):
        record(self, self.path, [workload("stwloop"), "-wait-stdin", "-duration", "10s"], 5)
        self.fires("stw_stall")
        self.silent("stw_stall", "--stw-rate", "1000000")
        self.silent("stw_stall", "--stw-share", "1")

    def test_netpoll_io_wait_frac_cpu(self):
        record(self, self.path, [workload("netpoll_slow"), "-wait-stdin", "-duration", "12s"], 6)
        self.fires("netpoll_saturation")
        self.silent("netpoll_saturation", "--netpoll-io-wait", "1000000")  # ~1400 in IO wait
        self.silent("netpoll_saturation", "--netpoll-io-frac", "1")        # some runnable ones
        self.silent("netpoll_saturation", "--netpoll-cpu-max", "0")

    def test_pause_ms_and_share(self):
        if PYTHON is None:
            self.skipTest(NO_PYTHON_WHY)
        truth = record(self, self.path, [PYTHON, PYPROG, "3"], 3, until="done")
        done = [o for o in truth if o.get("ev") == "done"]
        self.assertTrue(done, truth)
        longest = max(c["ms"] for c in done[0]["collections"])
        # Every collection is a pause; one as long as the shortest threshold fires.
        self.fires("gc_pause", "--pause-ms", "0.001", "--pause-share", "1")
        # None is an hour long, and they never take the whole wall time.
        self.silent("gc_pause", "--pause-ms", "3600000", "--pause-share", "1")
        # The share alone: any pause takes more than nothing of an interval.
        self.fires("gc_pause", "--pause-ms", "3600000", "--pause-share", "0.000001")
        self.assertGreater(longest, 0)


if __name__ == "__main__":
    unittest.main()
