"""--annotations e2e: runtime/trace tasks, regions and logs of the annotated workload
(stripped, go1.19 = old tracer and go1.23 = new tracer), seen from outside with the
program's tracing off and with the program tracing itself, against the workload's own
ground truth: counts equal exactly, durations within a stated tolerance, the request's
region tree with the goroutine of each region; a recording gives the same tables."""
import json
import os
import re
import signal
import statistics
import subprocess
import tempfile
import shutil
import time
import unittest

from common import BUILD, SCHEDSCOPE, SRC, Proc, frames_until_final, require_root, top_json, workload

BINARIES = ("annotated-stripped", "annotated-go1.23-stripped")
# -hold: the last interval frame (500 ms) comes before the exit, so the per-interval
# frames add up to the totals.
ARGS = ["-requests", "40", "-health", "30", "-bg", "10", "-hold", "1200ms"]
# Durations: schedscope times a task from userTaskCreate to userTaskEnd and a region from
# its begin call to its end call. The workload times each twice: around the library
# calls (ns) and inside them (body_ns); the observed duration lies between the two, give
# or take TOL_MS (clock reads, and the uprobe trap of ~16 us per call).
TOL_MS = 0.5
# Two observers on one uprobe (record and top on the same run) time a call from two
# programs of the same trap: their typical difference.
TWO_OBSERVERS_MS = 0.05


def bracket(tc, got_ms, truth, what):
    lo, hi = truth["body_ns"] / 1e6 - TOL_MS, truth["ns"] / 1e6 + TOL_MS
    tc.assertTrue(lo <= got_ms <= hi, f"{what}: {got_ms} ms not in [{lo}, {hi}]")


def truth_of(lines):
    tasks = {o["id"]: o for o in lines if o.get("ev") == "task"}
    done = [o for o in lines if o.get("ev") == "done"]
    return tasks, (done[0] if done else None)


def by_key(rows, key):
    return {r[key]: r for r in rows}


def perfetto_events(tc, trace):
    """(category, name) of each named TrackEvent of a Perfetto trace, decoded with the
    proto (protoc --decode: decode_raw may take a short name for a message)."""
    proto = os.path.join(SRC, "userspace", "analysis", "perfetto_trace.proto")
    with open(trace, "rb") as f:
        tr = subprocess.run(["protoc", "--proto_path=" + os.path.dirname(proto),
                             "--decode=perfetto.protos.Trace", proto], stdin=f,
                            capture_output=True, text=True, timeout=120)
    tc.assertEqual(tr.returncode, 0, tr.stderr)
    out, cur, in_ev = [], {}, False
    for line in tr.stdout.splitlines():
        s = line.strip()
        if s == "track_event {":
            in_ev, cur = True, {}
        elif in_ev and s.startswith('categories: "'):
            cur["cat"] = json.loads(s[len("categories: "):])
        elif in_ev and s.startswith('name: "') and line.startswith("    name"):
            cur["name"] = json.loads(s[len("name: "):])
        elif in_ev and s == "}" and line.startswith("  }"):
            in_ev = False
            if "cat" in cur and "name" in cur:
                out.append((cur["cat"], cur["name"]))
    return out


class Annotations(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def run_workload(self, name, tracing, *flags, record=None):
        """Starts the workload, attaches schedscope (top --json, or record to `record`),
        releases it and returns (frames or None, task truth, done line, schedscope proc)."""
        argv = [workload(name), "-wait-stdin", *ARGS]
        if tracing:
            d = tempfile.mkdtemp(prefix="schedscope-e2e-ann-")
            self.addCleanup(subprocess.run, ["rm", "-rf", d])
            argv += ["-runtime-trace", os.path.join(d, "trace.out")]
        wl = Proc(argv, stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready, f"{name} did not start")
        if record:
            ss = Proc([SCHEDSCOPE, "record", "-q", "-p", str(ready["pid"]), "--annotations",
                       "-i", "500ms", "-o", record, *flags])
        else:
            ss = top_json(ready["pid"], "--annotations", "-i", "500ms", *flags)
        self.addCleanup(ss.stop)
        ss.wait_ready(30)  # the annotation uprobes are attached before the first task
        wl.send()
        lines = wl.rest(60)
        self.assertEqual(wl.p.wait(10), 0, "the workload failed under the uprobes")
        frames = None
        if record:
            self.assertEqual(ss.p.wait(30), 0, ss.stderr_text())
        else:
            frames = frames_until_final(ss, 30)
            self.assertTrue(frames and frames[-1].get("final"), ss.stderr_text())
        tasks, done = truth_of(lines)
        self.assertIsNotNone(done, "no done line")
        return frames, tasks, done

    def check_against_truth(self, a, tasks, done, tracing):
        """`a`: the final frame's annotations object (since attach)."""
        self.assertEqual(a["state"], "attached", a["note"])
        self.assertRegex(a["note"], r"^4 uprobe\(s\) past the stack check")
        total = a["since_attach"]
        self.assertEqual(a["regions"], total["regions"])  # the final frame is since attach
        # Tasks by type: the span ids make one type.
        ttypes = by_key(total["tasks"], "type")
        self.assertEqual(set(ttypes), {"handleRequest span=<id>", "healthCheck"}, total["tasks"])
        self.assertEqual(ttypes["handleRequest span=<id>"]["started"], done["tasks"]["handleRequest"])
        self.assertEqual(ttypes["handleRequest span=<id>"]["ended"], done["tasks"]["handleRequest"])
        self.assertEqual(ttypes["healthCheck"]["started"], done["tasks"]["healthCheck"])
        self.assertEqual(ttypes["healthCheck"]["ended"], done["tasks"]["healthCheck"])
        for t in ttypes.values():
            self.assertEqual(t["in_flight"], 0)
        # Regions by path, exactly; StartRegion ("flush") only when the program traces.
        want_regions = dict(done["regions"])
        if tracing:
            want_regions["flush"] = done["traced_only"]["region flush"]
        else:
            self.assertEqual(done["traced_only"], {})
        got_regions = {r["path"]: r["count"] for r in total["regions"]}
        self.assertEqual(got_regions, want_regions)
        # Logs by category/message; Logf ("shards=3") only when the program traces.
        want_logs = dict(done["logs"])
        if tracing:
            want_logs["stage/shards=3"] = done["traced_only"]["log stage/shards=3"]
        got_logs = {l["category"] + "/" + l["message"]: l["count"] for l in total["logs"]}
        self.assertEqual(got_logs, want_logs)
        # One uprobe hit per call, no more: the double entry of a call that grows the
        # stack is not counted (the probe sits past the stack check); nothing dropped.
        calls = 2 * sum(want_regions.values()) + sum(want_logs.values()) + \
            2 * sum(done["tasks"].values())
        self.assertEqual(a["hits"], calls, a)
        self.assertEqual(a["unmatched"], {"region_ends": 0, "task_ends": 0})
        self.assertIn("hits/s", a["cost"])
        self.assertGreater(a["hits_per_s"], 0)
        self.assertIn("StartRegion", a["not_visible"])
        # Task durations: the slowest ten, each against its own truth (same task id).
        slowest = a["slowest"]
        self.assertEqual(len(slowest), 10)
        for s in slowest:
            t = tasks.get(s["id"])
            self.assertIsNotNone(t, f"task {s['id']} not in the workload's truth")
            self.assertEqual(s["name"], t["name"])  # the span id, searchable
            bracket(self, s["ms"], t, f"task {s['id']}")
        # They are the slowest: no task left out took longer than the shortest shown.
        shown = {s["id"] for s in slowest}
        for t in tasks.values():
            if t["id"] not in shown:
                self.assertLessEqual(t["body_ns"] / 1e6, slowest[-1]["ms"] + TOL_MS, t)
        # The request lifecycle as its tree: parse > validate, fanout > three shards on
        # three other goroutines, encode; each with the goroutine the workload saw.
        top = slowest[0]
        t = tasks[top["id"]]
        self.assertRegex(top["name"], r"^handleRequest span=[0-9a-f]{16}$")
        tree = [(r["name"], r["goid"], r["depth"]) for r in top["regions"]]
        g = t["goid"]
        shards = sorted((r["goid"] for r in t["regions"] if r["name"] == "shard"))
        self.assertEqual(len(set(shards)), 3)
        self.assertNotIn(g, shards)
        want_tree = [("parse", g, 0), ("validate", g, 1), ("fanout", g, 0)]
        got_shards = sorted(x[1] for x in tree[3:6])
        self.assertEqual(tree[:3], want_tree, top["regions"])
        self.assertEqual(got_shards, shards, top["regions"])
        self.assertEqual({x[0] for x in tree[3:6]}, {"shard"})
        self.assertEqual({x[2] for x in tree[3:6]}, {1})
        self.assertEqual(tree[6], ("encode", g, 0))
        if tracing:
            self.assertEqual(tree[7:], [("flush", g, 0)])
        else:
            self.assertEqual(len(tree), 7)
        # Region durations against the truth of the same task, by (name, goroutine).
        truth_regions = {(r["name"], r["goid"]): r for r in t["regions"]}
        for r in top["regions"]:
            if r["name"] != "flush":
                bracket(self, r["ms"], truth_regions[(r["name"], r["goid"])], r)
        # Its logs in order.
        want_logs = [(l["category"], l["message"]) for l in t["logs"]]
        if tracing:
            want_logs.insert(1, ("stage", "shards=3"))
        self.assertEqual([(l["category"], l["message"]) for l in top["logs"]], want_logs)

    def live_case(self, name, tracing):
        frames, tasks, done = self.run_workload(name, tracing)
        fin = frames[-1]
        self.assertIn("annotations", fin)
        self.assertEqual(fin["drops"], 0)
        self.check_against_truth(fin["annotations"], tasks, done, tracing)
        # Every interval's counts add up to the totals.
        per_iv = {}
        for f in frames[:-1]:
            for r in f["annotations"]["regions"]:
                per_iv[r["path"]] = per_iv.get(r["path"], 0) + r["count"]
        self.assertEqual(per_iv, {r["path"]: r["count"] for r in fin["annotations"]["regions"]})
        self.assertEqual(sum(f["annotations"]["hits"] for f in frames[:-1]), fin["annotations"]["hits"])

    def test_go119_tracing_off(self):
        self.live_case("annotated-stripped", False)

    def test_go119_tracing_on(self):
        self.live_case("annotated-stripped", True)

    def test_go123_tracing_off(self):
        self.live_case("annotated-go1.23-stripped", False)

    def test_go123_tracing_on(self):
        self.live_case("annotated-go1.23-stripped", True)

    def test_stack_edge_calls_count_once(self):
        """Annotation calls made at the edge of a fresh goroutine's stack: some of them grow
        the stack, and an entry probe would see those twice; the counts stay exact."""
        for name in BINARIES:
            with self.subTest(name=name):
                wl = Proc([workload(name), "-wait-stdin", "-requests", "0", "-health", "0",
                           "-bg", "0", "-edge", "3000", "-hold", "300ms"], stdin=True)
                self.addCleanup(wl.stop, signal.SIGKILL)
                ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
                top = top_json(ready["pid"], "--annotations", "-i", "500ms")
                self.addCleanup(top.stop)
                top.wait_ready(30)
                wl.send()
                _, done = truth_of(wl.rest(60))
                frames = frames_until_final(top, 30)
                a = frames[-1]["annotations"]
                self.assertEqual(done["regions"], {"edge": 3000})
                self.assertEqual({r["path"]: r["count"] for r in a["since_attach"]["regions"]},
                                 {"edge": 3000})
                self.assertEqual(a["hits"], 3 * 3000)
                self.assertEqual(a["unmatched"], {"region_ends": 0, "task_ends": 0})

    def test_slow_tasks_carry_their_goroutines_off_cpu(self):
        """A slow request's own goroutine sleeps in one nanosleep(2) of a known length
        (region "io", -sys-sleep): its slowest[] entry carries that syscall with the time the
        workload timed around the call; the other requests carry none."""
        for name in BINARIES:
            with self.subTest(name=name):
                wl = Proc([workload(name), "-wait-stdin", "-requests", "10", "-health", "0",
                           "-bg", "0", "-slow-every", "5", "-sys-sleep", "30ms", "-hold", "1200ms"],
                          stdin=True)
                self.addCleanup(wl.stop, signal.SIGKILL)
                ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
                top = top_json(ready["pid"], "--annotations", "-i", "500ms")
                self.addCleanup(top.stop)
                top.wait_ready(30)
                wl.send()
                tasks, done = truth_of(wl.rest(60))
                frames = frames_until_final(top, 30)
                a = frames[-1]["annotations"]
                self.assertEqual(len(a["slowest"]), 10)
                slow = {i for i, t in tasks.items() if t["slow"]}
                self.assertEqual(len(slow), 2)
                for st in a["slowest"]:
                    sleeps = [o for o in st["offcpu"] if o["syscall"] == "nanosleep"]
                    if st["id"] not in slow:
                        self.assertEqual(sleeps, [], st)
                        continue
                    truth_ms = tasks[st["id"]]["sys_sleep_ns"] / 1e6
                    self.assertGreaterEqual(truth_ms, 30)
                    self.assertEqual(len(sleeps), 1, st["offcpu"])
                    self.assertEqual(sleeps[0]["count"], 1)
                    self.assertEqual(sleeps[0]["reason"], "sleep")
                    # The thread's off-CPU interval lies inside the call the workload timed.
                    self.assertTrue(30 - TOL_MS <= sleeps[0]["ms"] <= truth_ms + TOL_MS,
                                    f"{sleeps[0]['ms']} ms vs the call's {truth_ms} ms")

    def test_recording_report_replay_equal_live(self):
        """record and top on the same run: report and replay give the live tables."""
        d = tempfile.mkdtemp(prefix="schedscope-e2e-ann-")
        self.addCleanup(subprocess.run, ["rm", "-rf", d])
        out = os.path.join(d, "a.sched")
        wl = Proc([workload("annotated-go1.23-stripped"), "-wait-stdin", *ARGS], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        rec = Proc([SCHEDSCOPE, "record", "-q", "-p", str(ready["pid"]), "--annotations",
                    "-i", "500ms", "-o", out])
        self.addCleanup(rec.stop)
        top = top_json(ready["pid"], "--annotations", "-i", "500ms")
        self.addCleanup(top.stop)
        rec.wait_ready(30)
        top.wait_ready(30)
        wl.send()
        tasks, done = truth_of(wl.rest(60))
        self.assertEqual(wl.p.wait(10), 0)
        frames = frames_until_final(top, 30)
        self.assertEqual(rec.p.wait(30), 0, rec.stderr_text())
        live = frames[-1]["annotations"]
        r = subprocess.run([SCHEDSCOPE, "report", out, "--json"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        rep = json.loads(r.stdout)["final"]["annotations"]
        self.check_against_truth(rep, tasks, done, False)
        # Same calls seen by both: the same counts and trees (times differ by the two
        # probes' order in one trap: under a microsecond).
        def shape(a):
            return ({r["path"]: r["count"] for r in a["since_attach"]["regions"]},
                    [(t["type"], t["started"], t["ended"]) for t in a["since_attach"]["tasks"]],
                    a["hits"])
        self.assertEqual(shape(rep), shape(live))
        # The slowest tasks: the same trees and durations. Each observer times a call from
        # its own program in the same uprobe trap, one after the other: usually under a
        # microsecond apart, but an interrupt or a preempted vCPU between the two programs
        # can part them by more. So: every time within TOL_MS, as against the truth, and
        # their median within TWO_OBSERVERS_MS. Two tasks whose durations are closer than
        # the observers' difference may swap places, or one may be the tenth for one
        # observer and the eleventh for the other: only such near-ties may differ.
        # The same regions (name, goroutine, depth) starting at the same time. Siblings are
        # in start order, so two that start within the difference (two shards on two
        # goroutines) may be in either order: they are compared sorted.
        def tree(t):
            return sorted((x["name"], x["goid"], x["depth"], x["start_ms"]) for x in t["regions"])
        diffs = []

        def near(x, y, msg):
            self.assertAlmostEqual(x, y, delta=TOL_MS, msg=msg)
            diffs.append(abs(x - y))
        by_rep = {t["id"]: t for t in rep["slowest"]}
        by_live = {t["id"]: t for t in live["slowest"]}
        for tid in by_rep.keys() & by_live.keys():
            a, b = tree(by_rep[tid]), tree(by_live[tid])
            self.assertEqual([x[:3] for x in a], [x[:3] for x in b])
            for x, y in zip(a, b):
                near(x[3], y[3], f"task {tid}: {x} vs {y}")
            near(by_rep[tid]["ms"], by_live[tid]["ms"], f"task {tid}")
        for mine, other in ((by_rep, live["slowest"]), (by_live, rep["slowest"])):
            for tid in mine.keys() - {t["id"] for t in other}:
                near(mine[tid]["ms"], other[-1]["ms"], f"task {tid} is among one observer's slowest only")
        for i, (x, y) in enumerate(zip(rep["slowest"], live["slowest"])):
            near(x["ms"], y["ms"], f"slowest #{i}")
        self.assertGreater(len(diffs), 30)
        self.assertLessEqual(statistics.median(diffs), TWO_OBSERVERS_MS, sorted(diffs))
        r2 = subprocess.run([SCHEDSCOPE, "replay", out, "--json"], capture_output=True, text=True,
                            timeout=60)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        rframes = [json.loads(x) for x in r2.stdout.splitlines() if x.startswith("{")]
        self.assertEqual(rframes[-1]["annotations"], rep)
        txt = subprocess.run([SCHEDSCOPE, "report", out], capture_output=True, text=True, timeout=60)
        self.assertEqual(txt.returncode, 0, txt.stderr)
        self.assertIn("ANNOTATIONS", txt.stdout)
        self.assertRegex(txt.stdout, r"shard\s+%d\s" % done["regions"]["shard"])
        self.assertIn(rep["slowest"][0]["name"], txt.stdout)
        # The Perfetto export: a slice per region and per task, an instant per log.
        pf = out + ".pftrace"
        ex = subprocess.run([SCHEDSCOPE, "export", out, "--format", "perfetto", "-o", pf],
                            capture_output=True, text=True, timeout=120)
        self.assertEqual(ex.returncode, 0, ex.stderr)
        got = perfetto_events(self, pf)
        regions = [n for c, n in got if c == "region"]
        self.assertEqual(len(regions), sum(done["regions"].values()))
        self.assertEqual(regions.count("shard"), done["regions"]["shard"])
        self.assertEqual(regions.count("validate"), done["regions"]["parse/validate"])
        tasks_pf = [n for c, n in got if c == "task"]
        self.assertEqual(len(tasks_pf), sum(done["tasks"].values()))
        self.assertIn(rep["slowest"][0]["name"], tasks_pf)
        logs = [n for c, n in got if c == "annotation-log"]
        self.assertEqual(len(logs), sum(done["logs"].values()))
        self.assertEqual(logs.count("decision: slow"), done["logs"]["decision/slow"])

    @unittest.skipIf(shutil.which("tmux") is None, "tmux is not installed")
    def test_live_view_panes_show_regions_tasks_and_slowest_tasks(self):
        """The live view on a terminal (tmux): key v turns pane 3 into the Regions, Tasks
        and Slowest tasks views, T shows them since attach; the counts there equal the
        workload's own, and the slowest task shows its span id, region tree and logs."""
        from test_live_view import Tmux
        requests, health = 40, 30
        wl = Proc([workload("annotated-go1.23-stripped"), "-wait-stdin", "-requests",
                   str(requests), "-health", str(health), "-bg", "0", "-hold", "120s"],
                  stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        tmux = Tmux(200, 60)
        self.addCleanup(tmux.close)
        tmux.line(f"{SCHEDSCOPE} top -p {ready['pid']} --annotations -i 500ms")
        s = tmux.wait(lambda s: "annotations: attached" in s, 30)
        self.assertIsNotNone(s, f"no annotations line in the live view:\n{tmux.screen()}")
        wl.send()
        tasks = {}  # the workload's truth, one line per task as it ends ("done" comes after -hold)
        end = time.time() + 60
        while len(tasks) < requests + health and time.time() < end:
            for o in wl.json_lines(1.0):
                if o.get("ev") == "task":
                    tasks[o["id"]] = o
        self.assertEqual(len(tasks), requests + health)

        def row(screen, first, *counts):
            pat = re.escape(first) + r"\s+" + r"\s+".join(str(c) for c in counts) + r"\b"
            return re.search(pat, screen)

        tmux.keys("v")
        tmux.keys("T")
        # since attach: every request parsed and validated once, every health check once
        s = tmux.wait(lambda s: "3 Regions" in s and "since attach" in s and
                      row(s, "parse/validate", requests) and row(s, "check", health), 10)
        self.assertIsNotNone(s, f"Regions since attach:\n{tmux.screen()}")
        tmux.keys("v")
        s = tmux.wait(lambda s: "3 Tasks" in s and
                      row(s, "handleRequest span=<id>", requests, requests, 0) and
                      row(s, "healthCheck", health, health, 0), 10)
        self.assertIsNotNone(s, f"Tasks since attach:\n{tmux.screen()}")
        tmux.keys("v", "z")
        s = tmux.wait(lambda s: "3 Slowest tasks" in s and "zoomed" in s, 10)
        self.assertIsNotNone(s, f"Slowest tasks:\n{tmux.screen()}")
        # the first task line: its id and full name (the span id) as the workload made them
        m = re.search(r"^\s*(\d+) (handleRequest span=[0-9a-f]{16})\s+G(\d+)\s+([0-9.]+)\s*$", s,
                      re.M)
        self.assertIsNotNone(m, s)
        tid = int(m.group(1))
        self.assertIn(tid, tasks)
        truth = tasks[tid]
        self.assertEqual(m.group(2), truth["name"])
        self.assertEqual(int(m.group(3)), truth["goid"])
        self.assertTrue(truth["slow"], f"the slowest task shown ({tid}) is not a slow request")
        bracket(self, float(m.group(4)), truth, f"task {tid}")
        for r in truth["regions"]:
            self.assertRegex(s, r"\n\s+" + re.escape(r["name"]) + r"\s+G" + str(r["goid"]) + r"\b")
        for lg in truth["logs"]:
            self.assertIn(f"log {lg['category']}: {lg['message']}", s)
        tmux.keys("q")

    def test_stuck_p_alert_names_the_task_and_regions_in_flight(self):
        """A goroutine stuck in a raw read inside task "stuckRequest span=..." and the
        regions handle > rawRead: the stuck-P alert's evidence names that task (its id and
        span id) and that region path, as the workload reports them."""
        wl = Proc([workload("stuckp_raw"), "-wait-stdin", "-hold", "12s", "-annotate"],
                  stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        self.assertIsNotNone(ready)
        ss = top_json(ready["pid"], "--annotations", "-i", "500ms")
        self.addCleanup(ss.stop)
        ss.wait_ready(30)  # the annotation uprobes are attached before the task starts
        wl.send()
        truth = wl.wait_for(lambda o: o.get("ev") == "stuck", 10)
        self.assertIsNotNone(truth, "the workload did not block")
        alert = None
        end = time.time() + 10
        while alert is None and time.time() < end:
            for fr in ss.json_lines(1.0):
                for a in fr.get("alerts", []):
                    if a.get("kind") == "stuck_p" and a.get("active"):
                        alert = a
        self.assertIsNotNone(alert, "no stuck_p alert")
        self.assertEqual(alert["goid"], truth["goid"])
        want = (f'annotations on G{truth["goid"]}: task {truth["task_id"]} '
                f'"{truth["task_name"]}", region {truth["regions"]}')
        self.assertTrue(any(ev.startswith(want) for ev in alert.get("evidence", [])),
                        f"no evidence line starting {want!r}: {alert.get('evidence')}")

    def test_program_without_annotations_says_so(self):
        wl = Proc([workload("gospawn"), "-wait-stdin", "-n", "10", "-bursts", "1"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        top = top_json(ready["pid"], "--annotations", "-i", "300ms", "-n", "2")
        self.addCleanup(top.stop)
        frames = frames_until_final(top, 30)
        self.assertTrue(frames, top.stderr_text())
        a = frames[-1]["annotations"]
        self.assertEqual(a["state"], "off")
        self.assertIn("does not link runtime/trace annotations", a["note"])

    def test_hit_rate_ceiling_detaches(self):
        wl = Proc([workload("annotated-stripped"), "-wait-stdin", *ARGS], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        top = top_json(ready["pid"], "--annotations", "-i", "300ms", "--annotations-max-rate", "100")
        self.addCleanup(top.stop)
        top.wait_ready(30)
        wl.send()
        _, done = truth_of(wl.rest(60))
        self.assertIsNotNone(done)
        frames = frames_until_final(top, 30)
        a = frames[-1]["annotations"]
        self.assertEqual(a["state"], "detached", a)
        self.assertRegex(a["note"], r"went over the ceiling of 100/s \(--annotations-max-rate\)")
        # Detached: fewer hits than the run's calls.
        calls = 2 * sum(done["regions"].values()) + sum(done["logs"].values()) + \
            2 * sum(done["tasks"].values())
        self.assertLess(a["hits"], calls)

    def test_duty_cycle_pauses_and_resumes(self):
        """--annotations-duty: attached for ON of every PERIOD; the frames say paused in
        between, and what was seen is a part of the run, never more than the truth."""
        wl = Proc([workload("annotated-go1.23-stripped"), "-wait-stdin", "-requests", "150",
                   "-health", "0", "-bg", "0", "-gap", "20ms", "-hold", "600ms"], stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 10)
        top = top_json(ready["pid"], "--annotations", "-i", "300ms", "--annotations-duty", "300ms/900ms",
                       "--annotations-max-rate", "0")
        self.addCleanup(top.stop)
        top.wait_ready(30)
        wl.send()
        _, done = truth_of(wl.rest(60))
        frames = frames_until_final(top, 30)
        states = [f["annotations"]["state"] for f in frames[:-1]]
        self.assertIn("paused", states)
        i = states.index("paused")
        self.assertIn("attached", states[i:], states)  # it came back
        a = frames[-1]["annotations"]
        self.assertTrue(all("duty cycle 0.3s of every 0.9s" in f["annotations"]["note"]
                            for f in frames), [f["annotations"]["note"] for f in frames])
        seen = by_key(a["since_attach"]["tasks"], "type").get("handleRequest span=<id>", {})
        self.assertGreater(seen.get("ended", 0), 0)
        self.assertLess(seen.get("ended", 0), done["tasks"]["handleRequest"])
        # A region nested in one begun before a window shows a shorter path (its parent's
        # begin was not seen): each path seen ends a true path, and no name is seen more
        # often than it ran.
        truth_names, seen_names = {}, {}
        for path, n in done["regions"].items():
            name = path.split("/")[-1]
            truth_names[name] = truth_names.get(name, 0) + n
        for r in a["since_attach"]["regions"]:
            self.assertTrue(any(p == r["path"] or p.endswith("/" + r["path"]) for p in done["regions"]), r)
            seen_names[r["name"]] = seen_names.get(r["name"], 0) + r["count"]
        for name, n in seen_names.items():
            self.assertLessEqual(n, truth_names[name], name)
        self.assertLess(a["attached_s"], 0.7 * frames[-1]["t"], a)


if __name__ == "__main__":
    unittest.main()


class AnnotationsFlags(unittest.TestCase):
    """The three flags come from the one observe options table: `top` and `record` both
    take them, teach them in --help, and refuse bad values with the flag named."""

    def test_top_and_record_teach_and_check_them(self):
        for cmd in ("top", "record"):
            with self.subTest(cmd=cmd):
                h = subprocess.run([SCHEDSCOPE, cmd, "--help"], capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(h.returncode, 0, h.stderr)
                for flag in ("--annotations ", "--annotations-max-rate", "--annotations-duty"):
                    self.assertIn(flag, h.stdout)
                self.assertIn("docs/annotations.md", h.stdout)
                for bad, why in ((["--annotations-duty", "3s/1s"], "ON/PERIOD"),
                                 (["--annotations-duty", "2s"], "ON/PERIOD"),
                                 (["--annotations-max-rate", "-5"], "rate per second")):
                    r = subprocess.run([SCHEDSCOPE, cmd, "-p", "1", *bad], capture_output=True,
                                       text=True, timeout=30)
                    self.assertNotEqual(r.returncode, 0)
                    self.assertIn(bad[0], r.stderr)
                    self.assertIn(why, r.stderr)


class AnnotationsBench(unittest.TestCase):
    """make bench's --annotations section (scripts/bench.py --only annotations), one round:
    every figure is produced, an observed call costs far more than an unobserved one, and
    the duty cycle keeps a part of the uprobes' extra CPU only."""

    def test_bench_section(self):
        require_root(self)
        out = tempfile.mkdtemp(prefix="bench-ann-")
        self.addCleanup(subprocess.run, ["rm", "-rf", out])
        path = os.path.join(out, "ann.json")
        r = subprocess.run(["python3", os.path.join(SRC, "scripts", "bench.py"), "--build", BUILD,
                            "--only", "annotations", "--rounds", "1", "--json", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:])
        with open(path) as f:
            rows = json.load(f)["annotations"]
        self.assertEqual([row["toolchain"] for row in rows], ["go1.19", "go1.23"])
        for row in rows:
            with self.subTest(toolchain=row["toolchain"]):
                for k in ("tracing off", "runtime/trace on", "--annotations", "paced, unobserved",
                          "paced, top", "paced, --annotations", "paced, --annotations-duty 250ms/1s"):
                    self.assertIsNotNone(row[k], k)
                    self.assertGreater(row[k], 0, k)
                # a uprobe trap is microseconds; an empty WithRegion with tracing off, ns
                self.assertGreater(row["--annotations"], 100 * row["tracing off"])
                self.assertLess(row["tracing off"], 1000)
                self.assertGreater(row["paced, --annotations"], row["paced, top"])
                # The duty cycle (250ms/1s) keeps a quarter of the uprobes: counted in hits,
                # which one round decides. Its share of the extra CPU is a timed figure of the
                # benchmark (one round moves it by tenths): only produced here.
                self.assertGreater(row["duty_hits_share"], 0.15)
                self.assertLess(row["duty_hits_share"], 0.35)
                self.assertIsInstance(row["duty_extra_cpu_share"], float)
        self.assertIn("duty hits share", r.stdout)
