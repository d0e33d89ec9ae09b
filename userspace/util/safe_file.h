// Every file schedscope writes goes through OutputFile. schedscope runs as root and may
// write into directories other users can write (/tmp, a shared --dir), so an output file
// is never opened by its final name:
//   * the data goes to a temporary "<name>.tmp-<pid>-<10 random chars>" created in the
//     destination directory with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode 0600: nobody
//     can predict the name, a symlink or file planted there is never followed or reused,
//     and the descriptor is not inherited by a launched command;
//   * the writer holds an flock() on the temporary while it is open, which is how a later
//     run tells a live writer's temporary from one left by a killed run;
//   * publish() renames the temporary to the final name (a symlink at the final name is
//     replaced, never followed) and fsyncs the directory; on failure the temporary is kept
//     and the error names it.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "util/expected.h"

namespace schedscope {

// Why `path` cannot be an output file ("" if it can): empty, ends with '/', names a
// directory or something else than a regular file (also through a symlink: /dev/null,
// /dev/stdout), or its directory does not exist. For a check at
// start, before a capture that would end in a failed rename.
std::string output_path_problem(const std::string& path);

// The directory part of a path ("." without a slash).
std::string dir_of_path(const std::string& path);

// True for a name of OutputFile's temporary files; *pid gets the creator's pid.
bool is_temp_name(const std::string& file_name, int* pid = nullptr);

// Temporaries left in `dir` by a killed writer of this user: names of is_temp_name(),
// regular files owned by our effective uid, and no live writer holding their lock. They
// are deleted; each returned line says what was removed (or could not be).
std::vector<std::string> remove_stale_temps(const std::string& dir);

class OutputFile {
 public:
  // Checks the path (output_path_problem), removes stale temporaries of ours in its
  // directory once per process (see notices()), and creates the temporary.
  static Expected<std::unique_ptr<OutputFile>> create(const std::string& path);
  // Closes the descriptor. An unpublished temporary stays (what was written is kept).
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& temp_path() const { return tmp_; }
  [[nodiscard]] bool published() const { return published_; }
  // What create() cleaned up in the directory, one line each, for stderr.
  [[nodiscard]] const std::vector<std::string>& notices() const { return notices_; }

  // Writes everything (retries short writes and EINTR); errors name the file.
  Status write_all(const void* data, size_t n);
  Status sync();
  // Renames the temporary to the final path and fsyncs the directory. The descriptor
  // stays open (a streaming output goes on under its final name). On failure the
  // temporary is kept and the message says where the data is.
  Status publish();
  // sync(), close() and publish(): the usual end of a file written whole.
  Status commit();
  void close();
  // Closes and deletes the temporary (not once published).
  void discard();

 private:
  OutputFile() = default;
  std::string path_, tmp_;
  std::string dir_, base_, tmp_base_;  // the directory, final and temporary names in it
  int fd_ = -1;
  int dirfd_ = -1;
  bool published_ = false;
  std::vector<std::string> notices_;
};

}  // namespace schedscope
