"""Detectors e2e: each stuck/storm workload raises the right alert, with the
right P, tid, G function and syscall, within 5 s of the condition starting; a long cgo
call whose P sysmon hands off shows as a blocked M, not a stuck P; healthy workloads
raise nothing in 30 s."""
import os
import signal
import time
import unittest

from common import Proc, require_root, top_json, workload

ALERT_DEADLINE_S = 5.0


def first_alert(top, kind, t0, timeout):
    """Reads frames until one carries an active alert of kind; returns (alert, seconds)."""
    end = time.time() + timeout
    while time.time() < end:
        for f in top.json_lines(1.0):
            for a in f.get("alerts", []):
                if a["kind"] == kind and a["active"]:
                    return a, time.time() - t0, f
    return None, None, None


class Detectors(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def start(self, name, *args):
        wl = Proc([workload(name), "-wait-stdin", *args], stdin=True)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        top = top_json(ready["pid"], "-i", "500ms")
        self.assertIsNotNone(top.wait_for(lambda o: "target" in o, 10), "schedscope did not start")
        self.addCleanup(top.stop)
        self.addCleanup(wl.stop, signal.SIGKILL)
        wl.send()
        return wl, top

    def test_stuck_p_raw_syscall(self):
        wl, top = self.start("stuckp_raw", "-hold", "12s")
        truth = wl.wait_for(lambda o: o.get("ev") == "stuck", 10)
        t0 = time.time()
        a, dt, frame = first_alert(top, "stuck_p", t0, ALERT_DEADLINE_S + 3)
        self.assertIsNotNone(a, "no stuck_p alert")
        self.assertLessEqual(dt, ALERT_DEADLINE_S)
        self.assertEqual(a["tid"], truth["tid"])
        self.assertEqual(a["goid"], truth["goid"])
        self.assertEqual(a["func"], truth["func"])
        self.assertEqual(a["syscall"], truth["syscall"])
        self.assertEqual(a["p"], truth["p"])
        self.assertFalse(a["handed_off"])
        self.assertGreaterEqual(a["duration_ms"], 900)
        # The symbolized stack of the blocked G, innermost first, reaches the blocker.
        self.assertTrue(any(truth["func"] in fr for fr in a["stack"]), a["stack"])
        self.assertIn("syscall.RawSyscall", " ".join(a["stack"]))
        for key in ("kind", "p", "tid", "goid", "func", "syscall", "duration_ms", "handed_off",
                    "threads", "message"):
            self.assertIn(key, a)
        # The P row itself agrees: running, on the blocker's thread, with its G.
        p = [x for x in frame["ps"] if x["id"] == truth["p"]][0]
        self.assertEqual(p["status"], "running")
        self.assertEqual(p["tid"], truth["tid"])
        self.assertEqual(p["goid"], truth["goid"])

    def test_stuck_p_in_a_pid_namespace_of_its_own(self):
        # A container's process: its own PID namespace (unshare), so m.procid holds the tids
        # it sees, not the kernel's. The alert must still name the blocked thread by the
        # host's tid, with its P and G.
        wl = Proc(["unshare", "--pid", "--fork", "--mount-proc", workload("stuckp_raw"),
                   "-wait-stdin", "-hold", "12s"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        self.assertEqual(ready["pid"], 1, "the workload runs as pid 1 of its own namespace")
        with open(f"/proc/{wl.p.pid}/task/{wl.p.pid}/children") as f:
            host_pid = int(f.read().split()[0])

        def host_tid(ns_tid):
            for tid in os.listdir(f"/proc/{host_pid}/task"):
                with open(f"/proc/{host_pid}/task/{tid}/status") as st:
                    for line in st:
                        if line.startswith("NSpid:") and int(line.split()[-1]) == ns_tid:
                            return int(tid)
            return None

        top = top_json(host_pid, "-i", "500ms")
        self.addCleanup(top.stop)
        first = top.wait_for(lambda o: "target" in o, 10)
        self.assertIsNotNone(first, "schedscope did not start")
        self.assertTrue(first["target"]["go_enabled"], first["target"].get("go_note"))
        wl.send()
        truth = wl.wait_for(lambda o: o.get("ev") == "stuck", 10)
        self.assertIsNotNone(truth)
        tid = host_tid(truth["tid"])
        self.assertIsNotNone(tid)
        self.assertNotEqual(tid, truth["tid"])
        a, dt, frame = first_alert(top, "stuck_p", time.time(), ALERT_DEADLINE_S + 3)
        self.assertIsNotNone(a, "no stuck_p alert for a process in its own PID namespace")
        self.assertEqual(a["tid"], tid)
        self.assertEqual(a["goid"], truth["goid"])
        self.assertEqual(a["func"], truth["func"])
        self.assertEqual(a["p"], truth["p"])
        # Every M of the sample names a thread of the process as the host sees it.
        tids = {int(t) for t in os.listdir(f"/proc/{host_pid}/task")}
        ms = [p for p in frame["ps"] if p.get("tid", 0) > 0]
        self.assertTrue(ms)
        self.assertTrue(all(p["tid"] in tids for p in ms), (ms, tids))

    def test_long_cgo_call_is_a_blocked_m_not_a_stuck_p(self):
        wl, top = self.start("stuckp_cgo", "-hold", "10s")
        truth = wl.wait_for(lambda o: o.get("ev") == "blocked", 10)
        t0 = time.time()
        seen_stuck = []
        blocked = None
        end = t0 + ALERT_DEADLINE_S + 3
        while time.time() < end and blocked is None:
            for f in top.json_lines(1.0):
                for a in f.get("alerts", []):
                    if a["kind"] == "stuck_p":
                        seen_stuck.append(a)
                for a in f.get("notices", []):
                    if a["kind"] == "blocked_m" and a["tid"] == truth["tid"]:
                        blocked = a
        self.assertIsNotNone(blocked, "no blocked_m notice for the cgo thread")
        self.assertLessEqual(time.time() - t0, ALERT_DEADLINE_S + 1)
        self.assertTrue(blocked["handed_off"])
        self.assertEqual(blocked["goid"], truth["goid"])
        self.assertEqual(blocked["func"], truth["func"])
        self.assertEqual(blocked["syscall"], truth["syscall"])
        self.assertEqual(seen_stuck, [], "a handed-off cgo call must not be a stuck P")

    def check_storm(self, name, *args):
        wl, top = self.start(name, *args)
        truth = wl.wait_for(lambda o: o.get("ev") == "storm", 10)
        t0 = time.time()
        a, dt, _ = first_alert(top, "syscall_storm", t0, ALERT_DEADLINE_S + 3)
        self.assertIsNotNone(a, "no syscall_storm alert")
        self.assertLessEqual(dt, ALERT_DEADLINE_S)
        self.assertEqual(a["syscall"], truth["syscall"])
        self.assertEqual(a["func"], truth["func"])
        self.assertIn(truth["syscall"], a["message"])
        # The alert's thread count is the process's own at the alert's timestamp. The
        # workload read its count every 2 ms (CLOCK_MONOTONIC, like schedscope's clock) and
        # reports the runs of equal counts; its threads never exit, so the count only grows.
        # Tolerance: "t" is rounded to 10 ms (+-5 ms), +1 ms for a read's own length.
        done = wl.wait_for(lambda o: o.get("ev") == "done", 30)
        self.assertIsNotNone(done, "the storm workload did not finish")
        runs = done["thread_runs"]
        t_lo, t_hi = a["t"] * 1e9 - 6e6, a["t"] * 1e9 + 6e6
        self.assertLessEqual(runs[0][0], t_lo, "the alert came before the workload sampled")
        lo = [r for r in runs if r[0] <= t_lo][-1][2]
        hi = next((r[2] for r in runs if r[1] >= t_hi), runs[-1][2])
        self.assertTrue(lo <= a["threads"] <= hi, (a["threads"], lo, hi, a["t"]))
        self.assertGreaterEqual(a["threads"], 50)
        return a

    def test_storm_through_blocking_cgo_calls(self):
        self.check_storm("storm_cgo")

    def test_storm_through_blocking_pipe_reads(self):
        self.check_storm("storm_fileio", "-mode", "pipe")

    def check_healthy(self, name, *args, seconds=30):
        wl, top = self.start(name, *args)
        end = time.time() + seconds
        frames = 0
        while time.time() < end:
            for f in top.json_lines(1.0):
                frames += 1
                self.assertEqual(f.get("alerts", []), [], f"false alarm on {name}")
        self.assertGreaterEqual(frames, seconds * 2 - 4)

    def test_healthy_cpu_raises_nothing(self):
        self.check_healthy("healthy_cpu", "-duration", "40s")

    def test_healthy_mixed_raises_nothing(self):
        self.check_healthy("healthy_mixed", "-duration", "40s")


if __name__ == "__main__":
    unittest.main()
