"""Shared helpers of the end-to-end tests: run schedscope against real Go workloads
and compare what it reports with what the workloads know they did."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import unittest

SRC = os.environ.get("SCHEDSCOPE_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SCHEDSCOPE_BUILD") or os.path.join(SRC, "build")
SCHEDSCOPE = os.path.join(BUILD, "schedscope")
WORKLOADS = os.path.join(BUILD, "workloads")
# Ground-truth binaries: the selfreport programs of go1.21–1.26 (tests/fixtures/README)
# and the binaries downloaded from npm by `make npm-bins` (tests/fixtures/npm/fetch.py).
TESTBINS = os.path.join(SRC, "tests", "fixtures", "testbins", "bin")
NPM_CACHE = os.path.join(BUILD, "npm-cache")


# schedscope's readiness line on stderr (top's batch form and record): everything it counts
# is attached and its baseline taken (on a Go target: the Go layer was read once too).
READY = "schedscope: attached to pid "


def workload(name):
    path = os.path.join(WORKLOADS, name)
    if not os.path.exists(path):
        raise unittest.SkipTest(f"workload {name} not built (make workloads)")
    return path


TESTBIN_MINORS = (21, 22, 23, 24, 25, 26)


def testbins():
    """The stripped selfreport fixtures, oldest first; skips naming any that is missing."""
    bins = [os.path.join(TESTBINS, f"selfreport-go1.{m}-stripped") for m in TESTBIN_MINORS]
    missing = [b for b in bins if not os.path.exists(b)]
    if missing:
        raise unittest.SkipTest(f"fixture missing from the checkout (tests/fixtures/README): {', '.join(missing)}")
    return bins


def npm_binary(rel):
    """BUILD/npm-cache/<rel>, e.g. "lefthook-2.2.2/package/bin/lefthook"; when missing,
    skips with the reason the download failed (recorded by fetch.py)."""
    path = os.path.join(NPM_CACHE, rel)
    if os.path.exists(path):
        return path
    key = rel.split("/", 1)[0]
    try:
        with open(os.path.join(NPM_CACHE, key + ".error")) as f:
            why = "not downloaded: " + f.read().strip()
    except OSError:
        why = "not downloaded (make npm-bins)"
    raise unittest.SkipTest(f"{path}: {why}")


def usdt_python():
    """(path, None) of a CPython with the python:* USDT probes, or (None, why)
    (tests/fixtures/usdt_python.py scans the candidates' ELF notes)."""
    r = subprocess.run([sys.executable, os.path.join(SRC, "tests", "fixtures", "usdt_python.py")],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout.strip()
    return (out, None) if r.returncode == 0 and out.startswith("/") else (None, out or r.stderr.strip())


def require_root(tc):
    if os.geteuid() != 0:
        tc.skipTest("end-to-end tests need root")


class Proc:
    """A child process whose stdout lines are read without blocking. Background threads
    drain its stdout and stderr as they arrive, so a test that waits on something else
    never leaves the child blocked on a full pipe (a frame of `top --json` is several KiB;
    64 KiB of them fill a pipe in a few seconds)."""

    def __init__(self, argv, stdin=False, env=None, stderr=subprocess.PIPE):
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr,
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  env=env, bufsize=0)
        self.buf = b""
        self.lines = []
        self._out = queue.Queue()
        self._eof = False
        self._err = []
        self._err_thread = None
        threading.Thread(target=self._pump, args=(self.p.stdout, self._out.put), daemon=True).start()
        if self.p.stderr is not None:
            self._err_thread = threading.Thread(target=self._pump, args=(self.p.stderr, self._err.append),
                                                daemon=True)
            self._err_thread.start()

    @staticmethod
    def _pump(f, put):
        fd = f.fileno()
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError:
                chunk = b""
            put(chunk)
            if not chunk:
                break

    def read_lines(self, timeout):
        """Reads whatever arrives within timeout seconds; returns new complete lines."""
        end = time.time() + timeout
        new = []
        while not self._eof:
            left = end - time.time()
            if left <= 0:
                break
            try:
                chunk = self._out.get(timeout=left)
            except queue.Empty:
                break
            if not chunk:
                self._eof = True
                break
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                new.append(line.decode(errors="replace"))
            if new:
                break
        self.lines += new
        return new

    def json_lines(self, timeout):
        out = []
        for line in self.read_lines(timeout):
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_for(self, pred, timeout):
        """Reads JSON lines until pred(obj) holds; returns that object (or None)."""
        end = time.time() + timeout
        while time.time() < end:
            for obj in self.json_lines(min(1.0, max(0.01, end - time.time()))):
                if pred(obj):
                    return obj
            if self.p.poll() is not None and not self.buf:
                # drain what is left
                for obj in self.json_lines(0.2):
                    if pred(obj):
                        return obj
                return None
        return None

    def send(self, data=b"go\n"):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def rest(self, timeout=10):
        """Everything until EOF, as JSON objects."""
        end = time.time() + timeout
        out = []
        while time.time() < end:
            got = self.json_lines(0.5)
            out += got
            if self.p.poll() is not None and not got:
                out += self.json_lines(0.2)
                break
        return out

    def stderr_so_far(self):
        """Stderr received until now (never blocks)."""
        return b"".join(list(self._err)).decode(errors="replace")

    def wait_ready(self, timeout=30):
        """Waits for schedscope's readiness line (READY) on stderr and returns it: from then
        on, what the target does is counted. Raises AssertionError, with stderr, if
        schedscope exits or the timeout passes first. Stands in for every "give it time to
        attach" sleep: a loaded machine only makes it come later."""
        if self._err_thread is None:
            raise AssertionError("wait_ready needs stderr piped")
        end = time.time() + timeout
        while True:
            err = self.stderr_so_far()
            for line in err.splitlines():
                if READY in line:
                    return line[line.index(READY):]
            if self.p.poll() is not None:
                self._err_thread.join(2)
                if READY in self.stderr_so_far():
                    continue
                raise AssertionError(f"schedscope exited ({self.p.returncode}) before it was "
                                     f"attached: {self.stderr_so_far()}")
            if time.time() >= end:
                raise AssertionError(f"schedscope not attached after {timeout}s: {err}")
            time.sleep(0.02)

    def stderr_text(self, timeout=10):
        """All of stderr: once the process has exited, waits (up to timeout) for the
        drain to reach EOF; while it runs, what arrived so far."""
        if self._err_thread is None:
            return ""
        if self.p.poll() is not None:
            self._err_thread.join(timeout)
        return self.stderr_so_far()


def bpf_ids_held(pid, kind):
    """The ids of the BPF objects of `kind` ("prog" or "map") that process pid holds open
    (the `prog_id:` / `map_id:` lines of /proc/PID/fdinfo)."""
    ids = set()
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                ids.update(int(l.split()[1]) for l in f if l.startswith(kind + "_id:"))
        except OSError:
            pass
    return ids


def schedscope(*args, stdin=False):
    return Proc([SCHEDSCOPE, *args], stdin=stdin)


def bpf_map_values(owner_pid, name):
    """The values (bpftool's BTF-formatted JSON) of the map `name` that process
    `owner_pid` holds."""
    held = bpf_ids_held(owner_pid, "map")
    maps = json.loads(subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True,
                                     text=True, timeout=30, check=True).stdout)
    ids = [m["id"] for m in maps if m.get("name") == name and m["id"] in held]
    if len(ids) != 1:
        return None
    out = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(ids[0])], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        return None
    return [e["formatted"]["value"] for e in json.loads(out.stdout)]


def top_json(pid, *extra):
    """schedscope top --batch --json on a running pid."""
    return schedscope("top", "-p", str(pid), "--batch", "--json", *extra)


def frames_until_final(proc, timeout):
    frames = []
    end = time.time() + timeout
    while time.time() < end:
        for obj in proc.json_lines(1.0):
            if "target" in obj:
                frames.append(obj)
                if obj.get("final"):
                    return frames
        if proc.p.poll() is not None:
            for obj in proc.json_lines(0.5):
                if "target" in obj:
                    frames.append(obj)
            return frames
    return frames


def thread(frame, tid):
    for t in frame["threads"]:
        if t["tid"] == tid:
            return t
    return None
