"""The node agent's discovery on exec: the kernel's sched_process_exec tracepoint wakes the
discovery for the process that exec'd, so a Go program started while the agent runs is
in /targets well under a second later, with the /proc rescan an hour away."""
import json
import shutil
import signal
import tempfile
import time
import unittest

from common import require_root, workload
import test_agent_flight  # its TestCase stays out of this module's namespace
from test_agent import http_get


class AgentExecDiscovery(unittest.TestCase):
    start_agent = test_agent_flight.AgentFlightRecorder.start_agent
    start_workload = test_agent_flight.AgentFlightRecorder.start_workload

    def setUp(self):
        require_root(self)
        self.tmp = tempfile.mkdtemp(prefix="ss-agent-exec-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def targets(self, port):
        return {t["pid"]: t for t in json.loads(http_get(f"http://127.0.0.1:{port}/targets")[1])["targets"]}

    def test_a_process_started_later_is_a_target_within_a_second(self):
        # The scan every hour: only the exec can make the agent find it in time.
        agent, port, log = self.start_agent(scan="1h")
        delays = []
        for _ in range(3):
            t0 = time.monotonic()
            wl = self.start_workload([workload("pingpong"), "-wait-stdin"])
            found = None
            while time.monotonic() - t0 < 5:
                t = self.targets(port).get(wl.p.pid)
                if t:
                    found = time.monotonic() - t0
                    break
                time.sleep(0.01)
            self.assertIsNotNone(found, f"pid {wl.p.pid} not in /targets within 5 s: {open(log).read()}")
            delays.append(found)
            self.assertIn(self.targets(port)[wl.p.pid]["state"], ("starting", "observed"))
            # The Go layer comes with it (the runtime offsets resolve once it runs).
            end = time.monotonic() + 15
            while self.targets(port)[wl.p.pid]["state"] != "observed" and time.monotonic() < end:
                time.sleep(0.2)
            self.assertEqual(self.targets(port)[wl.p.pid]["state"], "observed")
            wl.stop(signal.SIGKILL)
        print(f"\n  exec -> /targets: {', '.join(f'{d * 1000:.0f} ms' for d in delays)}")
        self.assertLess(max(delays), 1.0, delays)
        _, text = http_get(f"http://127.0.0.1:{port}/metrics")
        lookups = [float(l.split()[-1]) for l in text.splitlines()
                   if l.startswith("schedscope_agent_exec_lookups_total ")]
        self.assertEqual(len(lookups), 1)
        self.assertGreaterEqual(lookups[0], 3)
        scans = [float(l.split()[-1]) for l in text.splitlines() if l.startswith("schedscope_agent_scans_total ")]
        self.assertEqual(scans, [1.0])  # the start's scan only: the exec found them
        self.assertIsNone(agent.poll())


if __name__ == "__main__":
    unittest.main()
