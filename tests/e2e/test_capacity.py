"""Capacity decisions end to end: the capacity workload puts a Go program in each state the
questions answer (GOMAXPROCS below the CPUs with more runnable goroutines than Ps; a burst
producer filling one P's run queue; tens of thousands of goroutines parked on network
reads; the CPU-bound program in a cgroup whose CPU quota is below GOMAXPROCS) and prints
what it did; schedscope's `capacity` section must answer yes to the matching question,
with the numbers behind it agreeing with that ground truth. Healthy programs get no false
yes (`no`, or `unknown` where data is missing, or `look_elsewhere` when the machine starves
the threads). A recording gives back the answers shown live, frame by frame."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from common import SCHEDSCOPE, SRC, Proc, frames_until_final, require_root, workload

QUESTIONS = ["raise_gomaxprocs", "shard", "fewer_goroutines", "cpu_quota"]


def answers(frame):
    return {v["question"]: v["answer"] for v in frame["capacity"]["verdicts"]}


def verdict(frame, q):
    return next(v for v in frame["capacity"]["verdicts"] if v["question"] == q)


def expected_raise(lines):
    """What raise_gomaxprocs must say for the one-P CPU workload, from its own CPU use: its
    P is held all the time, so if its thread got at least 0.6 CPU a second the P is the
    limit (yes); at most 0.4 and the host starved the thread (look_elsewhere: more Ps would
    wait for the CPU too); in between either."""
    used = [o["cpu_per_s"] for o in lines if o.get("ev") == "tick"][1:]
    assert used, "no tick from the workload"
    if min(used) >= 0.6:
        return ("yes",)
    if max(used) <= 0.4:
        return ("look_elsewhere",)
    return ("yes", "look_elsewhere")


class CpuCgroup:
    """A cgroup with a CPU quota, made for the test and removed after it (v1 cpu controller
    or v2 cpu.max, whichever the machine has for cpu)."""

    def __init__(self, quota_us, period_us=100000):
        name = f"schedscope-capacity-{os.getpid()}"
        unified = "/sys/fs/cgroup/cgroup.controllers"
        if os.path.exists(unified) and "cpu" in open(unified).read().split():
            self.v2 = True
            self.path = os.path.join("/sys/fs/cgroup", name)
            os.mkdir(self.path)
            with open(os.path.join(self.path, "cpu.max"), "w") as f:
                f.write(f"{quota_us} {period_us}\n")
        else:
            self.v2 = False
            self.path = os.path.join("/sys/fs/cgroup/cpu", name)
            os.mkdir(self.path)
            with open(os.path.join(self.path, "cpu.cfs_period_us"), "w") as f:
                f.write(f"{period_us}\n")
            with open(os.path.join(self.path, "cpu.cfs_quota_us"), "w") as f:
                f.write(f"{quota_us}\n")
        self.rel = "/" + name

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(f"{pid}\n")

    def remove(self):
        for _ in range(50):  # the killed workload leaves the cgroup when it is reaped
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)
        os.rmdir(self.path)


class Capacity(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def observe(self, args, seconds=9, name="capacity", before_attach=None):
        """Starts the workload (-wait-stdin), runs `top --json -i 1s -d SECONDS` on it,
        releases it once schedscope is attached, and returns (frames, workload lines)."""
        wl = Proc([workload(name), "-wait-stdin", *args], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 15)
        self.assertIsNotNone(ready, "workload not ready")
        if before_attach:
            before_attach(ready["pid"])
        top = Proc([SCHEDSCOPE, "top", "-p", str(ready["pid"]), "--batch", "--json", "-i", "1s",
                    "-d", f"{seconds}s"])
        self.addCleanup(top.stop)
        top.wait_ready(30)
        wl.send()
        frames = frames_until_final(top, seconds + 30)
        self.assertTrue(frames and frames[-1].get("final"), "no final frame: %s" % top.stderr_text())
        while wl.read_lines(0.3):  # what the workload printed until now
            pass
        return frames, [json.loads(l) for l in wl.lines if l.startswith("{")]

    def shown(self, frames):
        live = [f for f in frames if not f.get("final")]
        self.assertGreaterEqual(len(live), 6, "too few frames")
        for f in frames:
            self.assertIn("capacity", f)
            self.assertEqual([v["question"] for v in f["capacity"]["verdicts"]], QUESTIONS)
        return live

    # ------------------------------------------------------------------ raise GOMAXPROCS
    def test_gomaxprocs_below_cpus_with_waiting_goroutines_raise_yes(self):
        frames, lines = self.observe(["-mode", "cpu", "-procs", "1", "-workers", "4"])
        truth = next(o for o in lines if o.get("ev") == "truth")
        self.assertEqual(truth["gomaxprocs"], 1)
        self.assertLess(truth["gomaxprocs"], truth["ncpu"])
        self.assertGreater(truth["runnable_beyond_ps"], 0)
        # The workers themselves saw waits above 10 ms between two of their loop turns.
        waits = [o["max_wait_ns"] for o in lines if o.get("ev") == "tick"]
        self.assertTrue(waits and max(waits) > 10e6, waits)
        live = self.shown(frames)
        last = live[-1]["capacity"]
        self.assertEqual(last["gomaxprocs"], 1)
        # Its one P runs goroutines nearly all the time (they never block), sampled ~1 kHz.
        self.assertGreaterEqual(last["procs_running"]["hist"][1], 0.9, last["procs_running"])
        self.assertEqual(last["procs_running"]["max"], 1)
        self.assertGreater(last["procs_running"]["sample_hz"], 200)
        self.assertGreater(last["sched_latency_p99_us"], 10000)
        v = verdict(live[-1], "raise_gomaxprocs")
        want = expected_raise(lines)
        self.assertIn(v["answer"], want, (v, [o.get("cpu_per_s") for o in lines]))
        if v["answer"] == "yes":
            self.assertIn("towards 2", v["advice"])
        else:
            self.assertIn("wait for a CPU", v["advice"])
        self.assertIn(answers(frames[-1])["raise_gomaxprocs"], ("yes", "look_elsewhere"))
        # Nothing else is asked for: no quota here, a few goroutines.
        self.assertEqual(answers(live[-1])["fewer_goroutines"], "no")
        self.assertIn(answers(live[-1])["cpu_quota"], ("unknown", "no"))
        self.assertNotEqual(answers(live[-1])["shard"], "yes")

    # ------------------------------------------------------------------ shard
    def test_burst_producer_fills_one_run_queue_shard_yes(self):
        frames, lines = self.observe(["-mode", "burst", "-burst", "20000", "-pause", "100ms"])
        truth = next(o for o in lines if o.get("ev") == "truth")
        backlog = [o["max_backlog"] for o in lines if o.get("ev") == "tick"]
        # Ground truth: each burst left far more runnable goroutines than one run queue holds.
        self.assertTrue(backlog and max(backlog) > truth["runq_capacity"], backlog)
        live = self.shown(frames)
        rq = max(f["capacity"]["runq"]["max"] or 0 for f in live)
        self.assertGreaterEqual(rq, 192, [f["capacity"]["runq"] for f in live])
        self.assertLessEqual(rq, 257)
        v = verdict(live[-1], "shard")
        self.assertEqual(v["answer"], "yes", v)
        self.assertIn("longest run queue", v["because"])
        self.assertEqual(answers(frames[-1])["shard"], "yes")

    # ------------------------------------------------------------------ fewer goroutines
    def test_tens_of_thousands_parked_on_network_reads_fewer_yes(self):
        frames, lines = self.observe(["-mode", "parked"], seconds=10)
        truth = next(o for o in lines if o.get("ev") == "truth")
        # Two parked readers per connection (as many connections as RLIMIT_NOFILE allows).
        self.assertEqual(truth["parked"], 2 * truth["conns"])
        self.assertGreaterEqual(truth["parked"], 18000)
        live = self.shown(frames)
        last = live[-1]["capacity"]
        self.assertGreaterEqual(last["io_wait"], 0.9 * truth["parked"], last)
        self.assertLessEqual(last["io_wait"], 1.1 * truth["goroutines"], last)
        v = verdict(live[-1], "fewer_goroutines")
        self.assertEqual(v["answer"], "yes", v)
        self.assertIn("parked in the netpoller", v["because"])
        # The Ps are idle: raising GOMAXPROCS is not the answer.
        self.assertEqual(answers(live[-1])["raise_gomaxprocs"], "no")

    # ------------------------------------------------------------------ CPU quota
    def test_cpu_quota_below_gomaxprocs_throttled_share_shown(self):
        cg = CpuCgroup(10000)  # 0.1 CPU: below what the program gets even on a loaded machine
        self.addCleanup(cg.remove)
        frames, lines = self.observe(["-mode", "cpu", "-procs", "2", "-workers", "4"],
                                     before_attach=cg.add)
        truth = next(o for o in lines if o.get("ev") == "truth")
        self.assertEqual(truth["gomaxprocs"], 2)
        # Ground truth: the program got about a tenth of a CPU a second, for four busy goroutines.
        used = [o["cpu_per_s"] for o in lines if o.get("ev") == "tick"][1:]
        self.assertTrue(used and max(used) < 0.2, used)
        live = self.shown(frames)
        q = live[-1]["capacity"]["cpu_quota"]
        self.assertAlmostEqual(q["cores"], 0.1, places=3)
        self.assertEqual(q["cgroup"], cg.rel)
        self.assertGreaterEqual(q["throttled_share"], 0.5, q)
        self.assertGreater(q["nr_throttled"], 0)
        v = verdict(live[-1], "cpu_quota")
        self.assertEqual(v["answer"], "yes", v)
        self.assertIn("throttled in", v["because"])
        self.assertIn("GOMAXPROCS=1", v["advice"])
        self.assertEqual(answers(frames[-1])["cpu_quota"], "yes")

    # ------------------------------------------------------------------ healthy programs
    def test_healthy_programs_never_get_a_yes(self):
        runs = [("capacity", ["-mode", "cpu", "-procs", "2", "-workers", "1"]),
                ("healthy_mixed", [])]
        for name, args in runs:
            frames, _ = self.observe(args, seconds=8, name=name)
            live = self.shown(frames)
            for f in frames:
                for q, a in answers(f).items():
                    # Never a yes. (look_elsewhere is no false yes: on a loaded machine the
                    # host may starve the threads holding the Ps, and it says so.)
                    self.assertNotEqual(a, "yes", f"{name}: {q} {a} at t={f['t']}: {verdict(f, q)}")
            # Enough was known to answer, not only unknown.
            self.assertIn(answers(live[-1])["raise_gomaxprocs"], ("no", "look_elsewhere"), name)
            self.assertEqual(answers(live[-1])["fewer_goroutines"], "no", name)

    # ------------------------------------------------------------------ recordings
    def test_recording_gives_back_the_answers_shown_live(self):
        d = tempfile.mkdtemp(prefix="ss-cap-")
        out = os.path.join(d, "cap.sched")
        wl = Proc([workload("capacity"), "-wait-stdin", "-mode", "cpu", "-procs", "1", "-workers", "4"],
                  stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 15)
        rec = Proc([SCHEDSCOPE, "record", "-p", str(ready["pid"]), "-i", "1s", "-d", "9s", "-q", "-o", out])
        self.addCleanup(rec.stop)
        rec.wait_ready(30)
        wl.send()
        self.assertEqual(rec.p.wait(40), 0, rec.stderr_text())
        r = subprocess.run([SCHEDSCOPE, "report", out, "--json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        rep = json.loads(r.stdout)
        cap = rep["capacity"]
        # The answers replayed equal those shown live while recording, frame by frame.
        self.assertTrue(cap["check"]["match"], cap["check"])
        self.assertGreaterEqual(cap["check"]["frames_compared"], 7)
        while wl.read_lines(0.3):
            pass
        want = expected_raise([json.loads(l) for l in wl.lines if l.startswith("{")])
        self.assertIn({v["question"]: v["answer"] for v in cap["verdicts"]}["raise_gomaxprocs"], want)
        w = cap["worst_interval"]
        self.assertIsNotNone(w)
        self.assertIn({v["question"]: v["answer"] for v in w["verdicts"]}["raise_gomaxprocs"],
                      ("yes", "look_elsewhere"))
        self.assertEqual(cap["gomaxprocs"], 1)
        # replay gives the same final section as the report.
        r = subprocess.run([SCHEDSCOPE, "replay", out, "--json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        frames = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        whole = {k: v for k, v in cap.items() if k not in ("worst_interval", "check")}
        self.assertEqual(frames[-1]["capacity"], whole)
        # The Perfetto export has the Ps-running counter track, at 1 P (GOMAXPROCS 1, busy).
        pf = os.path.join(d, "cap.pftrace")
        r = subprocess.run([SCHEDSCOPE, "export", out, "--format", "perfetto", "-o", pf],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        proto = os.path.join(SRC, "userspace", "analysis", "perfetto_trace.proto")
        with open(pf, "rb") as f:
            dec = subprocess.run(["protoc", f"--proto_path={os.path.dirname(proto)}",
                                  "--decode=perfetto.protos.Trace", proto], stdin=f,
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(dec.returncode, 0, dec.stderr)
        self.assertIn('name: "Ps running (mean of 1 kHz samples)"', dec.stdout)
        m = re.search(r"uuid: (\d+)\s+name: \"Ps running", dec.stdout)
        self.assertIsNotNone(m)
        vals = [float(v) for v in re.findall(
            r"track_uuid: %s\s+double_counter_value: ([0-9.e+-]+)" % m.group(1), dec.stdout)]
        self.assertGreaterEqual(len(vals), 5, vals)
        self.assertGreaterEqual(max(vals), 0.9, vals)
        self.assertLessEqual(max(vals), 1.0, vals)
        # The text report has the section.
        t = subprocess.run([SCHEDSCOPE, "report", out], capture_output=True, text=True, timeout=60)
        self.assertIn("CAPACITY", t.stdout)
        self.assertRegex(t.stdout, r"raise GOMAXPROCS  (yes|look elsewhere)")


    # ------------------------------------------------------------------ live view
    def test_live_view_header_shows_the_answers(self):
        from test_live_view import Tmux
        wl = Proc([workload("capacity"), "-mode", "cpu", "-procs", "1", "-workers", "4", "-duration", "60s"])
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 15)
        tm = Tmux(200, 50)
        self.addCleanup(tm.close)
        tm.line(f"{SCHEDSCOPE} top -p {ready['pid']}")
        s = tm.wait(lambda s: "capacity: raise GOMAXPROCS yes" in s or
                    "capacity: raise GOMAXPROCS look elsewhere" in s, 30)
        self.assertIsNotNone(s, tm.screen())
        line = next(l for l in s.splitlines() if "capacity: raise GOMAXPROCS" in l)
        self.assertIn("shard", line)
        self.assertIn("fewer goroutines no", line)
        self.assertIn("Ps running p50 1", line)
        tm.keys("q")


if __name__ == "__main__":
    unittest.main()
