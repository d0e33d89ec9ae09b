// ss-floor — the benchmark's floor observer (make bench, docs/performance.md).
//
// Attaches the empty, tgid-filtered programs of bpf/floor.bpf.c to schedscope's default
// hooks (and with -S also to raw_syscalls sys_enter/sys_exit), prints one "attached"
// line, holds them for the duration given (or until SIGINT/SIGTERM) and exits 0. With -t
// the scheduler programs also keep one slot per thread (its switch and wakeup times
// and totals): the least a per-thread off-CPU observer does; with -S too, the syscall
// programs keep the call in flight per CPU and a count and total latency of the calls.
// With -t it prints what it kept when it stops: "state threads=N of_target=N calls=N".
//
//   ss-floor -p PID [-S] [-t] [-d SECONDS]
#include <bpf/libbpf.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "floor.skel.h"

namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

int usage() {
  std::fprintf(stderr, "usage: ss-floor -p PID [-S] [-t] [-d SECONDS]\n");
  return 2;
}

// The per-CPU slot of floor.bpf.c's `floor_calls` (struct floor_call there).
struct FloorCall {
  __u64 enter_ns, count, total_ns;
  __u32 tid, pad;
};

// (-t) What the state programs kept, on one line at the end: the threads with an entry,
// how many of them are threads of the target now, and the calls completed (-S).
void print_state(floor_bpf* skel, long pid) {
  unsigned threads = 0, of_target = 0;
  // floor.bpf.c's `floor_slots`: an 8-byte holder id (kernel tgid << 32 | tid, 0 free),
  // then the state.
  const uint32_t nslots = bpf_map__max_entries(skel->maps.floor_slots);
  std::vector<unsigned char> slot(bpf_map__value_size(skel->maps.floor_slots));
  for (__u32 i = 0; i < nslots; i++) {
    if (bpf_map__lookup_elem(skel->maps.floor_slots, &i, sizeof i, slot.data(), slot.size(), 0) !=
        0)
      continue;
    uint64_t id = 0;
    std::memcpy(&id, slot.data(), sizeof id);
    if (!id) continue;
    ++threads;
    std::string task = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(uint32_t(id));
    if (access(task.c_str(), F_OK) == 0) ++of_target;
  }
  unsigned long long calls = 0;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu > 0 && bpf_map__value_size(skel->maps.floor_calls) == sizeof(FloorCall)) {
    std::vector<FloorCall> per_cpu(static_cast<size_t>(ncpu));
    __u32 zero = 0;
    if (bpf_map__lookup_elem(skel->maps.floor_calls, &zero, sizeof zero, per_cpu.data(),
                             per_cpu.size() * sizeof(FloorCall), 0) == 0)
      for (const FloorCall& c : per_cpu) calls += c.count;
  }
  std::printf("state threads=%u of_target=%u calls=%llu\n", threads, of_target, calls);
  std::fflush(stdout);
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
  if (state) print_state(skel, pid);
  floor_bpf__destroy(skel);
  return 0;
}
