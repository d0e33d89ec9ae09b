#include "capacity/cgroup.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace schedscope::capacity {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> to_u64(std::string_view s) {
  s = trim(s);
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = uint64_t(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > (1u << 20)) s.resize(1u << 20);
  return s;
}

// The directory of hierarchy path `path` under a mount, or nullopt when the mount does
// not show it (a container that sees only its own subtree).
std::optional<std::string> dir_of(const CgroupMount& m, const std::string& path) {
  std::string root = m.root == "/" ? "" : m.root;
  if (path.compare(0, root.size(), root) != 0) return std::nullopt;
  std::string rest = path.substr(root.size());
  if (!rest.empty() && rest[0] != '/') return std::nullopt;
  if (rest.find("/../") != std::string::npos || (rest.size() >= 3 && rest.substr(rest.size() - 3) == "/.."))
    return std::nullopt;
  return m.point + rest;
}

}  // namespace

ProcCgroup parse_proc_cgroup(std::string_view text) {
  ProcCgroup out;
  for (auto line : split(text, '\n')) {
    if (line.empty()) continue;
    size_t a = line.find(':');
    if (a == std::string_view::npos) continue;
    size_t b = line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    std::string_view id = line.substr(0, a), ctrls = line.substr(a + 1, b - a - 1);
    std::string path(line.substr(b + 1));
    if (path.empty() || path[0] != '/') continue;
    if (id == "0" && ctrls.empty()) {
      out.v2 = path;
      continue;
    }
    for (auto c : split(ctrls, ','))
      if (c == "cpu") out.v1_cpu = path;
  }
  return out;
}

CgroupMounts parse_mountinfo(std::string_view text) {
  CgroupMounts out;
  for (auto line : split(text, '\n')) {
    // id parent major:minor root point options [optional...] - fstype source superoptions
    size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    auto left = split(line.substr(0, dash), ' ');
    auto right = split(line.substr(dash + 3), ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    CgroupMount m{std::string(left[4]), std::string(left[3])};
    if (right[0] == "cgroup2") {
      if (!out.v2) out.v2 = m;
    } else if (right[0] == "cgroup") {
      for (auto o : split(right[2], ','))
        if (o == "cpu" && !out.v1_cpu) out.v1_cpu = m;
    }
  }
  return out;
}

std::optional<Quota> parse_cpu_max(std::string_view text) {
  auto f = split(trim(text), ' ');
  if (f.size() != 2) return std::nullopt;
  auto period = to_u64(f[1]);
  if (!period || *period == 0) return std::nullopt;
  Quota q;
  q.period_us = *period;
  if (trim(f[0]) == "max") return q;
  auto quota = to_u64(f[0]);
  if (!quota) return std::nullopt;
  q.limited = true;
  q.quota_us = *quota;
  return q;
}

std::optional<Quota> parse_cfs_quota(std::string_view quota, std::string_view period) {
  auto p = to_u64(period);
  if (!p || *p == 0) return std::nullopt;
  Quota q;
  q.period_us = *p;
  if (trim(quota) == "-1") return q;
  auto v = to_u64(quota);
  if (!v) return std::nullopt;
  q.limited = true;
  q.quota_us = *v;
  return q;
}

std::optional<CpuStat> parse_cpu_stat(std::string_view text) {
  CpuStat s;
  bool periods = false, throttled = false;
  for (auto line : split(text, '\n')) {
    auto f = split(trim(line), ' ');
    if (f.size() != 2) continue;
    auto v = to_u64(f[1]);
    if (!v) continue;
    if (f[0] == "nr_periods") {
      s.nr_periods = *v;
      periods = true;
    } else if (f[0] == "nr_throttled") {
      s.nr_throttled = *v;
      throttled = true;
    } else if (f[0] == "throttled_usec") {  // v2
      s.throttled_ns = *v * 1000;
    } else if (f[0] == "throttled_time") {  // v1, ns
      s.throttled_ns = *v;
    }
  }
  if (!periods || !throttled) return std::nullopt;
  return s;
}

CgroupReading CgroupReader::read() const {
  CgroupReading r;
  auto pc = slurp(proc_cgroup_);
  if (!pc) {
    r.note = "cannot read " + proc_cgroup_;
    return r;
  }
  auto mi = slurp(mountinfo_);
  if (!mi) {
    r.note = "cannot read " + mountinfo_;
    return r;
  }
  ProcCgroup cg = parse_proc_cgroup(*pc);
  CgroupMounts mounts = parse_mountinfo(*mi);
  std::string path;
  const CgroupMount* m = nullptr;
  if (cg.v1_cpu && mounts.v1_cpu) {  // v1 cpu controller (a hybrid setup keeps it there)
    path = *cg.v1_cpu;
    m = &*mounts.v1_cpu;
  } else if (cg.v2 && mounts.v2) {
    path = *cg.v2;
    m = &*mounts.v2;
    r.v2 = true;
  } else {
    r.note = "no cgroup with the cpu controller for the target";
    return r;
  }
  auto dir = dir_of(*m, path);
  if (!dir) {
    r.note = "the target's cgroup " + path + " is outside the mounted hierarchy " + m->root;
    return r;
  }
  // The cgroup and its ancestors up to the mount: the tightest quota applies.
  std::string best_dir;
  std::string p = path, d = *dir;
  bool read_any = false;
  while (true) {
    std::optional<Quota> q;
    if (r.v2) {
      if (auto t = slurp(d + "/cpu.max")) q = parse_cpu_max(*t);
    } else {
      auto qt = slurp(d + "/cpu.cfs_quota_us");
      auto pt = slurp(d + "/cpu.cfs_period_us");
      if (qt && pt) q = parse_cfs_quota(*qt, *pt);
    }
    if (q) {
      read_any = true;
      if (q->limited && (!r.quota.limited || q->cores() < r.quota.cores())) {
        r.quota = *q;
        r.path = p;
        best_dir = d;
      }
    }
    if (d.size() <= m->point.size() || p == "/" || p.empty()) break;
    size_t cut = p.rfind('/');
    size_t dcut = d.rfind('/');
    if (cut == std::string::npos || dcut == std::string::npos) break;
    p = cut == 0 ? "/" : p.substr(0, cut);
    d = d.substr(0, dcut);
    if (d.size() < m->point.size()) break;
  }
  if (best_dir.empty()) {
    best_dir = *dir;
    r.path = path;
  }
  auto st = slurp(best_dir + "/cpu.stat");
  std::optional<CpuStat> s = st ? parse_cpu_stat(*st) : std::nullopt;
  if (!read_any && !s) {
    r.note = "cannot read the cpu files of cgroup " + path;
    return r;
  }
  if (s) r.stat = *s;
  r.found = true;
  return r;
}

}  // namespace schedscope::capacity
