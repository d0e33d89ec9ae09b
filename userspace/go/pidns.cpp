#include "go/pidns.h"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "go/reader_detail.h"

namespace schedscope::go {

namespace {

// The NSpid line of a status file: the id in each namespace, outermost (the observer's
// /proc) first. Empty when absent or unreadable.
std::vector<int> nspid(const std::string& status_path) {
  std::ifstream in(status_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream ss(line.substr(6));
    std::vector<int> ids;
    long v = 0;
    while (ss >> v) {
      if (v <= 0 || v > INT32_MAX) return {};
      ids.push_back(int(v));
    }
    return ids;
  }
  return {};
}

}  // namespace

NsTids read_ns_tids(int pid) {
  NsTids out;
  out.ns_pid = pid;
  const std::string proc = "/proc/" + std::to_string(pid);
  auto ids = nspid(proc + "/status");
  if (ids.size() < 2 || ids.front() != pid) return out;
  out.nested = true;
  out.ns_pid = ids.back();
  for (int tid : detail::read_tids(pid)) {
    auto t = nspid(proc + "/task/" + std::to_string(tid) + "/status");
    if (t.size() >= 2 && t.front() == tid) out.to_host[t.back()] = tid;
  }
  return out;
}

std::vector<int> namespace_tids(int pid) {
  NsTids ns = read_ns_tids(pid);
  if (!ns.nested) return detail::read_tids(pid);
  std::vector<int> tids;
  tids.reserve(ns.to_host.size());
  for (const auto& [inner, host] : ns.to_host) tids.push_back(inner);
  std::sort(tids.begin(), tids.end());
  return tids;
}

int namespace_pid(int pid) {
  auto ids = nspid("/proc/" + std::to_string(pid) + "/status");
  return ids.size() >= 2 && ids.front() == pid ? ids.back() : pid;
}

}  // namespace schedscope::go
