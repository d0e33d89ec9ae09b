// The recording file format (docs/recording-format.md): constants, the fixed-size file
// and chunk headers, the record kinds inside data chunks, and the explicit little-endian
// encodings of KernelSnapshot, SchedSample, symbols and alerts. Shared by the writer and
// the reader; everything here is pure and testable without root.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "go/runtime_reader.h"
#include "model/alert.h"
#include "probe/snapshot.h"
#include "schedscope.h"

namespace schedscope::record {

// ---- file header (16 bytes)
inline constexpr char kFileMagic[8] = {'\x89', 'S', 'C', 'H', 'E', 'D', '\r', '\n'};
inline constexpr uint16_t kFormatVersion = 1;
inline constexpr size_t kFileHeaderSize = 16;

// ---- chunk header (24 bytes), then `stored_len` payload bytes
inline constexpr char kChunkMagic[4] = {'S', 'C', 'H', 'K'};
inline constexpr size_t kChunkHeaderSize = 24;
inline constexpr uint32_t kMaxChunkRaw = 64u << 20;  // readers refuse larger chunks

enum ChunkType : uint16_t {
  kChunkMeta = 1,  // JSON metadata; always the first chunk
  kChunkData = 2,  // a sequence of records
  kChunkEnd = 3,   // JSON trailer; present only when the recording was finalized
};

enum Codec : uint16_t {
  kCodecNone = 0,
  kCodecZstd = 1,
};

// ---- records inside a data chunk: {u16 kind, u16 reserved, u32 len} + len bytes
inline constexpr size_t kRecordHeaderSize = 8;
enum RecordKind : uint16_t {
  kRecRaw = 1,      // a ring-buffer record, verbatim (starts with ss_hdr)
  kRecKernel = 2,   // a KernelSnapshot
  kRecGo = 3,       // a go::SchedSample
  kRecName = 4,     // a thread name read from /proc: u32 tid, str name
  kRecSymbols = 5,  // PC -> "func file:line" + is_runtime, for the records that follow
  kRecFrame = 6,    // JSON: the end of one observer interval (frame marker), with live alerts
  kRecInfo = 7,     // JSON: metadata learned after the start (e.g. Go offsets resolved late)
  kRecGoBaseline = 8,  // u64: goroutines alive when the --goroutines uprobes attached
  kRecGoCensus = 10,   // gc::Census: allgs by status and wait reason (census_format.h)
  kRecGoSchedLatency = 11,  // go::TimeHist: sched.timeToRun, cumulative (census_format.h)
};
const char* record_kind_name(uint16_t kind);

// Frame markers: what the live observer did with the frame built at this point.
enum class FrameMode {
  kBaseline,  // the attach-time baseline frame (built, never shown)
  kSkipped,   // built when the target exited or a stop was requested (not shown)
  kShown,     // shown and evaluated by the detectors
  kFinal,     // the totals-since-start frame
};
const char* frame_mode_name(FrameMode m);
std::optional<FrameMode> frame_mode_from(std::string_view s);

// IEEE CRC-32 (the zlib/PNG polynomial), so `python3 -c 'zlib.crc32(...)'` agrees.
uint32_t crc32(const void* data, size_t len, uint32_t seed = 0);

// ---- little-endian byte writer / bounds-checked reader
class ByteWriter {
 public:
  void u8(uint8_t v) { buf_.push_back(v); }
  void u16(uint16_t v) { put(&v, 2); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void i32(int32_t v) { put(&v, 4); }
  void i64(int64_t v) { put(&v, 8); }
  void str(std::string_view s) {
    u32(uint32_t(s.size()));
    put(s.data(), s.size());
  }
  void put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  [[nodiscard]] size_t size() const { return buf_.size(); }
  std::vector<uint8_t>& data() { return buf_; }
  [[nodiscard]] const std::vector<uint8_t>& data() const { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

class ByteReader {
 public:
  ByteReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool get(void* out, size_t len) {
    if (len > n_ - off_) return fail();
    std::memcpy(out, p_ + off_, len);
    off_ += len;
    return true;
  }
  template <typename T>
  bool get(T& v) {
    return get(&v, sizeof v);
  }
  bool str(std::string& s) {
    uint32_t len = 0;
    if (!get(len) || len > n_ - off_) return fail();
    s.assign(reinterpret_cast<const char*>(p_ + off_), len);
    off_ += len;
    return true;
  }
  bool skip(size_t len) {
    if (len > n_ - off_) return fail();
    off_ += len;
    return true;
  }
  [[nodiscard]] size_t left() const { return n_ - off_; }
  [[nodiscard]] size_t offset() const { return off_; }
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] const uint8_t* here() const { return p_ + off_; }

 private:
  bool fail() {
    ok_ = false;
    return false;
  }
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
  bool ok_ = true;
};

// ---- fixed headers
struct FileHeader {
  uint16_t format_version = kFormatVersion;
  uint16_t abi_version = SS_ABI_VERSION;
};
void encode_file_header(const FileHeader& h, uint8_t out[kFileHeaderSize]);

struct ChunkHeader {
  uint16_t type = 0;
  uint16_t codec = kCodecZstd;
  uint32_t raw_len = 0;
  uint32_t stored_len = 0;
  uint32_t payload_crc = 0;
};
void encode_chunk_header(const ChunkHeader& h, uint8_t out[kChunkHeaderSize]);
// False when the magic or the header's own CRC does not match.
bool decode_chunk_header(const uint8_t in[kChunkHeaderSize], ChunkHeader* h);

// A whole chunk (header + payload), compressed with zstd when that is smaller.
std::vector<uint8_t> make_chunk(uint16_t type, const uint8_t* data, size_t len, int zstd_level = 3);
// The payload of a chunk whose header is known good: checks the CRC and decompresses.
// nullopt (with *why) on any mismatch.
std::optional<std::vector<uint8_t>> open_chunk_payload(const ChunkHeader& h, const uint8_t* stored,
                                                       std::string* why);

// ---- record payload encodings
void append_record(ByteWriter& out, RecordKind kind, const void* payload, size_t len);

void encode_kernel(ByteWriter& out, const probe::KernelSnapshot& s);
bool decode_kernel(ByteReader& c, probe::KernelSnapshot* s);

void encode_go(ByteWriter& out, const go::SchedSample& s);
bool decode_go(ByteReader& c, go::SchedSample* s);

struct SymbolEntry {
  uint64_t pc = 0;
  bool is_runtime = true;
  std::string frame;       // "func file:line", "" when unknown
  bool has_start_func = false;
  std::string start_func;  // Symbolize::start_func(pc), for goroutine start PCs
};
void encode_symbols(ByteWriter& out, const std::vector<SymbolEntry>& syms);
bool decode_symbols(ByteReader& c, std::vector<SymbolEntry>* syms);

// Alerts with every field (raw timestamps), so a recorded alert compares equal to one
// raised again on the recording.
nlohmann::json alert_to_json(const model::Alert& a);
model::Alert alert_from_json(const nlohmann::json& j);
nlohmann::json alerts_to_json(const std::vector<model::Alert>& v);

// sizeof of every ABI struct a recording can carry: written into the metadata ("abi")
// and checked by the reader (a guard against a layout change without an ABI bump).
struct AbiSize {
  const char* name;
  size_t size;
};
const std::vector<AbiSize>& abi_sizes();
std::vector<model::Alert> alerts_from_json(const nlohmann::json& j);

}  // namespace schedscope::record
