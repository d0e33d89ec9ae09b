#include "go/binary_json.h"

#include "util/hex.h"

namespace schedscope::go {

nlohmann::json inspect_to_json(const BinaryInfo& info, const nlohmann::json& extra) {
  using nlohmann::json;
  json j;
  j["path"] = info.path;
  j["is_go"] = info.is_go;
  j["go_version"] = info.go_version;
  j["version_source"] = info.version_source;
  j["module_path"] = info.module_path;
  j["has_buildinfo"] = info.has_buildinfo;
  j["stripped"] = info.stripped;
  j["dwarf"] = info.has_dwarf;
  j["cgo"] = info.cgo;
  j["cgo_source"] = info.cgo_source;
  j["pie"] = info.pie;
  j["tls_g_offset"] = info.tls_g_offset;
  j["tls_source"] = info.tls_source;
  j["pclntab_version"] = info.pclntab_version;
  j["pclntab_addr"] = hex(info.pclntab_addr);
  j["text_start"] = hex(info.text_start);
  j["moduledata"] = hex(info.moduledata);
  j["function_count"] = info.symbolizer ? info.symbolizer->function_count() : 0;
  const Globals& g = info.globals;
  j["globals"] = {
      {"allp", hex(g.allp)},       {"allm", hex(g.allm)},
      {"sched", hex(g.sched)},     {"gomaxprocs", hex(g.gomaxprocs)},
      {"allgs", hex(g.allgs)},     {"allglen", hex(g.allglen)},
      {"gcphase", hex(g.gcphase)}, {"source", g.source},
  };
  const TimeToRun& t = info.time_to_run;
  j["sched_latency_histogram"] = {{"addr", hex(t.addr)},
                                  {"sched_offset", t.offset},
                                  {"layout", t.layout},
                                  {"source", t.source}};
  json fns = json::object();
  for (const auto& [name, f] : info.functions) {
    fns[name] = hex(f.entry);
  }
  j["functions"] = std::move(fns);
  if (info.is_go) {
    json wr = {{"count", info.wait_reasons.size()},
               {"source", info.wait_reasons_source},
               {"addr", hex(info.wait_reasons_addr)},
               {"names", info.wait_reasons}};
    if (info.wait_reasons.empty())
      wr["note"] = "runtime.waitReasonStrings not found: wait reasons other than 1 (GC assist "
                   "marking) and 2 (IO wait) are shown as \"wait reason N\"";
    j["wait_reasons"] = std::move(wr);
    json sr = {{"count", info.stw_reasons.size()},
               {"source", info.stw_reasons_source},
               {"names", info.stw_reasons}};
    if (info.stw_reasons.empty())
      sr["note"] = "runtime.stwReasonStrings not found (none before Go 1.21): a stop's reason "
                   "is named from the release's known list on 1.21-1.26, else not at all";
    j["stw_reasons"] = std::move(sr);
  }
  j["warnings"] = info.warnings;
  if (extra.is_object()) {
    for (const auto& [k, v] : extra.items()) {
      j[k] = v;
    }
  }
  return j;
}

}  // namespace schedscope::go
