// BPF tier: the real programs on the real kernel against a forked child that does
// exactly what the test tells it (root only; skips with a visible message otherwise).
#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "app/observe.h"
#include "bpf_test_support.h"
#include "elf/elf_file.h"
#include "go/probes.h"
#include "probe/session.h"
#include "probe/syscalls.h"

using namespace schedscope;
using schedscope::bpftest::open_for;
using schedscope::bpftest::programs_loaded_here;
using schedscope::bpftest::thread_entry;

namespace {

// A child process held at a gate; runs `body` once released, then exits.
struct Child {
  pid_t pid = -1;
  int gate = -1;
  explicit Child(const std::function<void()>& body) {
    int p[2];
    if (pipe(p) != 0) abort();
    pid = fork();
    if (pid == 0) {
      close(p[1]);
      char b;
      if (read(p[0], &b, 1) != 1) _exit(2);
      body();
      _exit(0);
    }
    close(p[0]);
    gate = p[1];
  }
  void release() {
    char b = 1;
    ASSERT_EQ(write(gate, &b, 1), 1);
    close(gate);
  }
  int wait() {
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
  }
};

void sleep_ms(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  syscall(SYS_nanosleep, &ts, nullptr);
}

struct Collected {
  std::vector<ss_thread_new> created;
  std::vector<ss_thread_exit> exited;
  std::vector<ss_offcpu> offcpu;
  std::vector<ss_syscall_slow> slow;
};

void drain(probe::Session& s, Collected& c) {
  probe::EventFn fn = [&](const ss_hdr* h, size_t size) {
    switch (h->type) {
      case SS_EV_THREAD_NEW:
        ASSERT_GE(size, sizeof(ss_thread_new));
        c.created.push_back(*reinterpret_cast<const ss_thread_new*>(h));
        break;
      case SS_EV_THREAD_EXIT:
        ASSERT_GE(size, sizeof(ss_thread_exit));
        c.exited.push_back(*reinterpret_cast<const ss_thread_exit*>(h));
        break;
      case SS_EV_OFFCPU:
        ASSERT_GE(size, sizeof(ss_offcpu));
        c.offcpu.push_back(*reinterpret_cast<const ss_offcpu*>(h));
        break;
      case SS_EV_SYSCALL_SLOW:
        ASSERT_GE(size, sizeof(ss_syscall_slow));
        c.slow.push_back(*reinterpret_cast<const ss_syscall_slow*>(h));
        break;
      default:
        ADD_FAILURE() << "unknown record type " << h->type;
    }
  };
  for (int i = 0; i < 5; i++) ASSERT_TRUE(s.poll(20, fn).ok());
}

// The exited threads of process `pid` but its main thread, sorted, each exit record
// checked for the whole life of a thread that slept `sleeps` times `ms` ms: its process,
// its sleeps and their length, its time on CPU.
std::vector<uint32_t> exited_sleepers(const Collected& c, pid_t pid, int sleeps, int ms) {
  std::vector<uint32_t> exited;
  for (const auto& e : c.exited) {
    if (e.tid == uint32_t(pid)) continue;
    exited.push_back(e.tid);
    EXPECT_EQ(e.final.tgid, uint32_t(pid));
    EXPECT_GE(e.final.offcpu_count[SS_OFF_SLEEP], uint64_t(sleeps)) << e.tid;
    EXPECT_GE(e.final.offcpu_ns[SS_OFF_SLEEP], uint64_t(sleeps) * uint64_t(ms) * 1'000'000)
        << e.tid;
    EXPECT_GT(e.final.oncpu_ns, 0u) << e.tid;
  }
  std::sort(exited.begin(), exited.end());
  return exited;
}

}  // namespace

TEST(BpfSession, SleepsShowAsBlockedInNanosleepWithTheirLength) {
  REQUIRE_ROOT();
  constexpr int kSleeps = 10, kMs = 30;
  Child child([] {
    for (int i = 0; i < kSleeps; i++) sleep_ms(kMs);
  });
  auto s = open_for(child.pid, false);
  ASSERT_TRUE(s);
  child.release();
  child.wait();
  Collected c;
  drain(*s, c);
  auto snap = s->snapshot();
  ASSERT_TRUE(snap.ok());
  const int nr = *probe::syscall_number("nanosleep");
  uint64_t count = 0, total = 0;
  for (const auto& a : snap->sc_block)
    if (a.nr == nr) {
      count = a.stat.count;
      total = a.stat.total_ns;
    }
  EXPECT_EQ(count, uint64_t(kSleeps));
  // Each sleep blocks ~30 ms: the total is within [30, 45] ms per sleep.
  EXPECT_GE(total, uint64_t(kSleeps) * kMs * 1'000'000);
  EXPECT_LE(total, uint64_t(kSleeps) * (kMs + 15) * 1'000'000);
  int long_sleeps = 0;
  for (const auto& e : c.offcpu)
    if (e.tid == uint32_t(child.pid) && e.syscall_nr == nr && e.reason == SS_OFF_SLEEP) {
      long_sleeps++;
      EXPECT_GE(e.h.ts - e.start_ns, uint64_t(kMs) * 1'000'000);
      EXPECT_EQ(e.args[1], 0u);  // rem == NULL
    }
  EXPECT_EQ(long_sleeps, kSleeps);
  if (long_sleeps != kSleeps || count != uint64_t(kSleeps)) {
    for (const auto& e : c.offcpu)
      printf("offcpu tid=%u reason=%u nr=%d dur=%.2fms rq=%.2fms\n", e.tid, e.reason, e.syscall_nr,
             double(e.h.ts - e.start_ns) / 1e6, double(e.rq_ns) / 1e6);
    for (const auto& a : snap->sc_block)
      printf("sc_block nr=%d count=%llu\n", a.nr, (unsigned long long)a.stat.count);
  }
  // The main thread exited with its totals.
  ASSERT_EQ(c.exited.size(), 1u);
  EXPECT_EQ(c.exited[0].tid, uint32_t(child.pid));
  for (int r = 0; r < SS_OFF_REASONS; r++)
    if (long_sleeps != kSleeps)
      printf("final reason %d: %llu ns in %llu\n", r,
             (unsigned long long)c.exited[0].final.offcpu_ns[r],
             (unsigned long long)c.exited[0].final.offcpu_count[r]);
  EXPECT_TRUE(c.exited[0].is_leader);
  EXPECT_GE(c.exited[0].final.offcpu_ns[SS_OFF_SLEEP], uint64_t(kSleeps) * kMs * 1'000'000);
}

// A 32-bit call (int $0x80) leaves its number from the i386 table in orig_ax: nanosleep
// there is 162, sync in the 64-bit table. It is no 64-bit call, whatever site the thread
// blocked at before (its last syscall site is known, and read no more): the thread
// alternates 32-bit and 64-bit sleeps at two sites.
TEST(BpfSession, A32BitCallIsNotTakenForThe64BitCallOfItsNumber) {
  REQUIRE_ROOT();
  constexpr int kSleeps = 4, kMs = 30;
  Child child([] {
    // The i386 timespec (two 32-bit words) below 4 GiB, where int $0x80 can name it.
    auto* ts = static_cast<int32_t*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0));
    if (ts == MAP_FAILED) _exit(4);
    ts[0] = 0;
    ts[1] = kMs * 1'000'000;
    for (int i = 0; i < kSleeps; i++) {
      long r = 162;  // i386 nanosleep
      __asm__ volatile("int $0x80" : "+a"(r) : "b"(ts), "c"(0L) : "memory");
      if (r != 0) _exit(3);  // no 32-bit emulation in this kernel
      sleep_ms(kMs);
    }
  });
  auto s = open_for(child.pid, false);
  ASSERT_TRUE(s);
  child.release();
  const int st = child.wait();
  if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
    GTEST_SKIP() << "no 32-bit syscalls (IA32 emulation) here";
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  Collected c;
  drain(*s, c);
  auto snap = s->snapshot();
  ASSERT_TRUE(snap.ok());
  const int nanosleep = *probe::syscall_number("nanosleep"), sync = *probe::syscall_number("sync");
  ASSERT_EQ(sync, 162);
  std::map<int, uint64_t> blocked;
  for (const auto& a : snap->sc_block) blocked[a.nr] = a.stat.count;
  EXPECT_EQ(blocked[nanosleep], uint64_t(kSleeps));
  EXPECT_EQ(blocked[sync], 0u) << "a 32-bit nanosleep taken for sync";
  int in_none = 0, in_nanosleep = 0;
  for (const auto& e : c.offcpu) {
    if (e.tid != uint32_t(child.pid) || e.reason != SS_OFF_SLEEP) continue;
    EXPECT_NE(e.syscall_nr, sync);
    in_none += e.syscall_nr == SS_NO_SYSCALL;
    in_nanosleep += e.syscall_nr == nanosleep;
  }
  EXPECT_EQ(in_none, kSleeps);
  EXPECT_EQ(in_nanosleep, kSleeps);
}

// A thread blocked in a page fault is in no syscall: the exception entry leaves -1 in the
// saved orig_ax on x86-64 (were it the error code, a user read fault would be taken for
// call 4, stat). Each fault waits ~30 ms on a userfaultfd handler thread before its page
// is filled, so its off-CPU interval is long enough to be sent; the child also makes one
// nanosleep per fault, whose intervals must keep their call.
TEST(BpfSession, AThreadBlockedInAPageFaultIsInNoSyscall) {
  REQUIRE_ROOT();
  static constexpr int kFaults = 5, kMs = 30;
  const long page = sysconf(_SC_PAGESIZE);
  Child child([&] {
    int uffd = int(syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
    if (uffd < 0) _exit(3);
    uffdio_api api{};
    api.api = UFFD_API;
    if (ioctl(uffd, UFFDIO_API, &api) != 0) _exit(4);
    auto* region = static_cast<char*>(mmap(nullptr, size_t(kFaults * page), PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (region == MAP_FAILED) _exit(5);
    uffdio_register reg{};
    reg.range.start = uintptr_t(region);
    reg.range.len = uint64_t(kFaults * page);
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) _exit(6);
    pthread_t handler;
    static int s_uffd;
    s_uffd = uffd;
    auto serve = [](void*) -> void* {  // each fault: wait kMs, then fill its page with zeroes
      for (int i = 0; i < kFaults; i++) {
        uffd_msg msg{};
        if (read(s_uffd, &msg, sizeof msg) != sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT)
          _exit(7);
        sleep_ms(kMs);
        uffdio_zeropage z{};
        z.range.start = msg.arg.pagefault.address & ~uint64_t(sysconf(_SC_PAGESIZE) - 1);
        z.range.len = uint64_t(sysconf(_SC_PAGESIZE));
        if (ioctl(s_uffd, UFFDIO_ZEROPAGE, &z) != 0) _exit(8);
      }
      return nullptr;
    };
    if (pthread_create(&handler, nullptr, serve, nullptr) != 0) _exit(9);
    for (int i = 0; i < kFaults; i++) {
      if (*static_cast<volatile char*>(region + i * page) != 0) _exit(10);
      sleep_ms(kMs);
    }
    pthread_join(handler, nullptr);
  });
  auto s = open_for(child.pid, false);
  ASSERT_TRUE(s);
  child.release();
  int st = child.wait();
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "the child failed: " << st;
  Collected c;
  drain(*s, c);
  const int nanosleep_nr = *probe::syscall_number("nanosleep");
  int none = 0, sleeps = 0;
  for (const auto& e : c.offcpu) {
    if (e.tid != uint32_t(child.pid) || e.h.ts - e.start_ns < uint64_t(kMs - 5) * 1'000'000)
      continue;
    if (e.syscall_nr == nanosleep_nr)
      sleeps++;
    else if (e.syscall_nr == SS_NO_SYSCALL && e.reason != SS_OFF_PREEMPTED)
      none++;
    else
      ADD_FAILURE() << "a block of " << double(e.h.ts - e.start_ns) / 1e6
                    << " ms taken for syscall " << e.syscall_nr << " (reason " << e.reason << ")";
  }
  EXPECT_EQ(none, kFaults) << "the page faults";
  EXPECT_EQ(sleeps, kFaults);
}

namespace {

uint64_t mono_ns() {  // the clock of bpf_ktime_get_ns
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1'000'000'000ull + uint64_t(t.tv_nsec);
}

// `handler` for SIGUSR1, with SA_RESTART: a call it interrupts is restarted after it.
void on_sigusr1_restart(void (*handler)(int)) {
  struct sigaction sa{};
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
}


}  // namespace

// A call restarted after a signal (SA_RESTART) is one block, however long the handler ran
// on CPU: Go's sysmon signals a goroutine stuck in a raw syscall every ~10 ms, and on a
// loaded machine the woken thread can spend milliseconds on CPU (preempted slice after
// slice) before the call is restarted. A call that returned and is made again is a new one.
TEST(BpfSession, ACallRestartedAfterASignalIsOneBlockEvenAfterALongHandler) {
  REQUIRE_ROOT();
  constexpr int kSignals = 8, kSpinMs = 5;
  int data[2];
  ASSERT_EQ(pipe(data), 0);
  Child child([&] {
    on_sigusr1_restart([](int) {  // kSpinMs of CPU time, then the kernel restarts the read
      timespec a, b;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
      do clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
      while ((b.tv_sec - a.tv_sec) * 1'000'000'000L + (b.tv_nsec - a.tv_nsec) < kSpinMs * 1'000'000L);
    });
    close(data[1]);
    char b;
    if (read(data[0], &b, 1) != 1) _exit(3);  // one block, restarted after each signal
    if (read(data[0], &b, 1) != 1) _exit(4);  // a new call: a new block
  });
  close(data[0]);
  auto s = open_for(child.pid, false);
  ASSERT_TRUE(s);
  const int read_nr = *probe::syscall_number("read");
  auto block_of_child = [&]() -> std::pair<int, uint64_t> {
    auto e = thread_entry(*s, uint32_t(child.pid));
    if (e && e->state == SS_TS_OFFCPU) return {e->block_nr, e->block_since_ns};
    return {SS_NO_SYSCALL, 0};
  };
  child.release();
  sleep_ms(50);
  const uint64_t before_signals = mono_ns();
  for (int i = 0; i < kSignals; i++) {
    // Sent to the thread (as Go's sysmon does) and to the process, in turn.
    if (i % 2)
      ASSERT_EQ(syscall(SYS_tgkill, child.pid, child.pid, SIGUSR1), 0);
    else
      ASSERT_EQ(kill(child.pid, SIGUSR1), 0);
    sleep_ms(30);
  }
  auto [nr1, since1] = block_of_child();
  EXPECT_EQ(nr1, read_nr);
  EXPECT_GT(since1, 0u);
  EXPECT_LT(since1, before_signals) << "the block started again after a signal, "
                                    << double(since1 - before_signals) / 1e6 << " ms later";
  char b = 1;
  const uint64_t written = mono_ns();
  ASSERT_EQ(write(data[1], &b, 1), 1);
  sleep_ms(50);
  auto [nr2, since2] = block_of_child();
  EXPECT_EQ(nr2, read_nr);
  EXPECT_GT(since2, written) << "the second read was taken for the first";
  ASSERT_EQ(write(data[1], &b, 1), 1);
  close(data[1]);
  int st = child.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

// The kernel at times runs a woken thread with no sched_switch event for it (seen on this
// machine's 6.18 kernel under load, by bpftrace's own tracepoint too). The switch-out that
// follows then closes the block by itself; when the wakeup found a signal pending, the
// restarted call still continues the block. The missed switch-in is planted: while the
// handler runs (it spins until told to return), the thread's entry is put back to "off
// CPU, blocked in read, woken by a signal just now", as if its switch-in had not been seen.
int g_handler_go_fd = -1;

TEST(BpfSession, ARestartWhoseSwitchInWasNotSeenStillContinuesTheBlock) {
  REQUIRE_ROOT();
  int data[2], go[2];
  ASSERT_EQ(pipe(data), 0);
  ASSERT_EQ(pipe2(go, O_NONBLOCK), 0);
  Child child([&] {
    g_handler_go_fd = go[0];
    on_sigusr1_restart([](int) {  // on CPU (a non-blocking read never sleeps) until told
      char c;
      while (read(g_handler_go_fd, &c, 1) != 1) {
      }
    });
    close(data[1]);
    char b;
    if (read(data[0], &b, 1) != 1) _exit(3);
  });
  close(data[0]);
  close(go[0]);
  auto s = open_for(child.pid, false);
  ASSERT_TRUE(s);
  const uint32_t tid = uint32_t(child.pid);
  const int read_nr = *probe::syscall_number("read");
  auto entry = [&] { return thread_entry(*s, tid); };
  child.release();
  sleep_ms(50);
  auto blocked = entry();
  ASSERT_TRUE(blocked);
  ASSERT_EQ(blocked->state, uint32_t(SS_TS_OFFCPU));
  ASSERT_EQ(blocked->block_nr, read_nr);
  const uint64_t since = blocked->block_since_ns;
  ASSERT_GT(since, 0u);
  ASSERT_EQ(syscall(SYS_tgkill, child.pid, child.pid, SIGUSR1), 0);
  std::optional<ss_thread_state> running;
  for (int i = 0; i < 2000; i++) {  // the handler spins: it is seen on CPU sooner or later
    running = entry();
    if (running && running->state == SS_TS_ONCPU) break;
    usleep(500);
  }
  ASSERT_TRUE(running && running->state == SS_TS_ONCPU) << "the handler never ran";
  ss_thread_state planted = *blocked;  // the state before the unseen switch-in
  planted.wakeup_ns = mono_ns();
  planted.signal_wake = 1;  // what the wakeup noted
  s->forget_thread(tid);
  s->seed_thread(tid, planted);
  char b = 1;
  ASSERT_EQ(write(go[1], &b, 1), 1);  // the handler returns, the read restarts and blocks
  std::optional<ss_thread_state> after;
  for (int i = 0; i < 200; i++) {
    sleep_ms(5);
    after = entry();
    if (after && after->state == SS_TS_OFFCPU && after->block_nr >= 0 &&
        after->last_switch_ns != planted.last_switch_ns)
      break;
  }
  ASSERT_TRUE(after);
  ASSERT_NE(after->last_switch_ns, planted.last_switch_ns) << "no switch-out after the plant";
  EXPECT_EQ(after->block_nr, read_nr);
  EXPECT_EQ(after->block_since_ns, since)
      << "the restarted read began a new block, " << double(after->block_since_ns - since) / 1e6
      << " ms after the first";
  ASSERT_EQ(write(data[1], &b, 1), 1);
  close(data[1]);
  close(go[1]);
  int st = child.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST(BpfSession, ThreadCreationsCarryTheCreatorAndExitsTheirTotals) {
  REQUIRE_ROOT();
  constexpr int kThreads = 5;
  int tids_pipe[2];
  ASSERT_EQ(pipe(tids_pipe), 0);
  Child child([&] {
    std::vector<pthread_t> th(kThreads);
    for (auto& t : th)
      pthread_create(
          &t, nullptr,
          [](void* fd) -> void* {
            pid_t tid = pid_t(syscall(SYS_gettid));
            (void)!write(int(reinterpret_cast<intptr_t>(fd)), &tid, sizeof tid);
            sleep_ms(20);
            return nullptr;
          },
          reinterpret_cast<void*>(intptr_t(tids_pipe[1])));
    for (auto& t : th) pthread_join(t, nullptr);
  });
  close(tids_pipe[1]);
  auto s = open_for(child.pid, false);
  ASSERT_TRUE(s);
  child.release();
  std::vector<uint32_t> truth;
  pid_t tid;
  while (read(tids_pipe[0], &tid, sizeof tid) == sizeof tid) truth.push_back(uint32_t(tid));
  child.wait();
  Collected c;
  drain(*s, c);
  ASSERT_EQ(truth.size(), size_t(kThreads));
  std::vector<uint32_t> created;
  for (const auto& e : c.created) {
    created.push_back(e.tid);
    EXPECT_EQ(e.parent_tid, uint32_t(child.pid));
    EXPECT_GT(e.nframes, 0u) << "user stack of the creator";
  }
  std::sort(created.begin(), created.end());
  std::sort(truth.begin(), truth.end());
  EXPECT_EQ(created, truth);
  // kThreads + the main thread exit, each thread with ~20 ms asleep, and its wait from
  // creation to its first time on a CPU counted as runnable (its entry starts there).
  ASSERT_EQ(c.exited.size(), size_t(kThreads + 1));
  std::map<uint32_t, uint64_t> created_ns;
  for (const auto& e : c.created) created_ns[e.tid] = e.h.ts;
  for (const auto& e : c.exited)
    if (e.tid != uint32_t(child.pid)) {
      SCOPED_TRACE(e.tid);
      EXPECT_GE(e.final.offcpu_ns[SS_OFF_SLEEP], 20'000'000u);
      EXPECT_GE(e.final.offcpu_count[SS_OFF_PREEMPTED], 1u);
      EXPECT_GE(e.final.rq_count, 1u);
      EXPECT_GT(e.final.rq_ns, 0u);
      // No longer than the thread's whole life: the wait starts at its creation.
      ASSERT_TRUE(created_ns.count(e.tid));
      EXPECT_LT(e.final.offcpu_ns[SS_OFF_PREEMPTED], e.h.ts - created_ns[e.tid] + 100'000);
      EXPECT_EQ(e.final.created_by, 0u) << "the creator is in the creation record only";
    }
}

TEST(BpfSession, AllSyscallsModeCountsEveryCallExactly) {
  REQUIRE_ROOT();
  constexpr int kCalls = 1000;
  Child child([] {
    for (int i = 0; i < kCalls; i++) syscall(SYS_getppid);
    sleep_ms(5);  // one slow call
  });
  auto s = open_for(child.pid, true);
  ASSERT_TRUE(s);
  child.release();
  child.wait();
  Collected c;
  drain(*s, c);
  auto snap = s->snapshot();
  ASSERT_TRUE(snap.ok());
  std::map<int, ss_sc_stat> all;
  for (const auto& a : snap->sc_all) all[a.nr] = a.stat;
  const int getppid = *probe::syscall_number("getppid");
  EXPECT_EQ(all[getppid].count, uint64_t(kCalls));
  uint64_t hist_sum = 0;
  for (auto v : all[getppid].hist) hist_sum += v;
  EXPECT_EQ(hist_sum, uint64_t(kCalls));
  EXPECT_LT(all[getppid].total_ns / kCalls, 1'000'000u) << "getppid is sub-millisecond";
  const int nanosleep = *probe::syscall_number("nanosleep");
  EXPECT_EQ(all[nanosleep].count, 1u);
  // 5 ms (and not much more) in its log2 bucket, [2^22, 2^23) ns, or the next one.
  EXPECT_EQ(all[nanosleep].hist[22] + all[nanosleep].hist[23], 1u);
  int slow = 0;
  for (const auto& e : c.slow)
    if (e.nr == nanosleep) {
      slow++;
      EXPECT_GE(e.h.ts - e.start_ns, 5'000'000u);
      EXPECT_EQ(e.ret, 0);
    }
  EXPECT_EQ(slow, 1);
}

TEST(BpfSession, DefaultModeDoesNotLoadSyscallTracepoints) {
  REQUIRE_ROOT();
  Child child([] {});
  auto s = open_for(child.pid, false);
  ASSERT_TRUE(s);
  const auto progs = s->attached_programs();
  // The list is the real one (a list left empty would pass the loop below).
  EXPECT_NE(std::find(progs.begin(), progs.end(), "ss_sched_switch"), progs.end());
  for (const auto& p : progs) {
    EXPECT_NE(p, "ss_sys_enter");
    EXPECT_NE(p, "ss_sys_exit");
  }
  child.release();
  child.wait();
}

// The node agent's discovery on exec: with exec_events, one SS_EV_EXEC record names a
// process that exec'd (no target needed); without, the program is not even loaded.
TEST(BpfSession, ExecEventsNameTheProcessThatExecd) {
  REQUIRE_ROOT();
  Child child([] {
    execl("/bin/true", "true", static_cast<char*>(nullptr));
    _exit(3);
  });
  probe::SessionConfig cfg;
  cfg.exec_events = true;
  cfg.ringbuf_bytes = 1 << 20;
  auto s = probe::Session::open(cfg);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE((*s)->attach().ok());
  const auto progs = (*s)->attached_programs();
  EXPECT_NE(std::find(progs.begin(), progs.end(), "ss_sched_process_exec"), progs.end());
  child.release();
  EXPECT_EQ(child.wait(), 0);
  std::vector<uint32_t> pids;
  probe::EventFn fn = [&](const ss_hdr* h, size_t size) {
    if (h->type != SS_EV_EXEC) return;
    ASSERT_EQ(size, sizeof(ss_exec));
    pids.push_back(reinterpret_cast<const ss_exec*>(h)->pid);
  };
  for (int i = 0; i < 20 && std::find(pids.begin(), pids.end(), uint32_t(child.pid)) == pids.end(); i++)
    (void)(*s)->poll(50, fn);
  EXPECT_NE(std::find(pids.begin(), pids.end(), uint32_t(child.pid)), pids.end());

  Child other([] {});
  auto d = open_for(other.pid, false);
  ASSERT_TRUE(d);
  const auto dprogs = d->attached_programs();
  EXPECT_EQ(std::find(dprogs.begin(), dprogs.end(), "ss_sched_process_exec"), dprogs.end());
  other.release();
  other.wait();
}

TEST(BpfSession, OtherProcessesAreFilteredOut) {
  REQUIRE_ROOT();
  // Both children sleep (scheduler events), say so, and stay alive until the snapshot is
  // taken: the target must be in it, the other process must not.
  int said[2], hold[2];
  ASSERT_EQ(pipe(said), 0);
  ASSERT_EQ(pipe(hold), 0);
  auto body = [&] {
    close(hold[1]);
    for (int i = 0; i < 10; i++) sleep_ms(2);
    char b = 1;
    (void)!write(said[1], &b, 1);
    (void)!read(hold[0], &b, 1);  // until the parent closes its end
  };
  Child target(body);
  Child other(body);
  close(said[1]);
  close(hold[0]);
  auto s = open_for(target.pid, false);
  ASSERT_TRUE(s);
  target.release();
  other.release();
  char b;
  for (int n = 0; n < 2; n++) ASSERT_EQ(read(said[0], &b, 1), 1) << "a child did not run";
  auto snap = s->snapshot();
  close(hold[1]);
  target.wait();
  other.wait();
  ASSERT_TRUE(snap.ok());
  bool saw_target = false;
  for (const auto& t : snap->threads) {
    EXPECT_EQ(t.st.tgid, uint32_t(target.pid));
    EXPECT_NE(t.tid, uint32_t(other.pid));
    saw_target |= t.tid == uint32_t(target.pid);
  }
  EXPECT_TRUE(saw_target) << "the target's own thread is missing: a filter that drops everything";
}

TEST(BpfSession, DropsAreCountedWhenTheRingIsTooSmall) {
  REQUIRE_ROOT();
  // 4 KiB ring, every off-CPU interval shipped, and no consumer until the end.
  Child child([] {
    for (int i = 0; i < 3000; i++) sched_yield(), usleep(1);
  });
  auto s = open_for(child.pid, false, 4096, 0);
  ASSERT_TRUE(s);
  child.release();
  child.wait();
  auto snap = s->snapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_GT(snap->drops, 0u);
  uint64_t sum = 0;
  for (auto d : snap->drops_per_cpu) sum += d;
  EXPECT_EQ(sum, snap->drops);
}

// One session, two targets: each process's counts are its own, exactly, and a third
// process the session does not watch leaves no trace. Each child reports what it did
// (the tids of the threads it made) through a pipe.
TEST(BpfSession, TwoTargetsAtOnceEachWithItsOwnExactCounts) {
  REQUIRE_ROOT();
  struct Plan {
    int calls;    // getppid() calls of the main thread
    int sleeps;   // 2 ms nanosleeps of the main thread
    int threads;  // threads made, each sleeping 20 ms once in nanosleep
  };
  const Plan plans[3] = {{300, 4, 3}, {700, 6, 5}, {500, 5, 4}};  // A, B watched; C not
  int tids_pipe[3][2];
  std::vector<std::unique_ptr<Child>> kids;
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(pipe(tids_pipe[i]), 0);
    const Plan p = plans[i];
    const int fd = tids_pipe[i][1];
    kids.push_back(std::make_unique<Child>([p, fd] {
      for (int c = 0; c < p.calls; c++) syscall(SYS_getppid);
      for (int s = 0; s < p.sleeps; s++) sleep_ms(2);
      std::vector<pthread_t> th(size_t(p.threads));
      for (auto& t : th)
        pthread_create(
            &t, nullptr,
            [](void* arg) -> void* {
              pid_t tid = pid_t(syscall(SYS_gettid));
              (void)!write(int(reinterpret_cast<intptr_t>(arg)), &tid, sizeof tid);
              sleep_ms(20);
              return nullptr;
            },
            reinterpret_cast<void*>(intptr_t(fd)));
      for (auto& t : th) pthread_join(t, nullptr);
    }));
    close(tids_pipe[i][1]);
  }
  const uint32_t a = uint32_t(kids[0]->pid), b = uint32_t(kids[1]->pid), c = uint32_t(kids[2]->pid);

  probe::SessionConfig cfg;
  cfg.tgid = a;
  cfg.max_targets = 2;
  cfg.all_syscalls = true;
  cfg.ringbuf_bytes = 1 << 20;
  auto opened = probe::Session::open(cfg);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& s = **opened;
  auto slot_b = s.add_target(b);
  ASSERT_TRUE(slot_b.ok()) << slot_b.error().message;
  EXPECT_EQ(*slot_b, 1u);
  EXPECT_FALSE(s.add_target(c).ok()) << "a third target in a session of two";
  EXPECT_FALSE(s.add_target(b).ok()) << "a target added twice";
  ASSERT_TRUE(s.attach().ok());

  std::vector<uint32_t> truth[3];
  for (int i = 0; i < 3; i++) {
    kids[size_t(i)]->release();
    pid_t tid;
    while (read(tids_pipe[i][0], &tid, sizeof tid) == sizeof tid) truth[i].push_back(uint32_t(tid));
    close(tids_pipe[i][0]);
    kids[size_t(i)]->wait();
    ASSERT_EQ(truth[i].size(), size_t(plans[i].threads));
    std::sort(truth[i].begin(), truth[i].end());
  }
  Collected col;
  drain(s, col);

  const int getppid = *probe::syscall_number("getppid");
  const int nanosleep = *probe::syscall_number("nanosleep");
  const uint32_t pids[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    SCOPED_TRACE(i == 0 ? "target A" : "target B");
    auto snap = s.snapshot(pids[i]);
    ASSERT_TRUE(snap.ok()) << snap.error().message;
    std::map<int, uint64_t> all, blocked;
    for (const auto& x : snap->sc_all) all[x.nr] = x.stat.count;
    for (const auto& x : snap->sc_block) blocked[x.nr] = x.stat.count;
    EXPECT_EQ(all[getppid], uint64_t(plans[i].calls));
    EXPECT_EQ(all[nanosleep], uint64_t(plans[i].sleeps + plans[i].threads));
    EXPECT_EQ(blocked[nanosleep], uint64_t(plans[i].sleeps + plans[i].threads));
    // Every thread exited: the kernel deleted their entries, none is left in its snapshot;
    // their exit records carry them, with the target's tgid (below).
    for (const auto& t : snap->threads) ADD_FAILURE() << "entry of exited thread " << t.tid << " left";
    std::vector<uint32_t> tids;
    for (const auto& e : col.exited)
      if (e.final.tgid == pids[i] && e.tid != pids[i]) tids.push_back(e.tid);
    std::sort(tids.begin(), tids.end());
    EXPECT_EQ(tids, truth[i]);
    // Its creations (made by its main thread) and its exits (with the target's tgid).
    std::vector<uint32_t> created;
    for (const auto& e : col.created)
      if (e.parent_tid == pids[i]) created.push_back(e.tid);
    std::sort(created.begin(), created.end());
    EXPECT_EQ(created, truth[i]);
    size_t exits = 0;
    for (const auto& e : col.exited) exits += e.final.tgid == pids[i];
    EXPECT_EQ(exits, size_t(plans[i].threads + 1));
  }
  // Every record is of A or B: C's main thread and threads never show.
  EXPECT_EQ(col.created.size(), size_t(plans[0].threads + plans[1].threads));
  EXPECT_EQ(col.exited.size(), size_t(plans[0].threads + plans[1].threads + 2));
  auto is_c = [&](uint32_t tid) {
    return tid == c || std::binary_search(truth[2].begin(), truth[2].end(), tid);
  };
  for (const auto& e : col.created) EXPECT_FALSE(is_c(e.tid) || is_c(e.parent_tid));
  for (const auto& e : col.exited) EXPECT_FALSE(is_c(e.tid));
  for (const auto& e : col.offcpu) EXPECT_FALSE(is_c(e.tid));
  for (const auto& e : col.slow) EXPECT_FALSE(is_c(e.tid));
  EXPECT_FALSE(s.snapshot(c).ok()) << "no snapshot of a process that is no target";
}

namespace {

// A session on `pid` (a small ring), the GC programs loaded if `gc`, attached.
Expected<std::unique_ptr<probe::Session>> attached_session(pid_t pid, bool gc) {
  probe::SessionConfig cfg;
  cfg.tgid = uint32_t(pid);
  cfg.ringbuf_bytes = 1 << 16;
  cfg.gc = gc;
  auto s = probe::Session::open(cfg);
  if (!s) return s;
  if (Status st = (*s)->attach(); !st) return st.error();
  return s;
}

}  // namespace

TEST(BpfSession, GcProgramsAreLoadedOnlyWhenAskedAndListedOnlyWhenAttached) {
  REQUIRE_ROOT();
  const std::vector<std::string> gc = {"ss_gc_stw_stop", "ss_gc_stw_start", "ss_gc_markterm"};
  Child child([] {});
  for (bool asked : {false, true}) {
    SCOPED_TRACE(asked ? "GC asked" : "GC not asked");
    auto s = attached_session(child.pid, asked);
    ASSERT_TRUE(s.ok()) << s.error().message;
    const auto loaded = programs_loaded_here();
    // The list is the kernel's (a list left empty would pass the checks below).
    EXPECT_TRUE(loaded.count("ss_sched_switch"));
    for (const auto& p : gc) EXPECT_EQ(loaded.count(p), asked ? 1u : 0u) << p;
    // Loaded is not attached: nothing attached them (no Go target here).
    const auto progs = (*s)->attached_programs();
    EXPECT_NE(std::find(progs.begin(), progs.end(), "ss_sched_switch"), progs.end());
    for (const auto& p : gc) EXPECT_EQ(std::find(progs.begin(), progs.end(), p), progs.end()) << p;
    EXPECT_EQ((*s)->gc_uprobe_count(), 0u);
    EXPECT_EQ((*s)->gc_sampler_period_ns(), 0u);
    EXPECT_EQ((*s)->gc_sampler_ticks(), 0u);
  }
  child.release();
  child.wait();
}

// GC probe targets at the ELF entry of process `pid`: a real attachment that never fires
// again. An empty `path` when the entry cannot be found (the test then fails).
probe::GcProbeTargets entry_probes(int pid) {
  probe::GcProbeTargets t;
  std::string exe = "/proc/" + std::to_string(pid) + "/exe";
  auto f = elf::ElfFile::open(exe);
  EXPECT_TRUE(f.ok()) << f.error().message;
  auto entry = f.ok() ? go::vaddr_to_file_offset(**f, (*f)->entry()) : std::nullopt;
  EXPECT_TRUE(entry.has_value());
  if (!entry) return t;
  t.path = exe;
  t.stw_stop = t.stw_start = t.markterm = *entry;
  t.sample_period_ns = 0;
  t.cfg.mark_stw_reason = SS_GC_ANY_STW;
  return t;
}

// The GC sampler reads a target only inside its mark phases, followed by the uprobes at
// both ends (gc.bpf.c): attached, the gate starts closed. Without them it is open for good,
// and closed again when the target goes. (Its opening and closing in a Go process, and the
// stop-the-world reasons that open it: the e2e tests.)
TEST(BpfSession, GcSamplerGateIsOpenForGoodOnlyWhenAMarkPhaseCannotBeFollowed) {
  REQUIRE_ROOT();
  for (bool ends : {true, false}) {
    SCOPED_TRACE(ends ? "both ends of a mark phase probed" : "no mark termination to probe");
    Child child([] {});
    auto s = attached_session(child.pid, true);
    ASSERT_TRUE(s.ok()) << s.error().message;
    probe::GcProbeTargets t = entry_probes(child.pid);
    ASSERT_FALSE(t.path.empty());
    if (!ends) t.markterm = 0;
    auto st = (*s)->attach_gc(child.pid, t);
    EXPECT_EQ(st.ok(), ends) << (st.ok() ? "" : st.error().message);
    EXPECT_EQ((*s)->gc_uprobe_count(), ends ? 3u : 2u);
    EXPECT_EQ((*s)->gc_gate(uint32_t(child.pid)), ends ? 0u : uint64_t{SS_GC_GATE_ALWAYS});
    EXPECT_EQ((*s)->gc_gates_open(), ends ? 0u : 1u);
    ASSERT_TRUE((*s)->remove_target(uint32_t(child.pid)).ok());
    EXPECT_EQ((*s)->gc_gates_open(), 0u);
    child.release();
    child.wait();
  }
}

// One line of /proc/PID/maps.
struct Mapping {
  uint64_t lo = 0, hi = 0, off = 0;  // addresses [lo, hi) map the file from offset `off`
  std::string perms, path;
};

std::vector<Mapping> maps_of(pid_t pid) {
  std::vector<Mapping> out;
  FILE* maps = fopen(("/proc/" + std::to_string(pid) + "/maps").c_str(), "r");
  EXPECT_NE(maps, nullptr);
  if (!maps) return out;
  char line[8192];
  while (fgets(line, sizeof line, maps)) {
    unsigned long long lo = 0, hi = 0, off = 0;
    char perms[8] = {}, path[4096] = {};
    if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %4095s", &lo, &hi, perms, &off, path) >= 4)
      out.push_back({lo, hi, off, perms, path});
  }
  fclose(maps);
  return out;
}

// Whether the process has a breakpoint (int3, the byte a registered uprobe writes) at file
// offset `off` of its executable: the kernel's view of a uprobe, not the session's.
bool int3_at(pid_t pid, uint64_t off) {
  char exe[4096] = {};
  std::string proc = "/proc/" + std::to_string(pid);
  ssize_t n = readlink((proc + "/exe").c_str(), exe, sizeof exe - 1);
  EXPECT_GT(n, 0);
  uint64_t addr = 0;
  for (const Mapping& m : maps_of(pid))
    if (!addr && m.path == exe && m.perms.size() > 2 && m.perms[2] == 'x' && off >= m.off &&
        off < m.off + (m.hi - m.lo))
      addr = m.lo + (off - m.off);
  EXPECT_NE(addr, 0u) << "offset " << off << " is not in the executable's text";
  FILE* mem = fopen((proc + "/mem").c_str(), "rb");
  EXPECT_NE(mem, nullptr);
  if (!mem || !addr) return false;
  unsigned char b = 0;
  bool ok = fseeko(mem, off_t(addr), SEEK_SET) == 0 && fread(&b, 1, 1, mem) == 1;
  fclose(mem);
  EXPECT_TRUE(ok);
  return b == 0xcc;
}

// A target that leaves is out of the set at once; its uprobes are detached behind the call
// (closing one takes ~80 ms: the agent's loop must not wait). wait_detached(), and adding
// the same process again, return only once they are gone from the process.
TEST(BpfSession, ATargetsUprobesAreDetachedBehindRemoveTarget) {
  REQUIRE_ROOT();
  Child child([] {});
  auto s = attached_session(child.pid, true);
  ASSERT_TRUE(s.ok()) << s.error().message;
  probe::GcProbeTargets t = entry_probes(child.pid);
  ASSERT_FALSE(t.path.empty());
  ASSERT_FALSE(int3_at(child.pid, t.stw_stop));
  ASSERT_TRUE((*s)->attach_gc(child.pid, t).ok());
  EXPECT_EQ((*s)->gc_uprobe_count(), 3u);
  EXPECT_TRUE(int3_at(child.pid, t.stw_stop));
  ASSERT_TRUE((*s)->remove_target(uint32_t(child.pid)).ok());
  EXPECT_EQ((*s)->gc_uprobe_count(), 0u);
  (*s)->wait_detached(uint32_t(child.pid));
  EXPECT_FALSE(int3_at(child.pid, t.stw_stop)) << "a uprobe left after wait_detached";
  // Back as a target: probed again, then out and in again at once.
  ASSERT_TRUE((*s)->add_target(uint32_t(child.pid)).ok());
  ASSERT_TRUE((*s)->attach_gc(child.pid, t).ok());
  EXPECT_TRUE(int3_at(child.pid, t.stw_stop));
  ASSERT_TRUE((*s)->remove_target(uint32_t(child.pid)).ok());
  ASSERT_TRUE((*s)->add_target(uint32_t(child.pid)).ok());
  EXPECT_FALSE(int3_at(child.pid, t.stw_stop)) << "the old uprobes beside the new target";
  child.release();
  child.wait();
}

// Two functions of this binary that stand for a GC's mark start and mark termination: a
// child calls them, and the GC uprobes are put on them.
volatile int g_marks = 0;
extern "C" __attribute__((noinline, used)) void ss_test_mark_start() { g_marks = g_marks + 1; }
extern "C" __attribute__((noinline, used)) void ss_test_mark_end() { g_marks = g_marks + 2; }

// The file offset of code at `addr` of this process (its executable's mapping).
uint64_t file_offset_of(const void* addr) {
  const auto a = reinterpret_cast<uintptr_t>(addr);
  for (const Mapping& m : maps_of(getpid()))
    if (a >= m.lo && a < m.hi) return m.off + (a - m.lo);
  return 0;
}

// The sampler's timers tick only while a gate is open (a tick costs the interrupted program
// a timer interrupt even when it finds nothing to read), and only on a CPU where a target's
// thread was switched in (or woke another) while one was. They start and stop in the kernel:
// the stop that opens the first gate and the mark termination that closes the last wake no
// one (the poll sleeps its whole timeout). Without both ends of a mark phase they tick for
// good once the target runs.
TEST(BpfSession, GcSamplerTicksOnlyWhileAGateIsOpen) {
  REQUIRE_ROOT();
  for (bool ends : {true, false}) {
    SCOPED_TRACE(ends ? "both ends of a mark phase probed" : "no mark termination to probe");
    int cmd[2];
    ASSERT_EQ(pipe(cmd), 0);
    Child child([&] {
      close(cmd[1]);
      char c;
      while (read(cmd[0], &c, 1) == 1) {
        if (c == 's') ss_test_mark_start();
        if (c == 'e') ss_test_mark_end();
      }
    });
    close(cmd[0]);
    auto s = attached_session(child.pid, true);
    ASSERT_TRUE(s.ok()) << s.error().message;
    probe::GcProbeTargets t = entry_probes(child.pid);
    ASSERT_FALSE(t.path.empty());
    t.stw_stop = file_offset_of(reinterpret_cast<const void*>(&ss_test_mark_start));
    t.markterm = ends ? file_offset_of(reinterpret_cast<const void*>(&ss_test_mark_end)) : 0;
    ASSERT_NE(t.stw_stop, 0u);
    t.sample_period_ns = 1'000'000;
    (void)(*s)->attach_gc(child.pid, t);
    EXPECT_EQ((*s)->gc_sampler_period_ns(), 1'000'000u);
    child.release();
    auto ticks_in_100ms = [&] {
      uint64_t a = (*s)->gc_sampler_ticks();
      sleep_ms(100);
      return (*s)->gc_sampler_ticks() - a;
    };
    probe::EventFn none = [](const ss_hdr*, size_t) {};
    // One command to the child (its switch-in), then one poll, which nothing wakes.
    auto step = [&](char c) {
      ASSERT_EQ(write(cmd[1], &c, 1), 1);
      const auto t0 = std::chrono::steady_clock::now();
      ASSERT_TRUE((*s)->poll(300, none).ok());
      EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(250))
          << "the poll was woken at '" << c << "'";
    };
    step('n');
    if (ends) {
      EXPECT_FALSE((*s)->gc_sampler_ticking());
      EXPECT_EQ(ticks_in_100ms(), 0u) << "the timers ran with every gate closed";
    } else {
      EXPECT_TRUE((*s)->gc_sampler_ticking());
      EXPECT_GT(ticks_in_100ms(), 50u) << "the timers stopped with the gate open for good";
    }
    // The gate opens inside the child's call; its next switch-in arms its CPU's timer.
    step('s');
    EXPECT_EQ((*s)->gc_gates_open(), 1u);
    step('n');
    EXPECT_TRUE((*s)->gc_sampler_ticking());
    EXPECT_GT(ticks_in_100ms(), 50u) << "no ticks inside the mark phase";
    step('e');
    EXPECT_EQ((*s)->gc_gates_open(), ends ? 0u : 1u);
    sleep_ms(10);  // each timer's last tick finds the gates closed
    EXPECT_EQ((*s)->gc_sampler_ticking(), !ends);
    if (ends) {
      EXPECT_EQ(ticks_in_100ms(), 0u) << "the timers ran after the mark termination";
      // Mark phases shorter than a period are sampled too, in proportion: a timer's first
      // tick comes at a random point of its period, not a whole period after the arming
      // switch-in. 40 phases of ~0.5 ms at 1 ms give ~20 ticks; a full first period, none.
      const uint64_t before = (*s)->gc_sampler_ticks();
      auto send = [&](char c) { ASSERT_EQ(write(cmd[1], &c, 1), 1); };
      for (int i = 0; i < 40; i++) {
        send('s');
        sleep_ms(2);  // the child blocks in read again: its next switch-in arms
        send('n');
        usleep(500);
        send('e');
        sleep_ms(3);
      }
      const uint64_t short_phases = (*s)->gc_sampler_ticks() - before;
      EXPECT_GE(short_phases, 4u) << "short mark phases went unsampled";
      EXPECT_LE(short_phases, 80u);
    }
    close(cmd[1]);
    child.wait();
  }
}

// An attach where no uprobe took (the gate then open for good) is tried again later; the
// retry that attaches both ends of a mark phase closes the gate again.
TEST(BpfSession, GcSamplerGateClosesWhenARetryAttachesBothEnds) {
  REQUIRE_ROOT();
  Child child([] {});
  auto s = attached_session(child.pid, true);
  ASSERT_TRUE(s.ok()) << s.error().message;
  probe::GcProbeTargets t = entry_probes(child.pid);
  ASSERT_FALSE(t.path.empty());
  probe::GcProbeTargets gone = t;
  gone.path = "/nonexistent/schedscope-test-binary";
  EXPECT_FALSE((*s)->attach_gc(child.pid, gone).ok());
  EXPECT_EQ((*s)->gc_uprobe_count(), 0u);
  EXPECT_EQ((*s)->gc_gate(uint32_t(child.pid)), uint64_t{SS_GC_GATE_ALWAYS});
  EXPECT_EQ((*s)->gc_gates_open(), 1u);
  auto st = (*s)->attach_gc(child.pid, t);
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  EXPECT_EQ((*s)->gc_uprobe_count(), 3u);
  EXPECT_EQ((*s)->gc_gate(uint32_t(child.pid)), 0u);
  EXPECT_EQ((*s)->gc_gates_open(), 0u);
  child.release();
  child.wait();
}

// The per-interval read of the threads hash map goes in batches (several hundred entries
// per syscall, more than one batch here) and finds every thread of the target, and only
// those; forget_thread removes an entry (a tid already gone too). One slot: the first
// seeded thread takes it, the others go to the hash.
TEST(BpfSession, SnapshotReadsEveryThreadInBatches) {
  REQUIRE_ROOT();
  Child child([] {});
  auto s = open_for(child.pid, false, 1 << 20, 1'000'000, 1);
  ASSERT_TRUE(s);
  constexpr uint32_t kSeeded = 700;
  const uint32_t base = 3'000'000;  // tids no live thread has (pid_max here is lower)
  std::vector<uint32_t> tids;
  for (uint32_t i = 0; i < kSeeded; i++) {
    ss_thread_state st{};
    st.tgid = uint32_t(child.pid);
    st.sc_nr = SS_NO_SYSCALL;
    s->seed_thread(base + i, st);
    tids.push_back(base + i);
  }
  ss_thread_state other{};
  other.tgid = uint32_t(child.pid) + 1;  // another process's thread: not in the snapshot
  s->seed_thread(base + kSeeded, other);
  auto count_seeded = [&] {
    auto snap = s->snapshot();
    EXPECT_TRUE(snap.ok());
    std::set<uint32_t> seen;
    for (const auto& e : snap->threads) {
      EXPECT_EQ(e.st.tgid, uint32_t(child.pid)) << e.tid;
      if (e.tid >= base) seen.insert(e.tid);
    }
    return seen;
  };
  std::set<uint32_t> seen = count_seeded();
  EXPECT_EQ(s->snapshot()->threads_in_slots, 1u);
  EXPECT_EQ(seen.size(), kSeeded);
  EXPECT_EQ(*seen.begin(), base);
  EXPECT_EQ(*seen.rbegin(), base + kSeeded - 1);
  s->forget_thread(base + 100);  // already gone when the list is forgotten
  for (uint32_t tid : tids) s->forget_thread(tid);
  EXPECT_TRUE(count_seeded().empty());
  s->forget_thread(base + kSeeded);
  child.release();
  EXPECT_EQ(child.wait(), 0);
}

namespace {

// A process whose threads stay alive until told: each new thread reports its tid on
// `report`, blocks reading `hold`, and reports its tid negated as it exits. Commands on
// `cmd`: 'n' makes a thread. Killed (SIGKILL) by the test at its end.
struct Holder {
  int cmd[2], hold[2], report[2];
  std::unique_ptr<Child> child;
  Holder() {
    if (pipe(cmd) != 0 || pipe(hold) != 0 || pipe(report) != 0) abort();
    child = std::make_unique<Child>([this] {
      close(cmd[1]);
      close(hold[1]);
      close(report[0]);
      char c;
      while (read(cmd[0], &c, 1) == 1) {
        pthread_t t;
        pthread_create(
            &t, nullptr,
            [](void* arg) -> void* {
              const auto* h = static_cast<const Holder*>(arg);
              const pid_t tid = pid_t(syscall(SYS_gettid));
              (void)!write(h->report[1], &tid, sizeof tid);
              char b;
              (void)!read(h->hold[0], &b, 1);
              const pid_t gone = -tid;
              (void)!write(h->report[1], &gone, sizeof gone);
              return nullptr;
            },
            this);
        pthread_detach(t);
      }
    });
    close(cmd[0]);
    close(hold[0]);
    close(report[1]);
  }
  pid_t make_thread() {
    const char c = 'n';
    EXPECT_EQ(write(cmd[1], &c, 1), 1);
    pid_t tid = 0;
    EXPECT_EQ(read(report[0], &tid, sizeof tid), ssize_t(sizeof tid));
    return tid;
  }
  pid_t end_thread() {  // one of the threads returns; its tid
    const char c = 1;
    EXPECT_EQ(write(hold[1], &c, 1), 1);
    pid_t tid = 0;
    EXPECT_EQ(read(report[0], &tid, sizeof tid), ssize_t(sizeof tid));
    return -tid;
  }
  ~Holder() {
    kill(child->pid, SIGKILL);
    child->wait();
    close(cmd[1]);
    close(hold[1]);
    close(report[0]);
  }
};

std::set<uint32_t> snapshot_tids(probe::Session& s, uint32_t tgid) {
  auto snap = s.snapshot(tgid);
  EXPECT_TRUE(snap.ok());
  std::set<uint32_t> out;
  if (!snap) return out;
  for (const auto& e : snap->threads) {
    EXPECT_EQ(e.st.tgid, tgid) << e.tid;
    out.insert(e.tid);
  }
  EXPECT_EQ(snap->threads_in_slots, snap->threads.size());
  return out;
}

}  // namespace

// The node agent's interval: snapshots of many targets from one pass over the state slots.
// A round's snapshots hold what plain snapshots hold at its start; a thread that took its
// slot during the round is read at the next one, and one that exited during it is not read
// from the slot it left.
TEST(BpfSession, ASnapshotRoundReadsEveryTargetsThreadsFromOnePass) {
  REQUIRE_ROOT();
  Holder a, b;
  probe::SessionConfig cfg;
  cfg.tgid = uint32_t(a.child->pid);
  cfg.max_targets = 2;
  cfg.ringbuf_bytes = 1 << 20;
  auto opened = probe::Session::open(cfg);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& s = **opened;
  ASSERT_TRUE(s.add_target(uint32_t(b.child->pid)).ok());
  ASSERT_TRUE(s.attach().ok());
  a.child->release();
  b.child->release();
  std::set<uint32_t> made_a, made_b;
  for (int i = 0; i < 6; i++) made_a.insert(uint32_t(a.make_thread()));
  for (int i = 0; i < 4; i++) made_b.insert(uint32_t(b.make_thread()));
  sleep_ms(50);  // every thread blocked in its read
  const uint32_t pa = uint32_t(a.child->pid), pb = uint32_t(b.child->pid);
  const std::set<uint32_t> plain_a = snapshot_tids(s, pa), plain_b = snapshot_tids(s, pb);
  for (uint32_t t : made_a) EXPECT_TRUE(plain_a.count(t)) << "A's thread " << t;
  for (uint32_t t : made_b) EXPECT_TRUE(plain_b.count(t)) << "B's thread " << t;
  for (uint32_t t : plain_a) EXPECT_FALSE(plain_b.count(t)) << t;
  uint32_t late = 0, gone = 0;
  {
    const probe::Session::SnapshotRound round(s);
    late = uint32_t(a.make_thread());
    gone = uint32_t(b.end_thread());
    ASSERT_TRUE(made_b.count(gone));
    sleep_ms(50);
    EXPECT_TRUE(snapshot_tids(s, pa).count(late) == 0) << "a thread made during the round";
    EXPECT_EQ(snapshot_tids(s, pa), plain_a);
    std::set<uint32_t> want_b = plain_b;
    want_b.erase(gone);
    EXPECT_EQ(snapshot_tids(s, pb), want_b) << "B without the thread that exited";
  }
  std::set<uint32_t> after = snapshot_tids(s, pa);
  EXPECT_TRUE(after.count(late)) << "the thread made during the round, read after it";
  {
    const probe::Session::SnapshotRound round(s);
    EXPECT_EQ(snapshot_tids(s, pa), after);
    EXPECT_FALSE(snapshot_tids(s, pb).count(gone));
  }
}

// Per-thread state lives in a slot (the kernel tid modulo the slot count), or in the hash
// map when another thread holds the slot. With one slot for nine threads, eight have their
// entry in the hash: all nine are in the snapshot while they live, each exit record has
// the thread's whole life, and every entry, slot or hash, goes at its exit.
TEST(BpfSession, ThreadsWhoseSlotIsHeldKeepTheirStateInTheHash) {
  REQUIRE_ROOT();
  constexpr int kThreads = 8, kSleeps = 3, kMs = 5;
  int said[2], go[2], hold[2], tids_pipe[2];
  ASSERT_EQ(pipe(said), 0);
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(hold), 0);
  ASSERT_EQ(pipe(tids_pipe), 0);
  Child child([&] {
    close(hold[1]);
    close(go[1]);
    static int fds[2];
    fds[0] = tids_pipe[1];
    fds[1] = go[0];
    std::vector<pthread_t> th(kThreads);
    for (auto& t : th)
      pthread_create(
          &t, nullptr,
          [](void*) -> void* {
            pid_t tid = pid_t(syscall(SYS_gettid));
            for (int i = 0; i < kSleeps; i++) sleep_ms(kMs);
            (void)!write(fds[0], &tid, sizeof tid);
            char b;
            (void)!read(fds[1], &b, 1);  // until the parent closes its end
            return nullptr;
          },
          nullptr);
    for (auto& t : th) pthread_join(t, nullptr);
    char b = 1;
    (void)!write(said[1], &b, 1);
    (void)!read(hold[0], &b, 1);
  });
  close(said[1]);
  close(hold[0]);
  close(go[0]);
  close(tids_pipe[1]);
  auto s = open_for(child.pid, false, 1 << 20, 1'000'000, 1);
  ASSERT_TRUE(s);
  child.release();
  std::vector<uint32_t> truth;
  pid_t tid;
  while (truth.size() < size_t(kThreads) && read(tids_pipe[0], &tid, sizeof tid) == sizeof tid)
    truth.push_back(uint32_t(tid));
  ASSERT_EQ(truth.size(), size_t(kThreads));
  std::sort(truth.begin(), truth.end());
  sleep_ms(20);  // all blocked in read
  auto live = s->snapshot();
  ASSERT_TRUE(live.ok()) << live.error().message;
  std::vector<uint32_t> in_map;
  for (const auto& e : live->threads)
    if (e.tid != uint32_t(child.pid)) {
      in_map.push_back(e.tid);
      EXPECT_GE(e.st.offcpu_count[SS_OFF_SLEEP], uint64_t(kSleeps)) << e.tid;
    }
  std::sort(in_map.begin(), in_map.end());
  EXPECT_EQ(in_map, truth) << "every thread has its entry";
  EXPECT_EQ(live->threads_in_slots, 1u) << "one slot, one thread in it";
  close(go[1]);  // the threads return
  char b;
  ASSERT_EQ(read(said[0], &b, 1), 1) << "the child did not finish its threads";
  sleep_ms(50);
  Collected c;
  drain(*s, c);
  EXPECT_EQ(exited_sleepers(c, child.pid, kSleeps, kMs), truth);
  auto after = s->snapshot();
  ASSERT_TRUE(after.ok());
  std::vector<uint32_t> left;
  for (const auto& e : after->threads) left.push_back(e.tid);
  EXPECT_EQ(left, std::vector<uint32_t>{uint32_t(child.pid)}) << "only the living main thread";
  close(hold[1]);
  EXPECT_EQ(child.wait(), 0);
  close(said[0]);
  close(tids_pipe[0]);
}

// A thread seeded into the hash (its slot held at the time) moves to its slot at its
// first switch once the slot is free, with what was seeded. One slot: A is seeded into
// it, B into the hash; A exits, then B runs (the main thread waits for B, so A's exit
// does not wake it to take the slot first).
TEST(BpfSession, ASeededThreadMovesToItsSlotOnceItIsFree) {
  REQUIRE_ROOT();
  int said[2], go_a[2], go_b[2], hold[2];
  ASSERT_EQ(pipe(said), 0);
  ASSERT_EQ(pipe(go_a), 0);
  ASSERT_EQ(pipe(go_b), 0);
  ASSERT_EQ(pipe(hold), 0);
  Child child([&] {
    close(said[0]);  // the parent's ends: each read ends when the parent closes (or dies)
    close(go_a[1]);
    close(go_b[1]);
    close(hold[1]);
    static int fds[4];
    fds[0] = said[1];
    fds[1] = go_a[0];
    fds[2] = go_b[0];
    fds[3] = hold[0];
    auto body = [](void* arg) -> void* {
      const int which = int(reinterpret_cast<intptr_t>(arg));
      int said_what[2] = {which, int(syscall(SYS_gettid))};
      (void)!write(fds[0], said_what, sizeof said_what);
      char b;
      (void)!read(fds[1 + which], &b, 1);
      if (which == 1) {
        for (int i = 0; i < 5; i++) sleep_ms(2);
        (void)!read(fds[3], &b, 1);  // until the parent closes its end
      }
      return nullptr;
    };
    pthread_t a, bt;
    pthread_create(&a, nullptr, body, reinterpret_cast<void*>(intptr_t(0)));
    pthread_create(&bt, nullptr, body, reinterpret_cast<void*>(intptr_t(1)));
    pthread_join(bt, nullptr);
    pthread_join(a, nullptr);
  });
  close(said[1]);
  close(hold[0]);
  close(go_a[0]);
  close(go_b[0]);
  child.release();
  uint32_t tid_of[2] = {0, 0};
  for (int k = 0; k < 2; k++) {
    int said_what[2];
    ASSERT_EQ(read(said[0], said_what, sizeof said_what), ssize_t(sizeof said_what));
    ASSERT_TRUE(said_what[0] == 0 || said_what[0] == 1);
    tid_of[said_what[0]] = uint32_t(said_what[1]);
  }
  close(said[0]);
  sleep_ms(20);  // all three blocked: nothing of the child switches until told
  auto s = open_for(child.pid, false, 1 << 20, 1'000'000, 1);
  ASSERT_TRUE(s);
  auto seeded = [&](uint32_t mark) {
    ss_thread_state st{};
    st.tgid = uint32_t(child.pid);
    st.sc_nr = st.block_nr = st.last_block_nr = SS_NO_SYSCALL;
    st.go.m_id = st.go.p_id = -1;
    st.state = SS_TS_OFFCPU;
    st.off_reason = SS_OFF_SLEEP;
    st.last_switch_ns = mono_ns();
    st.created_by = mark;  // the kernel side never writes it: what was seeded shows
    return st;
  };
  s->seed_thread(tid_of[0], seeded(1111));
  s->seed_thread(tid_of[1], seeded(2222));
  auto seeds = s->snapshot();
  ASSERT_TRUE(seeds.ok());
  ASSERT_EQ(seeds->threads.size(), 2u);
  EXPECT_EQ(seeds->threads_in_slots, 1u);
  close(go_a[1]);  // A returns and exits: the slot is free
  sleep_ms(50);
  auto alone = s->snapshot();
  ASSERT_TRUE(alone.ok());
  ASSERT_EQ(alone->threads.size(), 1u);
  EXPECT_EQ(alone->threads[0].tid, tid_of[1]);
  EXPECT_EQ(alone->threads_in_slots, 0u) << "B is still in the hash";
  close(go_b[1]);  // B runs: it switches in, sleeps, blocks
  sleep_ms(50);
  auto moved = s->snapshot();
  ASSERT_TRUE(moved.ok());
  ASSERT_EQ(moved->threads.size(), 1u);
  EXPECT_EQ(moved->threads[0].tid, tid_of[1]);
  EXPECT_EQ(moved->threads_in_slots, 1u) << "B moved to its slot";
  EXPECT_EQ(moved->threads[0].st.created_by, 2222u) << "with what was seeded";
  EXPECT_GE(moved->threads[0].st.offcpu_count[SS_OFF_SLEEP], 5u);
  close(hold[1]);
  EXPECT_EQ(child.wait(), 0);
  Collected c;
  drain(*s, c);
  std::map<uint32_t, ss_thread_exit> by_tid;
  for (const auto& e : c.exited) by_tid[e.tid] = e;
  ASSERT_TRUE(by_tid.count(tid_of[0]) && by_tid.count(tid_of[1]));
  EXPECT_EQ(by_tid[tid_of[0]].final.created_by, 1111u);
  EXPECT_EQ(by_tid[tid_of[1]].final.created_by, 2222u);
}

// The node agent's -S per target: one session with the raw_syscalls programs loaded on
// demand; they are attached only while a target asks for them, and only that target's
// syscalls are counted (exactly), the other target's not at all.
TEST(BpfSession, AllSyscallsPerTargetCountsOnlyTheTargetThatAsked) {
  REQUIRE_ROOT();
  constexpr int kCallsA = 400, kCallsB = 900;
  Child ka([] {
    for (int c = 0; c < kCallsA; c++) syscall(SYS_getppid);
  });
  Child kb([] {
    for (int c = 0; c < kCallsB; c++) syscall(SYS_getppid);
  });
  const uint32_t a = uint32_t(ka.pid), b = uint32_t(kb.pid);
  probe::SessionConfig cfg;
  cfg.max_targets = 2;
  cfg.all_syscalls = true;
  cfg.syscalls_per_target = true;
  cfg.ringbuf_bytes = 1 << 20;
  auto opened = probe::Session::open(cfg);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& s = **opened;
  ASSERT_TRUE(s.attach().ok());
  ASSERT_TRUE(s.add_target(a).ok());
  ASSERT_TRUE(s.add_target(b).ok());
  EXPECT_FALSE(s.syscalls_attached()) << "no target asked: raw_syscalls stay detached";
  auto progs = s.attached_programs();
  EXPECT_EQ(std::count(progs.begin(), progs.end(), "ss_sys_enter"), 0);
  ASSERT_TRUE(s.set_all_syscalls(a, true).ok());
  EXPECT_TRUE(s.syscalls_attached());
  EXPECT_TRUE(s.all_syscalls(a));
  EXPECT_FALSE(s.all_syscalls(b));
  progs = s.attached_programs();
  EXPECT_EQ(std::count(progs.begin(), progs.end(), "ss_sys_enter"), 1);
  ka.release();
  kb.release();
  ka.wait();
  kb.wait();
  Collected col;
  drain(s, col);
  const int getppid = *probe::syscall_number("getppid");
  auto sa = s.snapshot(a);
  ASSERT_TRUE(sa.ok()) << sa.error().message;
  std::map<int, uint64_t> all_a;
  for (const auto& x : sa->sc_all) all_a[x.nr] = x.stat.count;
  EXPECT_EQ(all_a[getppid], uint64_t(kCallsA));
  auto sb = s.snapshot(b);
  ASSERT_TRUE(sb.ok()) << sb.error().message;
  EXPECT_TRUE(sb->sc_all.empty()) << "the target that did not ask has no syscall counts";
  // Per thread: both exited, so their counts are in their exit records' final totals
  // (the kernel deleted their entries).
  EXPECT_TRUE(sa->threads.empty() && sb->threads.empty()) << "entries of exited threads left";
  uint64_t a_calls = 0;
  size_t a_exits = 0, b_exits = 0;
  for (const auto& e : col.exited) {
    if (e.final.tgid == a) {
      a_calls += e.final.sc_count;
      a_exits++;
    }
    if (e.final.tgid == b) {
      EXPECT_EQ(e.final.sc_count, 0u) << "tid " << e.tid;
      b_exits++;
    }
  }
  EXPECT_EQ(a_exits, 1u);
  EXPECT_EQ(b_exits, 1u);
  EXPECT_GE(a_calls, uint64_t(kCallsA));
  // The last target that asked leaves: the programs go with it.
  ASSERT_TRUE(s.remove_target(a).ok());
  EXPECT_FALSE(s.syscalls_attached());
  // And come back for the next one that asks.
  ASSERT_TRUE(s.set_all_syscalls(b, true).ok());
  EXPECT_TRUE(s.syscalls_attached());
  ASSERT_TRUE(s.set_all_syscalls(b, false).ok());
  EXPECT_FALSE(s.syscalls_attached());
}

// top and record's -S: every target of the session is traced without asking, and the
// per-target switch is refused there.
TEST(BpfSession, AllSyscallsOfTopTracesItsTargetWithoutAsking) {
  REQUIRE_ROOT();
  Child k([] {
    for (int c = 0; c < 250; c++) syscall(SYS_getppid);
  });
  auto s = open_for(k.pid, true);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->all_syscalls(uint32_t(k.pid)));
  EXPECT_TRUE(s->syscalls_attached());
  EXPECT_FALSE(s->set_all_syscalls(uint32_t(k.pid), false).ok());
  k.release();
  k.wait();
  auto snap = s->snapshot();
  ASSERT_TRUE(snap.ok());
  std::map<int, uint64_t> all;
  for (const auto& x : snap->sc_all) all[x.nr] = x.stat.count;
  EXPECT_EQ(all[*probe::syscall_number("getppid")], 250u);
}

// -S keeps the calls of a thread on its CPU (sys_enter and sys_exit look up no thread
// entry): its switch-out and exit move them into its entry, and a snapshot adds what is
// still on the CPU. So every snapshot counts every call made before it, whether the thread
// switched out since or not: here a child makes two bursts of calls, spinning between them
// with no call (it stays on its CPU unless the scheduler moves it), and tells each end
// through shared memory.
TEST(BpfSession, AllSyscallsCountsEveryCallOfAThreadAtEachSnapshot) {
  REQUIRE_ROOT();
  constexpr uint64_t kBurst = 3000;
  void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  int* done = static_cast<int*>(mem);  // [0] the child's last burst done, [1] the parent's go
  int* go = done + 1;
  auto load = [](int* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); };
  // The child on CPU 0 and this thread on CPU 1 (where there are two): this thread's
  // wakeups then never preempt the child.
  const bool pin = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
  cpu_set_t mine{}, old_mask{};
  ASSERT_EQ(sched_getaffinity(0, sizeof old_mask, &old_mask), 0);
  Child k([&] {
    cpu_set_t zero{};
    CPU_SET(0, &zero);
    if (pin && sched_setaffinity(0, sizeof zero, &zero) != 0) _exit(3);
    for (int burst = 1; burst <= 3; burst++) {
      while (load(go) < burst) {
      }
      if (burst == 3) break;
      for (uint64_t c = 0; c < kBurst; c++) syscall(SYS_getppid);
      __atomic_store_n(done, burst, __ATOMIC_SEQ_CST);
    }
  });
  if (pin) {
    CPU_SET(1, &mine);
    ASSERT_EQ(sched_setaffinity(0, sizeof mine, &mine), 0);
  }
  auto s = open_for(k.pid, true);
  ASSERT_TRUE(s);
  k.release();
  sleep_ms(50);  // the child spins
  auto count = [&] {
    auto st = thread_entry(*s, uint32_t(k.pid));
    EXPECT_TRUE(st.has_value());
    return st ? st->sc_count : 0;
  };
  uint64_t before = count();
  for (int burst = 1; burst <= 2; burst++) {
    __atomic_store_n(go, burst, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 5000 && load(done) < burst; i++) sleep_ms(1);
    ASSERT_EQ(load(done), burst);
    const uint64_t now = count();
    EXPECT_EQ(now - before, kBurst) << "burst " << burst;
    before = now;
  }
  __atomic_store_n(go, 3, __ATOMIC_SEQ_CST);
  EXPECT_EQ(k.wait(), 0);
  EXPECT_EQ(sched_setaffinity(0, sizeof old_mask, &old_mask), 0);
  munmap(mem, 4096);
}

// A thread's entry in the threads map is deleted by the kernel when it exits, after its
// exit record (which carries its final totals) was sent: the snapshot that follows has
// only the threads still alive, and the exited ones' last context switches (after
// sched_process_exit) do not make their entries again. The process's own exit empties it.
// The threads seeded from /proc at attach: one that had already exited gets no entry (no
// exit event would delete it; it would show as a live thread for as long as the target is
// observed). Here the main thread, gone (exit of the thread alone) while another thread
// runs: a zombie leader in /proc.
TEST(BpfSession, SeedingLeavesOutAThreadThatHadAlreadyExited) {
  REQUIRE_ROOT();
  int said[2], hold[2];
  ASSERT_EQ(pipe(said), 0);
  ASSERT_EQ(pipe(hold), 0);
  Child child([&] {
    close(said[0]);
    close(hold[1]);
    static int fds[2];
    fds[0] = said[1];
    fds[1] = hold[0];
    pthread_t t;
    pthread_create(
        &t, nullptr,
        [](void*) -> void* {
          pid_t tid = pid_t(syscall(SYS_gettid));
          (void)!write(fds[0], &tid, sizeof tid);
          char b;
          (void)!read(fds[1], &b, 1);  // alive until the parent closes its end
          _exit(0);
        },
        nullptr);
    syscall(SYS_exit, 0);  // this thread only (pthread_exit would unwind through the test's frames)
  });
  close(said[1]);
  close(hold[0]);
  child.release();
  pid_t worker = 0;
  ASSERT_EQ(read(said[0], &worker, sizeof worker), ssize_t(sizeof worker));
  close(said[0]);
  bool zombie = false;
  for (int i = 0; i < 400 && !zombie; i++) {
    zombie = app::thread_exiting(child.pid, uint32_t(child.pid));
    if (!zombie) sleep_ms(5);
  }
  ASSERT_TRUE(zombie) << "the main thread did not exit";
  auto s = open_for(child.pid, false);
  ASSERT_TRUE(s);
  app::seed_thread_states(*s, child.pid);
  auto snap = s->snapshot();
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  std::vector<uint32_t> in_map;
  for (const auto& e : snap->threads) in_map.push_back(e.tid);
  EXPECT_EQ(in_map, std::vector<uint32_t>{uint32_t(worker)}) << "only the living thread";
  close(hold[1]);
  EXPECT_EQ(child.wait(), 0);
}

TEST(BpfSession, ExitDeletesTheThreadsEntryAfterItsRecord) {
  REQUIRE_ROOT();
  constexpr int kThreads = 8, kSleeps = 3, kMs = 5;
  int said[2], hold[2], tids_pipe[2];
  ASSERT_EQ(pipe(said), 0);
  ASSERT_EQ(pipe(hold), 0);
  ASSERT_EQ(pipe(tids_pipe), 0);
  Child child([&] {
    close(hold[1]);
    std::vector<pthread_t> th(kThreads);
    for (auto& t : th)
      pthread_create(
          &t, nullptr,
          [](void* arg) -> void* {
            pid_t tid = pid_t(syscall(SYS_gettid));
            (void)!write(int(reinterpret_cast<intptr_t>(arg)), &tid, sizeof tid);
            for (int i = 0; i < kSleeps; i++) sleep_ms(kMs);
            return nullptr;
          },
          reinterpret_cast<void*>(intptr_t(tids_pipe[1])));
    for (auto& t : th) pthread_join(t, nullptr);
    close(tids_pipe[1]);
    char b = 1;
    (void)!write(said[1], &b, 1);
    (void)!read(hold[0], &b, 1);  // alive until the parent closes its end
  });
  close(said[1]);
  close(hold[0]);
  close(tids_pipe[1]);
  auto s = open_for(child.pid, false);
  ASSERT_TRUE(s);
  child.release();
  std::vector<uint32_t> truth;
  pid_t tid;
  while (read(tids_pipe[0], &tid, sizeof tid) == sizeof tid) truth.push_back(uint32_t(tid));
  close(tids_pipe[0]);
  char b;
  ASSERT_EQ(read(said[0], &b, 1), 1) << "the child did not finish its threads";
  ASSERT_EQ(truth.size(), size_t(kThreads));
  std::sort(truth.begin(), truth.end());
  sleep_ms(50);  // the exited threads' last switches are long done
  Collected c;
  drain(*s, c);
  auto snap = s->snapshot();
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  std::vector<uint32_t> in_map;
  for (const auto& e : snap->threads) in_map.push_back(e.tid);
  EXPECT_EQ(in_map, std::vector<uint32_t>{uint32_t(child.pid)}) << "only the living main thread";
  // Each exited thread's record has its final totals: its sleeps, its time on CPU.
  EXPECT_EQ(exited_sleepers(c, child.pid, kSleeps, kMs), truth);
  close(hold[1]);
  EXPECT_EQ(child.wait(), 0);
  Collected after;
  drain(*s, after);
  ASSERT_EQ(after.exited.size(), 1u);
  EXPECT_EQ(after.exited[0].tid, uint32_t(child.pid));
  snap = s->snapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_TRUE(snap->threads.empty()) << snap->threads.size() << " entries left after the process exited";
}
