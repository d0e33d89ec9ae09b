// ss-replay-bench — the observer's userspace cost per ring-buffer event (make bench,
// docs/performance.md).
//
// Replays a recording (`schedscope record`) offline through the same path the live
// observer runs each interval: every recorded ring-buffer record, kernel snapshot and Go
// read into the Model, one frame per recorded interval, the detectors, and the frame's
// JSON as `top --json` prints it. The CPU time of that (CLOCK_PROCESS_CPUTIME_ID), minus
// the time to only decode the recording's chunks, divided by the recorded ring-buffer
// records, is the observer's CPU per event. What the live observer does besides (reading
// the BPF maps, /proc) is not in it: the live benchmark's observer CPU column has that.
//
//   ss-replay-bench [--passes N] [--no-json] [--check] FILE.sched
//
// --check: also compares each frame's streamed JSON (frame_json_text) with the DOM's.
// Prints one line per measure and a final "ns_per_event=..." line (the median pass).
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "analysis/replay.h"
#include "model/frame_json.h"
#include "record/reader.h"
#include "util/json_out.h"

using namespace schedscope;

namespace {

double cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int passes = 5;
  bool json = true, check = false;
  uint64_t mismatches = 0;
  std::string path;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--passes") && i + 1 < argc) {
      passes = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--check")) {
      check = true;
    } else if (!std::strcmp(argv[i], "--no-json")) {
      json = false;
    } else if (argv[i][0] != '-' && path.empty()) {
      path = argv[i];
    } else {
      std::fprintf(stderr, "usage: ss-replay-bench [--passes N] [--no-json] [--check] FILE.sched\n");
      return 2;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "usage: ss-replay-bench [--passes N] [--no-json] [--check] FILE.sched\n");
    return 2;
  }
  auto rec = record::Recording::open(path);
  if (!rec) {
    std::fprintf(stderr, "ss-replay-bench: %s\n", rec.error().message.c_str());
    return 1;
  }
  const auto thresholds = record::detect_from_json(rec->meta().value("thresholds", nlohmann::json::object()));

  std::vector<double> decode_ns, replay_ns;
  uint64_t raw = 0, items = 0, frames = 0, json_bytes = 0;
  for (int pass = 0; pass < passes; pass++) {
    // Decoding only: chunk decompression and record parsing, which a live observer does
    // not do.
    double t0 = cpu_ns();
    record::Item it;
    auto iter = rec->records();
    uint64_t n = 0;
    while (iter.next(&it)) n++;
    decode_ns.push_back(cpu_ns() - t0);
    items = n;

    // Decoding + the model, frames, detectors and the frame JSON.
    t0 = cpu_ns();
    record::Replayer rp(*rec, thresholds);
    uint64_t shown = 0, bytes = 0;
    while (auto f = rp.next()) {
      shown++;
      if (json) bytes += model::frame_json_text(*f).size();
      if (check && pass == 0) mismatches += model::frame_json_text(*f) != dump_json(model::frame_to_json(*f));
    }
    model::Frame fin = rp.final_frame();
    if (json) bytes += model::frame_json_text(fin).size();
    if (check && pass == 0) mismatches += model::frame_json_text(fin) != dump_json(model::frame_to_json(fin));
    replay_ns.push_back(cpu_ns() - t0);
    raw = rp.raw_records();
    frames = shown;
    json_bytes = bytes;
  }
  const double dec = median(decode_ns), rep = median(replay_ns);
  double best = 1e300;
  for (int i = 0; i < passes; i++) best = std::min(best, replay_ns[size_t(i)] - decode_ns[size_t(i)]);
  const double model = std::max(0.0, rep - dec);
  std::printf("recording: %s\n", path.c_str());
  std::printf("items=%llu raw_records=%llu frames=%llu json_bytes_per_pass=%llu passes=%d\n",
              (unsigned long long)items, (unsigned long long)raw, (unsigned long long)frames,
              (unsigned long long)json_bytes, passes);
  std::printf("decode_ms=%.1f replay_ms=%.1f model_ms=%.1f (median pass)\n", dec / 1e6, rep / 1e6,
              model / 1e6);
  if (check) {
    std::printf("json_check: %llu frame(s) whose streamed JSON differs from the DOM's\n",
                (unsigned long long)mismatches);
    if (mismatches) return 1;
  }
  if (raw == 0) {
    std::printf("ns_per_event=nan (no ring-buffer records)\n");
    return 1;
  }
  std::printf("ns_per_event=%.0f best_ns_per_event=%.0f\n", model / double(raw),
              std::max(0.0, best) / double(raw));
  return 0;
}
