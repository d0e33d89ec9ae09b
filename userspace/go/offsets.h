// Runtime struct offsets (g, m, p, schedt) with their source: DWARF, the per-version
// table, or live calibration; and their validation against runtime invariants.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "go/binary.h"
#include "util/expected.h"

namespace schedscope::go {

// The one upper bound on every target-derived field offset and struct size (DWARF,
// calibration): a field of runtime.g/m/p/schedt is never this far into its struct (the
// largest, runtime.p, is about 10 KiB). Reads of the target's structs are sized from these
// offsets, so the bound also bounds every allocation made for them.
inline constexpr uint32_t kMaxGoStructOffset = 64 * 1024;

struct Offsets {
  std::string source;  // "dwarf" | "table:go1.N" | "calibrated" | "none"
  // runtime.g
  uint32_t g_m = 48, g_sched_sp = 56, g_sched_pc = 64, g_sched_bp = 0, g_syscallsp = 0,
           g_syscallpc = 0, g_atomicstatus = 0, g_goid = 0, g_waitsince = 0, g_waitreason = 0,
           g_lockedm = 0, g_gopc = 0, g_startpc = 0;
  // runtime.m
  uint32_t m_g0 = 0, m_procid = 0, m_gsignal = 0, m_tls = 0, m_mstartfn = 0, m_curg = 0, m_p = 0,
           m_nextp = 0, m_oldp = 0, m_id = 0, m_spinning = 0, m_blocked = 0, m_incgo = 0,
           m_alllink = 0, m_lockedg = 0, m_syscalltick = 0;
  // runtime.p
  uint32_t p_id = 0, p_status = 4, p_link = 8, p_schedtick = 16, p_syscalltick = 20,
           p_sysmontick = 24, p_m = 0, p_runqhead = 0, p_runqtail = 0, p_runnext = 0;
  // runtime.schedt
  uint32_t sched_goidgen = 0, sched_lastpoll = 8, sched_nmidle = 0, sched_maxmcount = 0,
           sched_npidle = 0, sched_nmspinning = 0, sched_runqsize = 0, sched_gcwaiting = 0;
  // Additional fields (0 = unknown). Sizes are sizeof the struct.
  uint32_t g_size = 0, g_schedlink = 0, g_parent_goid = 0, g_waiting = 0, g_labels = 0;
  uint32_t m_size = 0, m_isextra = 0, m_ncgocall = 0, m_schedlink = 0, m_lockedext = 0,
           m_lockedint = 0, m_vdsosp = 0, m_vdsopc = 0;
  uint32_t p_size = 0, p_runq = 0, p_gcmarkworkermode = 0, p_preempt = 0;
  uint32_t sched_polluntil = 16, sched_lock = 0, sched_nmidlelocked = 0, sched_mnext = 0,
           sched_nmsys = 0, sched_ngsys = 0, sched_pidle = 0, sched_needspinning = 0,
           sched_runq = 0, sched_stopwait = 0, sched_sysmonwait = 0, sched_procresizetime = 0,
           sched_customgomaxprocs = 0;
  [[nodiscard]] bool valid() const { return source != "none" && g_goid != 0 && m_curg != 0; }
};

// One named field of Offsets, with where DWARF finds it: `dwarf_struct` ("runtime.g")
// and a dotted member path ("sched.pc"; alternatives separated by '|', first found wins,
// e.g. "runqsize|runq.size" for schedt.runqsize, which 1.25 moved into gQueue.size).
// A field whose offset is legitimately 0 (g.stack.lo, m.g0, p.id, sched.goidgen) has
// `zero_ok`; for every other field 0 means "unknown".
struct OffsetField {
  const char* name;  // "g_goid": the Offsets member and the JSON key
  uint32_t Offsets::*member;
  const char* dwarf_struct;
  const char* dwarf_path;
  bool zero_ok;
};
// Every offset field of Offsets, in declaration order.
const std::vector<OffsetField>& offset_fields();
// Every field and size within kMaxGoStructOffset; else an error naming the first field
// out of range. Applied by offsets_from_dwarf(), calibrate() and validate().
Status check_offset_bounds(const Offsets& o);

// The Go minor versions the built-in table covers (docs/go-runtime.md, "Finding the
// current g, m and p").
inline constexpr int kTableMinMinor = 17;
inline constexpr int kTableMaxMinor = 26;

// DWARF (libdw) when the binary has it. Error when the binary has no DWARF or no
// runtime.g/m/p/schedt types. Fields DWARF does not give stay 0.
Expected<Offsets> offsets_from_dwarf(const std::string& path);
// The table for a known minor version (17..26); error when the version is not in it.
Expected<Offsets> offsets_from_table(int minor);
// Best static source for this binary: DWARF, else table, else error (calibration needed).
Expected<Offsets> offsets_for(const BinaryInfo& bin);

}  // namespace schedscope::go
