// OutputFile (util/safe_file.h): how every output file is created, and the cleanup of
// temporaries left by killed runs. Root is needed only to play "another user" (chown).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "app/observe.h"
#include "app/output_watch.h"
#include "app/target.h"
#include "util/safe_file.h"

using namespace schedscope;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char buf[] = "/tmp/schedscope-safe-XXXXXX";
    path = mkdtemp(buf);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  [[nodiscard]] std::string file(const std::string& n) const { return path + "/" + n; }
};

std::string read_all(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& p, const std::string& s) { std::ofstream(p) << s; }

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d))
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.insert(e->d_name);
  closedir(d);
  return out;
}

bool is_symlink(const std::string& p) {
  struct stat st {};
  return lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

std::unique_ptr<OutputFile> make(const std::string& path) {
  auto f = OutputFile::create(path);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  return f.ok() ? std::move(f.value()) : nullptr;
}

}  // namespace

TEST(SafeFile, WritesMode0600ThroughAnUnpredictableTemporary) {
  TempDir d;
  mode_t old = umask(0);  // even a permissive umask gives 0600
  std::string path = d.file("out.bin");
  auto a = make(path);
  auto b = make(d.file("other.bin"));
  umask(old);
  ASSERT_TRUE(a && b);
  int pid = 0;
  std::string tmp_name = a->temp_path().substr(d.path.size() + 1);
  EXPECT_TRUE(is_temp_name(tmp_name, &pid)) << tmp_name;
  EXPECT_EQ(pid, getpid());
  EXPECT_EQ(tmp_name.rfind("out.bin.tmp-" + std::to_string(getpid()) + "-", 0), 0u) << tmp_name;
  // Two temporaries of the same process differ in their random part.
  EXPECT_NE(tmp_name.substr(tmp_name.size() - 10),
            b->temp_path().substr(b->temp_path().size() - 10));
  struct stat st {};
  ASSERT_EQ(lstat(a->temp_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(fcntl(a->fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_TRUE(a->write_all("hello", 5).ok());
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "nothing under the final name before commit";
  ASSERT_TRUE(a->commit().ok());
  EXPECT_EQ(read_all(path), "hello");
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  b->discard();
  EXPECT_EQ(names_in(d.path), std::set<std::string>{"out.bin"}) << "no temporary left";
}

TEST(SafeFile, SymlinkAtTheFinalNameIsReplacedNotFollowed) {
  TempDir d;
  std::string victim = d.file("victim");
  write_file(victim, "precious");
  std::string path = d.file("out.pftrace");
  ASSERT_EQ(symlink(victim.c_str(), path.c_str()), 0);
  auto f = make(path);
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->write_all("data", 4).ok());
  ASSERT_TRUE(f->commit().ok());
  EXPECT_EQ(read_all(victim), "precious");
  EXPECT_FALSE(is_symlink(path));
  EXPECT_EQ(read_all(path), "data");
}

TEST(SafeFile, SymlinksAtTemporaryNamesAreNeverFollowed) {
  TempDir d;
  std::string victim = d.file("victim");
  write_file(victim, "precious");
  std::string path = d.file("out.sched");
  // The names an attacker can guess: the old "<path>.tmp-<pid>" scheme for this pid and
  // the next ones, and our stem with guessed suffixes.
  for (int p = getpid(); p < getpid() + 20; p++)
    ASSERT_EQ(symlink(victim.c_str(), (path + ".tmp-" + std::to_string(p)).c_str()), 0);
  for (const char* s : {"AAAAAAAAAA", "0000000000", "aaaaaaaaaa"})
    ASSERT_EQ(
        symlink(victim.c_str(), (path + ".tmp-" + std::to_string(getpid()) + "-" + s).c_str()), 0);
  for (int i = 0; i < 20; i++) {
    auto f = make(path);
    ASSERT_TRUE(f);
    EXPECT_FALSE(is_symlink(f->temp_path()));
    ASSERT_TRUE(f->write_all("x", 1).ok());
    ASSERT_TRUE(f->commit().ok());
  }
  EXPECT_EQ(read_all(victim), "precious");
  EXPECT_EQ(read_all(path), "x");
  // The planted links are someone else's business: still there, untouched.
  EXPECT_TRUE(is_symlink(path + ".tmp-" + std::to_string(getpid())));
}

TEST(SafeFile, DirectoryOrNonRegularOutputFailsAtCreate) {
  TempDir d;
  ASSERT_EQ(mkdir(d.file("sub").c_str(), 0700), 0);
  ASSERT_EQ(symlink(d.file("sub").c_str(), d.file("link-to-dir").c_str()), 0);
  for (const std::string& p : {d.file("sub"), d.file("sub/"), d.file("link-to-dir"), d.path}) {
    EXPECT_NE(output_path_problem(p).find("is a directory"), std::string::npos) << p;
    auto f = OutputFile::create(p);
    ASSERT_FALSE(f.ok()) << p;
    EXPECT_NE(f.error().message.find("is a directory"), std::string::npos) << f.error().message;
  }
  EXPECT_NE(output_path_problem("/dev/null").find("not a regular file"), std::string::npos);
  EXPECT_NE(output_path_problem(d.file("missing/out")).find("no such directory"),
            std::string::npos);
  EXPECT_EQ(output_path_problem(d.file("new.sched")), "");
  EXPECT_EQ(names_in(d.path), (std::set<std::string>{"sub", "link-to-dir"}))
      << "no temporary created";
  EXPECT_TRUE(names_in(d.file("sub")).empty());
}

TEST(SafeFile, FailedRenameKeepsTheTemporaryAndSaysWhere) {
  TempDir d;
  std::string path = d.file("out.sched");
  auto f = make(path);
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->write_all("partial", 7).ok());
  // The final name becomes a non-empty directory after the start: the rename must fail.
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
  write_file(path + "/keep", "k");
  Status st = f->commit();
  ASSERT_FALSE(st.ok());
  const std::string& m = st.error().message;
  EXPECT_NE(m.find("cannot rename " + f->temp_path() + " to " + path), std::string::npos) << m;
  EXPECT_NE(m.find("the data stays in " + f->temp_path()), std::string::npos) << m;
  EXPECT_EQ(read_all(f->temp_path()), "partial");
}

TEST(SafeFile, DiscardDeletesAndDestructorKeepsTheTemporary) {
  TempDir d;
  std::string kept;
  {
    auto f = make(d.file("a"));
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->write_all("abc", 3).ok());
    kept = f->temp_path();
  }
  EXPECT_EQ(read_all(kept), "abc") << "an unfinished file is kept, like after a crash";
  auto g = make(d.file("b"));
  ASSERT_TRUE(g);
  std::string gone = g->temp_path();
  g->discard();
  EXPECT_NE(access(gone.c_str(), F_OK), 0);
  EXPECT_NE(access(d.file("b").c_str(), F_OK), 0);
}

TEST(SafeFile, PublishFirstThenStream) {
  TempDir d;
  std::string path = d.file("top.txt");
  write_file(path, "old contents that are longer");
  auto f = make(path);
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->publish().ok());
  ASSERT_TRUE(f->write_all("line 1\n", 7).ok());
  EXPECT_EQ(read_all(path), "line 1\n") << "readable under its name while it grows";
  ASSERT_TRUE(f->write_all("line 2\n", 7).ok());
  ASSERT_TRUE(f->commit().ok());
  EXPECT_EQ(read_all(path), "line 1\nline 2\n");
  EXPECT_EQ(names_in(d.path), std::set<std::string>{"top.txt"});
}

TEST(SafeFile, TempNames) {
  int pid = 0;
  EXPECT_TRUE(is_temp_name("a.sched.tmp-123-AbCdEf0123", &pid));
  EXPECT_EQ(pid, 123);
  EXPECT_FALSE(is_temp_name("a.sched.tmp-123"));            // the old, predictable scheme
  EXPECT_FALSE(is_temp_name("a.sched.tmp-123-AbCdEf012"));  // 9 random chars
  EXPECT_FALSE(is_temp_name("a.sched.tmp-12x-AbCdEf0123"));
  EXPECT_FALSE(is_temp_name("a.sched.tmp--AbCdEf0123"));
  EXPECT_FALSE(is_temp_name(".tmp-1-AbCdEf0123"));  // no final name before it
  EXPECT_FALSE(is_temp_name("a.sched.tmp-1-AbCdEf01/3"));
}

// A temporary is stale when its writer is gone: the lock it held went with it.
TEST(SafeFile, StaleTemporariesOfKilledWritersAreRemovedLiveOnesKept) {
  TempDir d;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto f = OutputFile::create(d.file("rec.sched"));
    if (!f) _exit(1);
    (void)!write((*f)->fd(), "partial", 7);
    (void)!write(ready[1], "1", 1);
    for (;;) pause();  // a record in progress, until SIGKILL
  }
  close(ready[1]);
  char b = 0;
  ASSERT_EQ(read(ready[0], &b, 1), 1);
  close(ready[0]);
  auto names = names_in(d.path);
  ASSERT_EQ(names.size(), 1u);
  std::string tmp = *names.begin();
  ASSERT_TRUE(is_temp_name(tmp));
  // Ours, but held by a live writer.
  auto mine = make(d.file("live.sched"));
  ASSERT_TRUE(mine);
  EXPECT_TRUE(remove_stale_temps(d.path).empty());
  EXPECT_EQ(names_in(d.path).size(), 2u);

  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  auto lines = remove_stale_temps(d.path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("removed " + d.file(tmp)), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("pid " + std::to_string(child)), std::string::npos) << lines[0];
  EXPECT_NE(access(d.file(tmp).c_str(), F_OK), 0);
  EXPECT_EQ(access(mine->temp_path().c_str(), F_OK), 0) << "the live writer's file stays";
}

TEST(SafeFile, StaleCleanupLeavesOtherUsersLinksAndOtherNamesAlone) {
  TempDir d;
  std::string victim = d.file("victim");
  write_file(victim, "precious");
  write_file(d.file("mine.sched.tmp-1-AAAAAAAAAA"), "stale");  // ours, unlocked: removed
  write_file(d.file("notes.txt"), "n");
  write_file(d.file("x.sched.tmp-1"), "old scheme");  // not our naming pattern
  ASSERT_EQ(symlink(victim.c_str(), d.file("link.sched.tmp-1-BBBBBBBBBB").c_str()), 0);
  bool root = geteuid() == 0;
  if (root) {
    write_file(d.file("theirs.sched.tmp-1-CCCCCCCCCC"), "another user's");
    ASSERT_EQ(chown(d.file("theirs.sched.tmp-1-CCCCCCCCCC").c_str(), 65534, 65534), 0);
  }
  auto lines = remove_stale_temps(d.path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("mine.sched.tmp-1-AAAAAAAAAA"), std::string::npos);
  auto left = names_in(d.path);
  EXPECT_EQ(left.count("mine.sched.tmp-1-AAAAAAAAAA"), 0u);
  EXPECT_EQ(left.count("notes.txt"), 1u);
  EXPECT_EQ(left.count("x.sched.tmp-1"), 1u);
  EXPECT_EQ(left.count("link.sched.tmp-1-BBBBBBBBBB"), 1u);
  EXPECT_EQ(read_all(victim), "precious");
  if (root) {
    EXPECT_EQ(left.count("theirs.sched.tmp-1-CCCCCCCCCC"), 1u);
  }
}

TEST(SafeFile, CreateCleansItsDirectoryOncePerProcessAndSaysSo) {
  TempDir d;
  write_file(d.file("a.sched.tmp-7-AAAAAAAAAA"), "stale");
  auto f = make(d.file("new.sched"));
  ASSERT_TRUE(f);
  ASSERT_EQ(f->notices().size(), 1u);
  EXPECT_NE(f->notices()[0].find("a.sched.tmp-7-AAAAAAAAAA"), std::string::npos);
  EXPECT_NE(access(d.file("a.sched.tmp-7-AAAAAAAAAA").c_str(), F_OK), 0);
  write_file(d.file("b.sched.tmp-7-AAAAAAAAAA"), "stale");
  auto g = make(d.file("new2.sched"));
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->notices().empty()) << "scanned once per directory";
}

// ---------------------------------------------------------------- -u/--user

TEST(LaunchUser, ResolvesNamesAndUids) {
  auto nobody = app::resolve_user("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.error().message;
  EXPECT_EQ(nobody->uid, 65534u);
  auto by_uid = app::resolve_user("65534");
  ASSERT_TRUE(by_uid.ok());
  EXPECT_EQ(by_uid->uid, 65534u);
  EXPECT_EQ(by_uid->gid, nobody->gid);
  auto root = app::resolve_user("root");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->uid, 0u);
  auto unnamed = app::resolve_user("424242");  // no passwd entry: that uid, same gid
  ASSERT_TRUE(unnamed.ok());
  EXPECT_EQ(unnamed->uid, 424242u);
  EXPECT_EQ(unnamed->gid, 424242u);
  EXPECT_TRUE(unnamed->groups.empty());
  auto none = app::resolve_user("no-such-user-schedscope");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "-u/--user: no such user: no-such-user-schedscope");
  EXPECT_FALSE(app::resolve_user("99999999999").ok());
  EXPECT_FALSE(app::resolve_user("").ok());
}

// The launched child: default dispositions, empty mask, only 0-2 open, the given user.
TEST(LaunchUser, ChildGetsDefaultSignalsNoExtraFdsAndTheUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  TempDir d;
  ASSERT_EQ(chmod(d.path.c_str(), 0777), 0);
  std::string out = d.file("child");
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  struct sigaction old_pipe {};
  sigaction(SIGPIPE, &ign, &old_pipe);
  // Signal 32, reserved by glibc (its sigaction() refuses it), ignored as some process
  // managers leave it: the child must get it back at its default too.
  struct KSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  } ign32{SIG_IGN, 0, nullptr, 0}, old32{};
  ASSERT_EQ(syscall(SYS_rt_sigaction, 32, &ign32, &old32, sizeof(uint64_t)), 0);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  int leak = open("/dev/null", O_RDONLY);  // no O_CLOEXEC: would be inherited
  auto user = app::resolve_user("nobody");
  ASSERT_TRUE(user.ok());
  auto l = app::Launched::start({"/bin/sh", "-c",
                                 "{ id -u; grep -E '^(SigIgn|SigBlk)' /proc/self/status; ls "
                                 "/proc/self/fd | sort -n | tail -n 1; } > " +
                                     out},
                                &*user);
  close(leak);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  (void)syscall(SYS_rt_sigaction, 32, &old32, nullptr, sizeof(uint64_t));
  ASSERT_TRUE(l.ok()) << l.error().message;
  ASSERT_TRUE(l->release().ok());
  for (int i = 0; i < 500 && !l->exited(); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(l->exited());
  std::string got = read_all(out);
  // uid, no ignored or blocked signal, and no descriptor above ls's own directory fd (3):
  // neither `leak` nor the launcher's pipes.
  EXPECT_EQ(got, "65534\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n3\n") << got;
}

TEST(LaunchUser, FailedSwitchIsReportedByRelease) {
  // Only an unprivileged caller fails to switch users; as root the check runs in a child
  // that first drops to uid 65534 (exit codes name the step that went wrong).
  auto body = [] {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    auto user = app::resolve_user("65534");
    if (!user.ok()) _exit(4);
    auto l = app::Launched::start({"/bin/true"}, &*user);
    if (!l.ok()) _exit(5);
    Status st = l->release();
    if (st.ok()) _exit(6);
    if (st.error().message.find("cannot run '/bin/true' as user 65534 (setgroups)") ==
        std::string::npos) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      _exit(7);
    }
    _exit(0);
  };
  EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "");
}

// ---------------------------------------------------------------- closed output

TEST(OutputWatch, PipeReaderLeavingStopsWithoutAWrite) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  FILE* out = fdopen(p[1], "w");
  ASSERT_NE(out, nullptr);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  struct sigaction old {};
  sigaction(SIGPIPE, &ign, &old);
  app::g_stop = 0;
  {
    app::OutputWatch w(out, "standard output");
    std::fputs("frame 1\n", out);
    EXPECT_TRUE(w.flush());
    EXPECT_FALSE(w.gone());
    close(p[0]);  // the reader goes away (| head)
    for (int i = 0; i < 100 && !w.gone(); i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(w.gone()) << "noticed between frames, without writing";
    EXPECT_EQ(app::g_stop, 1);
    EXPECT_FALSE(w.flush());
    EXPECT_TRUE(w.error().empty()) << "a reader leaving is no error";
  }
  app::g_stop = 0;
  std::fclose(out);
  sigaction(SIGPIPE, &old, nullptr);
}

TEST(OutputWatch, WriteErrorsOtherThanEpipeAreErrors) {
  FILE* out = std::fopen("/dev/full", "w");
  if (!out) GTEST_SKIP() << "no /dev/full";
  app::g_stop = 0;
  app::OutputWatch w(out, "/dev/full");
  std::fputs("frame\n", out);
  EXPECT_FALSE(w.flush());
  EXPECT_FALSE(w.gone());
  EXPECT_EQ(w.error(), "cannot write /dev/full: No space left on device");
  EXPECT_EQ(app::g_stop, 1);
  app::g_stop = 0;
  std::fclose(out);
}

// A thread seeded from /proc at attach is dropped again when its stat says it is exiting:
// a live thread is not, a zombie (exited, not waited for) and a tid that is gone are.
TEST(ThreadExiting, LiveZombieAndGone) {
  EXPECT_FALSE(app::thread_exiting(getpid(), uint32_t(syscall(SYS_gettid))));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  // Exited and not reaped: a zombie until waitpid.
  for (int i = 0; i < 200; i++) {
    std::ifstream st("/proc/" + std::to_string(child) + "/stat");
    std::string line;
    std::getline(st, line);
    if (line.find(") Z ") != std::string::npos) break;
    usleep(5000);
  }
  EXPECT_TRUE(app::thread_exiting(child, uint32_t(child)));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(app::thread_exiting(child, uint32_t(child)));  // gone
  EXPECT_TRUE(app::thread_exiting(getpid(), 0x7ffffff0u));    // never was
}
