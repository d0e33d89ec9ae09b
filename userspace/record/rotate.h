// Recording file names and the size cap of a recording directory (record --every).
#pragma once
#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

namespace schedscope::record {

// "schedscope-<host>-<pid>-<YYYYmmddTHHMMSSZ>.sched" (UTC; host reduced to [A-Za-z0-9._-]);
// with a tag (the agent's flight recordings: the alert kinds) "schedscope-<host>-<pid>-<tag>-<time>.sched",
// the tag reduced like the host.
std::string default_recording_name(const std::string& host, int pid, std::time_t t, const std::string& tag = "");
// A name default_recording_name() produces (what rotation may delete).
bool is_recording_name(const std::string& file_name);
// A path in `dir` that does not exist yet: default name, else with "-1", "-2", ... before
// the extension.
std::string unique_recording_path(const std::string& dir, const std::string& host, int pid, std::time_t t,
                                  const std::string& tag = "");

struct RecordingFile {
  std::string path;
  uint64_t bytes = 0;
  int64_t mtime_ns = 0;
};
// The finished recordings in `dir`: matching names that start with the recording magic,
// oldest first (modification time, then name).
std::vector<RecordingFile> list_recordings(const std::string& dir);

struct RotateResult {
  std::vector<std::string> deleted;
  std::vector<std::string> skipped;            // "PATH (why)": recordings rotation leaves alone
  uint64_t total_before = 0, total_after = 0;  // of the recordings it may delete
  std::string error;  // first unlink failure
};
// Deletes the oldest recordings of `dir` until their total is at most max_bytes. Only
// regular files (never through a symlink) owned by our effective uid count and are
// deleted; the others are listed in `skipped`. The newest one (`keep`, if given, else the
// newest) is never deleted, even when it alone exceeds the cap.
RotateResult rotate_recordings(const std::string& dir, uint64_t max_bytes, const std::string& keep = "");

}  // namespace schedscope::record
