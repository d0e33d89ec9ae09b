// The test infrastructure itself: the strict summary of a tier (tests/testsummary.py),
// the reasons tests/fixtures/npm/fetch.py records when a download fails, and the USDT
// python discovery (tests/fixtures/usdt_python.py). None of these needs the network.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

struct Run {
  int status;
  std::string out;
};

Run sh(const std::string& cmd) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[512];
  while (f != nullptr && fgets(buf, sizeof buf, f) != nullptr) out += buf;
  const int rc = f != nullptr ? pclose(f) : -1;
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

std::string src(const std::string& rel) { return std::string(SCHEDSCOPE_SOURCE_DIR) + "/" + rel; }

// Debian's python3 when there (a pyenv shim first on PATH costs seconds per start).
std::string python() {
  return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

class TmpDir {
 public:
  TmpDir() {
    char tmpl[] = "/tmp/schedscope-tools-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    path = tmpl;
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
  std::string read(const std::string& name) const {
    std::ifstream in(path / name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path path;
};

const char* kXml = R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" name="AllTests">
  <testsuite name="S" tests="3">
    <testcase name="Ok" status="run" result="completed" classname="S" />
    <testcase name="Gone" status="run" result="skipped" classname="S">
      <skipped message="x.cpp:12&#x0A;binary missing: /a/b&#x0A;Google Test trace:&#x0A;x.cpp:11: /a/b"><![CDATA[x]]></skipped>
    </testcase>
    <testcase name="Ok2" status="run" result="completed" classname="S" />
  </testsuite>
</testsuites>
)";

}  // namespace

TEST(TestSummary, SkipReasonPrintedAndStrictModeFailsIt) {
  TmpDir d;
  const std::string xml = d.file("r.xml", kXml);
  const std::string base = python() + " '" + src("tests/testsummary.py") + "' gtest unit '" + xml +
                           "' '" + (d.path / "s.txt").string() + "'";
  auto lax = sh("STRICT=0 " + base);
  EXPECT_EQ(lax.status, 0) << lax.out;
  EXPECT_NE(lax.out.find("=== unit: 3 tests: 2 passed, 0 failed, 1 skipped: PASS"),
            std::string::npos)
      << lax.out;
  EXPECT_NE(lax.out.find("skipped: S.Gone: binary missing: /a/b\n"), std::string::npos) << lax.out;
  auto strict = sh("STRICT=1 " + base);
  EXPECT_EQ(strict.status, 1) << strict.out;
  EXPECT_NE(strict.out.find("1 skipped (strict): FAIL"), std::string::npos) << strict.out;
  EXPECT_NE(strict.out.find("NOT ALLOWED in strict mode): S.Gone: binary missing"),
            std::string::npos)
      << strict.out;
  EXPECT_EQ(d.read("s.txt"), strict.out);
  // A failing test binary without results (crash) fails the tier.
  auto crash = sh(python() + " '" + src("tests/testsummary.py") + "' gtest unit '" +
                  (d.path / "none.xml").string() + "' '" + (d.path / "s2.txt").string() + "'");
  EXPECT_EQ(crash.status, 1) << crash.out;
  EXPECT_NE(crash.out.find("crashed or did not start"), std::string::npos) << crash.out;
}

TEST(NpmFetch, RecordsWhyADownloadFailed) {
  TmpDir d;
  const std::string fetch =
      "'" + src("tests/fixtures/npm/fetch.py") + "' '" + (d.path / "cache").string() + "' ";
  // No npm on PATH.
  auto nonpm = sh("env PATH=/nonexistent /usr/bin/python3 " + fetch + "lefthook-2.2.2");
  EXPECT_EQ(nonpm.status, 0) << nonpm.out;
  const std::string why = d.read("cache/lefthook-2.2.2.error");
  EXPECT_NE(why.find("npm is not installed"), std::string::npos) << why;
  EXPECT_FALSE(fs::exists(d.path / "cache/lefthook-2.2.2/package/bin/lefthook"));
  if (sh("command -v npm").status != 0) GTEST_SKIP() << "npm not installed (install-deps.sh)";
  // A registry nothing listens on: the connection error, with the registry named.
  auto refused = sh("npm_config_fetch_retries=0 npm_config_registry=http://127.0.0.1:9/ " +
                    python() + " " + fetch + "esbuild-0.14.30");
  EXPECT_EQ(refused.status, 0) << refused.out;
  const std::string why2 = d.read("cache/esbuild-0.14.30.error");
  EXPECT_NE(why2.find("npm pack esbuild-linux-64@0.14.30 failed: connection failed (ECONNREFUSED)"),
            std::string::npos)
      << why2;
  EXPECT_NE(why2.find("registry http://127.0.0.1:9/"), std::string::npos) << why2;
  EXPECT_NE(refused.out.find("esbuild-0.14.30 NOT available"), std::string::npos) << refused.out;
}

TEST(UsdtPython, OnlyAnElfWithPythonProbesQualifies) {
  const std::string finder = python() + " '" + src("tests/fixtures/usdt_python.py") + "'";
  for (const char* not_python : {"/bin/true", "/nonexistent/python3"}) {
    auto r = sh(std::string("SCHEDSCOPE_USDT_PYTHON=") + not_python + " " + finder);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(r.out.rfind("no python with USDT probes", 0), 0u) << r.out;
  }
  TmpDir d;
  const std::string script = d.file("python3", "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n");
  fs::permissions(script, fs::perms::owner_all);
  auto shim = sh("SCHEDSCOPE_USDT_PYTHON='" + script + "' " + finder);
  EXPECT_EQ(shim.status, 1) << shim.out;
  EXPECT_NE(shim.out.find("not ELF"), std::string::npos) << shim.out;
}

// A failed test's summary line says why, for a CI log that keeps only its tail: gtest's
// message without its file:line, and the e2e runner's exception in one line (a subtest's
// with its parameters).
TEST(TestSummary, FailuresCarryTheirReason) {
  TmpDir d;
  const std::string xml = d.file("f.xml", R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" name="AllTests">
  <testsuite name="S" tests="2">
    <testcase name="Ok" status="run" result="completed" classname="S" />
    <testcase name="Bad" status="run" result="completed" classname="S">
      <failure message="x.cpp:40&#x0A;Expected equality of these values:&#x0A;  a&#x0A;    Which is: 1" type=""><![CDATA[x]]></failure>
    </testcase>
  </testsuite>
</testsuites>
)");
  auto g = sh("STRICT=1 " + python() + " '" + src("tests/testsummary.py") + "' gtest unit '" + xml +
              "' '" + (d.path / "s.txt").string() + "'");
  EXPECT_EQ(g.status, 1) << g.out;
  EXPECT_NE(g.out.find("FAILED: S.Bad: Expected equality of these values: a Which is: 1\n"),
            std::string::npos)
      << g.out;
  d.file("t_fails.py",
         "import unittest\n"
         "class T(unittest.TestCase):\n"
         "    def test_eq(self):\n"
         "        self.assertEqual(1, 2, 'one is not two')\n"
         "    def test_sub(self):\n"
         "        for i in (1, 2):\n"
         "            with self.subTest(i=i):\n"
         "                self.assertLess(i, 2)\n"
         "    def test_ok(self):\n"
         "        pass\n");
  auto e = sh("PYTHONPATH='" + d.path.string() + "' " + python() + " '" + src("tests/run_e2e.py") +
              "' '" + (d.path / "e.txt").string() + "' t_fails");
  EXPECT_EQ(e.status, 1) << e.out;
  const std::string sum = d.read("e.txt");
  EXPECT_NE(sum.find("3 tests: 1 passed, 2 failed"), std::string::npos) << sum;
  EXPECT_NE(sum.find("FAILED: t_fails.T.test_eq: AssertionError: 1 != 2 : one is not two\n"),
            std::string::npos)
      << sum;
  EXPECT_NE(sum.find("FAILED: t_fails.T.test_sub: (i=2): AssertionError: 2 not less than 2\n"),
            std::string::npos)
      << sum;
}
