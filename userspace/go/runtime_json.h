// JSON views of runtime offsets and scheduler samples (CLI `inspect`/batch output, tests).
#pragma once
#include <nlohmann/json.hpp>

#include "go/offsets.h"
#include "go/runtime_reader.h"

namespace schedscope::go {

// {"source": "...", "<field>": offset, ...} with every field of offset_fields().
nlohmann::json offsets_to_json(const Offsets& off);

// {"ts_ns", "gomaxprocs", "goidgen", "lastpoll", "nmidle", "npidle", "nmspinning",
//  "maxmcount", "gcwaiting", "gcphase",
//  "ps": [{"id", "status": "idle|running|syscall|gcstop|dead", "m": m.id or -1, "tid",
//          "goid", "func", "pc_func", "schedtick", "syscalltick", "runq", "via_oldp"}],
//  "ms": [{"id", "tid", "p": id or -1, "oldp": id or -1, "goid", "func", "spinning",
//          "blocked", "incgo", "sysmon", "lockedg"}]}
nlohmann::json sample_to_json(const SchedSample& s);

// A Validation as {"ok": bool, "checks": [...]}.
nlohmann::json validation_to_json(const Validation& v);

}  // namespace schedscope::go
