"""Go awareness e2e: every Go release we can run here (go1.19 from Debian, the
stripped go1.21–1.26 testbins, a go1.27 binary from npm), checked against ground truth
from the programs themselves and from GODEBUG=schedtrace printed at the same time."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from common import (SCHEDSCOPE, Proc, bpf_map_values, npm_binary, require_root, testbins, thread,
                    top_json, workload)


def selfreport_truth(proc):
    """Merges selfreport's first JSON lines (pid, go, gomaxprocs, spinner and reader goids)."""
    proc.wait_for(lambda o: "reader_goid" in o, 10)
    truth = {}
    for line in proc.lines:
        if line.startswith("{"):
            truth.update(json.loads(line))
    return truth


def check_goroutine_latency(tc, exe, frames, need_samples=False):
    """The runtime's scheduling-latency histogram was located from casgstatus's code at
    the offset `inspect` gives, and read (and kept passing its checks) live."""
    insp = json.loads(subprocess.run([SCHEDSCOPE, "inspect", "--json", exe], capture_output=True,
                                     text=True, timeout=60).stdout)
    loc = insp["sched_latency_histogram"]
    tc.assertEqual(loc["source"], "code", loc)
    lats = [f["sched_latency"].get("goroutine") or {} for f in frames]
    tc.assertTrue(lats and all(g.get("available") for g in lats), lats[-1:])
    tc.assertIn("sched+%d, code" % loc["sched_offset"], lats[-1]["source"])
    if need_samples:
        tc.assertGreater(sum(g.get("samples", 0) for g in lats), 0, lats)


class GoAwareness(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def check_spinner(self, exe):
        """The goroutine that spins (it told us its goid) is found running on a P, on the
        thread the P's M runs on, with its function — in the P table and the thread rows."""
        sr = Proc([exe])
        self.addCleanup(sr.stop, signal.SIGKILL)
        truth = selfreport_truth(sr)
        self.assertIn("spinner_goid", truth, exe)
        top = top_json(truth["pid"], "-i", "500ms", "-n", "6")
        found = None
        frames = []
        while True:
            got = top.json_lines(2.0)
            frames += got
            for f in got:
                for p in f.get("ps", []):
                    if p["goid"] == truth["spinner_goid"] and p["status"] == "running":
                        found = (f, p)
            if top.p.poll() is not None or found:
                break
        top.stop()
        self.assertTrue(frames, "no frames")
        f0 = frames[0]
        self.assertEqual(f0["target"]["go_version"], truth["go"])
        self.assertEqual(f0["target"]["gomaxprocs"], truth["gomaxprocs"])
        self.assertTrue(f0["target"]["go_enabled"], f0["target"].get("go_note"))
        self.assertIsNotNone(found, f"spinner G{truth['spinner_goid']} never seen on a P")
        f, p = found
        self.assertEqual(p["func"], "main.knownSpinner")
        row = thread(f, p["tid"])
        self.assertIsNotNone(row)
        self.assertEqual(row["p"], p["id"])
        self.assertEqual(row["m"], p["m"])
        self.assertEqual(row["goid"], truth["spinner_goid"])
        self.assertEqual(row["func"], "main.knownSpinner")
        for key in ("id", "status", "m", "tid", "goid", "func", "schedtick", "syscalltick", "runq"):
            self.assertIn(key, p)
        check_goroutine_latency(self, exe, frames)
        return truth

    def test_every_testbin_release(self):
        for exe in testbins():
            with self.subTest(exe=os.path.basename(exe)):
                self.check_spinner(exe)

    def test_debian_go119_workload(self):
        wl = Proc([workload("healthy_cpu"), "-forever", "-extra", "0"])
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        top = top_json(ready["pid"], "-i", "500ms", "-n", "2")
        frames = top.rest(20)
        self.assertEqual(frames[0]["target"]["go_version"], ready["go"])
        running = [p for p in frames[-2]["ps"] if p["status"] == "running"]
        self.assertTrue(running)
        for p in running:
            self.assertEqual(p["func"], "schedscope/workloads/internal/wl.CPUWorker")

    def test_debian_go119_pie_stripped(self):
        """A stripped PIE (-buildmode=pie -ldflags='-s -w'): no symbols, no DWARF, loaded at
        a random base. Offsets must validate live and the P table name the workers."""
        exe = workload("healthy_cpu-pie-stripped")
        insp = subprocess.run([SCHEDSCOPE, "inspect", "--json", exe], capture_output=True, text=True,
                              timeout=30)
        self.assertEqual(insp.returncode, 0, insp.stderr)
        j = json.loads(insp.stdout)
        self.assertTrue(j["pie"])
        self.assertTrue(j["stripped"])
        wl = Proc([exe, "-forever", "-extra", "0"])
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        top = top_json(ready["pid"], "-i", "500ms", "-n", "3")
        frames = top.rest(20)
        self.assertTrue(frames, top.stderr_text())
        t = frames[0]["target"]
        self.assertEqual(t["go_version"], ready["go"])
        self.assertTrue(t["go_enabled"], t.get("go_note"))
        running = [(f, p) for f in frames[:-1] for p in f["ps"] if p["status"] == "running"]
        self.assertTrue(running, "no running P seen")
        for f, p in running:
            self.assertEqual(p["func"], "schedscope/workloads/internal/wl.CPUWorker")
            row = thread(f, p["tid"])
            self.assertIsNotNone(row, f"no thread row for the tid of P{p['id']}")
            self.assertEqual(row["m"], p["m"])

    def check_against_schedtrace(self, argv, cwd=None, poke=None):
        """scheddetail printed by the process itself, at the same time: the same Ps, the
        same status and M for a P that did not change, and our schedticks fall between the
        schedtrace samples taken before and after ours. `poke`, if given, is called while
        we observe (to make the target schedule)."""
        # 4 Ps on 2 CPUs: some Ps stay idle and unchanged between samples.
        env = dict(os.environ, GODEBUG="schedtrace=200,scheddetail=1", GOMAXPROCS="4")
        # stdin stays open: esbuild --serve exits when its stdin closes.
        sr = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=env, cwd=cwd)
        self.addCleanup(lambda: (sr.kill(), sr.wait(), sr.stdin.close()))
        blocks = []  # (received_at, {p: (status, schedtick, m)})
        cur = {}

        def read_stderr():
            nonlocal cur
            for raw in sr.stderr:
                line = raw.decode(errors="replace")
                if line.startswith("SCHED"):
                    cur = {}
                    blocks.append((time.time(), cur))  # stamped when the block starts
                m = re.match(r"\s*P(\d+): status=(\d+) schedtick=(\d+) syscalltick=(\d+) m=(-?\d+|nil)", line)
                if m:
                    mid = -1 if m.group(5) == "nil" else int(m.group(5))
                    cur[int(m.group(1))] = (int(m.group(2)), int(m.group(3)), mid)

        threading.Thread(target=read_stderr, daemon=True).start()
        end = time.time() + 10
        while len(blocks) < 2 and time.time() < end:
            time.sleep(0.05)
        self.assertGreaterEqual(len(blocks), 2, "the target printed no schedtrace")
        top = top_json(sr.pid, "-i", "300ms", "-n", "10")
        ours = []  # (received_at, frame), stamped as each frame arrives
        end = time.time() + 20
        while time.time() < end and top.p.poll() is None:
            if poke:
                poke()
            for f in top.json_lines(0.5):
                if "ps" in f and not f.get("final"):
                    ours.append((time.time(), f))
        time.sleep(0.5)
        self.assertGreaterEqual(len(blocks), 10)
        self.assertGreaterEqual(len(ours), 8)
        self.assertTrue(ours[0][1]["target"]["go_enabled"], ours[0][1]["target"].get("go_note"))
        status_code = {"idle": 0, "running": 1, "syscall": 2, "gcstop": 3, "dead": 4}
        checked = stable = 0
        for at, f in ours:
            before = [b for t, b in blocks if t <= at - 0.25]
            after = [b for t, b in blocks if t >= at + 0.05]
            if not before or not after:
                continue
            b0, b1 = before[-1], after[0]
            self.assertEqual(set(b0), {p["id"] for p in f["ps"]})
            for p in f["ps"]:
                self.assertLessEqual(b0[p["id"]][1], p["schedtick"], p)
                self.assertLessEqual(p["schedtick"], b1[p["id"]][1], p)
                s0, s1 = b0[p["id"]], b1[p["id"]]
                if s0 == s1:
                    # Nothing changed on this P from the sample before ours to the one
                    # after (status, schedtick, M): ours must say the same.
                    self.assertEqual(status_code[p["status"]], s0[0], (p, s0))
                    self.assertEqual(p["schedtick"], s0[1])
                    self.assertEqual(p["m"], s0[2])
                    stable += 1
            checked += 1
        self.assertGreaterEqual(checked, 4)
        self.assertGreaterEqual(stable, 1, "no P stayed unchanged across a sample pair")
        return ours

    def test_p_table_agrees_with_schedtrace(self):
        self.check_against_schedtrace([testbins()[-1]])

    def test_go117_118_120_binaries_nobody_here_wrote(self):
        """Go releases we have no toolchain for, in real stripped binaries from npm: esbuild
        0.13.15 (go1.17.2), 0.14.30 (go1.18), 0.17.19 (go1.20.4), serving HTTP. The P table
        must agree with the runtime's own scheddetail."""
        for version, go in (("0.13.15", "go1.17.2"), ("0.14.30", "go1.18"), ("0.17.19", "go1.20.4")):
            with self.subTest(go=go):
                exe = npm_binary(f"esbuild-{version}/package/bin/esbuild")  # make npm-bins
                insp = json.loads(subprocess.run([SCHEDSCOPE, "inspect", exe, "--json"],
                                                 capture_output=True, text=True, timeout=60).stdout)
                self.assertTrue(insp["stripped"])
                self.assertEqual(insp["go_version"], go)
                site = tempfile.mkdtemp(prefix="schedscope-esbuild-")
                self.addCleanup(shutil.rmtree, site, True)
                with open(os.path.join(site, "index.html"), "w") as f:
                    f.write("<p>schedscope</p>" * 1000)
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]

                def poke():
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=1).read()
                    except OSError:
                        pass

                ours = self.check_against_schedtrace(
                    [exe, f"--serve=127.0.0.1:{port}", f"--servedir={site}"], cwd=site, poke=poke)
                self.assertEqual(ours[0][1]["target"]["go_version"], go)
                check_goroutine_latency(self, exe, [f for _, f in ours], need_samples=True)

    def test_go127_binary_nobody_here_wrote(self):
        exe = npm_binary("lefthook-2.2.2/package/bin/lefthook")  # make npm-bins
        insp = json.loads(subprocess.run([SCHEDSCOPE, "inspect", exe, "--json"], capture_output=True,
                                         text=True, timeout=60).stdout)
        self.assertTrue(insp["stripped"])
        self.assertRegex(insp["go_version"], r"^go1\.27")
        # Its stop-the-world reasons, from its own runtime.stwReasonStrings.
        self.assertEqual(insp["stw_reasons"]["names"][:3],
                         ["unknown", "GC mark termination", "GC sweep termination"])
        repo = tempfile.mkdtemp(prefix="schedscope-lefthook-")
        self.addCleanup(shutil.rmtree, repo, True)
        subprocess.run(["git", "init", "-q", repo], check=True)
        with open(os.path.join(repo, "lefthook.yml"), "w") as y:
            # A stream that outlasts the test (lefthook relays it; killed with its group).
            y.write("hold:\n  commands:\n    stream:\n      run: yes schedscope | head -n 300000000000\n")
        lh = subprocess.Popen([exe, "run", "hold"], cwd=repo, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(lambda: (os.killpg(lh.pid, signal.SIGKILL), lh.wait()))

        def hook_children():
            kids = []
            for tid in os.listdir(f"/proc/{lh.pid}/task"):
                try:
                    with open(f"/proc/{lh.pid}/task/{tid}/children") as f:
                        kids += f.read().split()
                except OSError:
                    pass
            return kids

        # lefthook is up (its runtime started) once it runs the hook's command.
        end = time.time() + 20
        while not hook_children() and lh.poll() is None and time.time() < end:
            time.sleep(0.05)
        self.assertTrue(hook_children(), "lefthook did not start its hook")
        top = top_json(lh.pid, "-i", "500ms", "-n", "4")
        # The GC sampler's gate opens only at the stop that starts a mark phase
        # (stwGCSweepTerm, 2): the binary's table says which value that is on 1.27.
        # The map exists (zeroed) from the load; the GC attach fills it in a moment later.
        cfg, end = None, time.time() + 10
        while not (cfg and cfg[0]["mark_stw_reason"]) and top.p.poll() is None and time.time() < end:
            cfg = bpf_map_values(top.p.pid, "gc_cfg")
            time.sleep(0.1)
        self.assertTrue(cfg, "gc_cfg not found")
        self.assertEqual(cfg[0]["mark_stw_reason"], 2, cfg)
        frames = top.rest(30)
        self.assertTrue(frames)
        t = frames[0]["target"]
        self.assertRegex(t["go_version"], r"^go1\.27")
        self.assertTrue(t["go_enabled"], t.get("go_note"))
        self.assertIn("calibrated", t["go_note"])
        # Every M of the P table is a thread of the process, and each thread row that names
        # an M names the same M the runtime does.
        self.assertIsNone(lh.poll(), "lefthook exited while observed")
        tids = {int(x) for x in os.listdir(f"/proc/{lh.pid}/task")}
        last = frames[-2] if len(frames) > 1 else frames[-1]
        ms = {m["tid"]: m for m in last["ms"] if m["tid"] > 0}
        self.assertTrue(ms)
        self.assertTrue(set(ms) <= tids, (sorted(ms), sorted(tids)))
        rows = [row for row in last["threads"] if row["tid"] in ms]
        self.assertEqual({row["tid"] for row in rows}, set(ms), "an M's thread has no row")
        for row in rows:
            self.assertEqual(row["m"], ms[row["tid"]]["id"])
        check_goroutine_latency(self, exe, frames)


class Inspect(unittest.TestCase):
    def run_inspect(self, *args):
        return subprocess.run([SCHEDSCOPE, "inspect", *args], capture_output=True, text=True, timeout=60)

    def test_json_keys_on_a_stripped_binary(self):
        exe = testbins()[0]
        r = self.run_inspect(exe, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        for key in ("go_version", "version_source", "stripped", "cgo", "pie", "tls_g_offset",
                    "offsets", "functions"):
            self.assertIn(key, j)
        self.assertEqual(j["go_version"], "go1.21.13")
        self.assertEqual(j["version_source"], "buildinfo")
        self.assertTrue(j["stripped"])
        self.assertEqual(j["tls_g_offset"], -8)
        self.assertEqual(j["offsets"]["source"], "table:go1.21")
        self.assertIn("runtime.execute", j["functions"])

    def test_live_pid_validates(self):
        require_root(self)
        sr = Proc([testbins()[-1]])
        self.addCleanup(sr.stop, signal.SIGKILL)
        truth = selfreport_truth(sr)
        r = self.run_inspect("-p", str(truth["pid"]), "--json")
        j = json.loads(r.stdout)
        self.assertTrue(j["validation"]["ok"], j["validation"])
        self.assertTrue(any("m.procid==tid" in c for c in j["validation"]["checks"]))

    def test_not_go(self):
        r = self.run_inspect("/bin/ls", "--json")
        self.assertEqual(r.returncode, 0)
        self.assertFalse(json.loads(r.stdout)["is_go"])

    def test_corrupt_and_missing(self):
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            data = open(testbins()[0], "rb").read()
            f.write(data[: len(data) // 3])
            f.flush()
            r = self.run_inspect(f.name)
            self.assertIn(r.returncode, (0, 1))
            self.assertNotIn("Segmentation", r.stderr)
            f.seek(0)
            f.write(b"garbage" * 100)
            f.truncate(700)
            f.flush()
            r = self.run_inspect(f.name)
            self.assertEqual(r.returncode, 1)
            self.assertTrue(r.stderr.strip())
        r = self.run_inspect("/nonexistent")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot read /nonexistent", r.stderr)

    def test_non_go_target_runs_kernel_only(self):
        require_root(self)
        r = subprocess.run([SCHEDSCOPE, "top", "--batch", "--json", "-i", "200ms", "--",
                            "sleep", "0.5"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        last = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertTrue(last["final"])
        self.assertFalse(last["target"]["go_enabled"])
        self.assertIn("not a Go program", last["target"]["go_note"])
        names = {s["name"] for s in last["syscalls"]}
        self.assertTrue(names & {"nanosleep", "clock_nanosleep"}, names)


if __name__ == "__main__":
    unittest.main()
