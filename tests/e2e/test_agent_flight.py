"""The node agent's flight recorder end to end: `agent --flight-recorder DUR --dir DIR`
keeps the last DUR of each target in memory and, on an alert of that target, writes a
recording of the seconds before it, named after the target's pid and the alert's kind;
`report` reads it like any recording; the alerts log names the file; the recordings of
DIR stay under --flight-max-bytes (the oldest deleted)."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from common import SCHEDSCOPE, Proc, require_root, workload
from test_agent import free_port, http_get, start_agent


def recordings(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".sched"))


class AgentFlightRecorder(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.mkdtemp(prefix="ss-agent-flight-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "flight")
        os.mkdir(self.dir)

    def start_agent(self, *extra, scan="1s"):
        port = free_port()
        # Only this test's workloads: the machine may run other Go programs.
        build_wl = os.path.join(os.path.dirname(workload("stuckp_raw")), "*")
        agent, log = start_agent(self, self.tmp, port, "--scan", scan, "--exe", build_wl, *extra)
        return agent, port, log

    def start_workload(self, argv):
        wl = Proc(argv, stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        return wl

    def wait_observed(self, port, pids, timeout=20):
        end = time.time() + timeout
        by_pid = {}
        while time.time() < end:
            by_pid = {t["pid"]: t for t in json.loads(http_get(f"http://127.0.0.1:{port}/targets")[1])["targets"]}
            if all(by_pid.get(p, {}).get("state") == "observed" for p in pids):
                return by_pid
            time.sleep(0.3)
        self.fail(f"not all of {pids} observed within {timeout}s: {by_pid}")

    def wait_files(self, pred, timeout, what, log):
        end = time.time() + timeout
        while time.time() < end:
            files = recordings(self.dir)
            if pred(files):
                return files
            time.sleep(0.3)
        self.fail(f"{what}: not within {timeout}s; files {recordings(self.dir)}; agent said: {open(log).read()}")

    def test_a_recording_for_the_stuck_target_only_named_in_the_alerts_log(self):
        window = 6
        alerts_log = os.path.join(self.tmp, "alerts.jsonl")
        agent, port, log = self.start_agent("--flight-recorder", f"{window}s", "--dir", self.dir,
                                            "--alerts-log", alerts_log)
        stuck = self.start_workload([workload("stuckp_raw"), "-wait-stdin", "-hold", "20s"])
        idle = self.start_workload([workload("pingpong"), "-wait-stdin"])
        ready = stuck.wait_for(lambda o: o.get("ev") == "ready", 15)
        iready = idle.wait_for(lambda o: o.get("ev") == "ready", 15)
        self.assertIsNotNone(ready)
        self.assertIsNotNone(iready)
        spid, ipid = ready["pid"], iready["pid"]
        self.wait_observed(port, [spid, ipid])
        # Healthy for longer than the window: nothing written.
        time.sleep(window + 1)
        self.assertEqual(recordings(self.dir), [], open(log).read())

        stuck.send()
        truth = stuck.wait_for(lambda o: o.get("ev") == "stuck", 15)
        self.assertIsNotNone(truth)
        files = self.wait_files(lambda fs: fs, 30, "a flight recording", log)
        # The idle target has had as long: still no file of its own.
        time.sleep(3)
        files = recordings(self.dir)
        self.assertEqual(len(files), 1, files)
        name = files[0]
        self.assertRegex(name, r"^schedscope-.+-%d-[a-z_+]*stuck_p[a-z_+]*-\d{8}T\d{6}Z\.sched$" % spid)
        self.assertFalse(any(f"-{ipid}-" in f for f in files), files)
        path = os.path.join(self.dir, name)

        # report reads it: a flight capture triggered by the stuck P, the target's threads.
        r = subprocess.run([SCHEDSCOPE, "report", path, "--json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        rep = json.loads(r.stdout)
        self.assertEqual(rep["capture"]["kind"], "flight")
        self.assertIn("stuck_p", [a["kind"] for a in rep["capture"]["trigger"]])
        self.assertEqual(rep["target"]["pid"], spid)
        self.assertLessEqual(rep["duration_s"], window + 2.5)
        stuck_alerts = [a for a in rep["alerts"] if a["kind"] == "stuck_p"]
        self.assertTrue(stuck_alerts, rep["alerts"])
        for k in ("tid", "p", "syscall"):
            self.assertEqual(stuck_alerts[0][k], truth[k], k)
        tids = {t["tid"] for t in rep["threads"]}
        self.assertIn(truth["tid"], tids)
        self.assertTrue(tids <= {int(t) for t in os.listdir(f"/proc/{spid}/task")} | {truth["tid"]}, tids)
        txt = subprocess.run([SCHEDSCOPE, "report", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(txt.returncode, 0, txt.stderr)
        self.assertIn("flight recorder: the last", txt.stdout)
        self.assertIn("stuck_p", txt.stdout)

        # The alerts log's stuck_p line names the file; /targets counts it.
        lines = [json.loads(line) for line in open(alerts_log)]
        named = [e for e in lines if e["pid"] == spid and e["alert"]["kind"] == "stuck_p"
                 and e.get("flight_recording")]
        self.assertTrue(named, lines)
        self.assertEqual(named[0]["flight_recording"], path)
        self.assertFalse([e for e in lines if e["pid"] == ipid], lines)
        by_pid = self.wait_observed(port, [spid, ipid])
        self.assertEqual(by_pid[spid]["flight_recordings"], 1, by_pid[spid])
        self.assertEqual(by_pid[spid]["flight_last"], path)
        self.assertNotIn("flight_recordings", by_pid[ipid])
        self.assertIn("flight recorder: wrote " + path, open(log).read())
        self.assertIsNone(agent.poll())

    def test_the_disk_cap_deletes_the_oldest_recordings(self):
        # 1 KiB: below any recording, so each new file leaves only itself (the newest is
        # never deleted).
        agent, port, log = self.start_agent("--flight-recorder", "3s", "--dir", self.dir,
                                            "--flight-max-bytes", "1K")
        written = []
        for i in range(2):
            wl = self.start_workload([workload("stuckp_raw"), "-wait-stdin", "-hold", "8s"])
            ready = wl.wait_for(lambda o: o.get("ev") == "ready", 15)
            self.assertIsNotNone(ready)
            self.wait_observed(port, [ready["pid"]])
            time.sleep(1.5)
            wl.send()
            self.assertIsNotNone(wl.wait_for(lambda o: o.get("ev") == "stuck", 15))
            pat = re.compile(r"^schedscope-.+-%d-[a-z_+]*stuck_p.*\.sched$" % ready["pid"])
            files = self.wait_files(lambda fs: len(fs) == 1 and pat.match(fs[0]), 30,
                                    f"the recording of stuck workload {i + 1}", log)
            written.append([f for f in files if pat.match(f)][0])
            self.assertEqual(files, [written[-1]], (files, written))
            wl.stop(signal.SIGKILL)
        said = open(log).read()
        self.assertIn("deleted " + os.path.join(self.dir, written[0]), said)
        self.assertIsNone(agent.poll())


if __name__ == "__main__":
    unittest.main()
