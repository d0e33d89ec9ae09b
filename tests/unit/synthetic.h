// Builders of synthetic P/M samples, thread rows and frames for the unit tests that drive
// the model, the detectors and the recorder without a kernel or a Go process.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "go/runtime_reader.h"
#include "model/model.h"

namespace schedscope::synthetic {

// The state named as the JSON and the views show it ("sleeping", "exited", ...).
inline model::ThreadState state(const std::string& name) {
  for (int i = 0; i <= int(model::ThreadState::kExited); i++)
    if (name == model::thread_state_name(model::ThreadState(i))) return model::ThreadState(i);
  return model::ThreadState::kStopped;
}

// A thread's kernel-side state as the BPF side starts it: not in a syscall, no Go context.
inline ss_thread_state kernel_thread(uint32_t tgid = 100, const char* comm = "svc") {
  ss_thread_state s{};
  s.tgid = tgid;
  s.sc_nr = SS_NO_SYSCALL;
  s.block_nr = SS_NO_SYSCALL;
  s.last_block_nr = SS_NO_SYSCALL;
  s.go.m_id = -1;
  s.go.p_id = -1;
  std::strncpy(s.comm, comm, sizeof s.comm - 1);
  return s;
}

inline go::PSample P(int id, uint32_t status, int64_t m, int tid, uint64_t goid, uint32_t sched,
                     uint32_t sys, const char* func = "main.worker", uint32_t runq = 0) {
  go::PSample p;
  p.id = id;
  p.status = status;
  p.m_id = m;
  p.tid = tid;
  p.goid = goid;
  p.func = func;
  p.schedtick = sched;
  p.syscalltick = sys;
  p.runq = runq;
  return p;
}

inline go::MSample M(int64_t id, int tid, int p, int oldp, uint64_t goid, const char* func = "",
                     bool incgo = false) {
  go::MSample m;
  m.id = id;
  m.tid = tid;
  m.p = p;
  m.oldp = oldp;
  m.curg_goid = goid;
  m.curg_func = func;
  m.incgo = incgo;
  return m;
}

inline model::ThreadRow T(uint32_t tid, const char* state, const char* syscall = "", double ms = 0) {
  model::ThreadRow r;
  r.tid = tid;
  r.state = synthetic::state(state);
  r.syscall = syscall;
  r.syscall_ms = ms;
  r.state_ms = ms;
  return r;
}

// A 1 s frame at `ts` with this P table, M list and thread rows.
inline model::Frame frame(uint64_t ts, std::vector<go::PSample> ps, std::vector<go::MSample> ms,
                          std::vector<model::ThreadRow> rows) {
  model::Frame f;
  f.ts_ns = ts;
  f.interval_s = 1;
  go::SchedSample s;
  s.gomaxprocs = int(ps.size());
  s.maxmcount = 10000;
  s.ps = std::move(ps);
  s.ms = std::move(ms);
  f.go = s;
  f.threads = std::move(rows);
  f.threads_alive = int(f.threads.size());
  return f;
}

}  // namespace schedscope::synthetic
