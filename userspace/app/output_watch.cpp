#include "app/output_watch.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <iostream>

#include "app/observe.h"
#include "app/target.h"

namespace schedscope::app {

namespace {

// A pipe whose reader closed reports POLLERR to its writer, without a write. Used when a
// buffered write failed earlier and errno no longer says why.
bool reader_gone(int fd) {
  pollfd p{fd, 0, 0};
  return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLERR) != 0;
}

}  // namespace

OutputWatch::OutputWatch(FILE* out, std::string name) : out_(out), name_(std::move(name)) {
  int fd = fileno(out);
  struct stat st {};
  // Only a pipe tells its writer that the reader left (POLLERR) without a write.
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
    thread_ = std::thread([this, fd] { watch(fd); });
}

OutputWatch::~OutputWatch() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void OutputWatch::watch(int fd) {
  while (!stop_) {
    pollfd p{fd, 0, 0};  // no events asked: only POLLERR/POLLHUP wake it
    int r = poll(&p, 1, 100);
    if (r > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
      gone_ = true;
      g_stop = 1;
      return;
    }
  }
}

bool OutputWatch::flush() {
  if (failed()) return false;
  errno = 0;
  if (std::fflush(out_) == 0 && !std::ferror(out_)) return true;
  int e = errno;
  if (e == EPIPE || (e == 0 && reader_gone(fileno(out_)))) {
    gone_ = true;
    g_stop = 1;
    return false;
  }
  error_ = "cannot write " + name_ + ": " + (e ? strerror(e) : "write error");
  g_stop = 1;
  return false;
}

int finish_stdout(int rc) {
  if (rc == kExitPipe) return rc;  // the command saw its reader leave
  std::cout.flush();  // synced with stdio: its errors land on stdout's error flag
  errno = 0;
  bool failed = std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout.good();
  if (!failed) return rc;
  int e = errno;
  if (e == 0 && reader_gone(STDOUT_FILENO)) e = EPIPE;  // the failed write was earlier
  if (rc != 0) return rc;
  if (e == EPIPE) return kExitPipe;
  std::cerr << "schedscope: cannot write standard output: " << (e ? strerror(e) : "write error")
            << "\n";
  return kExitError;
}

}  // namespace schedscope::app
