// Writes a recording (docs/recording-format.md): header and metadata first, then data
// chunks of records flushed at least every flush_interval_s (or every chunk_bytes), so a
// crash loses at most the last chunk; finish() adds the trailer, fsyncs and renames the
// temporary file to its final name (util/safe_file.h: unpredictable name in the same
// directory, exclusive create, mode 0600, no symlink followed).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "record/census_format.h"
#include "record/format.h"
#include "record/sink.h"
#include "util/expected.h"
#include "util/safe_file.h"

namespace schedscope::record {

struct WriterOptions {
  double flush_interval_s = 1.0;  // a chunk at least this often while records are pending
  size_t chunk_bytes = 1u << 20;  // ... or as soon as this many bytes are pending
  bool background = true;         // flush from a thread; false: only on append / flush()
  int zstd_level = 3;
};

class RecordingWriter : public RecordSink {
 public:
  // Creates the temporary "<path>.tmp-<pid>-<random>" next to `path` (OutputFile) and
  // writes the header and the metadata.
  static Expected<std::unique_ptr<RecordingWriter>> create(const std::string& path,
                                                           const nlohmann::json& meta,
                                                           const WriterOptions& opt = {});
  // Without finish(): pending records are flushed and the temporary file is left as it is
  // (readable up to its last chunk, like after a crash).
  ~RecordingWriter() override;
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  void raw(const ss_hdr* rec, size_t size) override;
  void kernel(const probe::KernelSnapshot& s) override;
  void go(const go::SchedSample& s) override;
  void name(uint32_t tid, const std::string& name) override;
  void symbols(const std::vector<SymbolEntry>& syms) override;
  void frame(const nlohmann::json& marker) override;  // kRecFrame
  void info(const nlohmann::json& info) override;     // kRecInfo
  void goroutine_baseline(uint64_t live) override;    // kRecGoBaseline
  // A record whose payload is already encoded (the flight recorder's window).
  void encoded(RecordKind kind, const void* payload, size_t len) { append(kind, payload, len); }
  void census(const gc::Census& c) override;  // kRecGoCensus
  void sched_latency(const go::TimeHist& h) override;  // kRecGoSchedLatency

  // Writes the pending records as one chunk now.
  Status flush();
  // Flushes, writes the trailer chunk, fsyncs, renames to the final path and fsyncs the
  // directory. Returns the final path.
  Expected<std::string> finish(const nlohmann::json& trailer);
  // Stops and deletes the temporary file.
  void abandon();

  [[nodiscard]] const std::string& path() const { return file_->path(); }
  [[nodiscard]] const std::string& temp_path() const { return file_->temp_path(); }
  // Stale temporaries the creation removed from the directory, one line each.
  [[nodiscard]] const std::vector<std::string>& notices() const { return file_->notices(); }
  [[nodiscard]] uint64_t bytes_written() const { return bytes_.load(); }
  [[nodiscard]] uint64_t records() const { return records_.load(); }
  [[nodiscard]] uint64_t raw_records() const { return raw_records_.load(); }
  [[nodiscard]] uint64_t chunks() const { return chunks_.load(); }
  // The first write error, "" if none.
  [[nodiscard]] std::string error() const;

 private:
  RecordingWriter(std::unique_ptr<OutputFile> file, WriterOptions opt)
      : file_(std::move(file)), opt_(opt) {}
  void append(RecordKind kind, const void* payload, size_t len);
  void append(RecordKind kind, const ByteWriter& payload) {
    append(kind, payload.data().data(), payload.size());
  }
  Status write_all(const uint8_t* p, size_t n);
  Status flush_now();
  void stop_thread();
  void loop();

  std::unique_ptr<OutputFile> file_;
  WriterOptions opt_;
  mutable std::mutex mu_;  // pending_, stop_, err_
  std::mutex io_mu_;    // chunk writes, in order
  std::condition_variable cv_;
  ByteWriter pending_;
  bool stop_ = false;
  bool closed_ = false;
  std::string err_;
  std::thread thread_;
  std::atomic<uint64_t> bytes_{0}, records_{0}, raw_records_{0}, chunks_{0};
};

}  // namespace schedscope::record
