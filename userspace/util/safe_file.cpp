#include "util/safe_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

namespace schedscope {

namespace {

constexpr const char* kTempTag = ".tmp-";
constexpr size_t kRandomChars = 10;

std::string base_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir == "/") return "/" + name;
  return dir + "/" + name;
}

std::string random_chars(size_t n) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char buf[32];
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += size_t(r);
  }
  if (got < n) {
    // No getrandom (very old kernel): the clock and the pid still make a name nobody
    // can rely on; O_EXCL is what keeps the creation safe either way.
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = uint64_t(ts.tv_nsec) ^ (uint64_t(ts.tv_sec) << 20) ^ (uint64_t(getpid()) << 40);
    for (size_t i = got; i < n; i++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      buf[i] = static_cast<unsigned char>(x >> 33);
    }
  }
  std::string s;
  for (size_t i = 0; i < n; i++) s += kAlphabet[buf[i] % (sizeof kAlphabet - 1)];
  return s;
}

// Stale temporaries of ours in the directory open at dirfd (its path is `dir`, for the
// messages).
std::vector<std::string> remove_stale_at(int dirfd, const std::string& dir) {
  std::vector<std::string> out;
  int lfd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
  if (lfd < 0) return out;
  ::lseek(lfd, 0, SEEK_SET);
  DIR* d = ::fdopendir(lfd);
  if (!d) {
    ::close(lfd);
    return out;
  }
  std::vector<std::pair<std::string, int>> candidates;
  while (dirent* e = ::readdir(d)) {
    int pid = 0;
    if (is_temp_name(e->d_name, &pid)) candidates.emplace_back(e->d_name, pid);
  }
  ::closedir(d);
  const uid_t me = ::geteuid();
  for (const auto& [name, pid] : candidates) {
    int fd =
        ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) continue;  // a symlink (ELOOP), gone, unreadable: not ours to touch
    struct stat st {};
    bool ours = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == me;
    // A live writer holds the lock on its temporary; a killed one released it.
    bool stale = ours && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (stale) {
      struct stat now {};
      // Still the same file under that name (nobody swapped it since we opened it).
      if (::fstatat(dirfd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
          now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
        if (::unlinkat(dirfd, name.c_str(), 0) == 0)
          out.push_back("removed " + join(dir, name) +
                        ", a temporary file left by an interrupted run (pid " +
                        std::to_string(pid) + ")");
        else
          out.push_back("cannot remove the stale temporary file " + join(dir, name) + ": " +
                        strerror(errno));
      }
    }
    ::close(fd);
  }
  return out;
}

}  // namespace

std::string dir_of_path(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string output_path_problem(const std::string& path) {
  if (path.empty()) return "no output file given";
  if (path.back() == '/') return path + " is a directory";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return path + " is a directory";
    // The rename would replace a device, FIFO or socket (/dev/null, /dev/stdout) by a file.
    if (!S_ISREG(st.st_mode)) return "cannot write " + path + ": not a regular file";
  }
  std::string dir = dir_of_path(path);
  if (::stat(dir.c_str(), &st) != 0) return "cannot write " + path + ": no such directory: " + dir;
  if (!S_ISDIR(st.st_mode)) return "cannot write " + path + ": " + dir + " is not a directory";
  return "";
}

bool is_temp_name(const std::string& n, int* pid) {
  auto tag = n.rfind(kTempTag);
  if (tag == std::string::npos || tag == 0) return false;
  size_t p = tag + std::strlen(kTempTag);
  size_t dash = n.find('-', p);
  if (dash == std::string::npos || dash == p || dash - p > 10) return false;
  for (size_t i = p; i < dash; i++)
    if (!std::isdigit(static_cast<unsigned char>(n[i]))) return false;
  if (n.size() - dash - 1 != kRandomChars) return false;
  for (size_t i = dash + 1; i < n.size(); i++)
    if (!std::isalnum(static_cast<unsigned char>(n[i]))) return false;
  if (pid) *pid = std::stoi(n.substr(p, dash - p));
  return true;
}

std::vector<std::string> remove_stale_temps(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return {};
  auto out = remove_stale_at(dfd, dir);
  ::close(dfd);
  return out;
}

Expected<std::unique_ptr<OutputFile>> OutputFile::create(const std::string& path) {
  if (std::string why = output_path_problem(path); !why.empty()) return make_error(why);
  std::unique_ptr<OutputFile> f(new OutputFile());
  f->path_ = path;
  f->dir_ = dir_of_path(path);
  f->base_ = base_of(path);
  f->dirfd_ = ::open(f->dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (f->dirfd_ < 0)
    return make_error("cannot open the directory " + f->dir_ + ": " + strerror(errno));
  {
    // Once per directory and process: a long `record --every` does not rescan each time.
    static std::mutex mu;
    // Keyed by the path too: a directory deleted and made again may reuse the inode.
    static std::set<std::tuple<dev_t, ino_t, std::string>> cleaned;
    struct stat ds {};
    if (::fstat(f->dirfd_, &ds) == 0) {
      std::lock_guard<std::mutex> lk(mu);
      if (cleaned.insert({ds.st_dev, ds.st_ino, f->dir_}).second)
        f->notices_ = remove_stale_at(f->dirfd_, f->dir_);
    }
  }
  const std::string stem = f->base_ + kTempTag + std::to_string(getpid()) + "-";
  int err = 0;
  for (int attempt = 0; attempt < 100; attempt++) {
    std::string name = stem + random_chars(kRandomChars);
    int fd = ::openat(f->dirfd_, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0600);
    if (fd >= 0) {
      // Another run cleaning this directory may have taken the fresh file for a stale one
      // between the create and the lock: it then holds the lock and unlinks it. Once we
      // hold the lock, a file still linked is ours for good.
      struct stat st {};
      if (::flock(fd, LOCK_EX) != 0 || ::fstat(fd, &st) != 0 || st.st_nlink == 0) {
        ::close(fd);
        err = EEXIST;
        continue;
      }
      f->fd_ = fd;
      f->tmp_base_ = name;
      f->tmp_ = join(f->dir_, name);
      break;
    }
    err = errno;
    if (err != EEXIST) break;
  }
  if (f->fd_ < 0)
    return make_error("cannot create a temporary file for " + path + " in " + f->dir_ + ": " +
                      strerror(err));
  (void)::fchmod(f->fd_, 0600);  // whatever the umask
  return f;
}

OutputFile::~OutputFile() {
  close();
  if (dirfd_ >= 0) ::close(dirfd_);
}

Status OutputFile::write_all(const void* data, size_t n) {
  if (fd_ < 0)
    return make_error("cannot write " + (published_ ? path_ : tmp_) + ": already closed");
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return make_error("cannot write " + (published_ ? path_ : tmp_) + ": " + strerror(errno));
    }
    p += w;
    n -= size_t(w);
  }
  return {};
}

Status OutputFile::sync() {
  if (fd_ < 0)
    return make_error("cannot fsync " + (published_ ? path_ : tmp_) + ": already closed");
  if (::fsync(fd_) != 0)
    return make_error("cannot fsync " + (published_ ? path_ : tmp_) + ": " + strerror(errno));
  return {};
}

Status OutputFile::publish() {
  if (published_) return {};
  if (tmp_base_.empty()) return make_error("cannot rename: no temporary file for " + path_);
  if (::renameat(dirfd_, tmp_base_.c_str(), dirfd_, base_.c_str()) != 0)
    return make_error("cannot rename " + tmp_ + " to " + path_ + ": " + strerror(errno) +
                      "; the data stays in " + tmp_);
  published_ = true;
  (void)::fsync(dirfd_);
  return {};
}

Status OutputFile::commit() {
  Status st = sync();
  // Renamed while the lock is held: a concurrent run never takes it for a stale file.
  if (st) st = publish();
  close();
  return st;
}

void OutputFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void OutputFile::discard() {
  if (!published_ && !tmp_base_.empty()) {
    ::unlinkat(dirfd_, tmp_base_.c_str(), 0);
    tmp_base_.clear();
  }
  close();
}

}  // namespace schedscope
