"""Attach/detach robustness: 100 observers come and go on a loaded Go program. The program
keeps running and keeps doing its work (its own counters advance in every report), and
nothing schedscope loads stays behind: no BPF program named ss_*, no link or perf
attachment (tracepoints, uprobes) of one, whether the observer exits normally or is
SIGKILLed (programs, links and uprobes are owned by the observer's file descriptors, so the
kernel drops them with the process)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from common import SCHEDSCOPE, Proc, require_root, workload

CYCLES = 100
KILLS = 10
# The workload's work counters that must advance in every report (healthy_mixed "tick").
WORK = ("round_trips", "sleeps", "allocs_64k", "file_ops", "tcp_requests")


def bpftool(*args):
    r = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or not r.stdout.strip():
        return []
    return json.loads(r.stdout)


def ours():
    """schedscope's kernel objects now: ss_* program ids, the links of those programs, and
    the perf attachments (raw tracepoints, uprobes) running them, with their owner pid."""
    progs = {p["id"] for p in bpftool("prog", "show") if p.get("name", "").startswith("ss_")}
    links = {l["id"] for l in bpftool("link", "show") if l.get("prog_id") in progs}
    perf = [(p["pid"], p["fd_type"], p["prog_id"]) for p in bpftool("perf") if p["prog_id"] in progs]
    return progs, links, perf


def breakpoints(pid):
    """File offsets in the executable's mapped text where the process's memory differs from
    the file: the int3 (0xcc) a uprobe writes into the target while it is registered. Go
    never writes its own text, so outside uprobes the two are identical."""
    exe = os.readlink(f"/proc/{pid}/exe")
    out = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem, \
            open(f"/proc/{pid}/exe", "rb") as f:
        for line in maps:
            parts = line.split()
            if len(parts) < 6 or parts[5] != exe or "x" not in parts[1]:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            off = int(parts[2], 16)
            mem.seek(start)
            live = mem.read(end - start)
            f.seek(off)
            disk = f.read(end - start)
            n = min(len(live), len(disk))
            i = 0
            while i < n:
                j = live.find(b"\xcc", i, n)
                if j < 0:
                    break
                if disk[j] != 0xCC:
                    out.append(off + j)
                i = j + 1
    return out


def wait_gone(before_progs, owner=None, timeout=10):
    """Waits until no ss_* program beyond before_progs is loaded (the kernel frees them
    after an RCU grace period) and, if owner is given, it holds no perf attachment."""
    end = time.time() + timeout
    while True:
        progs, links, perf = ours()
        left = progs - before_progs
        owned = [p for p in perf if owner is not None and p[0] == owner]
        if (not left and not owned) or time.time() > end:
            return left, links, owned
        time.sleep(0.1)


class AttachCycles(unittest.TestCase):
    def setUp(self):
        require_root(self)
        if shutil.which("bpftool") is None:
            self.skipTest("bpftool not installed")
        self.dir = tempfile.mkdtemp(prefix="ss-cycles-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.wl = Proc([workload("healthy_mixed"), "-forever", "-every", "500ms", "-dir", self.dir])
        self.addCleanup(self.wl.stop, signal.SIGKILL)
        ready = self.wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready, "workload did not start")
        self.pid = ready["pid"]
        self.ticks = []
        self.before_progs, self.before_links, _ = ours()

    def collect_ticks(self):
        for o in self.wl.json_lines(0.01):
            if o.get("ev") == "tick":
                self.ticks.append(o)

    def assert_working(self, since, what):
        """The workload is alive and every report since index `since` shows work done."""
        self.assertIsNone(self.wl.p.poll(), f"the workload died ({what})")
        end = time.time() + 3
        while len(self.ticks) < since + 2 and time.time() < end:
            for o in self.wl.json_lines(0.5):
                if o.get("ev") == "tick":
                    self.ticks.append(o)
        new = self.ticks[since:]
        self.assertGreaterEqual(len(new), 2, f"no progress reports ({what})")
        for t in new:
            for k in WORK:
                self.assertGreater(t[k], 0, f"{k} stopped advancing ({what}): {t}; "
                                   f"{k} per report: {[x[k] for x in new]}")

    def test_100_attach_detach_cycles(self):
        t0 = time.time()
        since = len(self.ticks)
        uprobes = []
        for i in range(CYCLES):
            r = subprocess.run([SCHEDSCOPE, "top", "-p", str(self.pid), "--batch", "-n", "1",
                                "-i", "100ms", "-v"], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, f"cycle {i}: {r.stderr}")
            self.assertIn("-- t=", r.stdout, f"cycle {i}: no snapshot")
            self.assertIn(f"observing pid {self.pid} (healthy_mixed)", r.stderr)
            # Each cycle attached the GC uprobes too (detaching them is what is tested).
            n = [int(w.split()[0]) for w in r.stderr.split("schedscope: gc: ")[1:]]
            uprobes.append(n[0] if n else 0)
            self.collect_ticks()
            self.assertIsNone(self.wl.p.poll(), f"the workload died at cycle {i}")
        elapsed = time.time() - t0
        print(f"\n{CYCLES} cycles in {elapsed:.1f}s ({elapsed / CYCLES * 1000:.0f} ms each)")
        self.assertTrue(all(u >= 1 for u in uprobes), f"GC uprobes per cycle: {uprobes}")
        self.assert_working(since, f"after {CYCLES} cycles")
        left, links, _ = wait_gone(self.before_progs)
        self.assertFalse(left, f"ss_* programs left loaded: {left}")
        self.assertLessEqual(links, self.before_links, "links of ss_* programs left")
        self.assertEqual(breakpoints(self.pid), [], "uprobe breakpoints left in the target")

    def test_sigkill_of_the_observer_leaves_nothing(self):
        since = len(self.ticks)
        for i in range(KILLS):
            top = Proc([SCHEDSCOPE, "top", "-p", str(self.pid), "--batch", "--json", "-i", "100ms"])
            try:
                self.assertIsNotNone(top.wait_for(lambda o: "target" in o, 20), f"kill {i}: no frame")
                progs, _, perf = ours()
                mine = [p for p in perf if p[0] == top.p.pid]
                kinds = {p[1] for p in mine}
                # Attached for real: the tracepoints and the GC uprobes, owned by this observer.
                self.assertIn("raw_tracepoint", kinds, f"kill {i}: {mine}")
                self.assertIn("uprobe", kinds, f"kill {i}: {mine}")
                # ... and the uprobes are in the target's text: one int3 per uprobe offset.
                offsets = {p["offset"] for p in bpftool("perf")
                           if p["pid"] == top.p.pid and p["fd_type"] == "uprobe"}
                self.assertTrue(offsets and offsets <= set(breakpoints(self.pid)),
                                f"kill {i}: uprobes at {offsets}, int3 at {breakpoints(self.pid)}")
                top.p.send_signal(signal.SIGKILL)
                top.p.wait(10)
            finally:
                if top.p.poll() is None:
                    top.p.kill()
                    top.p.wait()
            left, links, owned = wait_gone(self.before_progs, owner=top.p.pid)
            self.assertFalse(owned, f"kill {i}: perf attachments (uprobes) left: {owned}")
            self.assertFalse(left, f"kill {i}: ss_* programs left loaded: {left}")
            self.assertLessEqual(links, self.before_links, f"kill {i}: links left")
            self.assertEqual(breakpoints(self.pid), [], f"kill {i}: uprobe breakpoints left")
            self.collect_ticks()
            self.assertIsNone(self.wl.p.poll(), f"the workload died at kill {i}")
        self.assert_working(since, f"after {KILLS} SIGKILLed observers")


if __name__ == "__main__":
    unittest.main()
