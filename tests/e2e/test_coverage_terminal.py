"""The terminal paths no other test drives (docs/live-view.md):

* TERM=dumb on a real terminal (a pty): `top` prints the batch form, with no control
  sequence, and exits after -n; with TERM=xterm on the same pty it opens the live view
  (the alternate screen), so the difference is TERM.
* `replay` keys in a tmux pane, on a recording of known length: space pauses (the view
  and its position frozen, even for the frame the source was already waiting for), `.` steps one frame, Right/Left seek +5 s / -5 s, `+`/`-` double/halve the
  speed, q quits 0. The header's `replay POS/LENs xSPEED` is read after each key."""
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import test_live_view as lv
from common import SCHEDSCOPE, Proc, require_root, workload


def run_on_pty(argv, env, seconds, keys_after=None):
    """Runs argv with stdin/stdout/stderr on a new pty; returns (exit status, output bytes).
    keys_after: (delay s, bytes) written to the terminal after the delay."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    out = b""
    t0 = time.time()
    sent = False
    status = None
    while time.time() - t0 < seconds:
        if keys_after and not sent and time.time() - t0 >= keys_after[0]:
            os.write(fd, keys_after[1])
            sent = True
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            out += chunk
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
    if status is None:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    try:
        while True:
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


class TermDumb(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.wl = Proc([workload("healthy_cpu"), "-duration", "60s"])
        self.addCleanup(self.wl.stop, signal.SIGKILL)
        self.ready = self.wl.wait_for(lambda o: o.get("ev") == "ready", 15)
        self.assertIsNotNone(self.ready)

    def test_term_dumb_on_a_terminal_prints_the_batch_form(self):
        argv = [SCHEDSCOPE, "top", "-p", str(self.ready["pid"]), "-i", "500ms", "-n", "2"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb"}
        rc, out = run_on_pty(argv, env, 20)
        text = out.decode(errors="replace")
        self.assertEqual(rc, 0, text)
        self.assertIn("-- t=", text)
        self.assertIn("== FINAL", text)
        self.assertNotIn(b"\x1b", out)  # no control sequence at all
        # The same terminal with a real TERM: the live view (alternate screen), q quits.
        env["TERM"] = "xterm"
        rc, out = run_on_pty(argv[:-2], env, 20, keys_after=(3.0, b"q"))
        self.assertEqual(rc, 0, out[-500:])
        self.assertIn(b"\x1b[?1049h", out)  # smcup: the alternate screen
        self.assertIn(b"schedscope top", out)

    def test_no_term_at_all_prints_the_batch_form(self):
        argv = [SCHEDSCOPE, "top", "-p", str(self.ready["pid"]), "-i", "500ms", "-n", "1"]
        rc, out = run_on_pty(argv, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, 20)
        self.assertEqual(rc, 0, out)
        self.assertIn(b"-- t=", out)
        self.assertNotIn(b"\x1b", out)


POS = re.compile(r"replay (\d+\.\d)/(\d+\.\d)s x(\S+)")


@unittest.skipIf(shutil.which("tmux") is None, "tmux is not installed")
class ReplayKeys(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.tmp = tempfile.mkdtemp(prefix="schedscope-replay-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.tmux = None

    def tearDown(self):
        if self.tmux:
            self.tmux.close()

    def pos(self, s):
        m = POS.search(s or "")
        return (float(m.group(1)), float(m.group(2)), m.group(3)) if m else None

    def wait_pos(self, pred, timeout=6):
        s = self.tmux.wait(lambda s: self.pos(s) and pred(*self.pos(s)), timeout)
        self.assertIsNotNone(s, self.tmux.screen())
        return self.pos(s)

    def test_replay_keys_pause_step_seek_speed_quit(self):
        rec = os.path.join(self.tmp, "stuck.sched")
        wl = Proc([workload("stuckp_raw"), "-hold", "30s"])
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 15)
        r = subprocess.run([SCHEDSCOPE, "record", "-p", str(ready["pid"]), "-i", "1s", "-d", "16s", "-q",
                            "-o", rec], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        wl.stop(signal.SIGKILL)

        self.tmux = lv.Tmux(160, 50)
        self.tmux.line(f"{SCHEDSCOPE} replay {rec}; echo RC=$?")
        p, length, speed = self.wait_pos(lambda p, l, s: True, 15)
        self.assertAlmostEqual(length, 16, delta=1.5)
        self.assertEqual(speed, "1")

        # space, right after a frame was drawn (the source is then already waiting for
        # the next one): paused, and that next frame is not shown; the header's position
        # is the shown frame's.
        e = lv.elapsed_of(self.tmux.screen())
        self.assertIsNotNone(self.tmux.wait(lambda s: lv.elapsed_of(s) != e, 4))
        self.tmux.keys("Space")
        s = self.tmux.wait(lambda s: "PAUSED" in s, 4)
        self.assertIsNotNone(s, self.tmux.screen())
        time.sleep(0.3)
        s = self.tmux.screen()
        p0, e0 = self.pos(s)[0], lv.elapsed_of(s)
        self.assertEqual(int(p0), int(e0.split(":")[-1]), s)
        for _ in range(5):
            time.sleep(0.5)
            s = self.tmux.screen()
            self.assertIn("PAUSED", s)
            self.assertEqual((self.pos(s)[0], lv.elapsed_of(s)), (p0, e0), "the paused replay moved")

        # . : one frame (1 s intervals) while paused.
        self.tmux.keys(".")
        p1 = self.wait_pos(lambda p, l, s: p != p0)[0]
        self.assertAlmostEqual(p1 - p0, 1.0, delta=0.6)

        # Right: +5 s; Left: -5 s (from where it is).
        self.tmux.keys("Right")
        p2 = self.wait_pos(lambda p, l, s: p != p1)[0]
        self.assertAlmostEqual(p2 - p1, 5.0, delta=1.1)
        self.tmux.keys("Left")
        p3 = self.wait_pos(lambda p, l, s: p != p2)[0]
        self.assertAlmostEqual(p2 - p3, 5.0, delta=1.1)

        # + doubles, - halves (twice: x0.5).
        self.tmux.keys("+")
        self.wait_pos(lambda p, l, s: s == "2")
        self.tmux.keys("-")
        self.wait_pos(lambda p, l, s: s == "1")
        self.tmux.keys("-")
        self.wait_pos(lambda p, l, s: s == "0.5")

        # Resumed at x0.5, the position moves at about half speed.
        self.tmux.keys("Space")
        s = self.tmux.wait(lambda s: "PAUSED" not in s and self.pos(s), 4)
        self.assertIsNotNone(s)
        a, t_a = self.pos(s)[0], time.time()
        b = self.wait_pos(lambda p, l, s: p >= a + 1.0, 8)[0]
        rate = (b - a) / (time.time() - t_a)
        self.assertLess(rate, 0.9, "x0.5 should play slower than real time")

        self.tmux.keys("q")
        # The exit status echoed, not the command line's own "echo RC=$?".
        s = self.tmux.wait(lambda s: re.search(r"RC=\d", s), 10)
        self.assertIsNotNone(s, self.tmux.screen())
        self.assertIn("RC=0", s)


if __name__ == "__main__":
    unittest.main()
