"""The node agent's per-target opt-in of the costly options of `top`: one agent (one BPF
session) watches several Go workloads and turns on every syscall (-S, in the kernel),
the goroutine uprobes and the runtime/trace annotation uprobes only for the processes
its --all-syscalls-for, --goroutines-for and --annotations-for globs name. The targets
that asked get the data, checked against what the workloads say they did; the one that
asked for nothing gets none of it, and the kernel did not count its syscalls."""
import json
import os
import re
import shutil
import signal
import tempfile
import time
import unittest

from common import Proc, require_root, workload
from test_agent import free_port, http_get, start_agent


def metrics(port):
    """{(name, frozenset(labels)): value} of /metrics."""
    out = {}
    for line in http_get(f"http://127.0.0.1:{port}/metrics")[1].splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def series(ms, name, **want):
    """The values of `name` whose labels include `want`."""
    w = {(k, str(v)) for k, v in want.items()}
    return [v for (n, l), v in ms.items() if n == name and w <= set(l)]


class AgentOptIn(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.mkdtemp(prefix="ss-agent-optin-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def copy(self, name, subdir):
        """The workload's binary at TMP/SUBDIR/NAME: the same program under another path."""
        d = os.path.join(self.tmp, subdir)
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, name)
        shutil.copy2(workload(name), dst)
        return dst

    def start(self, argv):
        wl = Proc(argv, stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 20)
        self.assertIsNotNone(ready, wl.stderr_so_far())
        return wl, ready["pid"]

    def targets(self, port):
        return {t["pid"]: t for t in json.loads(http_get(f"http://127.0.0.1:{port}/targets")[1])["targets"]}

    def wait(self, pred, timeout, what, log, state=None):
        end = time.time() + timeout
        while time.time() < end:
            got = pred()
            if got:
                return got
            time.sleep(0.3)
        seen = f"; last seen: {state()}" if state else ""
        self.fail(f"{what}: not within {timeout}s{seen}; agent said: {open(log).read()}")

    def test_each_option_reaches_only_the_targets_that_asked(self):
        knows_a, knows_b = self.copy("knows", "a"), self.copy("knows", "b")
        spawn, annotated = self.copy("gospawn", "a"), self.copy("annotated", "a")
        port = free_port()
        agent, log = start_agent(self, self.tmp, port, "--scan", "1s", "--exe", os.path.join(self.tmp, "*"),
                                 "--all-syscalls-for", "*/a/knows",   # by exe path
                                 "--goroutines-for", "*/a/gospawn",
                                 "--annotations-for", "annotated")    # by comm
        calls_a, calls_b = 3000, 5000
        a, pid_a = self.start([knows_a, "-wait-stdin", "-calls", str(calls_a), "-sleeps", "5", "-duration", "60s"])
        b, pid_b = self.start([knows_b, "-wait-stdin", "-calls", str(calls_b), "-sleeps", "5", "-duration", "60s"])
        g, pid_g = self.start([spawn, "-wait-stdin", "-n", "800", "-bursts", "2", "-hold", "60s"])
        n, pid_n = self.start([annotated, "-wait-stdin", "-requests", "12", "-health", "8", "-bg", "4",
                               "-hold", "60s"])
        pids = [pid_a, pid_b, pid_g, pid_n]

        # Each option on for its target once the Go offsets validated (the uprobes wait for them).
        def ready():
            t = self.targets(port)
            if not all(t.get(p, {}).get("state") == "observed" for p in pids):
                return None
            ok = (t[pid_a].get("options", {}).get("all_syscalls", {}).get("on")
                  and t[pid_g].get("options", {}).get("goroutines", {}).get("on")
                  and t[pid_n].get("options", {}).get("annotations", {}).get("on"))
            return t if ok else None
        t = self.wait(ready, 30, "every target observed with its option on", log)
        self.assertEqual(set(t[pid_a]["options"]), {"all_syscalls"}, t[pid_a])
        self.assertEqual(set(t[pid_g]["options"]), {"goroutines"}, t[pid_g])
        self.assertEqual(set(t[pid_n]["options"]), {"annotations"}, t[pid_n])
        self.assertNotIn("options", t[pid_b], "B asked for nothing")
        self.assertIn("uprobe", t[pid_g]["options"]["goroutines"]["note"])

        for w in (a, b, g, n):
            w.send()
        done_a = a.wait_for(lambda o: o.get("ev") == "calls", 30)
        done_b = b.wait_for(lambda o: o.get("ev") == "calls", 30)
        self.assertEqual((done_a["count"], done_b["count"]), (calls_a, calls_b))
        spawned = g.wait_for(lambda o: o.get("ev") == "spawned", 30)
        self.assertIsNotNone(spawned)
        tasks = 0
        end = time.time() + 60
        while tasks < 20 and time.time() < end:
            tasks += sum(1 for o in n.json_lines(1) if o.get("ev") == "task")
        self.assertEqual(tasks, 20, "annotated: 12 requests + 8 health checks")

        # -S: every getppid of A, exactly, in its histogram (the Go runtime never calls it).
        def exact():
            ms = metrics(port)
            v = series(ms, "schedscope_syscall_latency_seconds_count", pid=pid_a, syscall="getppid")
            return ms if v == [calls_a] else None
        ms = self.wait(exact, 20, f"schedscope_syscall_latency_seconds_count of A's getppid = {calls_a}", log)
        self.assertEqual(series(ms, "schedscope_syscall_latency_seconds_bucket", pid=pid_a, syscall="getppid",
                                le="+Inf"), [calls_a])
        self.assertGreater(series(ms, "schedscope_syscall_latency_seconds_sum", pid=pid_a, syscall="getppid")[0], 0)
        # A's blocking series stay as without -S (its 5 nanosleeps of 50 ms at least).
        self.assertGreaterEqual(series(ms, "schedscope_blocking_syscalls_total", pid=pid_a, syscall="nanosleep")[0], 5)
        # B: observed as usual, but no series of any opt-in, and its 5000 getppids were not
        # counted by the kernel (its threads' syscall count, /targets syscalls_counted).
        self.assertGreaterEqual(series(ms, "schedscope_blocking_syscalls_total", pid=pid_b, syscall="nanosleep")[0], 5)
        for name in ("schedscope_syscall_latency_seconds_count", "schedscope_goroutines_created_total",
                     "schedscope_annotation_tasks_total"):
            self.assertEqual(series(ms, name, pid=pid_b), [], name)
        self.assertEqual(series(ms, "schedscope_syscall_latency_seconds_count", pid=pid_g), [])
        t = self.targets(port)
        self.assertEqual(t[pid_b]["syscalls_counted"], 0, t[pid_b])
        self.assertGreaterEqual(t[pid_a]["syscalls_counted"], calls_a, t[pid_a])

        # --goroutines: gospawn's 800 goroutines of main.spawned (and the runtime's few).
        def goroutines():
            ms = metrics(port)
            c = series(ms, "schedscope_goroutines_created_total", pid=pid_g)
            x = series(ms, "schedscope_goroutines_exited_total", pid=pid_g)
            return (c, x) if c and x and c[0] >= 800 and x[0] >= 800 else None
        got = self.wait(goroutines, 20, "gospawn's 800 goroutines created and exited", log,
                        lambda: (series(metrics(port), "schedscope_goroutines_created_total", pid=pid_g),
                                 series(metrics(port), "schedscope_goroutines_exited_total", pid=pid_g),
                                 self.targets(port).get(pid_g)))
        c, x = got
        self.assertLessEqual(c[0], 800 + 20, "only the workload's and a few of the runtime's")
        self.assertEqual(series(metrics(port), "schedscope_goroutines_created_total", pid=pid_a), [])

        # --annotations: the 20 tasks the workload ended, by comm.
        def annotations():
            v = series(metrics(port), "schedscope_annotation_tasks_total", pid=pid_n)
            return v if v == [20] else None
        self.wait(annotations, 20, "schedscope_annotation_tasks_total of annotated = 20", log)
        self.assertIsNone(agent.poll())


if __name__ == "__main__":
    unittest.main()
