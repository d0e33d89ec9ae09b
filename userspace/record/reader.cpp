#include "record/reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/input_file.h"
#include "util/json_out.h"

namespace schedscope::record {

namespace {

std::string at(uint64_t off) { return "at offset " + std::to_string(off); }

}  // namespace

bool has_recording_magic(const std::string& path) {
  auto in = open_input_file(path);
  if (!in) return false;
  char buf[sizeof kFileMagic];
  ssize_t n = ::pread(in->fd(), buf, sizeof buf, 0);
  return n == ssize_t(sizeof buf) && std::memcmp(buf, kFileMagic, sizeof buf) == 0;
}

Expected<Recording> Recording::open(const std::string& path) {
  auto in = open_input_file(path);
  if (!in) return in.error();
  size_t size = size_t(in->size());
  if (size == 0) return make_error(path + ": empty file, not a schedscope recording");
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, in->fd(), 0);
  if (p == MAP_FAILED) return make_error("cannot map " + path + ": " + strerror(errno));
  std::shared_ptr<const uint8_t> data(static_cast<const uint8_t*>(p),
                                      [size](const uint8_t* q) { ::munmap(const_cast<uint8_t*>(q), size); });
  return parse_blob(std::move(data), size, path);
}

Expected<Recording> Recording::parse(std::vector<uint8_t> bytes, const std::string& name) {
  auto holder = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  std::shared_ptr<const uint8_t> data(holder, holder->data());
  return parse_blob(std::move(data), holder->size(), name);
}

Expected<Recording> Recording::parse(const uint8_t* data, size_t size, const std::string& name) {
  return parse(std::vector<uint8_t>(data, data + size), name);
}

Expected<Recording> Recording::parse_blob(std::shared_ptr<const uint8_t> data, size_t size,
                                          const std::string& name) {
  const uint8_t* p = data.get();
  if (size == 0) return make_error(name + ": empty file, not a schedscope recording");
  size_t cmp = std::min(size, sizeof kFileMagic);
  if (std::memcmp(p, kFileMagic, cmp) != 0)
    return make_error(name + ": not a schedscope recording (bad magic)");
  if (size < kFileHeaderSize)
    return make_error(name + ": truncated recording: only " + std::to_string(size) +
                      " bytes, not even the file header");
  uint16_t fv, abi;
  uint32_t hcrc;
  std::memcpy(&fv, p + 8, 2);
  std::memcpy(&abi, p + 10, 2);
  std::memcpy(&hcrc, p + 12, 4);
  if (hcrc != crc32(p, 12)) return make_error(name + ": damaged recording: file header checksum mismatch");
  if (fv == 0 || fv > kFormatVersion)
    return make_error(name + ": recording format version " + std::to_string(fv) +
                      " is not supported by this schedscope (it reads version " +
                      std::to_string(kFormatVersion) + "); use a newer schedscope");
  if (abi != SS_ABI_VERSION)
    return make_error(name + ": recorded with event ABI version " + std::to_string(abi) +
                      ", this schedscope reads version " + std::to_string(SS_ABI_VERSION));

  Recording r;
  r.name_ = name;
  r.data_ = std::move(data);
  r.size_ = size;
  r.format_version_ = fv;
  r.abi_version_ = abi;

  size_t off = kFileHeaderSize;
  bool have_meta = false;
  auto stop = [&](const std::string& why) {
    r.skipped_ = size - off;
    r.warnings_.push_back(name + ": " + why + " " + at(off) + "; read up to the last whole chunk, " +
                          std::to_string(r.skipped_) + " bytes skipped");
  };
  while (off < size) {
    if (size - off < kChunkHeaderSize) {
      stop("truncated chunk header");
      break;
    }
    ChunkHeader h;
    if (!decode_chunk_header(p + off, &h)) {
      stop(r.trailer_.is_null() ? "damaged chunk header" : "unexpected bytes after the trailer");
      break;
    }
    if (h.stored_len > size - off - kChunkHeaderSize) {
      stop("truncated chunk (" + std::to_string(h.stored_len) + " bytes announced, " +
           std::to_string(size - off - kChunkHeaderSize) + " present)");
      break;
    }
    const uint8_t* payload = p + off + kChunkHeaderSize;
    if (crc32(payload, h.stored_len) != h.payload_crc) {
      stop("chunk checksum mismatch");
      break;
    }
    if (!have_meta) {
      if (h.type != kChunkMeta)
        return make_error(name + ": damaged recording: the first chunk is not the metadata");
      std::string why;
      auto raw = open_chunk_payload(h, payload, &why);
      if (!raw) return make_error(name + ": damaged recording: metadata unreadable (" + why + ")");
      auto parsed = parse_json_bounded(raw->data(), raw->size(), &why);
      if (!parsed)
        return make_error(name + ": damaged recording: metadata unreadable (" + why + ")");
      nlohmann::json j = std::move(*parsed);
      if (!j.is_object())
        return make_error(name + ": damaged recording: metadata is not a JSON object");
      // The struct sizes the records were written with (a guard against an ABI change
      // that did not bump SS_ABI_VERSION).
      if (auto abi_it = j.find("abi"); abi_it != j.end() && abi_it->is_object()) {
        for (const auto& [k, ours] : abi_sizes()) {
          auto v = abi_it->find(k);
          if (v != abi_it->end() && v->is_number_unsigned() && v->get<uint64_t>() != ours)
            return make_error(name + ": recorded with another layout of the event ABI (" + k + " is " +
                              std::to_string(v->get<uint64_t>()) + " bytes there, " +
                              std::to_string(ours) + " in this schedscope)");
        }
      }
      r.meta_ = std::move(j);
      have_meta = true;
    } else if (h.type == kChunkData) {
      if (!r.trailer_.is_null()) {
        stop("data after the trailer");
        break;
      }
      r.chunks_.push_back(ChunkRef{off + kChunkHeaderSize, h});
    } else if (h.type == kChunkEnd) {
      std::string why;
      auto raw = open_chunk_payload(h, payload, &why);
      nlohmann::json j;
      if (raw) {
        if (auto parsed = parse_json_bounded(raw->data(), raw->size(), &why))
          j = std::move(*parsed);
      }
      if (!raw || !j.is_object()) {
        stop("damaged trailer" + (why.empty() ? "" : " (" + why + ")"));
        break;
      }
      r.trailer_ = std::move(j);
    }
    // Other chunk types: from a newer minor revision; skipped.
    off += kChunkHeaderSize + h.stored_len;
  }
  if (!have_meta) return make_error(name + ": damaged recording: metadata missing or unreadable");
  return r;
}

bool Recording::Iterator::load_chunk() {
  while (next_chunk_ < rec_->chunks_.size()) {
    const ChunkRef& c = rec_->chunks_[next_chunk_++];
    std::string why;
    auto raw = open_chunk_payload(c.h, rec_->data_.get() + c.offset, &why);
    if (!raw) {
      warning_ = rec_->name_ + ": damaged data chunk " + std::to_string(next_chunk_ - 1) + " (" +
                 why + "); the rest of the recording was not read";
      done_ = true;
      return false;
    }
    buf_ = std::move(*raw);
    off_ = 0;
    if (!buf_.empty()) return true;
  }
  done_ = true;
  return false;
}

bool Recording::Iterator::next(Item* it) {
  while (!done_) {
    if (off_ >= buf_.size()) {
      if (!load_chunk()) return false;
      continue;
    }
    ByteReader hdr(buf_.data() + off_, buf_.size() - off_);
    uint16_t kind = 0, reserved = 0;
    uint32_t len = 0;
    auto damaged = [&](const char* what) {
      warning_ = rec_->name_ + ": damaged " + std::string(what) + " record in data chunk " +
                 std::to_string(next_chunk_ - 1) + "; the rest of the recording was not read";
      done_ = true;
      return false;
    };
    if (!hdr.get(kind) || !hdr.get(reserved) || !hdr.get(len) || len > hdr.left())
      return damaged("a");
    const uint8_t* body = buf_.data() + off_ + kRecordHeaderSize;
    off_ += kRecordHeaderSize + len;
    ByteReader c(body, len);
    it->kind = RecordKind(kind);
    it->chunk = next_chunk_ - 1;
    switch (kind) {
      case kRecRaw:
        if (len < sizeof(ss_hdr)) return damaged("raw");
        it->raw_buf.assign((len + 7) / 8, 0);
        std::memcpy(it->raw_buf.data(), body, len);
        it->raw_size = len;
        return true;
      case kRecKernel:
        if (!decode_kernel(c, &it->kernel)) return damaged("kernel snapshot");
        return true;
      case kRecGo:
        if (!decode_go(c, &it->go)) return damaged("Go sample");
        return true;
      case kRecName:
        if (!c.get(it->tid) || !c.str(it->name)) return damaged("thread name");
        return true;
      case kRecGoBaseline:
        if (!c.get(it->value)) return damaged("goroutine baseline");
        return true;
      case kRecGoCensus:
        if (!decode_census(c, &it->census)) return damaged("goroutine census");
        return true;
      case kRecGoSchedLatency:
        if (!decode_time_hist(c, &it->time_hist)) return damaged("scheduling-latency");
        return true;
      case kRecSymbols:
        if (!decode_symbols(c, &it->symbols)) return damaged("symbols");
        return true;
      case kRecFrame:
      case kRecInfo: {
        auto parsed = parse_json_bounded(body, len);
        if (!parsed || !parsed->is_object())
          return damaged(kind == kRecFrame ? "frame marker" : "info");
        it->json = std::move(*parsed);
        return true;
      }
      default:
        continue;  // a record kind from a newer minor revision: skipped
    }
  }
  return false;
}

}  // namespace schedscope::record
