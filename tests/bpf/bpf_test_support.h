// Helpers shared by the BPF-tier tests (root only: they load and attach real programs).
#pragma once
#include <bpf/bpf.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <string>

#define REQUIRE_ROOT()                                                                \
  do {                                                                                \
    if (geteuid() != 0) GTEST_SKIP() << "BPF tests need root: skipped (run as root)"; \
  } while (0)

namespace schedscope::bpftest {

// Names of the BPF programs this process holds open (its fds), from the kernel.
inline std::set<std::string> programs_loaded_here() {
  std::set<std::string> out;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string fd = e->d_name;
    if (fd[0] < '0' || fd[0] > '9') continue;
    char target[64] = {};
    if (readlink(("/proc/self/fd/" + fd).c_str(), target, sizeof target - 1) <= 0) continue;
    if (std::string(target) != "anon_inode:bpf-prog") continue;
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(std::stoi(fd), &info, &len) == 0) out.insert(info.name);
  }
  closedir(d);
  return out;
}

}  // namespace schedscope::bpftest
