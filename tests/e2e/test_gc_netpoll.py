"""GC stalls and netpoller saturation e2e: gcstress raises gc_stall with its
evidence (GC cycles counted against the runtime's own /gc/cycles/total, assists, MMU),
netpoll_slow raises netpoll_saturation with the goroutine counts behind it, and the
healthy controls (a light GC load, a CPU-bound server with the same connections) raise
neither. A recording of gcstress reports the same alert."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from common import (SCHEDSCOPE, SRC, Proc, bpf_map_values, frames_until_final, require_root, top_json,
                    workload)


def alerts_of(frames, kind):
    return [a for f in frames for a in f.get("alerts", []) if a["kind"] == kind and a["active"]]


class GcNetpoll(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def start_top(self, name, args):
        """Starts the workload (-wait-stdin), attaches top --json -i 1s and, once it shows
        its first frame, releases the workload. Returns (workload proc, top proc)."""
        wl = Proc([workload(name), "-wait-stdin", *args], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        top = top_json(ready["pid"], "-i", "1s")
        self.addCleanup(top.stop)
        self.assertIsNotNone(top.wait_for(lambda o: "target" in o, 15), "schedscope did not start")
        wl.send()
        return wl, top

    def run_top(self, name, args, seconds, until=None):
        """Starts the workload (-wait-stdin), attaches top --json -i 1s, releases it and
        collects frames for `seconds` (or until until(frame) is true). Returns
        (workload proc, frames, workload JSON lines)."""
        wl, top = self.start_top(name, args)
        frames = []
        end = time.time() + seconds
        while time.time() < end:
            for f in top.json_lines(1.0):
                if "target" in f:
                    frames.append(f)
                    if until and until(f):
                        end = 0
        return wl, frames

    def test_gcstress_raises_gc_stall_with_evidence(self):
        wl, frames = self.run_top("gcstress", ["-live-mb", "128", "-duration", "12s"], 30,
                                  until=lambda f: f.get("final"))
        lines = wl.rest(15)
        done = [o for o in lines if o.get("done")]
        self.assertTrue(done, "workload did not finish")
        done = done[0]
        stalls = alerts_of(frames, "gc_stall")
        self.assertTrue(stalls, "no gc_stall alert; gc: %s" % [f.get("gc") for f in frames[-3:]])
        a = stalls[0]
        text = a["message"] + "\n" + "\n".join(a["evidence"])
        for needle in ("MMU", "GC cycles", "cycle #", "stop-the-world", "mark assist",
                       "heap growth", "goroutines assisting most"):
            self.assertIn(needle, text)
        self.assertGreater(a["goid"], 0)
        # GC cycles seen by the uprobes match the runtime's own count (attached at "ready",
        # before the first cycle), and every cycle stopped the world twice.
        final = frames[-1]
        self.assertTrue(final.get("final"), "no final frame")
        seen = final["gc"]["cycles_total"]
        truth = done["gc_cycles_total"]
        self.assertGreater(truth, 3)
        self.assertLessEqual(abs(seen - truth), 1, (seen, truth))
        # Every stop-the-world pause the runtime recorded (/gc/pauses: sweep and mark
        # termination, two a cycle; gcstress stops the world for nothing else) was seen,
        # and no more: within the two of one cycle, as the cycles are within one (a cycle
        # cut by the exit). Double counting would be twice the truth.
        self.assertGreater(done["gc_pauses_total"], 2 * 3)
        self.assertLessEqual(abs(final["gc"]["stw_count"] - done["gc_pauses_total"]), 2,
                             (final["gc"]["stw_count"], done["gc_pauses_total"]))
        self.assertGreater(final["gc"]["assist_ms"], 0)
        # An interval with the alert shows the MMU under the threshold at 10 or 100 ms.
        low = [f for f in frames if any(x["kind"] == "gc_stall" for x in f.get("alerts", []))]
        mmu = low[0]["gc"]["mmu"]
        self.assertTrue(mmu["10ms"] < 0.2 or mmu["100ms"] < 0.8, mmu)

    def test_readmemstats_loop_raises_stw_stall_not_gc_stall(self):
        """A ReadMemStats loop (go1.23: the pause reason is known) stops the world
        thousands of times a second with no garbage: stw_stall names the reason and says it
        is not the GC; every pause the program made is counted."""
        wl, frames = self.run_top("stwloop-go1.23-stripped", ["-callers", "2", "-duration", "6s"], 20,
                                  until=lambda f: f.get("final"))
        done = [o for o in wl.rest(15) if o.get("done")]
        self.assertTrue(done, "workload did not finish")
        stalls = alerts_of(frames, "stw_stall")
        self.assertTrue(stalls, "no stw_stall; gc: %s" % [f.get("gc") for f in frames[-3:]])
        a = stalls[0]
        # The caller, from stacks sampled at stopTheWorldWithSema: the goroutine that
        # calls ReadMemStats in a loop (stwloop's caller closure), at the line of the call.
        self.assertEqual(a["func"], "main.main.func1")
        text = a["message"] + "\n" + "\n".join(a["evidence"])
        with open(os.path.join(SRC, "tools", "workloads", "stwloop", "main.go")) as src:
            call = 1 + [i for i, l in enumerate(src) if "runtime.ReadMemStats(&m)" in l][0]
        for needle in ("stop-the-world pauses/s (read mem stats)", "not the GC", "runtime/metrics",
                       "stopped by (", "main.main.func1 schedscope/workloads/stwloop/main.go:%d" % call):
            self.assertIn(needle, text)
        self.assertFalse(alerts_of(frames, "gc_stall"))
        final = frames[-1]
        self.assertTrue(final.get("final"), "no final frame")
        # One stop-the-world per ReadMemStats call: the uprobes saw each of them, with its
        # reason (a GC cycle, if the requests' bookkeeping triggers one, adds its own two).
        seen = final["gc"]["stw_reasons"].get("read mem stats", 0)
        self.assertLessEqual(abs(seen - done[0]["stws"]), 3, (final["gc"], done[0]["stws"]))
        self.assertLessEqual(final["gc"]["stw_count"] - seen, 2 * final["gc"]["cycles_total"] + 3,
                             final["gc"])

    def test_gc_loop_stacks_name_its_caller_not_the_mark_worker(self):
        """runtime.GC() in a loop stops the world twice a call: the sweep termination's
        stop is the caller's, the mark termination's the runtime's background mark worker's.
        The sampled stacks name the goroutine that calls runtime.GC, at the line of the call,
        and the mark worker's stops add no "?" (no caller) beside it."""
        wl, frames = self.run_top("stwloop-go1.23-stripped",
                                  ["-gc", "-callers", "1", "-duration", "5s"], 20,
                                  until=lambda f: f.get("final"))
        done = [o for o in wl.rest(15) if o.get("done")]
        self.assertTrue(done, "workload did not finish")
        final = frames[-1]
        self.assertTrue(final.get("final"), "no final frame")
        g = final["gc"]
        with open(os.path.join(SRC, "tools", "workloads", "stwloop", "main.go")) as src:
            call = 1 + [i for i, l in enumerate(src) if l.strip() == "runtime.GC()"][0]
        site = "main.main.func1 schedscope/workloads/stwloop/main.go:%d" % call
        # Both stops of every call were seen, half of them the mark termination's ...
        reasons = g["stw_reasons"]
        sweeps = reasons.get("GC sweep termination", 0)
        self.assertGreater(sweeps, 10, reasons)
        self.assertLessEqual(abs(reasons.get("GC mark termination", 0) - sweeps), 2, reasons)
        self.assertLessEqual(abs(done[0]["stws"] - sweeps), 2, (done[0], reasons))
        # ... and only the caller's have a stack: one site, no "?".
        self.assertEqual(list(g["stw_callers"]), [site], g["stw_callers"])
        self.assertGreater(g["stw_callers"][site], 0)
        self.assertLessEqual(g["stw_callers"][site], sweeps)

    def test_no_stw_loop_is_no_stall(self):
        wl, frames = self.run_top("stwloop-go1.23-stripped", ["-callers", "0", "-duration", "4s"], 15,
                                  until=lambda f: f.get("final"))
        self.assertGreaterEqual(len(frames), 3)
        self.assertFalse(alerts_of(frames, "stw_stall"))
        self.assertFalse(alerts_of(frames, "gc_stall"))

    def test_light_gc_load_is_no_stall(self):
        wl, frames = self.run_top("gcstress", ["-live-mb", "16", "-req-kb", "32", "-think",
                                               "5ms", "-workers", "2", "-duration", "10s"], 12)
        self.assertGreaterEqual(len(frames), 8)
        self.assertEqual(alerts_of(frames, "gc_stall"), [],
                         [f["gc"]["mmu"] for f in frames])
        self.assertGreater(frames[-1]["gc"]["cycles_total"], 0, "the control must still GC")

    def test_netpoll_slow_raises_netpoll_saturation(self):
        clients = 300
        wl, frames = self.run_top("netpoll_slow", ["-clients", str(clients), "-duration", "12s"],
                                  10, until=lambda f: alerts_of([f], "netpoll_saturation"))
        lines = []
        while True:  # every line the workload printed so far
            got = wl.json_lines(0.3)
            if not got:
                break
            lines += got
        ticks = [o for o in lines if o.get("ev") == "tick"]
        self.assertTrue(ticks, "the workload printed no tick")
        alerts = alerts_of(frames, "netpoll_saturation")
        self.assertTrue(alerts, "no netpoll_saturation; census: %s" %
                        [f.get("census") for f in frames[-3:]])
        a = alerts[0]
        self.assertIn("not a scheduler problem", a["message"])
        self.assertIn("backend", a["message"])
        text = "\n".join(a["evidence"])
        self.assertIn("IO wait", text)
        self.assertIn("epoll_wait", text)
        f = [f for f in frames if alerts_of([f], "netpoll_saturation")][0]
        c = f["census"]
        self.assertTrue(c["complete"], c)
        # Each client, front handler and backend handler parks on its socket, and so do the
        # two accept loops: 3 x clients + 2 goroutines in IO wait, no more. Fewer only by
        # those that were not parked when the census read them: running, runnable or in a
        # write(2) (at most what the census counts in those states).
        busy = sum(c["by_status"].get(k, 0) for k in ("running", "runnable", "syscall"))
        self.assertLessEqual(c["io_wait"], 3 * clients + 2, c)
        self.assertGreaterEqual(c["io_wait"], 3 * clients + 2 - busy, c)
        # Where they park: the clients (started as `go client(..)`) lead the functions.
        funcs = {x["func"]: x["count"] for x in c["io_wait_funcs"]}
        self.assertLessEqual(funcs.get("main.client", 0), clients, funcs)
        self.assertGreaterEqual(funcs.get("main.client", 0), clients - busy, (funcs, c["by_status"]))
        self.assertIn("main.client", text)
        self.assertLessEqual(abs(c["live"] - ticks[-1]["goroutines"]), 60,
                             (c["live"], ticks[-1]["goroutines"]))

    def test_cpu_bound_server_is_no_netpoll_saturation(self):
        # Same connections, no backend delay: the Ps are busy and the run queues work.
        wl, frames = self.run_top("netpoll_slow", ["-clients", "300", "-backend-delay", "0",
                                                   "-duration", "10s"], 9)
        self.assertGreaterEqual(len(frames), 6)
        self.assertEqual(alerts_of(frames, "netpoll_saturation"), [])

    def test_census_names_wait_reasons_from_the_binary(self):
        # pingpong -idle parks N goroutines on a channel receive (main.idler); the names
        # come from the binary's runtime.waitReasonStrings, not from a per-version table.
        idle = 200
        insp = subprocess.run([SCHEDSCOPE, "inspect", "--json", workload("pingpong")],
                              capture_output=True, timeout=30)
        self.assertEqual(insp.returncode, 0, insp.stderr)
        wr = json.loads(insp.stdout)["wait_reasons"]
        self.assertEqual(wr["source"], "data+code")
        self.assertEqual(wr["names"][1:3], ["GC assist marking", "IO wait"])
        wl, frames = self.run_top("pingpong", ["-idle", str(idle), "-pairs", "1",
                                               "-duration", "5s"], 4,
                                  until=lambda f: "census" in f and f["census"]["read"] > idle)
        censuses = [f["census"] for f in frames if f.get("census")]
        self.assertTrue(censuses, "no census")
        by = censuses[-1]["waiting_by_reason"]
        self.assertGreaterEqual(by.get("chan receive", 0), idle, by)
        # The runtime's own parked goroutines, named too.
        for name in ("force gc (idle)", "GC sweep wait", "finalizer wait"):
            self.assertIn(name, by)
        self.assertFalse([k for k in by if k.startswith("wait reason ")], by)
        # A recording names them without the binary: the table is in its Go metadata.
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "pp.sscope")
            rec = subprocess.run([SCHEDSCOPE, "record", "-o", out, "-i", "1s", "--",
                                  workload("pingpong"), "-idle", str(idle), "-pairs", "1",
                                  "-duration", "3s"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            self.assertEqual(rec.returncode, 0)
            rep = subprocess.run([SCHEDSCOPE, "report", "--json", out], capture_output=True,
                                 timeout=60)
            self.assertEqual(rep.returncode, 0, rep.stderr)
            by = json.loads(rep.stdout)["final"]["census"]["waiting_by_reason"]
            self.assertGreaterEqual(by.get("chan receive", 0), idle, by)
            self.assertFalse([k for k in by if k.startswith("wait reason ")], by)

    def poll_gate(self, name, args, seconds):
        """Runs the workload under top and reads the GC sampler's gate of its slot (slot 0:
        the only target) and its gc_cfg from the kernel, every ~50 ms for `seconds`.
        Returns (gate values, cfg, final frame)."""
        _, top = self.start_top(name, args)
        cfg, gates = None, []
        end = time.time() + seconds
        while time.time() < end:
            if cfg is None or not cfg[0]["enabled"]:  # set once the runtime offsets are read
                cfg = bpf_map_values(top.p.pid, "gc_cfg")
            g = bpf_map_values(top.p.pid, "gc_gate")
            if g:
                gates.append(g[0])
            time.sleep(0.05)
        frames = frames_until_final(top, 30)
        self.assertTrue(frames and frames[-1].get("final"), "no final frame")
        self.assertTrue(cfg, "gc_cfg not found")
        return gates, cfg[0], frames[-1]

    def test_sampler_reads_the_target_only_in_mark_phases(self):
        """The GC sampler's gate opens at the stop-the-world that starts a mark phase and
        closes at gcMarkTermination. go1.19 cannot tell a stop's reason: any stop opens it.
        Under a GC storm it opens and closes, and the samples it lets through still measure
        the assists."""
        gates, cfg, final = self.poll_gate("gcstress", ["-live-mb", "128", "-duration", "6s"], 4)
        self.assertEqual(cfg["mark_stw_reason"], 0xFFFFFFFF, cfg)
        self.assertTrue(cfg["enabled"], cfg)
        self.assertGreater(len(gates), 20)
        self.assertEqual(set(gates), {0, 1}, gates)
        self.assertGreater(final["gc"]["cycles_total"], 3)
        self.assertGreater(final["gc"]["assist_ms"], 0, final["gc"])

    def test_sampler_gate_stays_closed_for_stops_outside_the_gc(self):
        """go1.23 names each stop's reason: thousands of ReadMemStats stops a second leave
        the sampler's gate closed (only the GC cycles the loop's bookkeeping triggers open
        it, for their mark phases). Were any stop to open it, it would stay open from one
        GC's mark termination to the next."""
        gates, cfg, final = self.poll_gate("stwloop-go1.23-stripped", ["-callers", "2",
                                                                       "-duration", "5s"], 4)
        self.assertEqual(cfg["mark_stw_reason"], 2, cfg)  # stwGCSweepTerm
        self.assertGreater(final["gc"]["stw_reasons"].get("read mem stats", 0), 1000, final["gc"])
        self.assertGreater(len(gates), 20)
        self.assertLessEqual(sum(1 for g in gates if g), len(gates) // 10, gates)

    def test_recording_reports_the_gc_stall(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "gc.sscope")
            rec = subprocess.run([SCHEDSCOPE, "record", "-o", out, "-i", "1s", "--",
                                  workload("gcstress"), "-live-mb", "128", "-duration", "8s"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            self.assertEqual(rec.returncode, 0)
            rep = subprocess.run([SCHEDSCOPE, "report", "--json", out], capture_output=True,
                                 timeout=60)
            self.assertEqual(rep.returncode, 0, rep.stderr)
            j = json.loads(rep.stdout)
            kinds = [a["kind"] for a in j.get("alerts", [])]
            self.assertIn("gc_stall", kinds, kinds)
            self.assertTrue(j["alerts_check"]["match"], j["alerts_check"]["diffs"])
            self.assertGreater(j["gc"]["cycles_total"], 3)
            kinds = {p["kind"] for p in j["gc"]["periods"]}
            self.assertEqual(kinds, {"stw", "mark"})
            # The Perfetto export carries the GC periods as slices on their own tracks.
            pf = os.path.join(d, "gc.pftrace")
            ex = subprocess.run([SCHEDSCOPE, "export", out, "--format", "perfetto", "-o", pf],
                                capture_output=True, timeout=60)
            self.assertEqual(ex.returncode, 0, ex.stderr)
            proto = os.path.join(SRC, "userspace", "analysis", "perfetto_trace.proto")
            with open(pf, "rb") as f:
                dec = subprocess.run(["protoc", "--proto_path=" + os.path.dirname(proto),
                                      "--decode=perfetto.protos.Trace", proto], stdin=f,
                                     capture_output=True, text=True, timeout=60)
            self.assertEqual(dec.returncode, 0, dec.stderr)
            for name in ("GC stop-the-world", "GC mark phase", "GC MMU 10ms (min per interval)"):
                self.assertIn('name: "%s"' % name, dec.stdout)
            self.assertIn('categories: "gc"', dec.stdout)


if __name__ == "__main__":
    unittest.main()
