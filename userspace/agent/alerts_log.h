// --alerts-log FILE: one JSON object per line for each alert raised (the target's pid,
// exe and comm, then the alert as recordings store it). When the file passes its size
// cap it is renamed FILE.1 (the previous FILE.1 is replaced) and a new FILE is started.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "model/alert.h"
#include "util/expected.h"

namespace schedscope::agent {

struct AlertOrigin {
  int pid = 0;
  std::string exe, comm, container, pod;
};

class AlertsLog {
 public:
  static Expected<std::unique_ptr<AlertsLog>> open(const std::string& path, uint64_t max_bytes);
  ~AlertsLog();
  AlertsLog(const AlertsLog&) = delete;
  AlertsLog& operator=(const AlertsLog&) = delete;
  // Appends one line (flushed). Errors are kept in last_error() and do not stop the agent.
  // flight_recording: the flight recording that covers this alert ("": none, no key).
  void write(const AlertOrigin& o, const model::Alert& a, double wall_time_s,
             const std::string& flight_recording = "");
  [[nodiscard]] const std::string& last_error() const { return err_; }
  [[nodiscard]] uint64_t lines() const { return lines_; }

 private:
  AlertsLog(std::string path, uint64_t max_bytes) : path_(std::move(path)), max_(max_bytes) {}
  void rotate();
  std::string path_;
  uint64_t max_;
  FILE* f_ = nullptr;
  uint64_t size_ = 0, lines_ = 0;
  std::string err_;
};

}  // namespace schedscope::agent
