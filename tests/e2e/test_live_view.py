"""Live view e2e: `schedscope top` on a terminal, driven inside tmux against
real workloads. The screen is read with capture-pane; the terminal state after exit is
checked with tmux (alternate screen off) and `stty -g` (modes as before)."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from common import SCHEDSCOPE, Proc, require_root, workload

PROMPT = "PROMPT$"


class Tmux:
    """A private tmux server with one pane running a plain bash."""

    def __init__(self, width=160, height=50):
        self.base = ["tmux", "-L", f"schedscope-live-{os.getpid()}-{time.monotonic_ns()}", "-f", "/dev/null"]
        self.cmd("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "live",
                 f"env PS1='{PROMPT} ' TERM=screen bash --norc --noprofile")
        self.wait(lambda s: PROMPT in s, 10)

    def cmd(self, *args):
        return subprocess.run(self.base + list(args), capture_output=True, text=True, check=True).stdout

    def keys(self, *keys):
        self.cmd("send-keys", "-t", "live", *keys)

    def line(self, text):
        self.cmd("send-keys", "-t", "live", "-l", text)
        self.keys("Enter")

    def screen(self):
        return self.cmd("capture-pane", "-p", "-t", "live")

    def fmt(self, f):
        return self.cmd("display-message", "-p", "-t", "live", f).strip()

    def wait(self, pred, timeout):
        """Polls the screen until pred(screen) is true; returns that screen (None on timeout)."""
        end = time.time() + timeout
        while True:
            s = self.screen()
            if pred(s):
                return s
            if time.time() >= end:
                return None
            time.sleep(0.2)

    def shell_child(self):
        """The pid of the command the pane's shell runs (0 if none)."""
        sh = int(self.fmt("#{pane_pid}"))
        try:
            with open(f"/proc/{sh}/task/{sh}/children") as f:
                kids = f.read().split()
        except OSError:
            return 0
        return int(kids[0]) if kids else 0

    def close(self):
        subprocess.run(self.base + ["kill-server"], capture_output=True)


def elapsed_of(screen):
    m = re.search(r"elapsed (\d+:\d+(?::\d+)?)", screen or "")
    return m.group(1) if m else None


@unittest.skipIf(shutil.which("tmux") is None, "tmux is not installed")
class LiveView(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.mkdtemp(prefix="schedscope-live-")
        self.tmux = None
        self.wl = None

    def tearDown(self):
        if self.tmux:
            self.tmux.close()
        if self.wl:
            self.wl.stop(signal.SIGKILL)
            for f in (self.wl.p.stdout, self.wl.p.stderr):
                if f:
                    f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers

    def start_stuck(self, hold="60s"):
        self.wl = Proc([workload("stuckp_raw"), "-hold", hold])
        stuck = self.wl.wait_for(lambda o: o.get("ev") == "stuck", 15)
        self.assertIsNotNone(stuck, "stuckp_raw did not report its stuck goroutine")
        ready = [l for l in self.wl.lines if '"ready"' in l]
        self.assertTrue(ready)
        stuck["pid"] = int(re.search(r'"pid":(\d+)', ready[0]).group(1))
        return stuck

    def start_live(self, pid, width=160, height=50, extra=""):
        self.tmux = Tmux(width, height)
        d = self.tmp
        self.tmux.line(f"stty -g > {d}/before; ulimit -c 0; {SCHEDSCOPE} top -p {pid} {extra}; "
                       f"echo $? > {d}/rc; stty -g > {d}/after; echo EXITED")
        # The first frame comes one interval after attaching.
        s = self.tmux.wait(lambda s: "schedscope top" in s and "elapsed" in s, 20)
        self.assertIsNotNone(s, f"no live view on the screen:\n{self.tmux.screen()}")
        pid_ss = self.tmux.shell_child()
        self.assertGreater(pid_ss, 0)
        with open(f"/proc/{pid_ss}/comm") as f:
            self.assertEqual(f.read().strip(), "schedscope")
        return pid_ss

    def wait_exit(self, timeout=10):
        rc_path = os.path.join(self.tmp, "rc")
        end = time.time() + timeout
        while time.time() < end and not (os.path.exists(rc_path) and
                                          os.path.exists(os.path.join(self.tmp, "after"))):
            time.sleep(0.1)
        def prompt_back(s):
            lines = [l for l in s.splitlines() if l.strip()]
            return "EXITED" in s and lines and lines[-1].startswith(PROMPT)

        # The shell prints EXITED, then its prompt: wait for both (a loaded machine is slow).
        s = self.tmux.wait(prompt_back, 5) or self.tmux.wait(lambda s: "EXITED" in s, 1)
        self.assertIsNotNone(s, f"schedscope did not exit:\n{self.tmux.screen()}")
        with open(rc_path) as f:
            rc = int(f.read().strip())
        return rc, s

    def assert_terminal_restored(self, screen):
        self.assertEqual(self.tmux.fmt("#{alternate_on}"), "0", "still on the alternate screen")
        self.assertEqual(self.tmux.fmt("#{cursor_flag}"), "1", "cursor left hidden")
        with open(os.path.join(self.tmp, "before")) as a, open(os.path.join(self.tmp, "after")) as b:
            self.assertEqual(a.read(), b.read(), "terminal modes (stty) not restored")
        # The shell's screen is back: the prompt after the exit, no remnants of the view.
        lines = [l for l in screen.splitlines() if l.strip()]
        self.assertTrue(lines[-1].startswith(PROMPT), screen)
        self.assertNotIn("2 Threads", screen)
        self.assertNotIn("sort: ", screen)

    # -- tests

    def test_stuck_p_keys_resize_and_quit(self):
        stuck = self.start_stuck()
        tid, goid, p = stuck["tid"], stuck["goid"], stuck["p"]
        self.start_live(stuck["pid"])

        # The P row of the stuck P: id, status, M, tid, G, ... main.rawBlocker.
        row_re = re.compile(rf"^\s*{p}\s+running\s+\d+\*?\s+{tid}\s+{goid}\s+.*main\.rawBlocker", re.M)
        s = self.tmux.wait(lambda s: row_re.search(s), 10)
        self.assertIsNotNone(s, f"no P row for P{p} with main.rawBlocker:\n{self.tmux.screen()}")
        t_row = time.time()
        # Within 5 s: the stuck_p alert naming the tid (header summary and details).
        alert_re = re.compile(rf"\[critical\] stuck_p\s+P{p}\s+M\d+\s+tid {tid}\b")
        s = self.tmux.wait(lambda s: (alert_re.search(s) and f"(tid {tid})" in s and
                                      "ALERTS 1 active (1 critical" in s), 5)
        self.assertIsNotNone(s, f"no stuck_p alert for tid {tid} within 5s:\n{self.tmux.screen()}")
        self.assertLessEqual(time.time() - t_row, 5.5)
        for text in ("GOMAXPROCS 2", "threads ", "/10000", "blocking episodes/s", "ctx switches/s",
                     "run-queue latency p50", "drops 0", "mode: default", "probes: ",
                     "sched_switch", "events/s", "1 Ps", "2 Threads", "3 Syscalls", "4 Alerts"):
            self.assertIn(text, s)

        # ? shows the help; any key closes it.
        self.tmux.keys("?")
        self.assertIsNotNone(self.tmux.wait(lambda s: "schedscope live view: keys" in s, 3))
        self.tmux.keys("Escape")
        self.assertIsNotNone(self.tmux.wait(lambda s: "live view: keys" not in s, 3))

        # s focuses the syscalls pane (its title gets the "> " mark).
        self.tmux.keys("s")
        s = self.tmux.wait(lambda s: "> 3 Syscalls" in s, 3)
        self.assertIsNotNone(s, self.tmux.screen())
        self.assertNotIn("> 2 Threads", s)
        # o cycles its sort column.
        self.tmux.keys("o")
        self.assertIsNotNone(self.tmux.wait(lambda s: "sort: time" in s, 3))

        # space pauses: PAUSED shown, the display frozen while frames are still taken.
        self.tmux.keys("Space")
        s = self.tmux.wait(lambda s: "PAUSED" in s, 3)
        self.assertIsNotNone(s)
        frozen = elapsed_of(s)
        s = self.tmux.wait(lambda s: "new frames held" in s, 4)
        self.assertIsNotNone(s, self.tmux.screen())
        self.assertEqual(elapsed_of(s), frozen)
        self.tmux.keys("Space")
        s = self.tmux.wait(lambda s: "PAUSED" not in s and elapsed_of(s) != frozen, 3)
        self.assertIsNotNone(s, self.tmux.screen())

        # A smaller window: redrawn to fit, still running.
        self.tmux.cmd("resize-window", "-t", "live", "-x", "80", "-y", "24")

        def fits_80x24(s):
            lines = s.split("\n")
            return (s.startswith("schedscope top") and max(len(l) for l in lines) <= 80 and
                    "Threads" in s and "Syscalls" in s and "q quit" in s)
        s = self.tmux.wait(fits_80x24, 5)
        self.assertIsNotNone(s, self.tmux.screen())
        self.assertGreater(self.tmux.shell_child(), 0, "schedscope died on resize")
        self.tmux.cmd("resize-window", "-t", "live", "-x", "160", "-y", "50")
        self.assertIsNotNone(self.tmux.wait(lambda s: row_re.search(s) and "4 Alerts" in s, 5))

        # q quits with 0 and gives the terminal back.
        self.tmux.keys("q")
        rc, s = self.wait_exit()
        self.assertEqual(rc, 0)
        self.assert_terminal_restored(s)

    def test_sigterm_exits_cleanly(self):
        stuck = self.start_stuck("30s")
        pid_ss = self.start_live(stuck["pid"])
        os.kill(pid_ss, signal.SIGTERM)
        rc, s = self.wait_exit()
        self.assertEqual(rc, 0)
        try:
            with open(f"/proc/{pid_ss}/comm") as f:
                self.assertNotEqual(f.read().strip(), "schedscope", "schedscope still running")
        except FileNotFoundError:
            pass
        self.assert_terminal_restored(s)

    def test_crash_signal_restores_terminal(self):
        stuck = self.start_stuck("30s")
        pid_ss = self.start_live(stuck["pid"])
        os.kill(pid_ss, signal.SIGSEGV)
        rc, s = self.wait_exit()
        self.assertEqual(rc, 128 + signal.SIGSEGV)  # the default action after endwin
        self.assert_terminal_restored(s)

    def test_target_exit_shows_final_then_q(self):
        # Exits 2 s after the hold. The alert needs two frames (1 s apart) with the Go side
        # read after attach, and blocked >= 1 s: the hold leaves room for an attach that takes
        # seconds on a loaded machine.
        stuck = self.start_stuck("8s")
        self.start_live(stuck["pid"])
        s = self.tmux.wait(lambda s: f"target {stuck['pid']} exited" in s and "press q" in s, 25)
        self.assertIsNotNone(s, self.tmux.screen())
        self.assertIn("totals over", s)
        self.assertRegex(s, r"stuck_p\s+cleared")  # the alert stays in the history
        self.assertGreater(self.tmux.shell_child(), 0, "the view must wait for q")
        self.tmux.keys("q")
        rc, s = self.wait_exit()
        self.assertEqual(rc, 0)
        self.assert_terminal_restored(s)
        self.assertIn(f"schedscope: target {stuck['pid']} exited", s)

    def test_without_a_tty_prints_the_batch_form(self):
        stuck = self.start_stuck("20s")
        p = subprocess.run([SCHEDSCOPE, "top", "-p", str(stuck["pid"]), "-n", "1"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("-- t=", p.stdout)
        self.assertIn("== FINAL", p.stdout)
        self.assertNotIn("\x1b[", p.stdout)  # no terminal control sequences


if __name__ == "__main__":
    unittest.main()
