"""schedscope runs as root and writes into directories other users can write: planted
symlinks at output or temporary names are never followed, -o DIR fails before anything is
captured, --max-bytes rotation leaves other users' files alone, a SIGKILLed record's
temporary is cleaned up by the next run, `top --batch | head` stops promptly and detaches,
and a launched command gets default signals, no inherited descriptors and, with -u, the
given user."""
import json
import os
import re
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from common import SCHEDSCOPE, Proc, require_root, workload

MAGIC = b"\x89SCHED\r\n"
TEMP_RE = re.compile(r"\.tmp-(\d+)-[A-Za-z0-9]{10}$")


def run(*args, timeout=60):
    return subprocess.run([SCHEDSCOPE, *args], capture_output=True, text=True, timeout=timeout)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def write(path, data):
    with open(path, "w") as f:
        f.write(data)


def next_pids(n=300):
    """The pids the kernel hands out next (what an attacker guesses for NAME.tmp-PID)."""
    try:
        last = int(read("/proc/sys/kernel/ns_last_pid"))
    except OSError:
        last = os.getpid()
    return range(last + 1, last + 1 + n)


def ss_prog_ids():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise unittest.SkipTest("bpftool prog show failed: " + out.stderr)
    return {p["id"] for p in json.loads(out.stdout or "[]") if p.get("name", "").startswith("ss_")}


class HostileFiles(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.dir = tempfile.mkdtemp(prefix="schedscope-e2e-hostile-")
        os.chmod(self.dir, 0o1777)  # like /tmp: every user may create files here
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])
        self.victim = self.path("victim")
        write(self.victim, "precious\n")

    def path(self, name):
        return os.path.join(self.dir, name)

    def healthy(self):
        wl = Proc([workload("healthy_cpu"), "-forever"])
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: "pid" in o, 10)
        self.assertIsNotNone(ready, "workload did not start")
        return str(ready["pid"])

    def record_once(self, pid, out):
        r = run("record", "-p", pid, "-i", "200ms", "-d", "600ms", "-q", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def assert_victim_intact(self):
        self.assertEqual(read(self.victim), "precious\n")

    def assert_ours(self, path):
        st = os.lstat(path)
        self.assertTrue(stat.S_ISREG(st.st_mode), path)
        self.assertEqual(st.st_mode & 0o7777, 0o600, path)
        self.assertEqual(st.st_uid, os.geteuid())

    def no_temps(self):
        return [f for f in os.listdir(self.dir) if TEMP_RE.search(f)]

    # ------------------------------------------------------------------ planted symlinks
    def test_export_replaces_a_planted_symlink_and_never_follows_guessed_temp_names(self):
        pid = self.healthy()
        rec = self.path("in.sched")
        self.record_once(pid, rec)
        out = self.path("out.pftrace")
        os.symlink(self.victim, out)
        # The old temporary name was OUT.tmp-PID: plant it for the pids coming next.
        for p in next_pids():
            os.symlink(self.victim, f"{out}.tmp-{p}")
        r = run("export", rec, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_victim_intact()
        self.assert_ours(out)
        self.assertGreater(os.path.getsize(out), 100)
        self.assertEqual(self.no_temps(), [])

    def test_top_o_replaces_a_planted_symlink_and_can_be_followed_while_it_grows(self):
        pid = self.healthy()
        out = self.path("top.txt")
        os.symlink(self.victim, out)
        top = Proc([SCHEDSCOPE, "top", "-p", pid, "--batch", "-i", "300ms", "-n", "12", "-o", out])
        self.addCleanup(top.stop)
        # Written under its final name from the start (tail -f works), not at the end.
        deadline = time.time() + 15
        while time.time() < deadline and not (os.path.isfile(out) and not os.path.islink(out)
                                               and os.path.getsize(out) > 0):
            time.sleep(0.05)
        self.assertIsNone(top.p.poll(), "top ended before its output could be followed")
        self.assertFalse(os.path.islink(out))
        self.assertGreater(os.path.getsize(out), 0)
        self.assertEqual(top.p.wait(30), 0, top.stderr_text())
        self.assert_victim_intact()
        self.assert_ours(out)
        self.assertIn("schedscope", read(out) + top.stderr_text())
        self.assertEqual(self.no_temps(), [])

    def test_record_o_replaces_a_planted_symlink(self):
        pid = self.healthy()
        out = self.path("r.sched")
        os.symlink(self.victim, out)
        for p in next_pids():
            os.symlink(self.victim, f"{out}.tmp-{p}")
        self.record_once(pid, out)
        self.assert_victim_intact()
        self.assert_ours(out)
        self.assertEqual(read(out, "rb")[:8], MAGIC)
        self.assertEqual(self.no_temps(), [])

    def test_flight_recorder_dir_replaces_planted_symlinks_at_predictable_names(self):
        wl = Proc([workload("stuckp_raw"), "-wait-stdin", "-hold", "3s"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"
        # Dangling links at every name a dump could get in the next 90 s: followed, they
        # would create `created`.
        created = self.path("created")
        planted = set()
        now = int(time.time())
        for t in range(now, now + 90):
            name = "schedscope-%s-%d-%s.sched" % (host, ready["pid"], time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t)))
            os.symlink(created, self.path(name))
            planted.add(name)
        top = Proc([SCHEDSCOPE, "top", "-p", str(ready["pid"]), "--json", "-i", "500ms",
                    "--flight-recorder", "2s", "--dir", self.dir])
        self.addCleanup(top.stop)
        self.assertIsNotNone(top.wait_for(lambda o: "target" in o, 15), "top did not start")
        wl.send()
        self.assertIsNotNone(wl.wait_for(lambda o: o.get("ev") == "done", 30))
        top.rest(20)
        self.assertEqual(top.p.wait(20), 0)
        err = top.stderr_text()
        wrote = re.findall(r"flight recorder: wrote (\S+) ", err)
        self.assertTrue(wrote, err)
        self.assertFalse(os.path.lexists(created), "a planted symlink was followed")
        for w in wrote:
            self.assertIn(os.path.basename(w), planted, "the dump did not land on a planted name")
            self.assert_ours(w)
            self.assertEqual(read(w, "rb")[:8], MAGIC)
        self.assertEqual(self.no_temps(), [])

    # ------------------------------------------------------------------ -o DIR
    def test_output_directory_fails_before_the_capture(self):
        sub = self.path("sub")
        os.mkdir(sub)
        marker = self.path("launched")
        t0 = time.time()
        r = run("record", "-d", "5s", "-q", "-o", sub, "--", "/bin/sh", "-c", "touch " + marker)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(sub + " is a directory", r.stderr)
        self.assertFalse(os.path.exists(marker), "the command was launched")
        r = run("top", "--batch", "-n", "1", "-o", sub, "--", "/bin/sh", "-c", "touch " + marker)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(sub + " is a directory", r.stderr)
        self.assertFalse(os.path.exists(marker), "the command was launched")
        self.assertLess(time.time() - t0, 4, "failed only after a capture")
        write(self.path("notarec.sched"), "x")
        r = run("export", self.path("notarec.sched"), "-o", sub)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(sub + " is a directory", r.stderr)
        self.assertEqual(os.listdir(sub), [])
        self.assertEqual(self.no_temps(), [])

    # ------------------------------------------------------------------ rotation
    def test_rotation_leaves_a_planted_foreign_recording_alone(self):
        pid = self.healthy()
        ours = self.path("schedscope-h-1-20200101T000000Z.sched")
        self.record_once(pid, ours)
        theirs = self.path("schedscope-h-1-20190101T000000Z.sched")
        subprocess.run(["cp", ours, theirs], check=True)
        os.chown(theirs, 65534, 65534)
        os.utime(theirs, (1546300800, 1546300800))  # the oldest of all
        os.utime(ours, (1577836800, 1577836800))
        r = run("record", "-p", pid, "-i", "200ms", "-d", "600ms", "--dir", self.dir, "--max-bytes", "1K")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(theirs), "another user's file was deleted")
        self.assertFalse(os.path.exists(ours), r.stderr)
        self.assertIn("deleted " + ours + " (--max-bytes)", r.stderr)
        self.assertIn("--max-bytes leaves %s (owned by uid 65534, not by uid 0) alone" % theirs, r.stderr)

    # ------------------------------------------------------------------ stale temporaries
    def test_next_run_removes_the_temporary_of_a_sigkilled_record(self):
        pid = self.healthy()
        rec = Proc([SCHEDSCOPE, "record", "-p", pid, "-i", "200ms", "--dir", self.dir])
        deadline = time.time() + 15
        while time.time() < deadline and "recording pid" not in rec.stderr_so_far() and rec.p.poll() is None:
            time.sleep(0.05)
        temps = self.no_temps()
        self.assertEqual(len(temps), 1, (os.listdir(self.dir), rec.stderr_so_far()))
        rec.p.kill()
        rec.p.wait(10)
        self.assertEqual(self.no_temps(), temps, "SIGKILL leaves the temporary")
        killed = rec.p.pid
        self.assertEqual(int(TEMP_RE.search(temps[0]).group(1)), killed)
        # Another user's file with our naming pattern stays.
        foreign = self.path("x.sched.tmp-1-AAAAAAAAAA")
        write(foreign, "theirs")
        os.chown(foreign, 65534, 65534)
        r = run("record", "-p", pid, "-i", "200ms", "-d", "600ms", "-q", "--dir", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("removed %s, a temporary file left by an interrupted run (pid %d)"
                      % (self.path(temps[0]), killed), r.stderr)
        self.assertEqual(self.no_temps(), ["x.sched.tmp-1-AAAAAAAAAA"])

    # ------------------------------------------------------------------ closed pipe
    def check_head_stops(self, *extra, interval="200ms", budget=3.0):
        pid = self.healthy()
        before = ss_prog_ids()
        p = subprocess.Popen([SCHEDSCOPE, "top", "-p", pid, "--batch", "-i", interval, *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        got = b""
        while len(got) < 50:
            chunk = os.read(p.stdout.fileno(), 50 - len(got))
            if not chunk:
                break
            got += chunk
        self.assertEqual(len(got), 50, p.stderr.read().decode(errors="replace") if p.poll() is not None else "")
        during = ss_prog_ids() - before
        self.assertTrue(during, "no ss_ BPF program seen while top ran")
        t0 = time.time()
        p.stdout.close()  # the reader goes away, like `head -c 50`
        try:
            rc = p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            self.fail("top kept running after its reader went away")
        took = time.time() - t0
        self.assertEqual(rc, 141, p.stderr.read().decode(errors="replace"))
        self.assertLess(took, budget, "exit took %.1fs" % took)
        left = during
        for _ in range(50):
            left = during & ss_prog_ids()
            if not left:
                break
            time.sleep(0.1)
        self.assertEqual(left, set(), "BPF programs left loaded")

    def test_batch_text_stops_when_the_reader_goes_away(self):
        self.check_head_stops()

    def test_json_stops_when_the_reader_goes_away(self):
        self.check_head_stops("--json")

    def test_long_interval_stops_between_frames(self):
        # With -i 4s the next write is 4 s away: the pipe watcher notices sooner.
        self.check_head_stops("--json", interval="4s", budget=2.0)

    def test_shell_pipeline_into_head(self):
        pid = self.healthy()
        t0 = time.time()
        r = subprocess.run(["bash", "-c", "set -o pipefail; '%s' top -p %s --batch -i 200ms | head -c 50 >/dev/null;"
                            " echo \"${PIPESTATUS[0]}\"" % (SCHEDSCOPE, pid)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout.strip(), "141", r.stderr)
        self.assertLess(time.time() - t0, 10)

    def test_offline_commands_report_a_lost_reader_and_a_full_disk(self):
        # report / replay to standard output: a reader gone before the first write ends the
        # command as SIGPIPE ends a writer (a shell shows 141), a failed write (a full disk)
        # exits 1 with the reason; never a silent 0 with the output lost.
        out = self.path("rec.sched")
        self.record_once(self.healthy(), out)
        for cmd in (["replay", "--json", out], ["report", "--json", out], ["report", out]):
            with self.subTest(cmd=" ".join(cmd[:2])):
                rd, wr = os.pipe()
                os.close(rd)  # the reader is gone before schedscope writes
                try:
                    gone = subprocess.run([SCHEDSCOPE, *cmd], stdout=wr, stderr=subprocess.PIPE,
                                          text=True, timeout=60)
                finally:
                    os.close(wr)
                self.assertIn(gone.returncode, (-signal.SIGPIPE, 141), gone.stderr)
                self.assertEqual(gone.stderr, "")
                with open("/dev/full", "wb") as full_dev:
                    full = subprocess.run([SCHEDSCOPE, *cmd], stdout=full_dev,
                                          stderr=subprocess.PIPE, text=True, timeout=60)
                self.assertEqual(full.returncode, 1, full.stderr)
                self.assertIn("cannot write standard output", full.stderr)

    # ------------------------------------------------------------------ launch mode
    def launched_env(self, mode, *extra):
        d = self.path("child")
        os.mkdir(d)
        os.chmod(d, 0o777)
        script = ("id -u > {d}/uid; grep -E '^(SigIgn|SigBlk)' /proc/self/status > {d}/sig; "
                  "ls /proc/self/fd > {d}/fds".format(d=d))
        out = self.path("out.txt") if mode == "top" else self.path("out.sched")
        if mode == "top":
            args = ["top", "--batch", "-i", "200ms", "-o", out, *extra, "--", "/bin/sh", "-c", script]
        else:
            args = ["record", "-i", "200ms", "-q", "-o", out, *extra, "--", "/bin/sh", "-c", script]
        r = run(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_ours(out)
        sig = dict(l.split(":\t") for l in read(d + "/sig").split("\n") if l)
        fds = sorted(int(x) for x in read(d + "/fds").split())
        return read(d + "/uid").strip(), sig, fds

    def test_launch_as_nobody_with_default_signals_and_no_inherited_fds(self):
        for mode in ("top", "record"):
            with self.subTest(mode=mode):
                uid, sig, fds = self.launched_env(mode, "-u", "nobody")
                self.assertEqual(uid, "65534")
                self.assertEqual(int(sig["SigIgn"], 16), 0, "SIGPIPE (or another) still ignored")
                self.assertEqual(int(sig["SigBlk"], 16), 0)
                # 0-2 and ls's own directory descriptor: not -o's file, not BPF objects.
                self.assertEqual(fds, [0, 1, 2, 3])
                subprocess.run(["rm", "-rf", self.path("child")])

    def test_launch_without_user_is_root_but_clean(self):
        uid, sig, fds = self.launched_env("top")
        self.assertEqual(uid, "0")
        self.assertEqual(int(sig["SigIgn"], 16), 0)
        self.assertEqual(fds, [0, 1, 2, 3])

    def test_user_flag_errors(self):
        for cmd in ("top", "record"):
            r = run(cmd, "-p", "1", "-u", "nobody")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("-u/--user runs a launched command as that user: give the command after --", r.stderr)
            r = run(cmd, "-u", "no-such-user-schedscope", "--", "/bin/true")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("no such user: no-such-user-schedscope", r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
