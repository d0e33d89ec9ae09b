// Helpers shared by the BPF-tier tests (root only: they load and attach real programs).
#pragma once
#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "probe/session.h"

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

// A child process in its own process group; killed (the whole group) on destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& cwd = "", bool capture = true) {
    int fds[2] = {-1, -1};
    if (capture && pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
      int devnull = open("/dev/null", O_RDWR);
      dup2(capture ? fds[1] : devnull, 1);
      dup2(devnull, 2);
      dup2(devnull, 0);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    if (capture) {
      close(fds[1]);
      out_ = fds[0];
    }
  }
  ~Child() {
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  [[nodiscard]] int pid() const { return pid_; }

  // Reads `n` JSON lines from stdout within `timeout`.
  std::vector<nlohmann::json> json_lines(size_t n, std::chrono::milliseconds timeout) {
    std::vector<nlohmann::json> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      ssize_t r = read(out_, buf, sizeof buf);
      if (r <= 0) break;
      buf_.append(buf, static_cast<size_t>(r));
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded()) out.push_back(std::move(j));
      }
    }
    return out;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buf_;
};

// A session on process `pid`, attached (nullptr, with a test failure, when either fails).
inline std::unique_ptr<probe::Session> open_for(pid_t pid, bool all_syscalls,
                                                uint64_t ring = 1 << 20,
                                                uint64_t offcpu_min = 1'000'000,
                                                uint32_t thread_slots = SS_THREAD_SLOTS) {
  probe::SessionConfig cfg;
  cfg.thread_slots = thread_slots;
  cfg.tgid = uint32_t(pid);
  cfg.all_syscalls = all_syscalls;
  cfg.ringbuf_bytes = ring;
  cfg.offcpu_min_ns = offcpu_min;
  auto s = probe::Session::open(cfg);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  if (!s.ok()) return nullptr;
  auto st = (*s)->attach();
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  return std::move(s.value());
}

// The kernel's state of thread `tid`, from a snapshot.
inline std::optional<ss_thread_state> thread_entry(probe::Session& s, uint32_t tid) {
  auto snap = s.snapshot();
  EXPECT_TRUE(snap.ok());
  if (snap.ok())
    for (const auto& e : snap->threads)
      if (e.tid == tid) return e.st;
  return std::nullopt;
}

}  // namespace schedscope::bpftest
