// JSON view of BinaryInfo for `schedscope inspect` and recordings.
#pragma once
#include <nlohmann/json.hpp>

#include "go/binary.h"

namespace schedscope::go {

// Keys: path, is_go, go_version, version_source, module_path, has_buildinfo, stripped,
// dwarf, cgo, cgo_source, pie, tls_g_offset, tls_source, pclntab_version, pclntab_addr,
// text_start, moduledata, function_count, globals {allp, allm, sched, gomaxprocs, allgs,
// allglen, gcphase, source}, functions {name: entry}, warnings [..].
// Addresses are "0x..." strings. The keys of `extra` (an object, e.g. {"offsets": ...})
// are merged in at the top level.
nlohmann::json inspect_to_json(const BinaryInfo& info,
                               const nlohmann::json& extra = nlohmann::json::object());

}  // namespace schedscope::go
