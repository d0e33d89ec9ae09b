// JSON views of the runtime offsets (`inspect`, a recording's metadata) and of scheduler
// samples (the P table and M list of every frame's JSON, model/frame_json.cpp).
#pragma once
#include <nlohmann/json.hpp>

#include "go/offsets.h"
#include "go/runtime_reader.h"

namespace schedscope::go {

// {"source": "...", "<field>": offset, ...} with every field of offset_fields().
nlohmann::json offsets_to_json(const Offsets& off);

// The P table: [{"id", "status": "idle|running|syscall|gcstop|dead", "m": m.id or -1,
// "tid", "goid", "func", "cur_func", "schedtick", "syscalltick", "runq"}]. The "ps" of
// every frame's JSON (README.md documents the keys).
nlohmann::json ps_to_json(const SchedSample& s);
// The M list: [{"id", "tid", "p": id or -1, "oldp": id or -1, "goid", "func", "spinning",
// "blocked", "incgo", "sysmon", "lockedg"}]. The "ms" of every frame's JSON.
nlohmann::json ms_to_json(const SchedSample& s);

// {"ts_ns", "gomaxprocs", "goidgen", "lastpoll", "nmidle", "npidle", "nmspinning",
//  "maxmcount", "gcwaiting", "gcphase", "ps": ps_to_json(s), "ms": ms_to_json(s)}
nlohmann::json sample_to_json(const SchedSample& s);

// A Validation as {"ok": bool, "checks": [...]}.
nlohmann::json validation_to_json(const Validation& v);

}  // namespace schedscope::go
