// libFuzzer target: the recording reader and everything downstream of it (record
// decoders, Model, Detectors, report, Perfetto export). Built by `make fuzz`.
//
// Input, by its first byte:
//   0x89 ...  a whole file as is (header, chunks): the framing and checksums.
//   other     the rest is the payload of data chunks inside a valid file (split at
//             byte 1's value), so the fuzzer reaches the record decoders and the model
//             past the checksums.
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

namespace sr = schedscope::record;

namespace {

std::vector<uint8_t> wrap(const uint8_t* data, size_t size) {
  std::vector<uint8_t> out(sr::kFileHeaderSize);
  sr::encode_file_header(sr::FileHeader{}, out.data());
  std::string meta =
      R"({"target":{"pid":1,"comm":"fuzz","all_syscalls":true},"symbolizer":true,"interval_s":1})";
  auto mc = sr::make_chunk(sr::kChunkMeta, reinterpret_cast<const uint8_t*>(meta.data()), meta.size());
  out.insert(out.end(), mc.begin(), mc.end());
  size_t split = size > 0 ? size_t(data[0]) * 8 + 1 : 1;
  const uint8_t* p = size > 0 ? data + 1 : data;
  size_t n = size > 0 ? size - 1 : 0;
  while (n > 0) {
    size_t k = std::min(n, split);
    auto c = sr::make_chunk(sr::kChunkData, p, k, 1);
    out.insert(out.end(), c.begin(), c.end());
    p += k;
    n -= k;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<uint8_t> file =
      data[0] == 0x89 ? std::vector<uint8_t>(data, data + size) : wrap(data + 1, size - 1);
  auto rec = sr::Recording::parse(std::move(file), "fuzz");
  if (!rec) return 0;
  schedscope::detect::DetectOptions d;
  {
    sr::Replayer rp(*rec, d);
    while (auto f = rp.next()) (void)f->threads.size();
    (void)rp.final_frame();
  }
  auto report = sr::build_report(*rec, d);
  static FILE* devnull = std::fopen("/dev/null", "w");
  if (devnull) sr::print_report(report, devnull);
  if (devnull) {
    bool ok = false;
    (void)sr::export_perfetto(*rec, d, devnull, &ok);
  }
  return 0;
}
