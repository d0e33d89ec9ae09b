// BPF tier: the --annotations attacher (probe/attacher.h) on the real kernel. The program
// is loaded only when asked; its uprobes are attached per process; the hits are counted
// per target, exactly; detaching one process leaves the other's probes in place.
// Ground truth: the annotated workload's -loop N makes exactly N trace.WithRegion calls
// (2 annotation calls each) and nothing else annotated (-requests/-health/-bg 0).
#include <bpf/bpf.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "../common/fixtures.h"
#include "annotations.h"
#include "annotations/probes.h"
#include "elf/elf_file.h"
#include "go/binary.h"
#include "probe/session.h"
#include "bpf_test_support.h"

using namespace schedscope;
using schedscope::bpftest::programs_loaded_here;

namespace {

// The workload, exec'd and blocked on its stdin (-wait-stdin) until go() is called.
struct Workload {
  pid_t pid = -1;
  int gate = -1;
  Workload(const std::string& path, int loops) {
    int p[2];
    if (pipe(p) != 0) abort();
    pid = fork();
    if (pid == 0) {
      dup2(p[0], 0);
      close(p[1]);
      FILE* devnull = freopen("/dev/null", "w", stdout);
      (void)devnull;
      std::string n = std::to_string(loops);
      execl(path.c_str(), path.c_str(), "-wait-stdin", "-requests", "0", "-health", "0", "-bg",
            "0", "-loop", n.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(p[0]);
    gate = p[1];
    // Exec'd once /proc/PID/exe is the workload (uprobes go into its mapping).
    char real[4096] = {};
    std::string want = realpath(path.c_str(), real) ? real : path;
    for (int i = 0; i < 500; i++) {
      char exe[4096] = {};
      ssize_t k = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), exe, sizeof exe - 1);
      if (k > 0 && std::string(exe, size_t(k)) == want) break;
      usleep(10'000);
    }
  }
  void go() {
    ASSERT_EQ(write(gate, "\n", 1), 1);
    close(gate);
    gate = -1;
  }
  int wait() {
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
  }
  ~Workload() {
    if (gate >= 0) close(gate);
  }
};

}  // namespace

TEST(BpfAnnotations, LoadedOnlyWhenAskedAttachedPerProcessCountedPerTarget) {
  REQUIRE_ROOT();
  const std::string path = std::string(SCHEDSCOPE_BUILD_DIR) + "/workloads/annotated-stripped";
  if (!test::present_or_skip(path)) return;
  auto bin = go::inspect_binary(path);
  ASSERT_TRUE(bin.ok()) << bin.error().message;
  auto f = elf::ElfFile::open(path);
  ASSERT_TRUE(f.ok());
  auto probes = annotations::annotation_probes(**f, *bin);
  ASSERT_TRUE(probes) << probes.error().message;

  constexpr int kLoops = 300;  // 600 annotation calls per process
  Workload a(path, kLoops), b(path, kLoops);
  auto targets_of = [&](pid_t pid) {
    probe::AnnotationProbeTargets t;
    t.path = "/proc/" + std::to_string(pid) + "/exe";
    for (const auto& p : *probes) t.offset_kinds.push_back({p.offset, p.kind});
    return t;
  };

  {  // not asked: not loaded, and nothing can attach it
    probe::SessionConfig cfg;
    cfg.tgid = uint32_t(a.pid);
    cfg.ringbuf_bytes = 1 << 16;
    auto s = probe::Session::open(cfg);
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_TRUE((*s)->attach().ok());
    const auto loaded = programs_loaded_here();
    EXPECT_TRUE(loaded.count("ss_sched_switch"));  // the list is the kernel's
    EXPECT_FALSE(loaded.count("ss_annot"));
    EXPECT_FALSE((*s)->attach_annotations(a.pid, targets_of(a.pid)).ok());
  }

  probe::SessionConfig cfg;
  cfg.tgid = uint32_t(a.pid);
  cfg.max_targets = 2;
  cfg.ringbuf_bytes = 1 << 20;
  cfg.annotations = true;
  auto opened = probe::Session::open(cfg);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& s = **opened;
  ASSERT_TRUE(s.add_target(uint32_t(b.pid)).ok());
  ASSERT_TRUE(s.attach().ok());
  EXPECT_TRUE(programs_loaded_here().count("ss_annot"));
  auto listed = [&] {
    auto p = s.attached_programs();
    return std::find(p.begin(), p.end(), "ss_annot") != p.end();
  };
  EXPECT_FALSE(listed()) << "loaded is not attached";

  ASSERT_TRUE(s.attach_annotations(a.pid, targets_of(a.pid)).ok());
  ASSERT_TRUE(s.attach_annotations(b.pid, targets_of(b.pid)).ok());
  EXPECT_EQ(s.annotation_probe_count(a.pid), probes->size());
  EXPECT_EQ(s.annotation_probe_count(b.pid), probes->size());
  EXPECT_TRUE(listed());
  s.detach_annotations(b.pid);  // B's probes go, A's stay
  EXPECT_EQ(s.annotation_probe_count(b.pid), 0u);
  EXPECT_EQ(s.annotation_probe_count(a.pid), probes->size());
  EXPECT_TRUE(listed());

  a.go();
  b.go();
  EXPECT_EQ(a.wait(), 0);
  EXPECT_EQ(b.wait(), 0);

  int begins = 0, ends = 0;
  probe::EventFn fn = [&](const ss_hdr* h, size_t size) {
    if (h->type != SS_EV_ANNOT) return;
    ASSERT_GE(size, sizeof(ss_annot));
    const auto* e = reinterpret_cast<const ss_annot*>(h);
    EXPECT_EQ(e->kind, SS_ANNOT_REGION);
    EXPECT_EQ(std::string(e->s1, std::min<size_t>(e->len1, sizeof e->s1)), "loop");
    (e->arg == 0 ? begins : ends)++;
  };
  for (int i = 0; i < 5; i++) ASSERT_TRUE(s.poll(20, fn).ok());

  EXPECT_EQ(s.annotation_hits(uint32_t(a.pid)), uint64_t(2 * kLoops));
  EXPECT_EQ(s.annotation_hits(uint32_t(b.pid)), 0u);
  // A's calls only, each once: B's probes were gone when it ran the same loop.
  EXPECT_EQ(begins, kLoops);
  EXPECT_EQ(ends, kLoops);
}
