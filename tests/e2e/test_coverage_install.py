"""`make install` into a scratch DESTDIR: the binary lands at DESTDIR/PREFIX/bin/schedscope,
executable, and runs (--version, --help). Uses the build directory under test (BUILD=), so
the install step itself is what runs (the build is up to date)."""
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from common import BUILD, SCHEDSCOPE, SRC


@unittest.skipIf(shutil.which("make") is None, "make missing")
class Install(unittest.TestCase):
    def test_make_install_into_destdir(self):
        if not os.path.exists(SCHEDSCOPE):
            self.skipTest("not built")
        dest = tempfile.mkdtemp(prefix="schedscope-destdir-")
        self.addCleanup(shutil.rmtree, dest, True)
        r = subprocess.run(["make", "-C", SRC, "install", f"BUILD={BUILD}", f"DESTDIR={dest}",
                            "PREFIX=/opt/ss"], capture_output=True, text=True, timeout=900)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        binary = os.path.join(dest, "opt/ss/bin/schedscope")
        self.assertTrue(os.path.isfile(binary), os.listdir(dest))
        mode = os.stat(binary).st_mode
        self.assertEqual(stat.S_IMODE(mode), 0o755)
        # Nothing else was installed, and nothing outside DESTDIR.
        files = [os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs]
        self.assertEqual(files, ["opt/ss/bin/schedscope"])
        with open(binary, "rb") as a, open(SCHEDSCOPE, "rb") as b:
            self.assertEqual(a.read(), b.read(), "the installed binary is not the one built")
        v = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(v.returncode, 0, v.stderr)
        self.assertRegex(v.stdout.strip(), r"^schedscope \d+\.\d+\.\d+$")
        h = subprocess.run([binary, "top", "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(h.returncode, 0)
        self.assertIn("--pid", h.stdout)


if __name__ == "__main__":
    unittest.main()
