// Reads a recording. open() checks the header and the metadata (garbage, a newer format or
// another ABI: a clear error) and indexes every whole chunk whose checksums hold; a
// truncated or damaged file is read up to its last good chunk, with a warning that says
// how many bytes were skipped. Never trusts a length or a count it has not bounded.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "record/census_format.h"
#include "record/format.h"
#include "util/expected.h"

namespace schedscope::record {

// One record of a data chunk, decoded. Only the fields of `kind` are meaningful; an Item
// is reused across next() calls to keep allocations down.
struct Item {
  RecordKind kind = kRecRaw;
  uint64_t chunk = 0;  // index of the data chunk it came from
  // kRecRaw: the ring-buffer record, copied to 8-byte aligned storage.
  std::vector<uint64_t> raw_buf;
  size_t raw_size = 0;
  [[nodiscard]] const ss_hdr* raw() const { return reinterpret_cast<const ss_hdr*>(raw_buf.data()); }
  probe::KernelSnapshot kernel;      // kRecKernel
  go::SchedSample go;                // kRecGo
  uint32_t tid = 0;                  // kRecName
  std::string name;                  // kRecName
  std::vector<SymbolEntry> symbols;  // kRecSymbols
  nlohmann::json json;               // kRecFrame, kRecInfo
  uint64_t value = 0;                // kRecGoBaseline
  gc::Census census;                 // kRecGoCensus
  go::TimeHist time_hist;            // kRecGoSchedLatency
};

class Recording {
 public:
  static Expected<Recording> open(const std::string& path);
  // From bytes in memory (tests, fuzzing). `name` is used in messages.
  static Expected<Recording> parse(std::vector<uint8_t> bytes, const std::string& name = "recording");
  static Expected<Recording> parse(const uint8_t* data, size_t size, const std::string& name = "recording");

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] uint16_t format_version() const { return format_version_; }
  [[nodiscard]] uint16_t abi_version() const { return abi_version_; }
  [[nodiscard]] const nlohmann::json& meta() const { return meta_; }
  // The trailer (null when the recording was not finalized: crash, kill, truncation).
  [[nodiscard]] const nlohmann::json& trailer() const { return trailer_; }
  [[nodiscard]] bool complete() const { return !trailer_.is_null(); }
  [[nodiscard]] const std::vector<std::string>& warnings() const { return warnings_; }
  [[nodiscard]] uint64_t bytes_skipped() const { return skipped_; }
  [[nodiscard]] uint64_t file_size() const { return size_; }
  [[nodiscard]] size_t data_chunks() const { return chunks_.size(); }

  // Iterates the records of every good data chunk in file order.
  class Iterator {
   public:
    // False at the end, or at a record that cannot be decoded (then warning() says why
    // and the rest is not read).
    bool next(Item* it);
    [[nodiscard]] const std::string& warning() const { return warning_; }

   private:
    friend class Recording;
    Iterator(const Recording* r) : rec_(r) {}
    bool load_chunk();
    const Recording* rec_;
    size_t next_chunk_ = 0;
    std::vector<uint8_t> buf_;
    size_t off_ = 0;
    bool done_ = false;
    std::string warning_;
  };
  [[nodiscard]] Iterator records() const { return Iterator(this); }

 private:
  struct ChunkRef {
    size_t offset;  // of the payload
    ChunkHeader h;
  };
  Recording() = default;
  static Expected<Recording> parse_blob(std::shared_ptr<const uint8_t> data, size_t size,
                                        const std::string& name);
  std::string name_;
  std::shared_ptr<const uint8_t> data_;
  size_t size_ = 0;
  uint16_t format_version_ = 0, abi_version_ = 0;
  nlohmann::json meta_, trailer_;
  std::vector<ChunkRef> chunks_;
  std::vector<std::string> warnings_;
  uint64_t skipped_ = 0;
};

// True when the first bytes of the file are a recording's magic (rotation uses it to
// delete only recordings).
bool has_recording_magic(const std::string& path);

}  // namespace schedscope::record
