"""Recording e2e: `record` a real Go workload, then `report` must give the
workload's ground truth (the same assertions the foundation tests make on live output),
the alerts raised on the recording must equal the ones raised live while recording,
SIGINT finalizes the file, --every/--max-bytes rotates, damaged files read up to their last
whole chunk, and the Perfetto export decodes with the published field numbers."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

import test_foundation as tf
from common import READY, SCHEDSCOPE, SRC, Proc, require_root, workload

MAGIC = b"\x89SCHED\r\n"


def run(*args, timeout=60):
    return subprocess.run([SCHEDSCOPE, *args], capture_output=True, text=True, timeout=timeout)


def report(path, *extra):
    r = run("report", path, "--json", *extra)
    if r.returncode != 0:
        raise AssertionError(f"report failed ({r.returncode}): {r.stderr}")
    return json.loads(r.stdout)


def read_bytes(path, n=-1):
    with open(path, "rb") as f:
        return f.read(n)


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def protoc(args, path, text=True):
    with open(path, "rb") as f:
        return subprocess.run(["protoc", *args], stdin=f, capture_output=True, text=text, timeout=60)


def facts(lines):
    return {o["ev"]: o for o in lines if isinstance(o, dict) and "ev" in o}


def thread_row(final, tid):
    for t in final["threads"]:
        if t["tid"] == tid:
            return t
    return None


def start_record(*args, timeout=30):
    """Starts `schedscope record ARGS` and waits for its readiness line (attached, the
    baseline taken, the Go layer read once). Returns (proc, stderr read so far)."""
    rec = Proc([SCHEDSCOPE, "record", *args])
    rec.wait_ready(timeout)
    return rec, rec.stderr_so_far()


def wait_stderr_count(proc, needle, n, timeout=30):
    """Waits until needle occurs n times in proc's stderr; returns the stderr."""
    end = time.time() + timeout
    while proc.stderr_so_far().count(needle) < n and time.time() < end and proc.p.poll() is None:
        time.sleep(0.05)
    err = proc.stderr_so_far()
    if err.count(needle) < n:
        raise AssertionError(f"{n} x {needle!r} not on stderr after {timeout}s: {err}")
    return err


class Recording(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.dir = tempfile.mkdtemp(prefix="schedscope-e2e-rec-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])

    def path(self, name):
        return os.path.join(self.dir, name)

    # ------------------------------------------------------------------ ground truth
    def test_launch_all_syscalls_report_equals_ground_truth(self):
        out = self.path("knows.sched")
        p = Proc([SCHEDSCOPE, "record", "-S", "-i", "500ms", "-q", "-o", out, "--",
                  workload("knows"), *tf.KNOWS_ARGS])
        done = p.wait_for(lambda o: o.get("ev") == "done", 60)
        if done is None:
            p.stop()
            self.fail("workload did not finish: " + p.stderr_text())
        self.assertEqual(p.p.wait(30), 0, p.stderr_text())
        truth = facts([json.loads(l) for l in p.lines if l.startswith("{")])
        st = os.stat(out)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(read_bytes(out, 8), MAGIC)
        self.assertEqual([f for f in os.listdir(self.dir) if ".tmp" in f], [])

        rep = report(out)
        self.assertTrue(rep["complete"])
        self.assertEqual(rep["warnings"], [])
        self.assertEqual(rep["target"]["pid"], truth["ready"]["pid"])
        self.assertEqual(rep["target"]["mode"], "all-syscalls")
        # The same checks as on `top --json`'s final object, on the report's totals frame.
        tf.Foundation.check_knows(self, truth, rep["final"], all_syscalls=True)
        # And the summary itself agrees: getppid counted exactly, the sleeper's nanosleeps.
        sc = {s["name"]: s for s in rep["syscalls"]}
        self.assertEqual(sc["getppid"]["count"], tf.CALLS)
        sleeper = [t for t in rep["threads"] if t["tid"] == truth["sleeps"]["tid"]][0]
        nano = [b for b in sleeper["blocking"] if b["syscall"] == "nanosleep"][0]
        self.assertEqual(nano["count"], tf.SLEEPS)
        self.assertEqual(rep["creations"]["total"], rep["final"]["totals"]["threads_created"])
        for tid in truth["summary"]["new_tids"]:
            self.assertIn(tid, {c["tid"] for c in rep["final"]["creations"]})
        self.assertTrue(rep["alerts_check"]["match"], rep["alerts_check"])
        # Symbols travel in the file: creation sites name the workload's functions.
        self.assertTrue(any("main." in s["site"] for s in rep["creations"]["sites"]), rep["creations"])

        # replay without a terminal prints the frames; its final object equals the report's.
        r = run("replay", out, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        frames = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        self.assertTrue(frames and frames[-1].get("final"))
        self.assertEqual(frames[-1], rep["final"])
        self.assertEqual(len(frames) - 1, rep["recorded"]["frames"])

    def test_attach_default_mode_report_equals_ground_truth(self):
        out = self.path("knows-pid.sched")
        wl = Proc([workload("knows"), "-wait-stdin", *tf.KNOWS_ARGS], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        rec, err = start_record("-p", str(ready["pid"]), "-i", "500ms", "-o", out)
        self.addCleanup(rec.stop)
        self.assertIn(READY, err)
        wl.send()
        lines = [ready] + [o for o in [wl.wait_for(lambda o: o.get("ev") == "done", 30)] if o]
        lines += [json.loads(l) for l in wl.lines if l.startswith("{")]
        truth = facts(lines)
        self.assertIn("done", truth)
        wl.p.wait(10)
        self.assertEqual(rec.p.wait(20), 0)
        rep = report(out)
        self.assertEqual(rep["target"]["mode"], "default")
        tf.Foundation.check_knows(self, truth, rep["final"], all_syscalls=False)
        self.assertTrue(rep["alerts_check"]["match"], rep["alerts_check"])

    # ------------------------------------------------------------------ alerts
    def test_stuck_p_alert_raised_on_the_recording_equals_live(self):
        out = self.path("stuck.sched")
        wl = Proc([workload("stuckp_raw"), "-wait-stdin", "-hold", "4s"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        rec, err0 = start_record("-p", str(ready["pid"]), "-i", "500ms", "-o", out)
        self.addCleanup(rec.stop)
        self.assertIn(READY, err0)
        wl.send()
        truth = wl.wait_for(lambda o: o.get("ev") == "stuck", 10)
        self.assertIsNotNone(truth)
        self.assertIsNotNone(wl.wait_for(lambda o: o.get("ev") == "done", 30))
        code = rec.p.wait(20)
        stderr = err0 + rec.stderr_text()
        self.assertEqual(code, 0, stderr)
        rep = report(out)
        stuck = [a for a in rep["alerts"] if a["kind"] == "stuck_p"]
        self.assertTrue(stuck, rep["alerts"])
        a = stuck[0]
        self.assertEqual(a["tid"], truth["tid"])
        self.assertEqual(a["func"], truth["func"])
        self.assertEqual(a["goid"], truth["goid"])
        self.assertEqual(a["syscall"], truth["syscall"])
        self.assertEqual(a["p"], truth["p"])
        # Equal to what the detectors raised live while recording (stored in the file).
        chk = rep["alerts_check"]
        self.assertTrue(chk["match"], chk)
        self.assertTrue(chk["final_recorded"])
        self.assertGreater(chk["frames_compared"], 5)
        live = chk["live_alerts"]
        self.assertEqual([(x["kind"], x["tid"], x["goid"], x["func"], x["p"]) for x in live],
                         [(x["kind"], x["tid"], x["goid"], x["func"], x["p"]) for x in rep["alerts"]])
        self.assertIn("ALERT [critical] stuck_p", stderr, "the alert was not shown live")
        # The stuck P in the per-P summary: its schedtick stood still while it was held.
        ps = {p["id"]: p for p in rep["ps"]}
        self.assertIn(truth["p"], ps)
        self.assertIn("main.rawBlocker", [g["func"] for g in ps[truth["p"]]["top_gs"]])

        # ---- export: the Perfetto trace decodes with the proto (published field numbers).
        pf = self.path("stuck.pftrace")
        r = run("export", out, "--format", "perfetto", "-o", pf)
        self.assertEqual(r.returncode, 0, r.stderr)
        proto = os.path.join(SRC, "userspace", "analysis", "perfetto_trace.proto")
        dec = protoc([f"--proto_path={os.path.dirname(proto)}", "--decode=perfetto.protos.Trace",
                      proto], pf)
        self.assertEqual(dec.returncode, 0, dec.stderr)
        text = dec.stdout
        names = set(re.findall(r'\bname: "([^"]*)"', text))
        self.assertTrue(rep["ps"], "no P in the report")
        for p in rep["ps"]:
            self.assertIn(f"P{p['id']}", names)
        self.assertIn("threads", names)
        self.assertTrue(any(n.startswith(f"G{truth['goid']} main.rawBlocker") for n in names), names)
        self.assertTrue(any(n.startswith("stuck_p: ") for n in names))
        self.assertIn(f"tid: {truth['tid']}", text)
        self.assertIn("TYPE_SLICE_BEGIN", text)
        self.assertIn("TYPE_COUNTER", text)
        raw = protoc(["--decode_raw"], pf, text=False)
        self.assertEqual(raw.returncode, 0)

    def test_flight_recorder_writes_the_window_when_stuck_p_fires(self):
        """top --flight-recorder keeps the last N s in memory and writes them when an alert
        fires: the file holds the alert with its evidence (P, tid, G, func, syscall, stack),
        covers at most the window, and nothing is written while the target is healthy."""
        window = 4
        wl = Proc([workload("stuckp_raw"), "-wait-stdin", "-hold", "3s"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        top = Proc([SCHEDSCOPE, "top", "-p", str(ready["pid"]), "--json", "-i", "500ms",
                    "--flight-recorder", f"{window}s", "--dir", self.dir])
        self.addCleanup(top.stop)
        # Healthy for longer than the window: nothing written, the window is full.
        self.assertIsNotNone(top.wait_for(lambda o: "target" in o, 15), "top did not start")
        time.sleep(window + 1.5)
        self.assertEqual([f for f in os.listdir(self.dir) if f.endswith(".sched")], [],
                         "a flight recording was written with no alert")
        wl.send()
        truth = wl.wait_for(lambda o: o.get("ev") == "stuck", 10)
        self.assertIsNotNone(truth)
        self.assertIsNotNone(wl.wait_for(lambda o: o.get("ev") == "done", 30))
        top.rest(20)
        self.assertEqual(top.p.wait(20), 0)
        stderr = top.stderr_text()
        files = sorted(f for f in os.listdir(self.dir) if f.endswith(".sched"))
        self.assertEqual(len(files), 1, (files, stderr))
        self.assertRegex(files[0], r"^schedscope-.*-%d-\d{8}T\d{6}Z\.sched$" % ready["pid"])
        self.assertIn("flight recorder: wrote " + os.path.join(self.dir, files[0]), stderr)
        self.assertEqual(os.stat(os.path.join(self.dir, files[0])).st_mode & 0o777, 0o600)
        rep = report(os.path.join(self.dir, files[0]))
        self.assertEqual(rep["capture"]["kind"], "flight")
        self.assertEqual([a["kind"] for a in rep["capture"]["trigger"]], ["stuck_p"])
        # The window (plus the baseline frame) and no more: written when the alert fired.
        self.assertLessEqual(rep["duration_s"], window + 1.5)
        self.assertGreaterEqual(rep["duration_s"], window - 1)
        self.assertTrue(rep["complete"])
        stuck = [a for a in rep["alerts"] if a["kind"] == "stuck_p"]
        self.assertTrue(stuck, rep["alerts"])
        a = stuck[0]
        for k in ("tid", "func", "goid", "syscall", "p"):
            self.assertEqual(a[k], truth[k], k)
        # The stack walked live from /proc/PID/mem travels in the file.
        self.assertTrue(any("main.rawBlocker" in fr for fr in a["stack"]), a["stack"])
        # Text form says what it is.
        txt = run("report", os.path.join(self.dir, files[0]))
        self.assertEqual(txt.returncode, 0, txt.stderr)
        self.assertIn("flight recorder: the last", txt.stdout)

    def test_flight_recorder_usage_errors(self):
        r = run("top", "-p", "1", "--flight-recorder", "30s", "--dir", "/nonexistent-dir")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no such directory", r.stderr)
        r = run("top", "-p", "1", "--dir", self.dir)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--flight-recorder", r.stderr)
        r = run("top", "-p", "1", "--flight-recorder", "0s", "--dir", self.dir)
        self.assertEqual(r.returncode, 2, r.stderr)

    # ------------------------------------------------------------------ lifecycle
    def test_sigint_finalizes_and_damage_is_survivable(self):
        wl = Proc([workload("healthy_mixed"), "-forever"])
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: "pid" in o, 10)
        rec = Proc([SCHEDSCOPE, "record", "-p", str(ready["pid"]), "-i", "200ms", "--dir", self.dir])
        rec.wait_ready(30)
        # Interrupted in the middle of a run: after some frames (a progress line each).
        wait_stderr_count(rec, "recording pid ", 8)
        rec.p.send_signal(signal.SIGINT)
        self.assertEqual(rec.p.wait(20), 0, rec.stderr_text())
        files = [f for f in os.listdir(self.dir)]
        self.assertEqual(len(files), 1, files)
        name = files[0]
        self.assertRegex(name, r"^schedscope-.+-%d-\d{8}T\d{6}Z\.sched$" % ready["pid"])
        out = self.path(name)
        rep = report(out)
        self.assertTrue(rep["complete"])
        self.assertGreater(rep["recorded"]["frames"], 5)
        self.assertGreater(rep["final"]["totals"]["oncpu_ms"], 0)
        self.assertTrue(rep["alerts_check"]["match"])

        data = read_bytes(out)
        # Cut in the middle: a prefix with a warning, exit 0.
        cut = self.path("cut.sched")
        write_bytes(cut, data[: len(data) // 2])
        r = run("report", cut, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        part = json.loads(r.stdout)
        self.assertFalse(part["complete"])
        self.assertTrue(part["warnings"])
        self.assertIn("bytes skipped", r.stderr)
        self.assertLess(part["recorded"]["frames"], rep["recorded"]["frames"])
        # A flipped byte in the middle: stops at the damaged chunk, with a warning.
        bad = bytearray(data)
        bad[len(bad) // 2] ^= 0xFF
        flip = self.path("flip.sched")
        write_bytes(flip, bytes(bad))
        r = run("report", flip, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(json.loads(r.stdout)["warnings"])
        # Garbage: one clear line, exit 1.
        junk = self.path("junk.sched")
        write_bytes(junk, b"this is not a recording\n" * 10)
        r = run("report", junk)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a schedscope recording", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)

    def test_every_rotates_under_max_bytes(self):
        wl = Proc([workload("healthy_cpu"), "-forever"])
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: "pid" in o, 10)
        pid = str(ready["pid"])
        # The size of one capture, to set a cap that holds about two.
        probe = self.path("probe.sched")
        r = run("record", "-p", pid, "-i", "200ms", "-d", "600ms", "-q", "-o", probe)
        self.assertEqual(r.returncode, 0, r.stderr)
        one = os.path.getsize(probe)
        os.remove(probe)
        cap = int(one * 2.5)
        rec = Proc([SCHEDSCOPE, "record", "-p", pid, "--every", "1s", "-d", "600ms", "-i", "200ms",
                    "--dir", self.dir, "--max-bytes", str(cap)])
        # Four captures written (the cap holds about two: some were deleted), however slow.
        wait_stderr_count(rec, "schedscope: wrote ", 4, timeout=60)
        rec.p.send_signal(signal.SIGINT)
        self.assertEqual(rec.p.wait(20), 0)
        err = rec.stderr_text()
        wrote = re.findall(r"wrote (\S+) \(", err)
        deleted = re.findall(r"deleted (\S+) \(--max-bytes\)", err)
        self.assertGreaterEqual(len(wrote), 4, err)
        self.assertGreaterEqual(len(deleted), 1, err)
        left = sorted(os.path.join(self.dir, f) for f in os.listdir(self.dir))
        total = sum(os.path.getsize(f) for f in left)
        self.assertTrue(total <= cap or len(left) == 1, (total, cap, left))
        # The oldest were deleted, the newest kept, in the order they were written.
        self.assertEqual(sorted(left), sorted(wrote[-len(left):]))
        self.assertEqual(deleted, wrote[: len(deleted)])
        for f in left:
            self.assertEqual(read_bytes(f, 8), MAGIC)
            self.assertTrue(report(f)["complete"])

    def test_usage_errors(self):
        r = run("record", "-p", "1", "--every", "5m", "-o", self.path("x.sched"))
        self.assertEqual(r.returncode, 2)
        r = run("record", "-p", "1", "--every", "5m", "--dir", self.dir)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--duration", r.stderr)
        r = run("record", "-p", "1", "--dir", "/nonexistent/dir")
        self.assertEqual(r.returncode, 2)
        r = run("export", self.path("none.sched"), "--format", "chrome")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
