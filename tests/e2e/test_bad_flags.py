"""Bad flag values: each is refused before anything is attached, quickly, with one line
on stderr that names the flag and what is allowed, and exit code 2 (usage). Nothing here
may hang: every run has a timeout. The PID checks (no such process, kernel thread, no
privileges) give their own documented exit codes (README.md, "Exit codes")."""
import os
import subprocess
import time
import unittest

from common import SCHEDSCOPE, require_root

USAGE, NO_PROCESS, NO_PRIVILEGE = 2, 3, 4


class BadFlags(unittest.TestCase):
    def run_cli(self, *args, timeout=10):
        t0 = time.monotonic()
        r = subprocess.run([SCHEDSCOPE, *args], capture_output=True, text=True, timeout=timeout)
        r.elapsed = time.monotonic() - t0
        return r

    def refused(self, args, *needles, code=USAGE):
        r = self.run_cli(*args)
        where = f"{args}: rc={r.returncode} stderr={r.stderr!r}"
        self.assertEqual(r.returncode, code, where)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, where)
        for n in needles:
            self.assertIn(n, lines[0], where)
        self.assertNotIn("libbpf", r.stderr, where)
        self.assertEqual(r.stdout, "", where)
        self.assertLess(r.elapsed, 5, where)
        return lines[0]

    def test_interval_below_the_minimum(self):
        # 0.5ns made the interval step 0 and the loop spin forever, deaf to SIGINT.
        for v in ("0.5ns", "1ns", "999us", "9ms", "0", "0s"):
            for cmd in ("top", "record"):
                self.refused([cmd, "-p", "1", "-i", v], "--interval", "below the minimum of 10ms",
                             "10ms to 1h")

    def test_interval_above_the_maximum_and_overflow(self):
        self.refused(["top", "-p", "1", "-i", "2h"], "--interval", "above the maximum of 1h")
        self.refused(["top", "-p", "1", "-i", "99999999999999999999h"], "--interval", "above")

    def test_durations_not_plain_decimal(self):
        for v in ("-1s", "+1s", "1e3", "inf", "nan", "0x10", "1d", "soon", ""):
            self.refused(["top", "-p", "1", "-i", v], "--interval", "not a duration")

    def test_every_duration_flag_has_a_range(self):
        cases = [
            (["top", "-p", "1", "-d", "0"], "--duration", "10ms to 8760h"),
            (["record", "-p", "1", "-d", "5ms"], "--duration", "10ms to 8760h"),
            (["record", "-p", "1", "-d", "100000h"], "--duration", "above the maximum"),
            (["record", "-p", "1", "-d", "2s", "--every", "0"], "--every", "1s to 8760h"),
            (["record", "-p", "1", "-d", "2s", "--every", "-5m"], "--every", "not a duration"),
            (["top", "-p", "1", "--flight-recorder", "0s"], "--flight-recorder", "1s to 24h"),
            (["top", "-p", "1", "--flight-recorder", "25h"], "--flight-recorder", "above"),
            (["top", "-p", "1", "--offcpu-min", "0"], "--offcpu-min", "1us to 1h"),
            (["record", "-p", "1", "--offcpu-min", "2h"], "--offcpu-min", "above"),
            (["top", "-p", "1", "--slow-syscall", "0ns"], "--slow-syscall", "1us to 1h"),
            (["record", "-p", "1", "--slow-syscall", "-1ms"], "--slow-syscall", "not a duration"),
        ]
        for args, flag, what in cases:
            self.refused(args, flag, what)

    def test_count(self):
        # -n -1 silently meant "forever".
        for v in ("-1", "-100", "1.5", "x", "99999999999"):
            self.refused(["top", "-p", "1", "-n", v], "--count", "0 (until the target exits")

    def test_ringbuf_size(self):
        # 4G wrapped to 0 in the 32-bit map size (libbpf noise, "no privilege" exit code);
        # 3 was rounded up silently.
        for v in ("4G", "2G", "3", "0", "12K", "1.5M", "4097"):
            for cmd in ("top", "record"):
                self.refused([cmd, "-p", "1", "--ringbuf-size", v], "--ringbuf-size",
                             "power of two multiple of the page size", "4K to 1G")
        self.refused(["top", "-p", "1", "--ringbuf-size", "-8M"], "--ringbuf-size", "not a size")

    def test_sizes(self):
        self.refused(["record", "-p", "1", "--dir", "/tmp", "--max-bytes", "0"], "--max-bytes",
                     "below the minimum of 1K")
        self.refused(["record", "-p", "1", "--max-bytes", "-5M"], "--max-bytes", "not a size")
        self.refused(["top", "-p", "1", "--flight-recorder", "5s", "--flight-memory", "4K"],
                     "--flight-memory", "1M to 64G")
        self.refused(["top", "-p", "1", "--flight-recorder", "5s", "--max-bytes", "9999999999G"],
                     "--max-bytes", "above the maximum")

    def test_pid_must_be_positive(self):
        for cmd in ("top", "record", "inspect", "probes"):
            for v in ("0", "-3"):
                self.refused([cmd, "-p", v], "--pid", "positive")
        self.refused(["top", "-p", "12abc"], "--pid")

    def test_neither_or_both_pid_and_command(self):
        self.refused(["top", "--batch"], "give either -p PID or a command")
        self.refused(["top", "-p", "1", "--", "true"], "give either -p PID or a command")

    def test_pid_that_does_not_exist(self):
        require_root(self)
        for cmd in (["top", "--batch", "-n", "1"], ["record", "-d", "1s", "-o", "/tmp/x.sched"],
                    ["inspect"], ["probes"]):
            self.refused([*cmd, "-p", "4194303"], "no process with PID 4194303", code=NO_PROCESS)

    def test_kernel_thread(self):
        require_root(self)
        self.refused(["top", "--batch", "-n", "1", "-p", "2"], "kernel thread", code=NO_PROCESS)

    def test_no_privileges_is_one_line(self):
        require_root(self)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=-all", "--bounding-set=-all", SCHEDSCOPE, "top", "-p",
                            str(os.getpid()), "--batch", "-n", "1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, NO_PRIVILEGE, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)  # not libbpf's own lines
        self.assertIn("need root, or CAP_BPF + CAP_PERFMON", lines[0])

    def test_non_go_target_is_observed_kernel_only(self):
        """Not an error: a non-Go process is observed at the kernel level, and says so."""
        require_root(self)
        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            r = self.run_cli("top", "-p", str(sleeper.pid), "--batch", "-n", "1", "-i", "100ms",
                             timeout=20)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("not a Go program: kernel-level observation only", r.stderr)
        finally:
            sleeper.kill()
            sleeper.wait()

    def test_valid_edges_are_accepted(self):
        """The bounds themselves pass validation (checked with a PID that is refused later,
        so nothing attaches): the exit code is NO_PROCESS, not USAGE."""
        require_root(self)
        for args in (["-i", "10ms"], ["-i", "1h"], ["--ringbuf-size", "4K"],
                     ["--ringbuf-size", "1G"], ["-n", "0"], ["-d", "10ms"],
                     ["--offcpu-min", "1us"], ["--slow-syscall", "1h"]):
            r = self.run_cli("top", "--batch", "-p", "4194303", *args)
            self.assertEqual(r.returncode, NO_PROCESS, f"{args}: {r.stderr}")


if __name__ == "__main__":
    unittest.main()
