#include "app/output_watch.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "app/observe.h"

namespace schedscope::app {

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
  if (e == EPIPE) {
    gone_ = true;
    g_stop = 1;
    return false;
  }
  error_ = "cannot write " + name_ + ": " + (e ? strerror(e) : "write error");
  g_stop = 1;
  return false;
}

}  // namespace schedscope::app
