// The one way the product opens a file it reads as data (an ELF binary, its libraries
// through /proc/PID/root, a recording): non-blocking, close-on-exec, then fstat, and only
// a regular file is accepted. A FIFO, a directory, a socket or a device (/dev/zero) is a
// one-line error instead of a hang or an endless read. Error messages name the path once;
// callers add no path of their own.
#pragma once
#include <cstdint>
#include <string>

#include "util/expected.h"

namespace schedscope {

class InputFile {
 public:
  InputFile(InputFile&& o) noexcept : fd_(o.fd_), size_(o.size_) { o.fd_ = -1; }
  InputFile& operator=(InputFile&& o) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] uint64_t size() const { return size_; }

 private:
  friend Expected<InputFile> open_input_file(const std::string& path);
  InputFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Opens `path` for reading (O_RDONLY | O_NONBLOCK | O_CLOEXEC; the non-blocking flag is
// cleared again once the file is known to be regular). Errors: "cannot open PATH: reason",
// "PATH: is a directory", "PATH: not a regular file (a FIFO)" and the like. An empty file
// is returned as such (callers say what they expected).
Expected<InputFile> open_input_file(const std::string& path);

}  // namespace schedscope
