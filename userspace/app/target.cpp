#include "app/target.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace schedscope::app {
namespace {

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// Field 3 (state) and 9 (flags) of /proc/PID/stat, parsed after the last ')'.
bool stat_fields(int pid, char* state, unsigned long* flags) {
  std::string s = read_first_line("/proc/" + std::to_string(pid) + "/stat");
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return false;
  std::istringstream is(s.substr(rp + 2));
  std::string f[7];
  is >> *state;
  for (int i = 0; i < 5; i++) is >> f[i];  // ppid pgrp session tty_nr tpgid
  is >> *flags;
  return !is.fail();
}

constexpr unsigned long kPfKthread = 0x00200000;

}  // namespace

bool process_alive(int pid) {
  char state = 0;
  unsigned long flags = 0;
  if (!stat_fields(pid, &state, &flags)) return false;
  return state != 'Z' && state != 'X';
}

Expected<ProcInfo> probe_pid(int pid, int* exit_code) {
  *exit_code = kExitNoProcess;
  if (pid <= 0) return make_error("invalid PID " + std::to_string(pid));
  char state = 0;
  unsigned long flags = 0;
  if (!stat_fields(pid, &state, &flags))
    return make_error("no process with PID " + std::to_string(pid));
  if (flags & kPfKthread)
    return make_error("PID " + std::to_string(pid) +
                      " is a kernel thread: schedscope observes user-space processes");
  if (state == 'Z' || state == 'X')
    return make_error("PID " + std::to_string(pid) + " has exited (zombie)");
  ProcInfo pi;
  pi.pid = pid;
  pi.comm = read_first_line("/proc/" + std::to_string(pid) + "/comm");
  char buf[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
  if (n > 0) pi.exe.assign(buf, size_t(n));
  std::ifstream st("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(st, line);)
    if (line.rfind("Threads:", 0) == 0) pi.threads = std::stoi(line.substr(8));
  *exit_code = kExitOk;
  return pi;
}

Expected<Launched> Launched::start(const std::vector<std::string>& argv) {
  if (argv.empty()) return make_error("no command given after --");
  int gate[2], err[2];
  if (pipe2(gate, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    return make_error(std::string("pipe: ") + strerror(errno));
  pid_t pid = fork();
  if (pid < 0) return make_error(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    close(gate[1]);
    close(err[0]);
    char b;
    ssize_t r;
    do {
      r = read(gate[0], &b, 1);
    } while (r < 0 && errno == EINTR);
    if (r != 1) _exit(126);  // the observer went away before releasing us
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    int e = errno;
    (void)!write(err[1], &e, sizeof e);
    _exit(kExitExec);
  }
  close(gate[0]);
  close(err[1]);
  Launched l;
  l.pid_ = pid;
  l.gate_w_ = gate[1];
  l.err_r_ = err[0];
  l.cmd_ = argv[0];
  return l;
}

Launched::Launched(Launched&& o) noexcept
    : pid_(o.pid_),
      gate_w_(o.gate_w_),
      err_r_(o.err_r_),
      reaped_(o.reaped_),
      status_(o.status_),
      cmd_(std::move(o.cmd_)) {
  o.pid_ = -1;
  o.gate_w_ = o.err_r_ = -1;
  o.reaped_ = true;
}

Launched::~Launched() {
  if (gate_w_ >= 0) close(gate_w_);  // an unreleased child exits at the closed gate
  if (err_r_ >= 0) close(err_r_);
  if (pid_ > 0 && !reaped_) terminate(1000);
}

Status Launched::release() {
  char b = 1;
  if (write(gate_w_, &b, 1) != 1) return make_error(std::string("gate: ") + strerror(errno));
  close(gate_w_);
  gate_w_ = -1;
  int e = 0;
  ssize_t n;
  do {
    n = read(err_r_, &e, sizeof e);
  } while (n < 0 && errno == EINTR);
  close(err_r_);
  err_r_ = -1;
  if (n == sizeof e) {
    waitpid(pid_, &status_, 0);
    reaped_ = true;
    return make_error("cannot execute '" + cmd_ + "': " + strerror(e));
  }
  return {};
}

bool Launched::exited() {
  if (reaped_) return true;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
    return true;
  }
  return false;
}

void Launched::terminate(int grace_ms) {
  if (reaped_ || pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int waited = 0; waited < grace_ms; waited += 10) {
    if (exited()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status_, 0);
  reaped_ = true;
}

}  // namespace schedscope::app
