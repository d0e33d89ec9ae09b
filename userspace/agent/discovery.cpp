#include "agent/discovery.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "go/binary.h"

namespace schedscope::agent {

namespace {
bool any_match(const std::vector<std::string>& globs, const std::string& s) {
  for (const auto& g : globs)
    if (glob_match(g, s)) return true;
  return false;
}
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
bool hex_id(std::string_view s) {
  if (s.size() < 12) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}
}  // namespace

bool glob_match(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

bool keep(const Filter& f, const ProcEntry& p) {
  if (!f.exe.empty() && !any_match(f.exe, p.exe)) return false;
  if (!f.comm.empty() && !any_match(f.comm, p.comm)) return false;
  if (!f.cgroup.empty() && !any_match(f.cgroup, p.cgroup)) return false;
  if (any_match(f.exclude, p.exe) || any_match(f.exclude, p.comm)) return false;
  return true;
}

ContainerLabels container_of(std::string_view path) {
  ContainerLabels out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view c = path.substr(pos, end - pos);
    pos = end + 1;
    if (c.empty()) continue;
    // kubepods-burstable-pod<uid>.slice (systemd driver, '-' for '_') or pod<uid> (cgroupfs)
    if (auto k = c.rfind("pod"); k != std::string_view::npos && path.find("kubepods") != std::string_view::npos) {
      std::string_view uid = c.substr(k + 3);
      if (uid.size() > 6 && uid.substr(uid.size() - 6) == ".slice") uid.remove_suffix(6);
      if (uid.size() >= 32) {
        std::string u(uid);
        for (auto& ch : u)
          if (ch == '_') ch = '-';
        out.pod = u;
        continue;
      }
    }
    std::string_view id = c;
    if (id.size() > 6 && id.substr(id.size() - 6) == ".scope") id.remove_suffix(6);
    if (auto d = id.rfind('-'); d != std::string_view::npos) id = id.substr(d + 1);
    if (auto d = id.rfind(':'); d != std::string_view::npos) id = id.substr(d + 1);
    if (hex_id(id) && id.size() >= 32) out.container = std::string(id.substr(0, 12));
  }
  return out;
}

std::string cgroup_path(std::string_view text) {
  std::string first;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':');
    if (a == std::string::npos) continue;
    auto b = line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string path = line.substr(b + 1);
    if (line.compare(0, b + 1, "0::") == 0) return path;
    if (first.empty()) first = path;
  }
  return first;
}

std::vector<ProcEntry> list_processes(int self_pid, const std::string& proc) {
  std::vector<ProcEntry> out;
  DIR* d = opendir(proc.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    int pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == self_pid) continue;
    ProcEntry p;
    if (process_entry(pid, p, proc)) out.push_back(std::move(p));
  }
  closedir(d);
  return out;
}

bool process_entry(int pid, ProcEntry& out, const std::string& proc) {
  char buf[4096];
  ssize_t n = readlink((proc + "/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
  if (n <= 0) return false;  // a kernel thread, a zombie, or gone
  out = ProcEntry{};
  out.pid = pid;
  out.exe.assign(buf, size_t(n));
  return true;
}

void read_details(ProcEntry& p, const std::string& proc) {
  std::string base = proc + "/" + std::to_string(p.pid);
  std::ifstream c(base + "/comm");
  std::getline(c, p.comm);
  p.cgroup = cgroup_path(slurp(base + "/cgroup"));
}

GoVerdict GoRecognizer::check(int pid) {
  std::string exe = "/proc/" + std::to_string(pid) + "/exe";
  struct stat st {};
  if (stat(exe.c_str(), &st) != 0) return {false, "", "gone"};
  auto key = std::make_tuple(st.st_dev, st.st_ino, st.st_size, int64_t(st.st_mtime));
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  GoVerdict v;
  auto bin = go::inspect_binary(exe);
  if (!bin) {
    v.note = "binary not readable: " + bin.error().message;
  } else if (!bin->is_go) {
    v.note = "not a Go program";
  } else {
    v.is_go = true;
    v.go_version = bin->go_version;
  }
  cache_[key] = v;
  return v;
}

}  // namespace schedscope::agent
