#include "go/runtime_json.h"

namespace schedscope::go {

nlohmann::json offsets_to_json(const Offsets& off) {
  nlohmann::json j = nlohmann::json::object();
  j["source"] = off.source;
  for (const auto& f : offset_fields()) j[f.name] = off.*f.member;
  return j;
}

nlohmann::json ps_to_json(const SchedSample& s) {
  nlohmann::json ps = nlohmann::json::array();
  for (const auto& p : s.ps) {
    ps.push_back({{"id", p.id},
                  {"status", p_status_name(p.status)},
                  {"m", p.m_id},
                  {"tid", p.tid},
                  {"goid", p.goid},
                  {"func", p.func},
                  {"cur_func", p.cur_func},
                  {"schedtick", p.schedtick},
                  {"syscalltick", p.syscalltick},
                  {"runq", p.runq}});
  }
  return ps;
}

nlohmann::json ms_to_json(const SchedSample& s) {
  nlohmann::json ms = nlohmann::json::array();
  for (const auto& m : s.ms) {
    ms.push_back({{"id", m.id},
                  {"tid", m.tid},
                  {"p", m.p},
                  {"oldp", m.oldp},
                  {"goid", m.curg_goid},
                  {"func", m.curg_func},
                  {"spinning", m.spinning},
                  {"blocked", m.blocked},
                  {"incgo", m.incgo},
                  {"sysmon", m.sysmon},
                  {"lockedg", m.lockedg_goid}});
  }
  return ms;
}

nlohmann::json sample_to_json(const SchedSample& s) {
  nlohmann::json j = {
      {"ts_ns", s.ts_ns},           {"gomaxprocs", s.gomaxprocs}, {"goidgen", s.goidgen},
      {"lastpoll", s.lastpoll},     {"nmidle", s.nmidle},         {"npidle", s.npidle},
      {"nmspinning", s.nmspinning}, {"maxmcount", s.maxmcount},   {"gcwaiting", s.gcwaiting},
      {"gcphase", s.gcphase},
  };
  j["ps"] = ps_to_json(s);
  j["ms"] = ms_to_json(s);
  return j;
}

nlohmann::json validation_to_json(const Validation& v) {
  return {{"ok", v.ok}, {"checks", v.checks}};
}

}  // namespace schedscope::go
