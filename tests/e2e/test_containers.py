"""PID namespaces (containers). schedscope inside a PID namespace takes the PIDs its own /proc
shows: the BPF side reports the threads of that process, with the ids of that namespace,
and not those of the host process that happens to have the same number. A target inside
a namespace observed from the host is named by its host PID (docs/containers.md)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

from common import SCHEDSCOPE, Proc, require_root, workload

# Runs inside `unshare --pid --fork --mount-proc`: starts the workload, lets schedscope
# observe it by its in-namespace PID, and prints what both saw as one JSON line.
INSIDE = textwrap.dedent("""
    import json, os, subprocess, sys, time
    wl, ss, d = sys.argv[1:4]
    w = subprocess.Popen([wl, "-forever", "-every", "500ms", "-dir", d], stdout=subprocess.PIPE, text=True)
    ready = json.loads(w.stdout.readline())
    pid = ready["pid"]
    time.sleep(0.5)
    r = subprocess.run([ss, "top", "-p", str(pid), "--batch", "--json", "-n", "2", "-i", "300ms"],
                       capture_output=True, text=True, timeout=60)
    tasks = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/comm") as f:
            tasks[int(t)] = f.read().strip()
    frames = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    w.kill()
    print(json.dumps({"pid": pid, "self": os.getpid(), "tasks": tasks, "rc": r.returncode,
                      "stderr": r.stderr, "frames": frames}))
""")


class Containers(unittest.TestCase):
    def setUp(self):
        require_root(self)
        if shutil.which("unshare") is None:
            self.skipTest("unshare not installed")
        self.dir = tempfile.mkdtemp(prefix="ss-ns-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_observer_inside_a_pid_namespace_sees_the_right_process(self):
        r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", INSIDE,
                            workload("healthy_mixed"), SCHEDSCOPE, self.dir],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(out["rc"], 0, out["stderr"])
        pid, tasks = out["pid"], {int(k): v for k, v in out["tasks"].items()}
        self.assertLess(pid, 10, "the workload should have a small in-namespace pid")
        frames = out["frames"]
        self.assertTrue(frames and frames[-1].get("final"), out["stderr"])
        fin = frames[-1]
        self.assertEqual(fin["target"]["pid"], pid)
        # Its threads, by their in-namespace ids and names (the host process with this
        # number, if any, is someone else: a kernel thread or a host daemon).
        seen = {t["tid"]: t["name"] for t in fin["threads"] if t["state"] != "exited"}
        # (/proc is listed after schedscope exits: the runtime may have started one thread since)
        self.assertIn(pid, seen)
        self.assertLessEqual(set(seen), set(tasks), f"threads seen {seen}, /proc has {tasks}")
        self.assertLessEqual(len(tasks) - len(seen), 1, f"threads seen {seen}, /proc has {tasks}")
        for tid, name in seen.items():
            self.assertEqual(name, tasks[tid])
        # Events flowed: context switches counted per thread, Go's Ms read at switch-out.
        self.assertGreater(sum(t["switches"] for t in fin["threads"]), 50)
        self.assertTrue(any(t["m"] >= 0 for t in fin["threads"]), fin["threads"])

    def test_target_inside_a_pid_namespace_observed_from_the_host(self):
        wl = Proc(["unshare", "--pid", "--fork", "--mount-proc", workload("healthy_mixed"), "-forever",
                   "-every", "500ms", "-dir", self.dir])
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        self.assertEqual(ready["pid"], 1)  # its own view: the namespace's init
        # Its host pid: the child of unshare.
        with open(f"/proc/{wl.p.pid}/task/{wl.p.pid}/children") as f:
            host_pid = int(f.read().split()[0])
        with open(f"/proc/{host_pid}/status") as f:
            nspid = [l.split()[1:] for l in f if l.startswith("NSpid:")][0]
        self.assertEqual(nspid, [str(host_pid), "1"])
        r = subprocess.run([SCHEDSCOPE, "top", "-p", str(host_pid), "--batch", "--json", "-n", "2",
                            "-i", "300ms"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        fin = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")][-1]
        self.assertEqual(fin["target"]["pid"], host_pid)
        tasks = set(int(t) for t in os.listdir(f"/proc/{host_pid}/task"))
        seen = {t["tid"] for t in fin["threads"] if t["state"] != "exited"}
        self.assertIn(host_pid, seen)
        self.assertLessEqual(seen, tasks)
        self.assertLessEqual(len(tasks - seen), 1)
        self.assertGreater(sum(t["switches"] for t in fin["threads"]), 50)

    def test_proc_of_another_namespace_is_refused(self):
        """In a PID namespace whose /proc is still the host's, the PIDs typed and the ids
        the kernel uses would differ: refused with one line, nothing attached."""
        r = subprocess.run(["unshare", "--pid", "--fork", SCHEDSCOPE, "top", "-p", str(os.getpid()),
                            "--batch", "-n", "1"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("/proc belongs to another PID namespace", lines[0])


if __name__ == "__main__":
    unittest.main()
