// Export of a recording to the Perfetto trace format (protobuf, ui.perfetto.dev):
//   - the process track, and one track per P with G slices ("G<goid> <func>") derived
//     from consecutive P-table samples (a slice while the same G holds the P);
//   - one track per thread with its off-CPU intervals (SS_EV_OFFCPU: named by the
//     syscall it blocked in, else by the reason) and thread creation/exit instants;
//     with -S, a "syscalls" child track per thread with the slow syscalls;
//   - counters: threads, runnable Gs (sum of the P run queues), syscalls/s, switches/s;
//   - an "alerts" track with one instant per alert the detectors raise on the recording;
//   - (USDT runtimes) "stop-the-world: safepoint" / "stop-the-world: gc" tracks with one
//     slice per pause, and an instant with the arguments per --usdt hit on its thread.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "detect/detectors.h"
#include "record/reader.h"
#include "util/expected.h"

namespace schedscope::record {

struct ExportStats {
  uint64_t packets = 0;
  uint64_t p_tracks = 0, thread_tracks = 0, counter_tracks = 0;
  uint64_t g_slices = 0, offcpu_slices = 0, syscall_slices = 0;
  uint64_t counter_values = 0, instants = 0, alerts = 0;
  uint64_t bytes = 0;
  uint64_t pause_slices = 0, usdt_instants = 0;  // stop-the-world tracks, USDT hits
};

// Writes the trace to `out_path` through an OutputFile (util/safe_file.h: unpredictable
// temporary name, exclusive create, mode 0600, fsync, rename). *notices gets the stale
// temporaries it removed from the directory, one line each.
Expected<ExportStats> export_perfetto(const Recording& rec, const detect::DetectOptions& detect,
                                      const std::string& out_path,
                                      std::vector<std::string>* notices = nullptr);
// The same into an open stream (tests, fuzzing); the caller flushes and closes it.
ExportStats export_perfetto(const Recording& rec, const detect::DetectOptions& detect, FILE* out,
                            bool* write_ok);

}  // namespace schedscope::record
