#include "record/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "util/json_out.h"

namespace schedscope::record {

Expected<std::unique_ptr<RecordingWriter>> RecordingWriter::create(const std::string& path,
                                                                   const nlohmann::json& meta,
                                                                   const WriterOptions& opt) {
  auto file = OutputFile::create(path);
  if (!file) return file.error();
  std::unique_ptr<RecordingWriter> w(new RecordingWriter(std::move(file.value()), opt));
  uint8_t hdr[kFileHeaderSize];
  encode_file_header(FileHeader{}, hdr);
  std::string m = dump_json(meta);
  auto chunk = make_chunk(kChunkMeta, reinterpret_cast<const uint8_t*>(m.data()), m.size(),
                          opt.zstd_level);
  Status st = w->write_all(hdr, sizeof hdr);
  if (st) st = w->write_all(chunk.data(), chunk.size());
  if (!st) {
    w->abandon();
    return st.error();
  }
  w->chunks_++;
  if (opt.background) w->thread_ = std::thread([p = w.get()] { p->loop(); });
  return w;
}

RecordingWriter::~RecordingWriter() {
  if (closed_) return;
  stop_thread();
  (void)flush_now();
  file_->close();  // the temporary stays, readable up to its last chunk
}

std::string RecordingWriter::error() const {
  std::lock_guard<std::mutex> lk(mu_);
  return err_;
}

Status RecordingWriter::write_all(const uint8_t* p, size_t n) {
  Status st = file_->write_all(p, n);
  if (!st) {
    std::lock_guard<std::mutex> lk(mu_);
    if (err_.empty()) err_ = st.error().message;
    return st;
  }
  bytes_ += uint64_t(n);
  return {};
}

void RecordingWriter::append(RecordKind kind, const void* payload, size_t len) {
  bool flush_sync = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_ || stop_) return;
    append_record(pending_, kind, payload, len);
    records_++;
    if (kind == kRecRaw) raw_records_++;
    if (pending_.size() >= opt_.chunk_bytes) {
      if (opt_.background) cv_.notify_one();
      else flush_sync = true;
    }
  }
  if (flush_sync) (void)flush_now();
}

void RecordingWriter::raw(const ss_hdr* rec, size_t size) { append(kRecRaw, rec, size); }

void RecordingWriter::kernel(const probe::KernelSnapshot& s) {
  ByteWriter b;
  encode_kernel(b, s);
  append(kRecKernel, b);
}

void RecordingWriter::go(const go::SchedSample& s) {
  ByteWriter b;
  encode_go(b, s);
  append(kRecGo, b);
}

void RecordingWriter::name(uint32_t tid, const std::string& name) {
  ByteWriter b;
  b.u32(tid);
  b.str(name);
  append(kRecName, b);
}

void RecordingWriter::symbols(const std::vector<SymbolEntry>& syms) {
  if (syms.empty()) return;
  ByteWriter b;
  encode_symbols(b, syms);
  append(kRecSymbols, b);
}

void RecordingWriter::frame(const nlohmann::json& marker) {
  std::string s = dump_json(marker);
  append(kRecFrame, s.data(), s.size());
}

void RecordingWriter::info(const nlohmann::json& info) {
  std::string s = dump_json(info);
  append(kRecInfo, s.data(), s.size());
}

void RecordingWriter::goroutine_baseline(uint64_t live) { append(kRecGoBaseline, &live, sizeof live); }

void RecordingWriter::census(const gc::Census& c) {
  ByteWriter b;
  encode_census(b, c);
  append(kRecGoCensus, b);
}

void RecordingWriter::sched_latency(const go::TimeHist& h) {
  ByteWriter b;
  encode_time_hist(b, h);
  append(kRecGoSchedLatency, b);
}

Status RecordingWriter::flush_now() {
  std::lock_guard<std::mutex> io(io_mu_);
  ByteWriter batch;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (pending_.size() == 0) return {};
    std::swap(batch, pending_);
  }
  if (file_->fd() < 0) return make_error("recording already closed");
  auto chunk = make_chunk(kChunkData, batch.data().data(), batch.size(), opt_.zstd_level);
  Status st = write_all(chunk.data(), chunk.size());
  if (st) chunks_++;
  return st;
}

Status RecordingWriter::flush() { return flush_now(); }

void RecordingWriter::loop() {
  auto period = std::chrono::duration<double>(opt_.flush_interval_s > 0 ? opt_.flush_interval_s : 1.0);
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, period, [&] { return stop_ || pending_.size() >= opt_.chunk_bytes; });
    if (stop_) break;
    lk.unlock();
    (void)flush_now();
    lk.lock();
  }
}

void RecordingWriter::stop_thread() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Expected<std::string> RecordingWriter::finish(const nlohmann::json& trailer) {
  if (closed_) return make_error("recording already closed");
  stop_thread();
  Status st = flush_now();
  if (st) {
    std::string t = dump_json(trailer);
    auto chunk = make_chunk(kChunkEnd, reinterpret_cast<const uint8_t*>(t.data()), t.size(),
                            opt_.zstd_level);
    std::lock_guard<std::mutex> io(io_mu_);
    st = write_all(chunk.data(), chunk.size());
    if (st) chunks_++;
  }
  closed_ = true;
  if (!st) {
    file_->close();
    return st.error();
  }
  // fsync, rename, fsync of the directory; a failed rename names the kept temporary.
  if (Status c = file_->commit(); !c) return c.error();
  return file_->path();
}

void RecordingWriter::abandon() {
  if (!closed_) {
    stop_thread();
    closed_ = true;
  }
  file_->discard();
}

}  // namespace schedscope::record
