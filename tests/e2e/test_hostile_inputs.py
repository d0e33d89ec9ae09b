"""Hostile and broken inputs to the real binary: files that are not ELF or not regular,
a crafted ELF that made the pclntab scan quadratic, damaged and hostile recordings (1M
levels of JSON nesting, oversize length fields), and a target whose thread name is not
UTF-8 and carries terminal escapes. Every command must end within seconds with a clear
one-line error (or succeed, with the bad bytes replaced or escaped): never a crash, a
hang, or a library's exception text. The inputs are made by the test in a temp dir.
Root tier (the live part attaches BPF; the rest runs as root with the other e2e tests)."""
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest
import zlib

from common import SCHEDSCOPE, SRC, require_root

RAW_EXCEPTION_MARKS = ("terminate called", "what():", "json.exception", "type_error", "parse_error",
                       "std::", "Segmentation", "Aborted", "AddressSanitizer", "core dumped")


def abi_version():
    with open(os.path.join(SRC, "bpf", "schedscope.h")) as f:
        for line in f:
            if line.startswith("#define SS_ABI_VERSION"):
                return int(line.split()[2])
    raise RuntimeError("SS_ABI_VERSION not found")


MAGIC = b"\x89SCHED\r\n"


def file_header(abi):
    h = MAGIC + struct.pack("<HH", 1, abi)
    return h + struct.pack("<I", zlib.crc32(h))


def chunk(ctype, payload, raw_len=None, stored_len=None, codec=0):
    raw_len = len(payload) if raw_len is None else raw_len
    stored_len = len(payload) if stored_len is None else stored_len
    h = b"SCHK" + struct.pack("<HHIII", ctype, codec, raw_len, stored_len, zlib.crc32(payload))
    return h + struct.pack("<I", zlib.crc32(h)) + payload


def record(kind, body, length=None):
    return struct.pack("<HHI", kind, 0, len(body) if length is None else length) + body


META = json.dumps({"target": {"pid": 1, "comm": "hostile", "all_syscalls": True},
                   "symbolizer": True, "interval_s": 1}).encode()
FRAME = json.dumps({"mode": "shown", "alerts": []}).encode()
FINAL = json.dumps({"mode": "final", "alerts": []}).encode()


def recording(meta=META, data=None, trailer=b'{"frames":2}'):
    abi = abi_version()
    if data is None:
        data = record(6, FRAME) + record(6, FINAL)
    out = file_header(abi) + chunk(1, meta) + chunk(2, data)
    if trailer is not None:
        out += chunk(3, trailer)
    return out


def crafted_elf_without_section_headers(seg_size):
    """One read-only PT_LOAD, no section headers, a lattice of plausible Go 1.2 pclntab
    headers every 16 bytes whose function tables all reach the end and break order one
    entry before it (the quadratic scan: ~14 s per MiB squared)."""
    seg_off = 4096
    img = bytearray(seg_off + seg_size)
    img[0:4] = b"\x7fELF"
    img[4], img[5], img[6] = 2, 1, 1
    struct.pack_into("<HHI", img, 16, 2, 62, 1)
    struct.pack_into("<Q", img, 32, 64)            # e_phoff
    struct.pack_into("<HHH", img, 52, 64, 56, 1)   # e_ehsize, e_phentsize, e_phnum
    struct.pack_into("<IIQQQQQQ", img, 64, 1, 4, seg_off, 0x400000, 0x400000, seg_size, seg_size, 4096)
    magic = bytes([0xfb, 0xff, 0xff, 0xff, 0, 0, 1, 8])
    last = (seg_size - 16) & ~15
    for j in range(0, last - 15, 16):
        img[seg_off + j:seg_off + j + 8] = magic
        struct.pack_into("<Q", img, seg_off + j + 8, (last - j - 16) // 16)
    struct.pack_into("<Q", img, seg_off + last, (1 << 64) - 1)
    struct.pack_into("<Q", img, seg_off + last + 8, 0)
    struct.pack_into("<Q", img, seg_off + last - 16, 0)
    return bytes(img)


BAD_NAME = b"bad\xff\xfe\x1b[31m"   # 10 bytes: not UTF-8, and an ANSI escape

C_PROGRAM = r"""
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>
int main(void) {
  prctl(PR_SET_NAME, "bad\xff\xfe\x1b[31m", 0, 0, 0);
  printf("ready\n");
  fflush(stdout);
  for (;;) usleep(20000);
}
"""


class HostileInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ss-hostile-")
        d = cls.dir
        cls.inputs = {}

        def put(name, data):
            p = os.path.join(d, name)
            with open(p, "wb") as f:
                f.write(data)
            cls.inputs[name] = p
            return p

        put("notelf.txt", b"hello, not an ELF\n")
        with open("/bin/true", "rb") as f:
            put("truncated-elf", f.read()[:300])
        put("noshdr-crafted", crafted_elf_without_section_headers(16 << 20))
        put("empty", b"")
        put("random", random.Random(7).randbytes(64 << 10))
        fifo = os.path.join(d, "fifo")
        os.mkfifo(fifo)
        cls.inputs["fifo"] = fifo
        sub = os.path.join(d, "a-directory")
        os.mkdir(sub)
        cls.inputs["directory"] = sub
        cls.inputs["dev-zero"] = "/dev/zero"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        require_root(self)

    def run_ss(self, *args, timeout=20):
        t0 = time.time()
        try:
            p = subprocess.run([SCHEDSCOPE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, timeout=timeout, cwd=self.dir)
        except subprocess.TimeoutExpired:
            self.fail(f"schedscope {' '.join(args)} hung (> {timeout}s)")
        return p, time.time() - t0

    def assert_clean_end(self, p, args, path=None):
        err = p.stderr.decode("utf-8", "replace")
        what = f"schedscope {' '.join(args)}: rc {p.returncode}, stderr {err!r}"
        self.assertGreaterEqual(p.returncode, 0, "killed by a signal: " + what)
        for mark in RAW_EXCEPTION_MARKS:
            self.assertNotIn(mark, err, what)
        if p.returncode != 0:
            lines = [l for l in err.splitlines() if not l.startswith("schedscope: warning:")]
            self.assertEqual(len(lines), 1, "one line of error expected: " + what)
            self.assertTrue(lines[0].startswith("schedscope: "), what)
            if path is not None:
                self.assertLessEqual(lines[0].count(path), 1, "the path named twice: " + what)

    def test_files_for_every_reading_command(self):
        commands = [("inspect",), ("inspect", "--json"), ("report",), ("report", "--json"),
                    ("replay", "--json"), ("replay", "--batch"),
                    ("export", "-o", os.path.join(self.dir, "out.pftrace"))]
        for name, path in sorted(self.inputs.items()):
            for cmd in commands:
                with self.subTest(input=name, cmd=" ".join(cmd)):
                    args = (*cmd, path)
                    p, took = self.run_ss(*args)
                    self.assert_clean_end(p, args, path)
                    self.assertLess(took, 10, f"{args} took {took:.1f}s")
                    if cmd[0] != "inspect" or name != "noshdr-crafted":
                        self.assertNotEqual(p.returncode, 0, f"{args} accepted {name}")

    def test_error_wording(self):
        cases = {
            "fifo": "not a regular file (a FIFO)",
            "directory": "is a directory",
            "dev-zero": "not a regular file (a character device)",
            "empty": "empty file",
            "notelf.txt": "not an ELF file",
        }
        for name, want in cases.items():
            with self.subTest(input=name):
                path = self.inputs[name]
                p, _ = self.run_ss("inspect", path)
                self.assertEqual(p.stderr.decode().strip().splitlines()[-1][:200].count(path), 1)
                self.assertIn(want, p.stderr.decode())
        p, _ = self.run_ss("report", self.inputs["fifo"])
        self.assertIn("not a regular file (a FIFO)", p.stderr.decode())

    def test_crafted_elf_without_section_headers_is_fast(self):
        p, took = self.run_ss("inspect", "--json", self.inputs["noshdr-crafted"])
        self.assert_clean_end(p, ("inspect",))
        self.assertLess(took, 5, f"16 MiB crafted segment took {took:.1f}s (the scan is quadratic?)")
        if p.returncode == 0:
            self.assertFalse(json.loads(p.stdout)["is_go"])

    def recordings(self):
        good = recording()
        deep = (b"[" * 1000000) + (b"]" * 1000000)
        return {
            "good": good,
            "truncated-header": good[:10],
            "truncated-meta": good[:30],
            "truncated-data": good[:-40],
            "meta-1M-deep": recording(meta=b'{"a":' + deep + b"}"),
            "meta-1M-open": recording(meta=b"{" * 1000000),
            "frame-1M-deep": recording(data=record(6, FRAME) + record(6, b'{"a":' + deep + b"}")),
            "info-1M-deep": recording(data=record(7, deep) + record(6, FINAL)),
            "trailer-1M-deep": recording(trailer=deep),
            "chunk-len-4G": file_header(abi_version()) + chunk(1, META)[:12] + b"\xff\xff\xff\xff" + b"\0" * 8,
            "chunk-stored-4G": recording()[:16] + chunk(1, META, stored_len=0xffffffff),
            "chunk-raw-4G-zstd": file_header(abi_version()) + chunk(1, META, raw_len=0xffffffff, codec=1),
            "record-len-4G": recording(data=record(6, FRAME, length=0xfffffff0)),
            "symbols-count-4G": recording(data=record(5, struct.pack("<I", 0xffffffff))),
            "random-after-magic": MAGIC + random.Random(3).randbytes(4096),
        }

    def test_hostile_recordings(self):
        for name, data in self.recordings().items():
            path = os.path.join(self.dir, name + ".sched")
            with open(path, "wb") as f:
                f.write(data)
            for cmd in (("report",), ("report", "--json"), ("replay", "--json"), ("replay", "--batch"),
                        ("export", "-o", path + ".pftrace")):
                with self.subTest(recording=name, cmd=" ".join(cmd)):
                    args = (*cmd, path)
                    p, took = self.run_ss(*args)
                    self.assert_clean_end(p, args, path)
                    self.assertLess(took, 10, f"{args} took {took:.1f}s")
                    if name == "good":
                        self.assertEqual(p.returncode, 0, p.stderr.decode())
                    if p.returncode == 0 and "--json" in cmd:
                        for line in p.stdout.decode().splitlines() if "replay" in cmd else [p.stdout.decode()]:
                            if line.strip():
                                json.loads(line)

    def test_deep_metadata_is_a_clear_error(self):
        path = os.path.join(self.dir, "deep-meta.sched")
        with open(path, "wb") as f:
            f.write(self.recordings()["meta-1M-deep"])
        p, _ = self.run_ss("report", path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("nested deeper than 128 levels", p.stderr.decode())

    def test_thread_name_not_utf8(self):
        if shutil.which("gcc") is None:
            self.skipTest("gcc not installed")
        src = os.path.join(self.dir, "badname.c")
        exe = os.path.join(self.dir, "badname")
        with open(src, "w") as f:
            f.write(C_PROGRAM)
        subprocess.run(["gcc", "-O1", "-o", exe, src], check=True)
        t = subprocess.Popen([exe], stdout=subprocess.PIPE)
        try:
            self.assertEqual(t.stdout.readline().strip(), b"ready")
            with open(f"/proc/{t.pid}/comm", "rb") as f:
                self.assertEqual(f.read().rstrip(b"\n"), BAD_NAME)
            args = ("top", "-p", str(t.pid), "--json", "-i", "200ms", "-n", "2")
            p, _ = self.run_ss(*args, timeout=30)
            self.assert_clean_end(p, args)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            frames = [json.loads(l) for l in p.stdout.decode("utf-8").splitlines() if l.startswith("{")]
            self.assertTrue(frames)
            names = {th.get("name") for fr in frames for th in fr.get("threads", [])}
            self.assertIn("bad\ufffd\ufffd\x1b[31m", names)

            # Text: the escape arrives escaped, not raw.
            p, _ = self.run_ss("top", "-p", str(t.pid), "--batch", "-i", "200ms", "-n", "1", timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            self.assertNotIn(b"\x1b", p.stdout)
            self.assertIn(b"bad\\xff\\xfe\\x1b[31m", p.stdout)

            rec = os.path.join(self.dir, "badname.sched")
            args = ("record", "-p", str(t.pid), "-d", "1s", "-i", "200ms", "-q", "-o", rec)
            p, _ = self.run_ss(*args, timeout=30)
            self.assert_clean_end(p, args)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            self.assertGreater(os.path.getsize(rec), 0)
            p, _ = self.run_ss("report", "--json", rec)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            rep = json.loads(p.stdout)
            self.assertIn("bad\ufffd\ufffd\x1b[31m", {th.get("name") for th in rep["threads"]})
            self.assertEqual(rep["target"]["comm"], "bad\ufffd\ufffd\x1b[31m")
            p, _ = self.run_ss("report", rec)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            self.assertNotIn(b"\x1b", p.stdout)
        finally:
            t.send_signal(signal.SIGKILL)
            t.wait()
            t.stdout.close()


if __name__ == "__main__":
    unittest.main()
