// A batch output whose reader can go away (`schedscope top --batch | head -c 50`).
// schedscope ignores SIGPIPE (a signal must not kill it before the BPF programs are
// detached and the files finished), so every write path checks for EPIPE instead, and a
// watcher notices a pipe's reader leaving between two frames: the observer stops at once
// (g_stop) and the command exits with kExitPipe (141, as a shell reports a writer killed
// by SIGPIPE) after the normal cleanup.
#pragma once
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

namespace schedscope::app {

class OutputWatch {
 public:
  // `name` is what errors call the output ("standard output", a file path).
  OutputWatch(FILE* out, std::string name);
  ~OutputWatch();
  OutputWatch(const OutputWatch&) = delete;
  OutputWatch& operator=(const OutputWatch&) = delete;

  // Flushes and checks the stream. False once the output failed: gone() for a reader
  // that went away (EPIPE), else error() says what happened (a full disk, an I/O error).
  bool flush();
  [[nodiscard]] bool gone() const { return gone_.load(); }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] bool failed() const { return gone() || !error_.empty(); }

 private:
  void watch(int fd);
  FILE* out_;
  std::string name_;
  std::string error_;
  std::atomic<bool> gone_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The last word on standard output, for every command: flushes it and turns a write that
// failed anywhere during the command (stdio keeps the error) into the exit code. A reader
// that went away (`schedscope report f.sched | head`) gives kExitPipe, quietly, as a shell
// reports a writer killed by SIGPIPE; any other failure (a full disk behind `>`) says so
// on stderr and gives kExitError. A command that already failed keeps its own code.
int finish_stdout(int rc);

}  // namespace schedscope::app
