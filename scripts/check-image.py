#!/usr/bin/env python3
"""Builds and checks the agent's container image and the Debian package on a clean
Debian 12, with nothing but Debian's own packages and mirror (no Docker engine, no image
registry):

  1. rootfs   a minimal Debian 12 root file system from the Debian mirror (mmdebstrap
              --variant=minbase bookworm), cached as BUILD/image/debian-12-minbase.tar
  2. base     imported into a private podman store (BUILD/image/storage) as the base
              image the Dockerfile's FROM names (ARG BASE)
  3. image    deploy/container/Dockerfile built by podman from a context holding only the
              newest BUILD/schedscope_*_amd64.deb (make deb): schedscope-agent:latest
  4. doctor   `schedscope doctor` in the image, run as deploy/kubernetes/daemonset.yaml
              runs it: hostPID, its capabilities and no others, no new privileges,
              read-only root, its hostPath mounts, its memory and CPU limits
  5. agent    the image's entrypoint with the DaemonSet's args (--listen on loopback):
              a Go workload of the host, and one in another container, are among its
              /targets (the latter with its container id) and in /metrics with the
              number of Ps each workload reports; the one on the host then gets a P
              stuck, and its stuck_p alert is in /metrics and in the alerts log the
              DaemonSet writes to its mounted /var/log/schedscope
  6. chroot   the .deb installed with apt into a fresh copy of the same rootfs (no build
              dependency there), then `schedscope --help`, `doctor`, `inspect -p PID` and
              `top -p PID --json -n 1` from its /usr/bin against the host's workload

Usage: check-image.py [--build BUILD] [--fresh] [--steps rootfs,base,...] [--workload NAME]
Run as root. tests/e2e/test_container.py runs the same steps through this module and
asserts on what they return. The podman configuration this needs on a VM without
CAP_SYS_RESOURCE and with a hybrid cgroup hierarchy: docs/agent.md (Deploying).
"""
import argparse
import glob
import hashlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOCKERFILE = os.path.join(SRC, "deploy", "container", "Dockerfile")
DAEMONSET = os.path.join(SRC, "deploy", "kubernetes", "daemonset.yaml")
IMAGE = "schedscope-agent:latest"
BASE = "localhost/schedscope-debian-12-minbase:latest"
SUITE = "bookworm"


class Failed(Exception):
    pass


def run(argv, timeout, check=True, **kw):
    """subprocess.run capturing text; on a non-zero exit (check) raises Failed with the
    command and the tail of its output."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        out = (r.stdout[-3000:] + "\n" + r.stderr[-3000:]).strip()
        raise Failed(f"{' '.join(argv)}: exit {r.returncode}\n{out}")
    return r


class Podman:
    """podman on a private store under BUILD/image, configured to run where the host gives
    root no CAP_SYS_RESOURCE and mixes cgroup v1 and v2:
      --runtime runc           crun (podman's default) refuses a hybrid cgroup hierarchy
      --cgroup-manager cgroupfs  no systemd needed
      --ulimit nofile/nproc    podman asks the runtime for 1048576 of each; without
                               CAP_SYS_RESOURCE no limit can be raised, so the limits
                               podman itself runs with are passed (its RLIMIT_NPROC is
                               capped at kernel.pid_max)
    SCHEDSCOPE_PODMAN_STORAGE_DRIVER=vfs where the build dir cannot hold overlay layers
    (e.g. itself on overlayfs)."""

    def __init__(self, workdir):
        self.root = os.path.join(os.path.abspath(workdir), "storage")
        tag = hashlib.sha256(os.path.abspath(workdir).encode()).hexdigest()[:12]
        self.runroot = f"/run/schedscope-image-{tag}"
        self.driver = os.environ.get("SCHEDSCOPE_PODMAN_STORAGE_DRIVER", "overlay")

    def argv(self, *args):
        return ["podman", "--root", self.root, "--runroot", self.runroot, "--storage-driver", self.driver,
                "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args]

    def __call__(self, *args, timeout=600, check=True):
        return run(self.argv(*args), timeout, check=check)

    def release(self):
        """Unmounts what podman leaves mounted under the store (its overlay directory,
        bind-mounted onto itself), so that the build directory can be removed; podman
        mounts it again when next used."""
        for p in sorted(mounts_under(self.root), key=len, reverse=True):
            subprocess.run(["umount", p], capture_output=True, timeout=60)
        return mounts_under(self.root)

    @staticmethod
    def ulimits():
        nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1048576)
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        try:
            with open("/proc/sys/kernel/pid_max") as f:
                pid_max = int(f.read())
        except (OSError, ValueError):
            pid_max = 32768
        if nproc == resource.RLIM_INFINITY or nproc > pid_max:
            nproc = pid_max
        return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def newest_deb(build):
    debs = glob.glob(os.path.join(build, "schedscope_*_amd64.deb"))
    if not debs:
        raise Failed(f"no package in {build}: make deb")
    return max(debs, key=os.path.getmtime)


# -- 1. rootfs ------------------------------------------------------------------------

def ensure_rootfs(workdir, fresh=False):
    """BUILD/image/debian-12-minbase.tar: Debian 12 minbase from the mirror the host's apt
    sources use (mmdebstrap takes them when the suite matches, else deb.debian.org).
    Returns (path, seconds spent building it, 0 when cached)."""
    tar = os.path.join(workdir, "debian-12-minbase.tar")
    if os.path.exists(tar) and not fresh:
        return tar, 0.0
    if not shutil.which("mmdebstrap"):
        raise Failed("mmdebstrap is not installed (scripts/install-deps.sh)")
    os.makedirs(workdir, exist_ok=True)
    part = tar + ".part"
    t0 = time.time()
    run(["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet", SUITE, part], timeout=1800)
    os.replace(part, tar)
    return tar, time.time() - t0


# -- 2. base image ----------------------------------------------------------------------

def ensure_base(podman, tar):
    """Imports the rootfs as BASE unless the image there came from this very tar (its
    size and mtime are kept as a label)."""
    st = os.stat(tar)
    stamp = f"{st.st_size}-{int(st.st_mtime)}"
    r = podman("image", "inspect", "--format", "{{index .Labels \"schedscope.rootfs\"}}", BASE,
               check=False, timeout=120)
    if r.returncode == 0 and r.stdout.strip() == stamp:
        return False
    podman("import", "--change", f"LABEL schedscope.rootfs={stamp}", "--change", "CMD [\"/bin/bash\"]",
           tar, BASE, timeout=600)
    return True


# -- 3. image -----------------------------------------------------------------------

def build_image(podman, workdir, deb):
    """podman build of deploy/container/Dockerfile, FROM the local base, with a context
    that holds only the package. Returns the image id."""
    ctx = os.path.join(workdir, "context")
    shutil.rmtree(ctx, ignore_errors=True)
    os.makedirs(ctx)
    shutil.copy2(deb, ctx)
    podman("build", "--pull=never", "--network=host", *Podman.ulimits(), "--build-arg", f"BASE={BASE}",
           "-f", DOCKERFILE, "-t", IMAGE, ctx, timeout=1200)
    return podman("image", "inspect", "--format", "{{.Id}}", IMAGE, timeout=60).stdout.strip()


def image_package_version(podman):
    r = podman("run", "--rm", "--network=none", *Podman.ulimits(), "--entrypoint", "dpkg-query", IMAGE,
               "-W", "-f=${Version}", "schedscope", timeout=120)
    return r.stdout.strip()


# -- 4, 5. the image run as the DaemonSet runs it -------------------------------------------

def daemonset():
    with open(DAEMONSET) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return next(d for d in docs if d.get("kind") == "DaemonSet")


def memory_bytes(q):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "K": 1000, "M": 10**6, "G": 10**9}
    for u, m in units.items():
        if q.endswith(u):
            return int(float(q[:-len(u)]) * m)
    return int(q)


def cpus(q):
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def daemonset_run_args(host_dirs=None):
    """podman run options for the DaemonSet's pod spec: hostPID, the container's
    securityContext (user, capabilities, no new privileges, read-only root), its
    hostPath mounts (host_dirs: mountPath -> another host directory, for the test's
    log directory) and its resource limits. Returns (options, the container's args)."""
    spec = daemonset()["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    sc = c.get("securityContext", {})
    opts = []
    if spec.get("hostPID"):
        opts.append("--pid=host")
    if sc.get("privileged"):
        opts.append("--privileged")
    if "runAsUser" in sc:
        opts += ["--user", str(sc["runAsUser"])]
    caps = sc.get("capabilities", {})
    for cap in caps.get("drop", []):
        opts += ["--cap-drop", cap.lower()]
    for cap in caps.get("add", []):
        opts += ["--cap-add", "cap_" + cap.lower()]
    if sc.get("allowPrivilegeEscalation") is False:
        opts += ["--security-opt", "no-new-privileges"]
    if sc.get("readOnlyRootFilesystem"):
        opts += ["--read-only", "--read-only-tmpfs=false"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        hp = volumes[m["name"]]["hostPath"]
        src = (host_dirs or {}).get(m["mountPath"], hp["path"])
        if hp.get("type") == "DirectoryOrCreate":
            os.makedirs(src, exist_ok=True)
        opts += ["-v", f"{src}:{m['mountPath']}" + (":ro" if m.get("readOnly") else "")]
    limits = c.get("resources", {}).get("limits", {})
    if "memory" in limits:
        opts += ["--memory", str(memory_bytes(limits["memory"]))]
    if "cpu" in limits:
        opts += ["--cpus", str(cpus(str(limits["cpu"])))]
    return opts, list(c.get("args", []))


def doctor_in_image(podman):
    opts, _ = daemonset_run_args({"/var/log/schedscope": tempfile.mkdtemp(prefix="ss-image-logs-")})
    return podman("run", "--rm", "--network=host", *Podman.ulimits(), *opts, IMAGE, "doctor",
                  timeout=180, check=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class AgentContainer:
    """The image's entrypoint with the DaemonSet's args, --listen moved to loopback on a
    free port (host network, so the host reaches it), its alerts log in logdir."""

    def __init__(self, podman, logdir):
        self.podman = podman
        self.port = free_port()
        self.name = f"schedscope-agent-check-{os.getpid()}"
        opts, args = daemonset_run_args({"/var/log/schedscope": logdir})
        args = [a for a in args if not a.startswith("--listen")] + [f"--listen=127.0.0.1:{self.port}"]
        self.args = args
        podman("rm", "-f", "-t", "0", self.name, check=False, timeout=120)
        podman("run", "-d", "--name", self.name, "--network=host", *Podman.ulimits(), *opts, IMAGE, *args,
               timeout=180)

    def get(self, path):
        return http_get(f"http://127.0.0.1:{self.port}{path}")

    def logs(self):
        r = self.podman("logs", self.name, check=False, timeout=60)
        return (r.stdout + r.stderr)[-3000:]

    def running(self):
        r = self.podman("inspect", "--format", "{{.State.Running}}", self.name, check=False, timeout=60)
        return r.stdout.strip() == "true"

    def stop(self):
        self.podman("rm", "-f", "-t", "2", self.name, check=False, timeout=120)


def parse_metrics(text):
    """[(name, {label: value}, float value)] of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, {}
        if "{" in head:
            name, _, rest = head.partition("{")
            for part in rest.rstrip("}").split('",'):
                if "=" in part:
                    k, _, v = part.partition("=")
                    labels[k.strip()] = v.strip().strip('"')
        out.append((name, labels, float(value)))
    return out


def wait_for_target(agent, pid, timeout=60):
    """Polls /targets until pid is there and observed, then until /metrics has its Ps
    (after the first interval). Returns (target entry, metrics)."""
    end = time.time() + timeout
    last = None
    target = None
    while time.time() < end:
        if not agent.running():
            raise Failed(f"the agent container exited:\n{agent.logs()}")
        try:
            doc = json.loads(agent.get("/targets"))
            target = next((t for t in doc["targets"] if t["pid"] == pid), None)
            last = target or doc
            if target and target["state"] == "observed":
                metrics = parse_metrics(agent.get("/metrics"))
                if any(n == "schedscope_ps" and l.get("pid") == str(pid) for n, l, _ in metrics):
                    return target, metrics
        except (OSError, ValueError) as e:
            last = repr(e)
        time.sleep(1)
    raise Failed(f"pid {pid} not observed with its Ps within {timeout}s; last /targets: {last}\n{agent.logs()}")


# The stuck-P workload on the host: once told (a line on stdin), its P blocks in a raw
# read for 2 minutes.
STUCK_ARGS = ("-wait-stdin", "-hold", "120s")


def wait_for_alert(agent, log, pid, kind, timeout=90):
    """Polls the alerts log (a JSON line per alert) and /metrics until pid's alert of this
    kind is in both. Returns the log entry."""
    end = time.time() + timeout
    entry, active = None, None
    while time.time() < end:
        if not agent.running():
            raise Failed(f"the agent container exited:\n{agent.logs()}")
        try:
            with open(log) as f:
                entry = next((e for e in map(json.loads, f) if e["pid"] == pid and e["alert"]["kind"] == kind),
                             None)
        except (OSError, ValueError):
            entry = None
        try:
            active = next((v for n, l, v in parse_metrics(agent.get("/metrics"))
                           if n == "schedscope_alert_active" and l.get("pid") == str(pid) and l.get("kind") == kind),
                          None)
        except OSError:
            active = None
        if entry and active == 1:
            return entry
        time.sleep(1)
    raise Failed(f"no {kind} alert of pid {pid} within {timeout}s (log entry: {entry}, "
                 f"schedscope_alert_active: {active})\n{agent.logs()}")


# -- 6. the .deb in a clean chroot ------------------------------------------------------------

def mounts_under(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        points = [l.split()[1].replace("\\040", " ") for l in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


class Chroot:
    """A fresh copy of the rootfs at BUILD/image/chroot with proc (the host's pid
    namespace: host pids are visible), sysfs (BTF, the uprobe PMU), tracefs and the host's
    /etc/resolv.conf (for apt). Each is a mount of its own, none recursive: nothing a
    `rm -rf` could remove is reachable through them. close() unmounts and removes it; nothing is
    removed while anything is still mounted under it."""

    def __init__(self, workdir, tar):
        self.dir = os.path.join(workdir, "chroot")
        self.mounted = []
        self.umount_all()
        if mounts_under(self.dir):
            raise Failed(f"still mounted under {self.dir}: {mounts_under(self.dir)}")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        run(["tar", "-C", self.dir, "-xf", tar], timeout=600)
        run(["mount", "-t", "proc", "proc", os.path.join(self.dir, "proc")], timeout=30)
        run(["mount", "-t", "sysfs", "sysfs", os.path.join(self.dir, "sys")], timeout=30)
        if os.path.exists("/sys/kernel/tracing/events"):
            run(["mount", "-t", "tracefs", "tracefs", os.path.join(self.dir, "sys", "kernel", "tracing")], timeout=30)
        shutil.copy2("/etc/resolv.conf", os.path.join(self.dir, "etc", "resolv.conf"))

    def umount_all(self):
        for _ in range(3):
            points = mounts_under(self.dir)
            if not points:
                return
            for p in sorted(points, key=len, reverse=True):
                subprocess.run(["umount", "-R", p], capture_output=True, timeout=60)
        for p in sorted(mounts_under(self.dir), key=len, reverse=True):
            subprocess.run(["umount", "-l", p], capture_output=True, timeout=60)

    def __call__(self, *argv, timeout=600, check=True):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
        return run(["chroot", self.dir, *argv], timeout, check=check, env=env)

    def packages(self):
        r = self("dpkg-query", "-W", "-f=${Package}\\n", timeout=60)
        return set(r.stdout.split())

    def install(self, deb):
        dest = os.path.join(self.dir, "tmp", os.path.basename(deb))
        shutil.copy2(deb, dest)
        self("apt-get", "update", "-qq", timeout=600)
        return self("apt-get", "install", "-y", "--no-install-recommends", "/tmp/" + os.path.basename(deb),
                    timeout=900)

    def close(self):
        """Unmounts, then removes the copy (only once nothing is mounted under it)."""
        self.umount_all()
        if mounts_under(self.dir):
            raise Failed(f"could not unmount under {self.dir}: {mounts_under(self.dir)}")
        shutil.rmtree(self.dir, ignore_errors=True)


# -- the whole check, as a command -------------------------------------------------------------

class ContainerWorkload:
    """A Go workload of BUILD/workloads run in a container of the base image (the
    directory bind-mounted read-only): a process of the node in its own pid and mount
    namespaces and cgroup, as a pod's would be. .pid is its pid on the host, .id the
    container id, .ready its ready line."""

    def __init__(self, podman, build, name, *args, timeout=60):
        self.podman = podman
        wl = os.path.join(build, "workloads")
        if not os.path.exists(os.path.join(wl, name)):
            raise Failed(f"{wl}/{name} not built (make workloads)")
        self.id = podman("run", "-d", "--network=host", *Podman.ulimits(), "-v", f"{os.path.realpath(wl)}:/wl:ro",
                         BASE, f"/wl/{name}", *args, timeout=180).stdout.strip()
        end = time.time() + timeout
        self.ready = None
        while time.time() < end and not self.ready:
            out = podman("logs", self.id, check=False, timeout=60).stdout
            line = next((l for l in out.splitlines() if l.startswith("{")), None)
            self.ready = json.loads(line) if line else None
            time.sleep(0.2)
        if not self.ready:
            self.stop()
            raise Failed(f"no ready line from {name} in its container within {timeout}s")
        self.pid = int(podman("inspect", "--format", "{{.State.Pid}}", self.id, timeout=60).stdout)

    def stop(self):
        self.podman("rm", "-f", "-t", "0", self.id, check=False, timeout=120)


def start_workload(build, name, *args):
    """A workload of BUILD/workloads on the host (stdin a pipe); (Popen, its ready line)."""
    path = os.path.join(build, "workloads", name)
    if not os.path.exists(path):
        raise Failed(f"{path} not built (make workloads)")
    p = subprocess.Popen([path, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(p.stdout.readline())
    return p, ready


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached rootfs from the mirror")
    ap.add_argument("--workload", default="healthy_mixed", help="the host's Go workload (BUILD/workloads/NAME)")
    ap.add_argument("--steps", default="rootfs,base,image,doctor,agent,chroot")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("check-image: run as root")
    steps = a.steps.split(",")
    build = os.path.abspath(a.build)
    workdir = os.path.join(build, "image")
    podman = Podman(workdir)
    failed = 0

    def report(ok, step, detail, t0):
        nonlocal failed
        failed += not ok
        print(f"[{'ok  ' if ok else 'FAIL'}] {step:<8} {detail} ({time.time() - t0:.0f} s)", flush=True)

    workloads = []
    try:
        t0 = time.time()
        tar, built = ensure_rootfs(workdir, a.fresh)
        report(True, "rootfs", f"{tar} ({'built in %.0f s' % built if built else 'cached'})", t0)
        if "base" in steps or "image" in steps:
            t0 = time.time()
            imported = ensure_base(podman, tar)
            report(True, "base", f"{BASE} ({'imported' if imported else 'up to date'})", t0)
        deb = newest_deb(build)
        if "image" in steps:
            t0 = time.time()
            iid = build_image(podman, workdir, deb)
            report(True, "image", f"{IMAGE} {iid[:12]} from {os.path.basename(deb)}, schedscope "
                   f"{image_package_version(podman)} inside", t0)
        if "doctor" in steps:
            t0 = time.time()
            r = doctor_in_image(podman)
            ok = r.returncode == 0 and "schedscope can run here." in r.stdout
            report(ok, "doctor", "in the image, as the DaemonSet runs it: " +
                   (r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr.strip()[-500:]), t0)
            if not ok:
                print(r.stdout + r.stderr)
        if "agent" in steps or "chroot" in steps:
            wl, ready = start_workload(build, a.workload, "-forever", "-every", "500ms",
                                       "-dir", tempfile.mkdtemp(prefix="ss-image-wl-"))
            workloads.append(wl)
        if "agent" in steps:
            t0 = time.time()
            logdir = tempfile.mkdtemp(prefix="ss-image-logs-")
            stuck, sready = start_workload(build, "stuckp_raw", *STUCK_ARGS)
            workloads.append(stuck)
            inner = ContainerWorkload(podman, build, a.workload, "-forever", "-every", "500ms")
            agent = None
            try:
                agent = AgentContainer(podman, logdir)
                for pid, want, where in ((sready["pid"], sready, "on the host"),
                                         (inner.pid, inner.ready, "in a container")):
                    target, metrics = wait_for_target(agent, pid)
                    ps = sum(v for n, l, v in metrics if n == "schedscope_ps" and l.get("pid") == str(pid))
                    ok = (target["go_version"] == want["go"] and ps == want["gomaxprocs"]
                          and target["container"] == ("" if where == "on the host" else inner.id[:12]))
                    report(ok, "agent", f"{want['workload']} {where}: pid {pid} ({target['go_version']}, "
                           f"container={target['container']!r}) observed ({target['reason']}; {target['gc']}); "
                           f"schedscope_ps sums to {ps:.0f}, the workload says GOMAXPROCS={want['gomaxprocs']}", t0)
                t0 = time.time()
                stuck.stdin.write("go\n")
                stuck.stdin.flush()
                entry = wait_for_alert(agent, os.path.join(logdir, "alerts.jsonl"), sready["pid"], "stuck_p")
                report(entry["alert"].get("syscall") == "read", "alerts",
                       f"stuck_p of pid {sready['pid']} (syscall {entry['alert'].get('syscall')}) in /metrics and "
                       f"in the alerts log the DaemonSet writes to its mounted /var/log/schedscope", t0)
            finally:
                if agent:
                    agent.stop()
                inner.stop()
        if "chroot" in steps:
            t0 = time.time()
            ch = Chroot(workdir, tar)
            try:
                before = ch.packages()
                ch.install(deb)
                new = sorted(ch.packages() - before)
                helptext = ch("/usr/bin/schedscope", "--help", timeout=30).stdout
                doc = ch("/usr/bin/schedscope", "doctor", timeout=120, check=False)
                insp = json.loads(ch("/usr/bin/schedscope", "inspect", "-p", str(ready["pid"]), "--json",
                                     timeout=120).stdout)
                top = ch("/usr/bin/schedscope", "top", "-p", str(ready["pid"]), "--batch", "--json", "-n", "1",
                         "-i", "1s", timeout=120)
                frame = json.loads([l for l in top.stdout.splitlines() if l.startswith("{")][-1])
                ok = (doc.returncode == 0 and "Usage" in helptext and insp["validation"]["ok"]
                      and frame["target"]["gomaxprocs"] == ready["gomaxprocs"] and len(frame["ps"]) == ready["gomaxprocs"])
                report(ok, "chroot", f"apt installed {len(new)} packages ({', '.join(new)}); doctor: "
                       f"{doc.stdout.strip().splitlines()[-1]}; inspect -p: {insp['go_version']}, validation ok="
                       f"{insp['validation']['ok']}; top: {len(frame['ps'])} Ps", t0)
            finally:
                ch.close()
    except Failed as e:
        report(False, "error", str(e), time.time())
    finally:
        for w in workloads:
            w.kill()
            w.wait()
        left = podman.release()
        if left:
            report(False, "cleanup", f"still mounted: {left}", time.time())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
