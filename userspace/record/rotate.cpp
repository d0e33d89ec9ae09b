#include "record/rotate.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "record/reader.h"

namespace schedscope::record {

namespace {
constexpr const char* kPrefix = "schedscope-";
constexpr const char* kExt = ".sched";

std::string base_of(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}
bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}
}  // namespace

namespace {
std::string name_safe(const std::string& s) {
  std::string out;
  for (char c : s)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '+') ? c : '_';
  return out;
}
}  // namespace

std::string default_recording_name(const std::string& host, int pid, std::time_t t, const std::string& tag) {
  std::string h = name_safe(host);
  if (h.empty()) h = "host";
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
  std::string mid = tag.empty() ? "" : name_safe(tag) + "-";
  return std::string(kPrefix) + h + "-" + std::to_string(pid) + "-" + mid + ts + kExt;
}

bool is_recording_name(const std::string& n) {
  return n.size() > std::strlen(kPrefix) + std::strlen(kExt) && n.rfind(kPrefix, 0) == 0 &&
         ends_with(n, kExt);
}

std::string unique_recording_path(const std::string& dir, const std::string& host, int pid, std::time_t t,
                                  const std::string& tag) {
  std::string base = default_recording_name(host, pid, t, tag);
  std::string d = dir.empty() ? "." : dir;
  std::string path = d + "/" + base;
  std::string stem = base.substr(0, base.size() - std::strlen(kExt));
  for (int i = 1; access(path.c_str(), F_OK) == 0 && i < 10000; i++)
    path = d + "/" + stem + "-" + std::to_string(i) + kExt;
  return path;
}

std::vector<RecordingFile> list_recordings(const std::string& dir) {
  std::vector<RecordingFile> out;
  DIR* d = opendir(dir.empty() ? "." : dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (!is_recording_name(n)) continue;
    std::string path = (dir.empty() ? "." : dir) + "/" + n;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (!has_recording_magic(path)) continue;
    out.push_back({path, uint64_t(st.st_size),
                   int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec});
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](const RecordingFile& a, const RecordingFile& b) {
    return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.path < b.path;
  });
  return out;
}

RotateResult rotate_recordings(const std::string& dir, uint64_t max_bytes, const std::string& keep) {
  RotateResult r;
  struct Ours {
    RecordingFile f;
    dev_t dev;
    ino_t ino;
  };
  std::vector<Ours> files;
  const uid_t me = geteuid();
  for (const auto& f : list_recordings(dir)) {
    // Only regular files of our effective uid: in a shared directory (sticky /tmp, a
    // group-writable --dir) a file someone else put there is not ours to delete.
    int fd = ::open(f.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st {};
    bool ok = fd >= 0 && ::fstat(fd, &st) == 0;
    if (fd >= 0) ::close(fd);
    if (!ok || !S_ISREG(st.st_mode)) {
      r.skipped.push_back(f.path + " (not a regular file)");
      continue;
    }
    if (st.st_uid != me) {
      r.skipped.push_back(f.path + " (owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
                          std::to_string(me) + ")");
      continue;
    }
    files.push_back({f, st.st_dev, st.st_ino});
  }
  for (const auto& o : files) r.total_before += o.f.bytes;
  r.total_after = r.total_before;
  if (files.empty()) return r;
  std::string newest = files.back().f.path;
  for (const auto& o : files) {
    const auto& f = o.f;
    if (r.total_after <= max_bytes) break;
    bool is_keep = base_of(f.path) == base_of(keep.empty() ? newest : keep);
    if (is_keep) continue;
    struct stat now {};
    if (lstat(f.path.c_str(), &now) != 0 || now.st_dev != o.dev || now.st_ino != o.ino) {
      r.skipped.push_back(f.path + " (replaced while rotating)");
      continue;
    }
    if (unlink(f.path.c_str()) != 0) {
      if (r.error.empty()) r.error = "cannot delete " + f.path + ": " + strerror(errno);
      continue;
    }
    r.deleted.push_back(f.path);
    r.total_after -= f.bytes;
  }
  return r;
}

}  // namespace schedscope::record
