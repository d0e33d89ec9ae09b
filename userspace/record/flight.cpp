#include "record/flight.h"

#include <cstring>

#include "record/census_format.h"
#include "record/writer.h"
#include "util/json_out.h"

namespace schedscope::record {

void FlightBuffer::add(RecordKind kind, const void* payload, size_t len) {
  append_record(cur_, kind, payload, len);
  cur_count_++;
  if (kind == kRecRaw) cur_raw_++;
}

void FlightBuffer::raw(const ss_hdr* rec, size_t size) { add(kRecRaw, rec, size); }

void FlightBuffer::kernel(const probe::KernelSnapshot& s) {
  if (s.ts_ns) last_ts_ = s.ts_ns;
  ByteWriter b;
  encode_kernel(b, s);
  add(kRecKernel, b.data().data(), b.size());
}

void FlightBuffer::go(const go::SchedSample& s) {
  ByteWriter b;
  encode_go(b, s);
  add(kRecGo, b.data().data(), b.size());
}

void FlightBuffer::name(uint32_t tid, const std::string& n) {
  names_[tid] = n;
  ByteWriter b;
  b.u32(tid);
  b.str(n);
  add(kRecName, b.data().data(), b.size());
}

void FlightBuffer::symbols(const std::vector<SymbolEntry>& syms) {
  if (syms.empty()) return;
  for (const auto& e : syms) syms_[e.pc] = e;
  ByteWriter b;
  encode_symbols(b, syms);
  add(kRecSymbols, b.data().data(), b.size());
}

void FlightBuffer::info(const nlohmann::json& j) {
  if (j.is_object())
    for (auto& [k, v] : j.items()) info_[k] = v;
  std::string s = dump_json(j);
  add(kRecInfo, s.data(), s.size());
}

void FlightBuffer::goroutine_baseline(uint64_t live) {
  have_baseline_ = true;
  go_baseline_ = live;
  add(kRecGoBaseline, &live, sizeof live);
}

void FlightBuffer::census(const gc::Census& c) {
  ByteWriter b;
  encode_census(b, c);
  add(kRecGoCensus, b.data().data(), b.size());
}

void FlightBuffer::sched_latency(const go::TimeHist& h) {
  ByteWriter b;
  encode_time_hist(b, h);
  add(kRecGoSchedLatency, b.data().data(), b.size());
}

void FlightBuffer::frame(const nlohmann::json& marker) {
  Segment s;
  s.records = std::move(cur_.data());
  cur_ = ByteWriter();
  s.marker = marker;
  s.count = cur_count_;
  s.raw = cur_raw_;
  cur_count_ = cur_raw_ = 0;
  uint64_t ts = 0;
  if (auto it = marker.find("ts_ns"); it != marker.end() && it->is_number_unsigned()) ts = it->get<uint64_t>();
  if (!ts) ts = last_ts_;  // the attach-time baseline marker has no time of its own
  s.ts_ns = ts;
  bytes_ += s.records.size();
  segs_.push_back(std::move(s));
  trim();
}

void FlightBuffer::trim() {
  // Keep the baseline frame plus every frame within window_s of it.
  const auto window_ns = uint64_t(opt_.window_s * 1e9);
  while (segs_.size() > 2 && segs_.back().ts_ns - segs_[1].ts_ns >= window_ns) {
    bytes_ -= segs_.front().records.size();
    segs_.pop_front();
  }
  while (segs_.size() > 2 && bytes_ > opt_.max_bytes) {
    bytes_ -= segs_.front().records.size();
    segs_.pop_front();
    trimmed_for_bytes_++;
  }
}

double FlightBuffer::span_s() const {
  // From the oldest frame with a time (the attach-time marker may have none).
  for (const auto& s : segs_)
    if (s.ts_ns) return double(segs_.back().ts_ns - s.ts_ns) / 1e9;
  return 0;
}

Expected<FlightBuffer::DumpResult> FlightBuffer::dump(const std::string& path, const nlohmann::json& meta,
                                                      const nlohmann::json& final_marker,
                                                      const nlohmann::json& trailer) const {
  WriterOptions wo;
  wo.background = false;
  auto w = RecordingWriter::create(path, meta, wo);
  if (!w) return w.error();
  RecordingWriter& out = **w;
  DumpResult r;
  r.notices = out.notices();
  // State that the window's records may refer to but that was recorded before it.
  for (const auto& [tid, n] : names_) out.name(tid, n);
  std::vector<SymbolEntry> syms;
  syms.reserve(syms_.size());
  for (const auto& [pc, e] : syms_) syms.push_back(e);
  out.symbols(syms);
  if (!info_.empty()) out.info(info_);
  if (have_baseline_) out.goroutine_baseline(go_baseline_);
  bool first = true;
  for (const auto& s : segs_) {
    const uint8_t* p = s.records.data();
    size_t n = s.records.size();
    while (n >= kRecordHeaderSize) {
      uint16_t kind = 0;
      uint32_t len = 0;
      std::memcpy(&kind, p, 2);
      std::memcpy(&len, p + 4, 4);
      if (len > n - kRecordHeaderSize) break;  // cannot happen: we encoded it
      out.encoded(RecordKind(kind), p + kRecordHeaderSize, len);
      p += kRecordHeaderSize + len;
      n -= kRecordHeaderSize + len;
    }
    nlohmann::json m = s.marker;
    if (first) {
      // The oldest frame only sets the model up: what came before it is not in the file.
      m["mode"] = frame_mode_name(FrameMode::kBaseline);
      m.erase("alerts");
      m.erase("stacks");
      first = false;
    } else if (m.value("mode", "") == frame_mode_name(FrameMode::kShown)) {
      r.frames++;
    }
    out.frame(m);
  }
  out.frame(final_marker);
  r.records = out.records();
  r.events = out.raw_records();
  r.span_s = span_s();
  nlohmann::json t = trailer;
  t["frames"] = r.frames;
  t["events"] = r.events;
  t["records"] = r.records;
  if (!t.contains("duration_s")) t["duration_s"] = r.span_s;
  auto done = out.finish(t);
  if (!done) return done.error();
  r.path = *done;
  return r;
}

}  // namespace schedscope::record
