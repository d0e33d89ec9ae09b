"""The agent's container image and the Debian package on a Debian 12 that never built
them, with Debian's own tools and mirror only (scripts/check-image.py does the work):
a minimal Debian 12 rootfs from the mirror (mmdebstrap, cached in BUILD/image), imported
into a private podman store as the Dockerfile's base, deploy/container/Dockerfile built
from `make deb`'s package, then the image run the way deploy/kubernetes/daemonset.yaml
runs it (hostPID, its capabilities only, read-only root, its mounts and limits): doctor
passes, and the agent finds a Go workload of the host and one in another container, each
with the Ps the workload says it has, and the host one's stuck P reaches /metrics and the
alerts log in the mounted log directory. Then the package installed with apt into a fresh
copy of that rootfs (a chroot sharing the host's /proc and /sys): its schedscope runs
doctor, inspect and top against the host's workload.

A first run builds the rootfs from the mirror (40 s to 4 minutes here); with the rootfs
cached the module takes about 1 minute."""
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from common import BUILD, SCHEDSCOPE, SRC, Proc, require_root, workload

_spec = importlib.util.spec_from_file_location("check_image", os.path.join(SRC, "scripts", "check-image.py"))
ci = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ci)

WORKDIR = os.path.join(BUILD, "image")


def package():
    """The newest package of the build directory, checked to be newer than the binary."""
    deb = ci.newest_deb(BUILD)
    if os.path.getmtime(deb) < os.path.getmtime(SCHEDSCOPE) - 5:
        raise AssertionError(f"{deb} is older than {SCHEDSCOPE}: make deb")
    return deb


def deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "--field", deb, field], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()


def deb_binary_sha256(deb):
    """sha256 of usr/bin/schedscope inside the package."""
    with tempfile.TemporaryDirectory(prefix="ss-deb-") as d:
        subprocess.run(["dpkg-deb", "-x", deb, d], check=True, timeout=120)
        r = subprocess.run(["sha256sum", os.path.join(d, "usr", "bin", "schedscope")], capture_output=True,
                           text=True, timeout=60, check=True)
        return r.stdout.split()[0]


def ready_workload(test, name="healthy_mixed"):
    """A Go workload of the host; its ready line (pid, go, gomaxprocs)."""
    d = tempfile.mkdtemp(prefix="ss-img-wl-")
    test.addCleanup(shutil.rmtree, d, True)
    p = Proc([workload(name), "-forever", "-every", "500ms", "-dir", d])
    test.addCleanup(p.stop)
    ready = p.wait_for(lambda o: o.get("ev") == "ready", 30)
    test.assertIsNotNone(ready, f"{name} printed no ready line")
    return ready


class ContainerImage(unittest.TestCase):
    """deploy/container/Dockerfile built by podman and run as the DaemonSet runs it."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root")
        for tool in ("podman", "mmdebstrap", "runc"):
            if not shutil.which(tool):
                raise AssertionError(f"{tool} is not installed (scripts/install-deps.sh)")
        cls.deb = package()
        cls.podman = ci.Podman(WORKDIR)
        t0 = time.time()
        cls.tar, built = ci.ensure_rootfs(WORKDIR)
        ci.ensure_base(cls.podman, cls.tar)
        cls.image_id = ci.build_image(cls.podman, WORKDIR, cls.deb)
        print(f"\n  image: rootfs {'built in %.0f s' % built if built else 'cached'}, "
              f"base + build {time.time() - t0 - built:.0f} s", flush=True)

    @classmethod
    def tearDownClass(cls):
        left = cls.podman.release()
        assert not left, f"still mounted after the tests: {left}"

    def setUp(self):
        require_root(self)

    def test_image_holds_this_package_from_the_local_base(self):
        p = self.podman
        version = ci.image_package_version(p)
        self.assertEqual(version, deb_field(self.deb, "Version"))
        r = p("run", "--rm", "--network=none", *ci.Podman.ulimits(), "--entrypoint", "sha256sum", ci.IMAGE,
              "/usr/bin/schedscope", timeout=120)
        self.assertEqual(r.stdout.split()[0], deb_binary_sha256(self.deb),
                         "the image's /usr/bin/schedscope is not the package's")
        r = p("run", "--rm", "--network=none", *ci.Podman.ulimits(), "--entrypoint", "cat", ci.IMAGE,
              "/etc/os-release", timeout=120)
        self.assertIn('VERSION_ID="12"', r.stdout)
        # built by the Dockerfile: its entrypoint, command and port
        cfg = json.loads(p("image", "inspect", ci.IMAGE, timeout=60).stdout)[0]["Config"]
        self.assertEqual(cfg["Entrypoint"], ["/usr/bin/schedscope"])
        self.assertEqual(cfg["Cmd"], ["agent", "--listen=:9464"])
        self.assertIn("9464/tcp", cfg["ExposedPorts"])
        # the build's layers: the base, then the package; nothing of the build machine
        r = p("run", "--rm", "--network=none", *ci.Podman.ulimits(), "--entrypoint", "dpkg-query", ci.IMAGE,
              "-W", "-f=${Package}\\n", timeout=120)
        pkgs = set(r.stdout.split())
        for dev in ("libbpf-dev", "clang", "cmake", "golang-go", "g++"):
            self.assertNotIn(dev, pkgs)
        self.assertLessEqual({"schedscope", "libbpf1", "libcpp-httplib0.11"}, pkgs)

    def test_doctor_passes_in_the_image_with_the_daemonsets_security_context(self):
        opts, _ = ci.daemonset_run_args({"/var/log/schedscope": tempfile.mkdtemp(prefix="ss-img-logs-")})
        # what the DaemonSet asks for, so the run below is the DaemonSet's and not a privileged one
        self.assertIn("--pid=host", opts)
        self.assertNotIn("--privileged", opts)
        self.assertEqual(opts[opts.index("--cap-drop") + 1], "all")
        self.assertIn("--read-only", opts)
        r = ci.doctor_in_image(self.podman)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("schedscope can run here.", r.stdout)
        self.assertIn("load + attach (self test)", r.stdout)
        self.assertNotIn("[FAIL]", r.stdout)

    def test_agent_in_the_image_observes_go_processes_of_the_host_and_of_a_container_and_alerts(self):
        stuck = Proc([workload("stuckp_raw"), *ci.STUCK_ARGS], stdin=True)
        self.addCleanup(stuck.stop)
        sready = stuck.wait_for(lambda o: o.get("ev") == "ready", 30)
        self.assertIsNotNone(sready, "stuckp_raw printed no ready line")
        inner = ci.ContainerWorkload(self.podman, BUILD, "healthy_mixed", "-forever", "-every", "500ms")
        self.addCleanup(inner.stop)
        logdir = tempfile.mkdtemp(prefix="ss-img-logs-")
        self.addCleanup(shutil.rmtree, logdir, True)
        agent = ci.AgentContainer(self.podman, logdir)
        self.addCleanup(agent.stop)
        # the DaemonSet's own args, only --listen moved to loopback
        self.assertIn("--alerts-log=/var/log/schedscope/alerts.jsonl", agent.args)
        self.assertNotEqual(inner.pid, inner.ready["pid"], "the containerized workload has its own pid namespace")
        for pid, want, container in ((sready["pid"], sready, ""), (inner.pid, inner.ready, inner.id[:12])):
            with self.subTest(pid=pid, container=container):
                target, metrics = ci.wait_for_target(agent, pid)
                self.assertEqual(target["state"], "observed", target)
                self.assertEqual(target["go_version"], want["go"])
                self.assertEqual(target["container"], container)
                self.assertEqual(target["comm"], want["workload"])
                info = [l for n, l, v in metrics if n == "schedscope_target_info" and l["pid"] == str(pid)]
                self.assertEqual(len(info), 1, info)
                self.assertEqual(info[0]["container"], container)
                ps = sum(v for n, l, v in metrics if n == "schedscope_ps" and l["pid"] == str(pid))
                self.assertEqual(ps, want["gomaxprocs"], "Ps in /metrics against the workload's GOMAXPROCS")
                threads = sum(v for n, l, v in metrics if n == "schedscope_threads" and l["pid"] == str(pid))
                self.assertGreaterEqual(threads, want["threads"], "threads in /metrics against the workload's")
        # The host workload's P gets stuck: its alert reaches /metrics and the alerts log in
        # the mounted /var/log/schedscope (the root file system is read-only).
        stuck.send()
        self.assertIsNotNone(stuck.wait_for(lambda o: o.get("ev") == "stuck", 15))
        entry = ci.wait_for_alert(agent, os.path.join(logdir, "alerts.jsonl"), sready["pid"], "stuck_p")
        self.assertEqual(entry["comm"], "stuckp_raw")
        self.assertEqual(entry["alert"]["syscall"], "read", entry)
        metrics = ci.parse_metrics(agent.get("/metrics"))
        active = {l["pid"]: v for n, l, v in metrics if n == "schedscope_alert_active" and l["kind"] == "stuck_p"}
        self.assertEqual(active.get(str(sready["pid"])), 1.0)
        self.assertEqual(active.get(str(inner.pid)), 0.0, "the healthy containerized workload is not stuck")
        # A pod's process: the stuck-P workload in a container of its own PID namespace. Its
        # runtime knows its threads by the namespace's tids; the alert names the host's.
        boxed = ci.ContainerWorkload(self.podman, BUILD, "stuckp_raw", "-delay", "2s", "-hold", "60s")
        self.addCleanup(boxed.stop)
        self.assertNotEqual(boxed.pid, boxed.ready["pid"])
        entry = ci.wait_for_alert(agent, os.path.join(logdir, "alerts.jsonl"), boxed.pid, "stuck_p")
        self.assertEqual(entry["alert"]["syscall"], "read", entry)
        out = self.podman("logs", boxed.id, timeout=60).stdout
        truth = next(json.loads(l) for l in out.splitlines()
                     if l.startswith("{") and json.loads(l).get("ev") == "stuck")
        host_tids = {}
        for tid in os.listdir(f"/proc/{boxed.pid}/task"):
            with open(f"/proc/{boxed.pid}/task/{tid}/status") as st:
                ns = next(l.split() for l in st if l.startswith("NSpid:"))
            host_tids[int(ns[-1])] = int(tid)
        self.assertEqual(entry["alert"]["tid"], host_tids[truth["tid"]], (entry, truth))
        self.assertNotEqual(entry["alert"]["tid"], truth["tid"])
        self.assertEqual(entry["alert"]["p"], truth["p"], (entry, truth))
        self.assertEqual(entry.get("container"), boxed.id[:12], entry)
        # the DaemonSet's memory limit applied, the agent still running under it
        mem = self.podman("inspect", "--format", "{{.HostConfig.Memory}}", agent.name, timeout=60).stdout.strip()
        limits = ci.daemonset()["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        self.assertEqual(int(mem), ci.memory_bytes(limits["memory"]))
        self.assertTrue(agent.running(), agent.logs())


class PackageInCleanDebian(unittest.TestCase):
    """`make deb`'s package installed with apt into a fresh minimal Debian 12 (the same
    cached rootfs) where nothing of the build exists: apt brings its dependencies from the
    mirror and its schedscope observes a Go process of the host."""

    def setUp(self):
        require_root(self)
        if not shutil.which("mmdebstrap"):
            self.fail("mmdebstrap is not installed (scripts/install-deps.sh)")

    def test_apt_installs_the_package_in_a_clean_root_and_it_observes_a_host_process(self):
        deb = package()
        tar, _ = ci.ensure_rootfs(WORKDIR)
        ready = ready_workload(self)
        root = ci.Chroot(WORKDIR, tar)
        self.addCleanup(root.close)
        before = root.packages()
        for dev in ("libbpf1", "libbpf-dev", "clang", "cmake", "golang-go", "libcpp-httplib0.11", "libelf1"):
            self.assertNotIn(dev, before, "the rootfs should have nothing of the build")
        self.assertFalse(os.path.exists(os.path.join(root.dir, "usr", "bin", "schedscope")))
        r = root.install(deb)
        self.assertEqual(r.returncode, 0)
        new = root.packages() - before
        for lib in ("schedscope", "libbpf1", "libcpp-httplib0.11", "libelf1", "libdw1"):
            self.assertIn(lib, new, "apt should have brought it from the mirror")
        for f in ("usr/bin/schedscope", "usr/lib/systemd/system/schedscope-agent.service",
                  "usr/share/man/man8/schedscope.8.gz"):
            self.assertTrue(os.path.exists(os.path.join(root.dir, f)), f)
        # every library the binary needs resolves inside the root
        r = root("ldd", "/usr/bin/schedscope", timeout=60)
        self.assertNotIn("not found", r.stdout)
        r = root("/usr/bin/schedscope", "--help", timeout=30)
        for sub in ("top", "inspect", "doctor", "agent"):
            self.assertIn(sub, r.stdout)
        r = root("/usr/bin/schedscope", "doctor", timeout=120, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("schedscope can run here.", r.stdout)
        pid = ready["pid"]
        doc = json.loads(root("/usr/bin/schedscope", "inspect", "-p", str(pid), "--json", timeout=120).stdout)
        self.assertEqual(doc["go_version"], ready["go"])
        self.assertTrue(doc["validation"]["ok"], doc["validation"])
        self.assertIn(f"ok: len(allp)==gomaxprocs ({ready['gomaxprocs']}=={ready['gomaxprocs']})",
                      doc["validation"]["checks"])
        r = root("/usr/bin/schedscope", "top", "-p", str(pid), "--batch", "--json", "-n", "1", "-i", "1s",
                 timeout=120)
        frame = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
        self.assertTrue(frame.get("final"), frame)
        self.assertEqual(frame["target"]["pid"], pid)
        self.assertEqual(frame["target"]["go_version"], ready["go"])
        self.assertEqual(len(frame["ps"]), ready["gomaxprocs"])
        self.assertGreater(sum(p["schedtick"] for p in frame["ps"]), 0)


if __name__ == "__main__":
    unittest.main()
