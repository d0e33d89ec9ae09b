// Where the tests find their ground-truth binaries. Everything lives in the repository
// (tests/fixtures, described in tests/fixtures/README) or in the build directory
// (make npm-bins); nothing outside either is read.
//   fixture(name)    tests/fixtures/bin/<name>       go1.19 builds (tests/fixtures/build.sh)
//   testbin(name)    tests/fixtures/testbins/bin/<name>   go1.21–1.26 selfreport programs
//   npm_binary(rel)  BUILD/npm-cache/<rel>          binaries from npm packages
//                                                    (tests/fixtures/npm/fetch.py)
//   usdt_python()    a CPython whose ELF carries the python:* USDT probes
//                    (tests/fixtures/usdt_python.py)
// A test whose binary is missing skips with the path and the reason (present_or_skip);
// `make test` under CI=true / STRICT=1 turns such skips into failures.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace schedscope::test {

inline std::string source_path(const std::string& rel) {
  return std::string(SCHEDSCOPE_SOURCE_DIR) + "/" + rel;
}

inline std::string fixture(const std::string& name) {
  return source_path("tests/fixtures/bin/" + name);
}

inline std::string testbin(const std::string& name) {
  return source_path("tests/fixtures/testbins/bin/" + name);
}

inline std::string npm_binary(const std::string& rel) {
  return std::string(SCHEDSCOPE_BUILD_DIR) + "/npm-cache/" + rel;
}

// Why a binary is missing: for npm binaries, the reason the download failed (written by
// tests/fixtures/npm/fetch.py next to the cache entry), else how to get it.
inline std::string missing_reason(const std::string& path) {
  const std::string cache = std::string(SCHEDSCOPE_BUILD_DIR) + "/npm-cache/";
  if (path.rfind(cache, 0) == 0) {
    const std::string key = path.substr(cache.size(), path.find('/', cache.size()) - cache.size());
    std::ifstream in(cache + key + ".error");
    std::string why;
    if (std::getline(in, why) && !why.empty()) return "not downloaded: " + why;
    return "not downloaded (make npm-bins)";
  }
  if (path.rfind(source_path("tests/fixtures/"), 0) == 0) {
    return "fixture missing from the checkout (tests/fixtures/README)";
  }
  return "not built (make workloads)";
}

// True when path exists; otherwise marks the current test skipped (with the path and
// why it is missing) and returns false, so loops over several binaries can `continue`.
inline bool present_or_skip(const std::string& path) {
  if (std::filesystem::exists(path)) return true;
  [&] { GTEST_SKIP() << "test binary not available: " << path << ": " << missing_reason(path); }();
  return false;
}

// The CPython with USDT probes, found by tests/fixtures/usdt_python.py (candidate
// pythons' ELF notes); empty with *why set when there is none.
inline std::string usdt_python(std::string* why) {
  // Debian's python3 runs the finder when there (a pyenv shim costs seconds per start).
  const std::string py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  const std::string cmd = py + " '" + source_path("tests/fixtures/usdt_python.py") + "' 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) {
    *why = "cannot run " + cmd;
    return "";
  }
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, f) != nullptr) out += buf;
  const int rc = pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (rc != 0 || out.empty() || out[0] != '/') {
    *why = out.empty() ? "tests/fixtures/usdt_python.py failed" : out;
    return "";
  }
  return out;
}

}  // namespace schedscope::test
