"""The node agent end to end, as a fleet runs it: a real Prometheus (Debian's, on loopback,
a temporary data dir, scrape_interval 1s, deploy/prometheus/alerts.yml loaded) scrapes
`schedscope agent`, Go workloads of several releases start and stop while it runs, and
everything is checked through Prometheus's HTTP API: each target's series appear and go,
the stuck workload alone has schedscope_alert_active{kind="stuck_p"} = 1 and the rules
file's stuck-P alert fires for it, the storm workload's alert names the syscall the
workload says it storms through, and Prometheus itself is one of the observed targets."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from common import SCHEDSCOPE, SRC, TESTBINS, Proc, require_root, testbins, workload

RULES = os.path.join(SRC, "deploy", "prometheus", "alerts.yml")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def start_agent(tc, tmp, port, *extra):
    """`schedscope agent` on 127.0.0.1:PORT at -i 1s, stopped (SIGTERM) at the test's end;
    returns once /healthz answers: (the process, the path of its stderr)."""
    log = os.path.join(tmp, "agent.err")
    errf = open(log, "w")
    tc.addCleanup(errf.close)
    agent = subprocess.Popen([SCHEDSCOPE, "agent", "--listen", f"127.0.0.1:{port}", "-i", "1s", *extra],
                             stdout=subprocess.DEVNULL, stderr=errf)

    def stop():
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(10)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
    tc.addCleanup(stop)
    end = time.time() + 20
    while time.time() < end:
        tc.assertIsNone(agent.poll(), open(log).read())
        try:
            if http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return agent, log
        except OSError:
            pass
        time.sleep(0.2)
    tc.fail("the agent did not answer /healthz: " + open(log).read())


class PromAPI:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def query(self, q):
        """Instant query: a list of (labels, value)."""
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
        _, body = http_get(url)
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def wait(self, q, pred, timeout, what):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                last = self.query(q)
                if pred(last):
                    return last
            except (OSError, AssertionError, ValueError) as e:
                last = repr(e)
            time.sleep(0.5)
        raise AssertionError(f"{what}: not within {timeout}s; last answer to {q!r}: {last}")


class Agent(unittest.TestCase):
    def setUp(self):
        require_root(self)
        if not shutil.which("prometheus"):
            self.fail("prometheus is not installed (scripts/install-deps.sh)")
        self.tmp = tempfile.mkdtemp(prefix="ss-agent-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start_prometheus(self, agent_port):
        port = free_port()
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: schedscope
    static_configs:
      - targets: ['127.0.0.1:{agent_port}']
""")
        prom = Proc(["prometheus", f"--config.file={cfg}",
                     f"--storage.tsdb.path={os.path.join(self.tmp, 'data')}",
                     f"--web.listen-address=127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
        self.addCleanup(prom.stop, signal.SIGKILL)
        api = PromAPI(port)
        api.wait("up", lambda r: r is not None, 30, "prometheus answering")
        return prom, api

    def start_agent(self, port, *extra):
        return start_agent(self, self.tmp, port, "--scan", "1s", *extra)

    def start_workload(self, argv):
        wl = Proc(argv, stdin=True)
        self.addCleanup(wl.stop, signal.SIGKILL)
        return wl

    def test_prometheus_sees_targets_come_and_go_and_alerts_fire(self):
        agent_port = free_port()
        prom, api = self.start_prometheus(agent_port)
        build_wl = os.path.join(os.path.dirname(workload("stuckp_raw")), "*")
        alerts_log = os.path.join(self.tmp, "alerts.jsonl")
        # Only this test's processes (the machine may run other Go programs, other tests'
        # stuck workloads among them): the workloads, the fixtures and Prometheus.
        agent, agent_err = self.start_agent(agent_port, "--exe", build_wl, "--exe", os.path.join(TESTBINS, "*"),
                                            "--exe", "*/prometheus", "--alerts-log", alerts_log)

        # Workloads of four Go releases: Debian's go1.19 (healthy_cpu, the stuck and storm
        # workloads), and the go1.21 and go1.26 fixtures; Prometheus is Debian's build.
        bins = testbins()
        healthy = self.start_workload([workload("healthy_cpu"), "-forever", "-extra", "0", "-procs", "1"])
        old = self.start_workload([bins[0]])
        new = self.start_workload([bins[-1]])
        stuck = self.start_workload([workload("stuckp_raw"), "-wait-stdin", "-hold", "40s"])
        storm = self.start_workload([workload("storm_fileio"), "-wait-stdin", "-mode", "pipe"])
        truth = {}
        for name, wl in (("healthy", healthy), ("stuck", stuck), ("storm", storm)):
            ready = wl.wait_for(lambda o: o.get("ev") == "ready", 15)
            self.assertIsNotNone(ready, name)
            truth[name] = (ready["pid"], ready["go"])
        for name, wl in (("old", old), ("new", new)):
            got = wl.wait_for(lambda o: "go" in o and "pid" in o, 15)
            self.assertIsNotNone(got, name)
            truth[name] = (got["pid"], got["go"])
        versions = {v for _, v in truth.values()}
        self.assertGreaterEqual(len(versions), 3, truth)

        # Every target's series appear, with its Go version; Prometheus is one of them.
        for name, (pid, ver) in truth.items():
            r = api.wait(f'schedscope_target_info{{pid="{pid}"}}', lambda r: len(r) == 1, 30,
                         f"{name} (pid {pid}) in Prometheus")
            self.assertEqual(r[0][0]["go_version"], ver, name)
            self.assertEqual(r[0][1], 1.0)
        r = api.wait(f'schedscope_target_info{{pid="{prom.p.pid}"}}', lambda r: len(r) == 1, 30,
                     "Prometheus among the targets")
        self.assertEqual(r[0][0]["comm"], "prometheus")
        self.assertTrue(r[0][0]["go_version"].startswith("go1."), r)
        # Go-level series of a Go target: its Ps (Debian's go1.19 build, -procs 1).
        api.wait(f'sum(schedscope_ps{{pid="{truth["healthy"][0]}"}})', lambda r: r and r[0][1] == 1, 30,
                 "the healthy workload's one P")
        _, targets = http_get(f"http://127.0.0.1:{agent_port}/targets")
        by_pid = {t["pid"]: t for t in json.loads(targets)["targets"]}
        self.assertEqual(by_pid[prom.p.pid]["state"], "observed", by_pid[prom.p.pid])

        # The stuck workload: its P stuck in a raw read; stuck_p = 1 for it and only it.
        stuck.send()
        st = stuck.wait_for(lambda o: o.get("ev") == "stuck", 15)
        self.assertIsNotNone(st)
        spid = str(truth["stuck"][0])
        r = api.wait('schedscope_alert_active{kind="stuck_p"} == 1', lambda r: len(r) >= 1, 20,
                     "stuck_p active")
        self.assertEqual([m["pid"] for m, _ in r], [spid])
        everyone = api.query('schedscope_alert_active{kind="stuck_p"}')
        self.assertGreaterEqual(len(everyone), len(truth) + 1)  # a series per target, 0 but one
        for m, v in everyone:
            self.assertEqual(v, 1.0 if m["pid"] == spid else 0.0, m)
        # The rules file's stuck-P rule fires for it (for: 10s).
        r = api.wait('ALERTS{alertname="SchedscopeStuckP",alertstate="firing"}', lambda r: len(r) >= 1, 30,
                     "SchedscopeStuckP firing")
        self.assertEqual([m["pid"] for m, _ in r], [spid])
        self.assertEqual(r[0][0]["comm"], "stuckp_raw")

        # The storm: its alert fires with the syscall the workload blocks in.
        storm.send()
        ev = storm.wait_for(lambda o: o.get("ev") == "storm", 15)
        self.assertIsNotNone(ev)
        mpid = str(truth["storm"][0])
        r = api.wait(f'max_over_time(schedscope_alert_syscall_info{{kind="syscall_storm",pid="{mpid}"}}[5m])',
                     lambda r: len(r) >= 1, 30, "the storm's alert")
        self.assertEqual({m["syscall"] for m, _ in r}, {ev["syscall"]})
        r = api.wait(f'schedscope_alerts_total{{kind="syscall_storm",pid="{mpid}"}}',
                     lambda r: r and r[0][1] >= 1, 15, "the storm counted")
        # No storm anywhere else.
        others = api.query('max_over_time(schedscope_alert_active{kind="syscall_storm"}[5m]) == 1')
        self.assertEqual({m["pid"] for m, _ in others}, {mpid})
        # The alerts log has both, as JSON lines.
        logged = [json.loads(line) for line in open(alerts_log)]
        kinds = {(str(e["pid"]), e["alert"]["kind"]) for e in logged}
        self.assertIn((spid, "stuck_p"), kinds)
        self.assertIn((mpid, "syscall_storm"), kinds)

        # Targets go: their series leave /metrics and Prometheus within 30 s.
        gone = {"old": old, "new": new, "healthy": healthy, "storm": storm}
        t_stop = time.time()
        for wl in gone.values():
            wl.stop(signal.SIGKILL)
        for name in gone:
            pid = truth[name][0]
            api.wait(f'schedscope_target_info{{pid="{pid}"}}', lambda r: r == [], 30, f"{name} gone")
            api.wait(f'schedscope_threads{{pid="{pid}"}}', lambda r: r == [], 5, f"{name}'s threads gone")
        self.assertLess(time.time() - t_stop, 30)
        _, text = http_get(f"http://127.0.0.1:{agent_port}/metrics")
        for name in gone:
            self.assertNotIn(f'pid="{truth[name][0]}"', text, name)
        self.assertIn(f'pid="{spid}"', text)
        # A newcomer after the start is found by the rescan.
        late = self.start_workload([bins[2]])
        got = late.wait_for(lambda o: "go" in o and "pid" in o, 15)
        api.wait(f'schedscope_target_info{{pid="{got["pid"]}",go_version="{got["go"]}"}}', lambda r: len(r) == 1,
                 30, "a target started late")
        # The agent's own series.
        r = api.query('schedscope_agent_targets{state="observed"}')
        self.assertGreaterEqual(r[0][1], 3)
        self.assertTrue(api.query("schedscope_agent_resident_memory_bytes > 0"))
        self.assertTrue(api.query("schedscope_agent_cpu_seconds_total > 0"))
        self.assertIsNone(agent.poll(), open(agent_err).read())

    def test_runs_unprivileged_with_the_units_capabilities(self):
        """The agent as the systemd unit runs it: not root, only the capabilities the unit
        grants (read from deploy/systemd/schedscope-agent.service), still observing a Go
        target fully (its P table read through /proc/PID/mem, its GC probes attached)."""
        if not shutil.which("capsh"):
            self.fail("capsh is not installed (libcap2-bin, scripts/install-deps.sh)")
        unit = open(os.path.join(SRC, "deploy", "systemd", "schedscope-agent.service")).read()
        caps = [line.split("=", 1)[1].split() for line in unit.splitlines()
                if line.startswith("AmbientCapabilities=")][0]
        self.assertEqual(sorted(caps), sorted(
            [line.split("=", 1)[1].split() for line in unit.splitlines()
             if line.startswith("CapabilityBoundingSet=")][0]))
        names = ",".join(c.lower() for c in caps)
        wl = self.start_workload([workload("healthy_cpu"), "-forever", "-extra", "0", "-procs", "1"])
        ready = wl.wait_for(lambda o: o.get("ev") == "ready", 15)
        self.assertIsNotNone(ready)
        port = free_port()
        log = os.path.join(self.tmp, "agent-caps.err")
        cmd = f"exec {SCHEDSCOPE} agent --listen 127.0.0.1:{port} -i 1s --scan 1s --exe '*/healthy_cpu'"
        agent = subprocess.Popen(["capsh", "--keep=1", "--user=nobody", f"--caps={names}+eip",
                                  f"--addamb={names}", "--", "-c", cmd],
                                 stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        self.addCleanup(lambda: (agent.poll() is None and agent.terminate(), agent.wait(10)))
        end = time.time() + 30
        metrics = ""
        while time.time() < end:
            self.assertIsNone(agent.poll(), open(log).read())
            try:
                metrics = http_get(f"http://127.0.0.1:{port}/metrics")[1]
            except OSError:
                pass
            if f'schedscope_ps{{pid="{ready["pid"]}",status="running"}} 1' in metrics and \
                    f'schedscope_gc_cycles_total{{pid="{ready["pid"]}"}}' in metrics:
                break
            time.sleep(0.5)
        self.assertIn(f'schedscope_ps{{pid="{ready["pid"]}",status="running"}} 1', metrics, open(log).read())
        self.assertIn(f'schedscope_gc_cycles_total{{pid="{ready["pid"]}"}}', metrics)
        targets = json.loads(http_get(f"http://127.0.0.1:{port}/targets")[1])["targets"]
        mine = [t for t in targets if t["pid"] == ready["pid"]][0]
        self.assertEqual(mine["state"], "observed", mine)
        self.assertEqual(mine["gc"], "GC uprobes attached", mine)
        with open(f"/proc/{agent.pid}/status") as f:
            status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
        self.assertEqual(status["Uid"].split()[0], "65534")
        eff = int(status["CapEff"], 16)
        self.assertEqual(bin(eff).count("1"), len(caps), status["CapEff"])


class DeployFiles(unittest.TestCase):
    """The deploy files agree with the agent: the rules pass promtool, the rules and the
    dashboard use only metrics the agent exports (docs/agent.md's table, which a unit
    test holds equal to what /metrics renders), and the DaemonSet grants the unit's
    capabilities."""

    def documented(self):
        names = set()
        for line in open(os.path.join(SRC, "docs", "agent.md")):
            if line.startswith("| `schedscope_"):
                names.add(line.split("`")[1])
        self.assertGreater(len(names), 20)
        return names

    def used(self, text):
        import re
        out = set()
        for m in re.findall(r"schedscope_[a-z0-9_]+", text):
            for suffix in ("_bucket", "_sum", "_count"):
                if m.endswith(suffix) and m[: -len(suffix)].endswith("_seconds"):
                    m = m[: -len(suffix)]
            out.add(m)
        return out

    def test_rules_pass_promtool_and_use_exported_metrics(self):
        if not shutil.which("promtool"):
            self.fail("promtool is not installed (prometheus, scripts/install-deps.sh)")
        r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: 6 rules found", r.stdout)
        text = open(RULES).read()
        for kind in ("stuck_p", "syscall_storm", "gc_stall", "stw_stall", "netpoll_saturation"):
            self.assertIn(f'kind="{kind}"', text)
        self.assertLessEqual(self.used(text) - {"schedscope"}, self.documented())

    def test_dashboard_queries_exported_metrics(self):
        dash = json.load(open(os.path.join(SRC, "deploy", "grafana", "schedscope-dashboard.json")))
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(exprs), 10)
        used = self.used("\n".join(exprs))
        self.assertLessEqual(used, self.documented())
        # The core series are on it.
        for m in ("schedscope_alert_active", "schedscope_ps", "schedscope_goroutine_sched_latency_seconds",
                  "schedscope_gc_stw_seconds_total", "schedscope_agent_cpu_seconds_total"):
            self.assertIn(m, used)

    def test_daemonset_grants_the_units_capabilities(self):
        import yaml
        unit = open(os.path.join(SRC, "deploy", "systemd", "schedscope-agent.service")).read()
        caps = [line.split("=", 1)[1].split() for line in unit.splitlines()
                if line.startswith("AmbientCapabilities=")][0]
        docs = list(yaml.safe_load_all(open(os.path.join(SRC, "deploy", "kubernetes", "daemonset.yaml"))))
        ds = [d for d in docs if d["kind"] == "DaemonSet"][0]
        spec = ds["spec"]["template"]["spec"]
        self.assertTrue(spec["hostPID"])
        c = spec["containers"][0]
        self.assertEqual(c["securityContext"]["capabilities"]["drop"], ["ALL"])
        self.assertEqual(sorted("CAP_" + x for x in c["securityContext"]["capabilities"]["add"]), sorted(caps))
        self.assertEqual(c["args"][0], "agent")
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        self.assertLessEqual({"/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup"}, mounts)
        self.assertEqual(c["image"], "schedscope-agent:latest")
        dockerfile = open(os.path.join(SRC, "deploy", "container", "Dockerfile")).read()
        self.assertIn("schedscope-agent:latest", dockerfile)

    def test_bad_flags_are_usage_errors_in_one_line(self):
        for args, what in ((["--listen", "9464"], "--listen"), (["--listen", "127.0.0.1:0"], "port"),
                           (["-i", "20ms"], "--interval"), (["--max-targets", "65"], "--max-targets"),
                           (["--scan", "50ms"], "--scan"),
                           (["--flight-recorder", "0s"], "--flight-recorder"),
                           (["--dir", "/tmp"], "--flight-recorder"),
                           (["--flight-recorder", "5s", "--dir", "/nonexistent-dir"], "--dir"),
                           (["--flight-recorder", "5s", "--flight-max-bytes", "1"], "--flight-max-bytes")):
            r = subprocess.run([SCHEDSCOPE, "agent", *args], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(what, r.stderr)


class DebianPackage(unittest.TestCase):
    """`make deb`'s package installs with apt on this machine: `schedscope doctor` runs
    from /usr/bin, the agent's unit passes `systemd-analyze verify` where it is installed,
    the man page is found; removing the package removes them."""

    def setUp(self):
        require_root(self)

    def test_apt_installs_the_package_and_doctor_runs_from_usr_bin(self):
        import glob
        debs = glob.glob(os.path.join(os.path.dirname(SCHEDSCOPE), "schedscope_*_amd64.deb"))
        if not debs:
            self.fail("no package in the build directory: make deb")
        deb = max(debs, key=os.path.getmtime)
        self.assertGreaterEqual(os.path.getmtime(deb), os.path.getmtime(SCHEDSCOPE) - 5,
                                "the package is older than the binary: make deb")
        info = subprocess.run(["dpkg-deb", "--field", deb, "Depends"], capture_output=True, text=True,
                              timeout=30).stdout
        for lib in ("libbpf1", "libcpp-httplib0.11", "libelf1", "libzstd1"):
            self.assertIn(lib, info)
        self.assertNotIn("-dev", info)
        self.assertFalse(os.path.exists("/usr/bin/schedscope"), "/usr/bin/schedscope exists before the test")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")

        def remove():
            subprocess.run(["dpkg", "--purge", "schedscope"], capture_output=True, timeout=120)
        self.addCleanup(remove)
        r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", os.path.abspath(deb)],
                           capture_output=True, text=True, timeout=600, env=env)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        files = subprocess.run(["dpkg", "-L", "schedscope"], capture_output=True, text=True, timeout=30).stdout
        for f in ("/usr/bin/schedscope", "/usr/lib/systemd/system/schedscope-agent.service",
                  "/usr/share/man/man8/schedscope.8.gz"):
            self.assertIn(f, files.split())
        r = subprocess.run(["/usr/bin/schedscope", "doctor"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("schedscope can run here.", r.stdout)
        r = subprocess.run(["/usr/bin/schedscope", "agent", "--help"], capture_output=True, text=True, timeout=30)
        self.assertIn("--listen", r.stdout)
        r = subprocess.run(["systemd-analyze", "verify", "/usr/lib/systemd/system/schedscope-agent.service"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "")
        r = subprocess.run(["man", "-w", "8", "schedscope"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout.strip(), "/usr/share/man/man8/schedscope.8.gz", r.stderr)
        remove()
        self.assertFalse(os.path.exists("/usr/bin/schedscope"))
        self.assertFalse(os.path.exists("/usr/lib/systemd/system/schedscope-agent.service"))


if __name__ == "__main__":
    unittest.main()
