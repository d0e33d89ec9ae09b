// ss-floor — the benchmark's floor observer (make bench, docs/performance.md).
//
// Attaches the empty, tgid-filtered programs of bpf/floor.bpf.c to schedscope's default
// hooks (and with -S also to raw_syscalls sys_enter/sys_exit), prints one "attached"
// line, holds them for the duration given (or until SIGINT/SIGTERM) and exits 0. With -t
// the scheduler programs also keep one hash entry per thread (its switch and wakeup times
// and totals): the least a per-thread off-CPU observer does.
//
//   ss-floor -p PID [-S] [-t] [-d SECONDS]
#include <bpf/libbpf.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "floor.skel.h"

namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

int usage() {
  std::fprintf(stderr, "usage: ss-floor -p PID [-S] [-t] [-d SECONDS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  long pid = 0;
  bool syscalls = false;
  bool state = false;
  double duration = 0;  // 0: until signalled
  int opt;
  while ((opt = getopt(argc, argv, "p:Std:h")) != -1) {
    switch (opt) {
      case 'p': pid = std::strtol(optarg, nullptr, 10); break;
      case 'S': syscalls = true; break;
      case 't':
        state = true;
        break;
      case 'd': duration = std::strtod(optarg, nullptr); break;
      default: return usage();
    }
  }
  if (pid <= 0) return usage();
  if (kill(static_cast<pid_t>(pid), 0) != 0) {
    std::fprintf(stderr, "ss-floor: no process %ld: %s\n", pid, std::strerror(errno));
    return 1;
  }
  libbpf_set_print([](libbpf_print_level level, const char* fmt, va_list ap) {
    return level == LIBBPF_WARN ? std::vfprintf(stderr, fmt, ap) : 0;
  });
  floor_bpf* skel = floor_bpf__open();
  if (!skel) {
    std::fprintf(stderr, "ss-floor: open failed\n");
    return 1;
  }
  bpf_program__set_autoload(skel->progs.floor_sys_enter, syscalls);
  bpf_program__set_autoload(skel->progs.floor_sys_exit, syscalls);
  skel->rodata->keep_state = state ? 1 : 0;
  if (int err = floor_bpf__load(skel)) {
    std::fprintf(stderr, "ss-floor: load failed: %s\n", std::strerror(-err));
    floor_bpf__destroy(skel);
    return 1;
  }
  __u32 key = static_cast<__u32>(pid);
  __u64 one = 1;
  if (bpf_map__update_elem(skel->maps.targets, &key, sizeof key, &one, sizeof one, BPF_ANY) != 0) {
    std::fprintf(stderr, "ss-floor: cannot add the target: %s\n", std::strerror(errno));
    floor_bpf__destroy(skel);
    return 1;
  }
  skel->bss->target_bits[(key % 65536) / 64] |= __u64(1) << (key % 64);
  if (int err = floor_bpf__attach(skel)) {
    std::fprintf(stderr, "ss-floor: attach failed: %s\n", std::strerror(-err));
    floor_bpf__destroy(skel);
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  std::printf("attached pid=%ld hooks=%s%s\n", pid, syscalls ? "default+raw_syscalls" : "default",
              state ? " state=per-thread" : "");
  std::fflush(stdout);
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(duration);
  while (!g_stop && (duration <= 0 || std::chrono::steady_clock::now() < until) &&
         kill(static_cast<pid_t>(pid), 0) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  floor_bpf__destroy(skel);
  return 0;
}
