"""Foundation e2e: the kernel-side observer against `knows`, a Go workload
that reports exactly what it did (threads created, sleeps, syscalls, blocking reads)."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from common import (Proc, SCHEDSCOPE, bpf_ids_held, frames_until_final, require_root,
                    schedscope, thread, top_json, workload)

SLEEPS, SLEEP_MS = 10, 50
READS, READ_DELAY_MS = 4, 100
CALLS = 500
THREADS = 6
KNOWS_ARGS = ["-threads", str(THREADS), "-sleeps", str(SLEEPS), "-sleep-len", f"{SLEEP_MS}ms",
              "-calls", str(CALLS), "-reads", str(READS), "-read-delay", f"{READ_DELAY_MS}ms",
              "-duration", "300ms"]


def facts(lines):
    return {o["ev"]: o for o in lines if isinstance(o, dict) and "ev" in o}


class Foundation(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def check_knows(self, truth, final, all_syscalls):
        self.assertTrue(final.get("final"))
        for key in ("t", "target", "threads", "syscalls", "drops"):
            self.assertIn(key, final)
        self.assertEqual(final["target"]["pid"], truth["ready"]["pid"])
        self.assertIn("threads", final["target"])
        self.assertEqual(final["drops"], 0)

        # K sleeps of a known length on a known thread: exact count; the kernel-side blocked
        # time lies between the requested length and what the workload measured around
        # its calls (+1 ms for clock granularity).
        sl = truth["sleeps"]
        row = thread(final, sl["tid"])
        self.assertIsNotNone(row, "sleeper thread missing")
        for key in ("tid", "state", "syscall", "syscall_ms"):
            self.assertIn(key, row)
        b = row["blocked_in"]["nanosleep"]
        self.assertEqual(b["count"], SLEEPS)
        self.assertGreaterEqual(b["ms"], SLEEPS * SLEEP_MS - 1)
        self.assertLessEqual(b["ms"], sum(sl["dur_ns"]) / 1e6 + 1)

        # R blocking reads, each released by a writer after a known delay.
        rd = truth["reads"]
        row = thread(final, rd["tid"])
        self.assertIsNotNone(row, "reader thread missing")
        b = row["blocked_in"]["read"]
        self.assertEqual(b["count"], READS)
        self.assertGreaterEqual(b["ms"], READS * READ_DELAY_MS * 0.9)
        self.assertLessEqual(b["ms"], sum(rd["dur_ns"]) / 1e6 + 1)

        # N threads created: every thread the workload saw appear was reported, with its
        # creator; anything else reported existed before the work (launch mode sees the
        # runtime start) or was created and died during it.
        created = {c["tid"] for c in final["creations"]}
        summary = truth["summary"]
        # Each locked goroutine (the threads, the sleeper, the caller, the reader) got a
        # thread of its own that did not exist before: the loop below has them to check.
        self.assertEqual(len(summary["locked_tids"]), THREADS + 3, summary)
        self.assertLessEqual(set(summary["locked_tids"]), set(summary["new_tids"]), summary)
        for tid in summary["new_tids"]:
            self.assertIn(tid, created, f"creation of {tid} not seen")
        for tid in created - set(summary["new_tids"]) - set(summary["tids_before"]):
            self.assertNotIn(tid, summary["tids_after"])
        self.assertEqual(final["totals"]["threads_created"], len(final["creations"]))
        for c in final["creations"]:
            self.assertIn(c["parent_tid"], set(summary["tids_before"]) | set(summary["tids_after"]) | created)

        names = {s["name"]: s for s in final["syscalls"]}
        for s in final["syscalls"]:
            for key in ("name", "count", "p50_us", "p99_us"):
                self.assertIn(key, s)
        if all_syscalls:
            # M calls of getppid: counted exactly, every call.
            self.assertEqual(final["syscalls_kind"], "calls")
            self.assertEqual(names["getppid"]["total"], CALLS)
            self.assertLess(names["getppid"]["p50_us"], 1000)
            self.assertEqual(final["target"]["mode"], "all-syscalls")
        else:
            self.assertEqual(final["syscalls_kind"], "blocking")
            self.assertNotIn("getppid", names, "getppid never blocks")
            self.assertGreaterEqual(names["nanosleep"]["total"], SLEEPS)
            self.assertGreaterEqual(names["read"]["total"], READS)

    def test_attach_by_pid_default_mode(self):
        wl = Proc([workload("knows"), "-wait-stdin", *KNOWS_ARGS], stdin=True)
        try:
            ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
            self.assertIsNotNone(ready)
            top = top_json(ready["pid"], "-i", "500ms")
            first = top.wait_for(lambda o: "target" in o, 10)
            if first is None:
                top.stop()
                self.fail("no first frame: " + top.stderr_text())
            self.assertEqual(first["target"]["mode"], "default")
            wl.send()
            lines = [ready] + [o for o in [wl.wait_for(lambda o: o.get("ev") == "done", 30)] if o]
            lines += [json.loads(l) for l in wl.lines if l.startswith("{")]
            truth = facts(lines)
            self.assertIn("done", truth)
            wl.p.wait(10)
            frames = [first] + frames_until_final(top, 20)
            self.assertEqual(top.p.wait(10), 0)
            self.assertTrue(frames[-1].get("final"), "no final object after the target exited")
            self.check_knows(truth, frames[-1], all_syscalls=False)
        finally:
            wl.stop(signal.SIGKILL)

    def launch_knows_all_syscalls(self, prefix=()):
        """`top -S` launching `knows` (behind `prefix`, a command that runs it): the
        workload's facts and top's frames, its calls checked against them."""
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "top.json")
            p = Proc([*prefix, SCHEDSCOPE, "top", "--batch", "--json", "-S", "-i", "500ms", "-o", out,
                      "--", workload("knows"), *KNOWS_ARGS])
            done = p.wait_for(lambda o: o.get("ev") == "done", 60)
            if done is None:
                p.stop()
                self.fail("workload did not finish: " + p.stderr_text())
            self.assertEqual(p.p.wait(20), 0, p.stderr_text())
            truth = facts([json.loads(l) for l in p.lines if l.startswith("{")])
            frames = [json.loads(l) for l in open(out) if l.strip()]
        self.assertTrue(frames[-1].get("final"))
        self.check_knows(truth, frames[-1], all_syscalls=True)
        return truth, frames

    def test_launch_all_syscalls_from_first_instruction(self):
        truth, frames = self.launch_knows_all_syscalls()
        # Observed from the first instruction: the runtime's own startup threads were
        # seen being created, so the whole thread set was created under observation.
        created = {c["tid"] for c in frames[-1]["creations"]}
        for tid in truth["summary"]["tids_before"]:
            if tid != truth["ready"]["pid"] and tid not in truth["summary"]["killed_tids"]:
                self.assertIn(tid, created)

    def test_all_syscalls_counted_exactly_from_inside_a_pid_namespace(self):
        """-S run from inside a PID namespace (a container's shell): the ids the observer
        names its threads by are not the kernel's, and each call's exit must still find
        the call its entry kept (docs/kernel-side.md, "-S: a call that does not block
        looks up no thread"): every getppid counted once."""
        truth, _ = self.launch_knows_all_syscalls(["unshare", "--pid", "--fork", "--mount-proc"])
        self.assertLess(truth["ready"]["pid"], 10, "the workload's pid in its namespace")

    def test_sigint_detaches_and_prints_totals(self):
        wl = Proc([workload("healthy_cpu"), "-forever"])
        try:
            ready = wl.wait_for(lambda o: "pid" in o, 10)
            top = top_json(ready["pid"], "-i", "200ms")
            self.assertIsNotNone(top.wait_for(lambda o: "target" in o, 10))
            ours = bpf_ids_held(top.p.pid, "prog")
            loaded = {p["id"]: p.get("name") for p in json.loads(subprocess.run(
                ["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout)}
            self.assertIn("ss_sched_switch", [loaded.get(i) for i in ours])
            top.p.send_signal(signal.SIGINT)
            rest = top.rest(10)
            self.assertEqual(top.p.wait(10), 0)
            self.assertTrue(rest and rest[-1].get("final"))
            self.assertGreater(rest[-1]["totals"]["oncpu_ms"], 0)
            # Nothing left attached: the programs it loaded are gone.
            # (the kernel frees programs asynchronously, after an RCU grace period)
            for _ in range(50):
                left = {p["id"] for p in json.loads(subprocess.run(
                    ["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout)}
                if not set(ours) & left:
                    break
                time.sleep(0.1)
            self.assertFalse(set(ours) & left, "BPF programs left loaded after exit")
        finally:
            wl.stop(signal.SIGKILL)


class BadInput(unittest.TestCase):
    def run_cli(self, *args):
        return subprocess.run([SCHEDSCOPE, *args], capture_output=True, text=True, timeout=30)

    def test_missing_pid(self):
        require_root(self)
        r = self.run_cli("top", "-p", "999999", "--batch", "-n", "1")
        self.assertEqual(r.returncode, 3)
        self.assertIn("no process with PID 999999", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)

    def test_kernel_thread(self):
        require_root(self)
        r = self.run_cli("top", "-p", "2", "--batch", "-n", "1")
        self.assertEqual(r.returncode, 3)
        self.assertIn("kernel thread", r.stderr)

    def test_command_that_cannot_execute(self):
        require_root(self)
        r = self.run_cli("top", "--batch", "--", "/nonexistent/cmd")
        self.assertEqual(r.returncode, 127)
        self.assertIn("cannot execute '/nonexistent/cmd'", r.stderr)

    def test_zero_interval(self):
        r = self.run_cli("top", "-p", "1", "-i", "0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("interval", r.stderr)

    def test_bad_duration(self):
        r = self.run_cli("top", "-p", "1", "-i", "soon")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a duration", r.stderr)

    def test_no_privileges(self):
        require_root(self)
        # Drop to nobody: loading BPF must fail with one clear line and exit code 4.
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=-all", "--bounding-set=-all", SCHEDSCOPE, "top", "-p",
                            str(os.getpid()), "--batch", "-n", "1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("doctor", r.stderr)

    def test_doctor(self):
        r = self.run_cli("doctor", "--json")
        j = json.loads(r.stdout)
        names = {c["name"]: c for c in j["checks"]}
        for n in ("privileges", "kernel BTF", "tracepoints (tp_btf)", "BPF ring buffer",
                  "load + attach (self test)"):
            self.assertIn(n, names)
        if os.geteuid() == 0:
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertTrue(names["load + attach (self test)"]["ok"])

    def test_help_teaches(self):
        r = self.run_cli("top", "--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--pid", "--all-syscalls", "--json", "--interval", "--ringbuf-size",
                     "--stuck-ms", "--storm-rate"):
            self.assertIn(flag, r.stdout)


if __name__ == "__main__":
    unittest.main()
