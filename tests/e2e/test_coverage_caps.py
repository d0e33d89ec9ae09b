"""Running as an unprivileged user with capabilities instead of root (setpriv, uid
nobody). CAP_BPF + CAP_PERFMON + CAP_SYS_PTRACE attach the tracepoints and read the Go
runtime's memory: threads, the P table and the goroutine census are reported. Uprobes
(the GC probes) need CAP_SYS_ADMIN as well: the kernel creates a uprobe perf event only
for it (perf_uprobe_event_init); without it they are off and gc.note says why, and
`doctor` warns. Without CAP_BPF or CAP_PERFMON nothing loads: exit code 4 and the line
naming the privileges."""
import json
import os
import shutil
import signal
import subprocess
import unittest

from common import SCHEDSCOPE, Proc, require_root, workload

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def as_nobody(caps, *args):
    c = ",".join("+" + x for x in caps) if caps else "-all"
    argv = [*NOBODY, f"--inh-caps={c}", f"--ambient-caps={c}" if caps else "--bounding-set=-all",
            SCHEDSCOPE, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")


@unittest.skipIf(shutil.which("setpriv") is None, "setpriv missing (util-linux)")
class Capabilities(unittest.TestCase):
    def setUp(self):
        require_root(self)
        # nobody must reach the binaries: every directory on the way must be searchable.
        for path in (SCHEDSCOPE, workload("stwloop")):
            d = os.path.dirname(path)
            while d != "/":
                if not os.stat(d).st_mode & 0o001:
                    self.skipTest(f"{d} is not searchable by other users")
                d = os.path.dirname(d)
        self.wl = Proc([workload("stwloop"), "-duration", "60s"])
        self.addCleanup(self.wl.stop, signal.SIGKILL)
        self.ready = self.wl.wait_for(lambda o: o.get("ev") == "ready", 15)
        self.assertIsNotNone(self.ready)

    def top(self, caps):
        r = as_nobody(caps, "top", "-p", str(self.ready["pid"]), "--batch", "--json", "-i", "500ms", "-n", "3")
        frames = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        return r, frames

    def test_bpf_perfmon_ptrace_attach_and_report_without_root(self):
        r, frames = self.top(["bpf", "perfmon", "sys_ptrace"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(len(frames), 3)
        f = frames[-2]
        self.assertTrue(f["target"]["go_enabled"], f["target"])
        self.assertEqual(len(f["ps"]), self.ready["gomaxprocs"])
        self.assertIn(self.ready["pid"], {t["tid"] for t in f["threads"]})
        self.assertGreater(f["switches_per_s"], 0)
        self.assertIn("census", f)
        # The GC uprobes could not be created: said in gc.note, nothing counted.
        self.assertFalse(f["gc"]["enabled"])
        self.assertIn("Permission denied", f["gc"]["note"])
        # doctor says so.
        d = as_nobody(["bpf", "perfmon", "sys_ptrace"], "doctor", "--json")
        self.assertEqual(d.returncode, 0, d.stdout + d.stderr)
        checks = {c["name"]: c for c in json.loads(d.stdout)["checks"]}
        self.assertTrue(checks["privileges"]["ok"])
        self.assertFalse(checks["uprobes"]["ok"])
        self.assertIn("CAP_SYS_ADMIN", checks["uprobes"]["detail"])

    def test_sys_admin_adds_the_gc_uprobes(self):
        r, frames = self.top(["bpf", "perfmon", "sys_ptrace", "sys_admin"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(frames[-1]["gc"]["enabled"], frames[-1]["gc"]["note"])
        # stwloop stops the world thousands of times a second.
        self.assertGreater(sum(f["gc"].get("stw_count", 0) for f in frames[:-1]), 0)
        d = as_nobody(["bpf", "perfmon", "sys_ptrace", "sys_admin"], "doctor", "--json")
        checks = {c["name"]: c for c in json.loads(d.stdout)["checks"]}
        self.assertTrue(checks["uprobes"]["ok"], checks["uprobes"])

    def test_without_bpf_or_perfmon_exit_4(self):
        for caps in (["bpf"], ["perfmon"], ["sys_ptrace"], []):
            r, frames = self.top(caps)
            self.assertEqual(r.returncode, 4, (caps, r.stderr))
            self.assertEqual(frames, [])
            last = r.stderr.strip().splitlines()[-1]
            self.assertIn("cannot load BPF programs", last)
            self.assertIn("CAP_BPF + CAP_PERFMON", last)
            self.assertIn("schedscope doctor", last)


if __name__ == "__main__":
    unittest.main()
