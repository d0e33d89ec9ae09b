// libFuzzer target: the JSON of a recording (metadata, frame markers, info records, the
// trailer) and everything that reads it (Recording, Replayer, report, Perfetto export),
// plus the product's JSON policy itself (parse_json_bounded, dump_json). Built by
// `make fuzz`; tests/fuzz/fuzz_recording_json.dict holds the keys these readers look for.
//
// Input: byte 0 picks where the rest goes, inside an otherwise valid recording:
//   0  the metadata chunk            2  an info record (kRecInfo)
//   1  a frame marker (kRecFrame)    3  the trailer chunk
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "detect/detectors.h"
#include "record/format.h"
#include "analysis/perfetto.h"
#include "record/reader.h"
#include "analysis/replay.h"
#include "analysis/report.h"
#include "util/json_out.h"

namespace sr = schedscope::record;

namespace {

const std::string kMeta =
    R"({"target":{"pid":1,"comm":"fuzz","all_syscalls":true},"symbolizer":true,"interval_s":1,)"
    R"("thresholds":{},"go":{"go_version":"go1.21.0","wait_reasons":["","x"]}})";

void add_chunk(std::vector<uint8_t>& out, uint16_t type, const std::string& s) {
  auto c = sr::make_chunk(type, reinterpret_cast<const uint8_t*>(s.data()), s.size(), 1);
  out.insert(out.end(), c.begin(), c.end());
}

std::string record(sr::RecordKind kind, const std::string& json) {
  sr::ByteWriter w;
  sr::append_record(w, kind, json.data(), json.size());
  return {reinterpret_cast<const char*>(w.data().data()), w.size()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string json(reinterpret_cast<const char*>(data + 1), size - 1);

  // The policy: never throws, depth bounded, what it writes parses again.
  std::string why;
  if (auto j = schedscope::parse_json_bounded(data + 1, size - 1, &why)) {
    std::string out = schedscope::dump_json(*j);
    if (!schedscope::parse_json_bounded(reinterpret_cast<const uint8_t*>(out.data()), out.size()))
      __builtin_trap();  // dump_json wrote something parse_json_bounded refuses
  }

  std::vector<uint8_t> file(sr::kFileHeaderSize);
  sr::encode_file_header(sr::FileHeader{}, file.data());
  const int where = data[0] % 4;
  add_chunk(file, sr::kChunkMeta, where == 0 ? json : kMeta);
  std::string recs = record(sr::kRecFrame, R"({"mode":"shown","alerts":[]})");
  if (where == 1) recs += record(sr::kRecFrame, json);
  if (where == 2) recs += record(sr::kRecInfo, json);
  recs += record(sr::kRecFrame, R"({"mode":"final","alerts":[]})");
  add_chunk(file, sr::kChunkData, recs);
  add_chunk(file, sr::kChunkEnd, where == 3 ? json : R"({"frames":2})");

  auto rec = sr::Recording::parse(std::move(file), "fuzz");
  if (!rec) return 0;
  schedscope::detect::DetectOptions d;
  if (rec->meta().contains("thresholds")) d = sr::detect_from_json(rec->meta()["thresholds"], d);
  {
    sr::Replayer rp(*rec, d);
    while (auto f = rp.next()) (void)f->threads.size();
    (void)rp.final_frame();
  }
  auto report = sr::build_report(*rec, d);
  (void)schedscope::dump_json(report, 2);
  static FILE* devnull = std::fopen("/dev/null", "w");
  if (devnull) {
    sr::print_report(report, devnull);
    bool ok = false;
    (void)sr::export_perfetto(*rec, d, devnull, &ok);
  }
  return 0;
}
