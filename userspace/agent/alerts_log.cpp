#include "agent/alerts_log.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "record/format.h"
#include "util/json_out.h"

namespace schedscope::agent {

Expected<std::unique_ptr<AlertsLog>> AlertsLog::open(const std::string& path, uint64_t max_bytes) {
  std::unique_ptr<AlertsLog> l(new AlertsLog(path, max_bytes));
  l->f_ = fopen(path.c_str(), "a");
  if (!l->f_) return make_error("--alerts-log " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fileno(l->f_), &st) == 0) l->size_ = uint64_t(st.st_size);
  return l;
}

AlertsLog::~AlertsLog() {
  if (f_) fclose(f_);
}

void AlertsLog::rotate() {
  if (f_) fclose(f_);
  f_ = nullptr;
  std::string old = path_ + ".1";
  if (rename(path_.c_str(), old.c_str()) != 0) err_ = "cannot rotate " + path_ + ": " + std::strerror(errno);
  f_ = fopen(path_.c_str(), "a");
  if (!f_) err_ = "cannot reopen " + path_ + ": " + std::strerror(errno);
  size_ = 0;
}

void AlertsLog::write(const AlertOrigin& o, const model::Alert& a, double wall_time_s,
                      const std::string& flight_recording) {
  nlohmann::json j;
  j["time"] = wall_time_s;
  j["pid"] = o.pid;
  j["exe"] = o.exe;
  j["comm"] = o.comm;
  if (!o.container.empty()) j["container"] = o.container;
  if (!o.pod.empty()) j["pod"] = o.pod;
  j["alert"] = record::alert_to_json(a);
  if (!flight_recording.empty()) j["flight_recording"] = flight_recording;
  std::string line = dump_json(j) + "\n";
  if (max_ && size_ > 0 && size_ + line.size() > max_) rotate();
  if (!f_) return;
  if (fwrite(line.data(), 1, line.size(), f_) != line.size() || fflush(f_) != 0) {
    err_ = "cannot write " + path_ + ": " + std::strerror(errno);
    return;
  }
  size_ += line.size();
  lines_++;
}

}  // namespace schedscope::agent
