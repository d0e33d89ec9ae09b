"""A USDT probe in a shared library loaded after schedscope attached (dlopen) is found
when the mappings are re-scanned and counted from then on. The test builds, with gcc and
<sys/sdt.h> (Debian systemtap-sdt-dev), a small library whose function fires
sstest:hit (STAP_PROBE1) and a C program that dlopens it only when told to, fires it N
times on one thread and reports N and its tid: the ground truth."""
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from common import Proc, frames_until_final, require_root, schedscope

LIB_C = r"""
#include <sys/sdt.h>
int ss_fire(int i) { STAP_PROBE1(sstest, hit, i); return i + 1; }
"""

PROG_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
  int n = atoi(argv[2]);
  printf("{\"ev\":\"ready\",\"pid\":%d}\n", getpid());
  fflush(stdout);
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return 1;
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { printf("{\"ev\":\"error\",\"error\":\"%s\"}\n", dlerror()); return 1; }
  printf("{\"ev\":\"loaded\"}\n");
  fflush(stdout);
  /* Let the observer re-scan the mappings (once per interval) before firing. */
  if (!fgets(line, sizeof line, stdin)) return 1;
  int (*fire)(int) = (int (*)(int))dlsym(h, "ss_fire");
  int acc = 0;
  struct timespec d = {0, 2000000};
  for (int i = 0; i < n; i++) { acc = fire(acc); nanosleep(&d, NULL); }
  printf("{\"ev\":\"done\",\"hits\":%d,\"tid\":%ld}\n", acc, (long)syscall(SYS_gettid));
  fflush(stdout);
  sleep(2);
  return 0;
}
"""

HITS = 200


@unittest.skipIf(shutil.which("gcc") is None, "gcc missing")
class UsdtDlopen(unittest.TestCase):
    def setUp(self):
        require_root(self)
        if not any(os.path.exists(p) for p in ("/usr/include/sys/sdt.h",
                                               "/usr/include/x86_64-linux-gnu/sys/sdt.h")):
            self.skipTest("sys/sdt.h missing (systemtap-sdt-dev, scripts/install-deps.sh)")
        self.d = tempfile.mkdtemp(prefix="schedscope-dlopen-")
        self.addCleanup(shutil.rmtree, self.d, True)
        for name, src in (("lib.c", LIB_C), ("prog.c", PROG_C)):
            with open(os.path.join(self.d, name), "w") as f:
                f.write(src)
        self.lib = os.path.join(self.d, "libsstest.so")
        self.prog = os.path.join(self.d, "prog")
        for argv in (["gcc", "-O2", "-shared", "-fPIC", "-o", self.lib, os.path.join(self.d, "lib.c")],
                     ["gcc", "-O2", "-o", self.prog, os.path.join(self.d, "prog.c"), "-ldl"]):
            r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_probe_of_a_library_loaded_after_attach_is_counted(self):
        p = Proc([self.prog, self.lib, str(HITS)], stdin=True)
        self.addCleanup(p.stop, signal.SIGKILL)
        ready = p.wait_for(lambda o: o.get("ev") == "ready", 15)
        self.assertIsNotNone(ready)
        top = schedscope("top", "-p", str(ready["pid"]), "--batch", "--json", "-i", "300ms",
                         "--usdt", "sstest:hit")
        self.addCleanup(top.stop)
        first = top.wait_for(lambda o: "target" in o, 15)
        self.assertIsNotNone(first, top.stderr_text())
        # Not there yet: the library is not mapped.
        self.assertNotIn("libsstest.so", "".join(open(f"/proc/{ready['pid']}/maps").read()))
        p.send()
        self.assertIsNotNone(p.wait_for(lambda o: o.get("ev") == "loaded", 10))
        # Wait for a frame that has the probe attached (the re-scan found it).
        attached = top.wait_for(lambda f: any(x["probe"] == "sstest:hit" and x.get("locations", 0) > 0
                                              for x in f.get("usdt", {}).get("probes", [])), 10)
        self.assertIsNotNone(attached, top.stderr_text())
        p.send()
        done = p.wait_for(lambda o: o.get("ev") == "done", 30)
        self.assertIsNotNone(done)
        self.assertEqual(done["hits"], HITS)
        frames = frames_until_final(top, 20)
        fin = frames[-1]
        self.assertTrue(fin.get("final"), top.stderr_text())
        probes = [x for x in fin["usdt"]["probes"] if x["probe"] == "sstest:hit"]
        self.assertEqual(len(probes), 1, fin["usdt"]["probes"])
        pr = probes[0]
        self.assertEqual(os.path.basename(pr["file"]), "libsstest.so")
        self.assertEqual(pr["total"], HITS)
        by_tid = {t["tid"]: t["hits"] for t in pr["threads"]}
        self.assertEqual(by_tid.get(done["tid"]), HITS, pr["threads"])
        # Before the dlopen stderr said the probe was not found (yet).
        self.assertIn("not found (yet)", top.stderr_text())


if __name__ == "__main__":
    unittest.main()
