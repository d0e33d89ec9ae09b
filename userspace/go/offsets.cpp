// Runtime struct offsets: the per-version table (docs/go-runtime.md, "Finding the current
// g, m and p", amd64, DWARF-measured on go1.17.13 … go1.26.11) and the DWARF reader (libdw).
#include "go/offsets.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>

#include "util/input_file.h"

namespace schedscope::go {

namespace {

#define F(name, st, path) \
  OffsetField { #name, &Offsets::name, st, path, false }
#define FZ(name, st, path) \
  OffsetField { #name, &Offsets::name, st, path, true }
constexpr const char* kG = "runtime.g";
constexpr const char* kM = "runtime.m";
constexpr const char* kP = "runtime.p";
constexpr const char* kS = "runtime.schedt";

const std::vector<OffsetField> kFields = {
    // runtime.g
    F(g_m, kG, "m"),
    F(g_sched_sp, kG, "sched.sp"),
    F(g_sched_pc, kG, "sched.pc"),
    F(g_sched_bp, kG, "sched.bp"),
    F(g_syscallsp, kG, "syscallsp"),
    F(g_syscallpc, kG, "syscallpc"),
    F(g_atomicstatus, kG, "atomicstatus"),
    F(g_goid, kG, "goid"),
    F(g_waitsince, kG, "waitsince"),
    F(g_waitreason, kG, "waitreason"),
    F(g_lockedm, kG, "lockedm"),
    F(g_gopc, kG, "gopc"),
    F(g_startpc, kG, "startpc"),
    // runtime.m
    FZ(m_g0, kM, "g0"),
    F(m_procid, kM, "procid"),
    F(m_gsignal, kM, "gsignal"),
    F(m_tls, kM, "tls"),
    F(m_mstartfn, kM, "mstartfn"),
    F(m_curg, kM, "curg"),
    F(m_p, kM, "p"),
    F(m_nextp, kM, "nextp"),
    F(m_oldp, kM, "oldp"),
    F(m_id, kM, "id"),
    F(m_spinning, kM, "spinning"),
    F(m_blocked, kM, "blocked"),
    F(m_incgo, kM, "incgo"),
    F(m_alllink, kM, "alllink"),
    F(m_lockedg, kM, "lockedg"),
    F(m_syscalltick, kM, "syscalltick"),
    // runtime.p
    FZ(p_id, kP, "id"),
    F(p_status, kP, "status"),
    F(p_link, kP, "link"),
    F(p_schedtick, kP, "schedtick"),
    F(p_syscalltick, kP, "syscalltick"),
    F(p_sysmontick, kP, "sysmontick"),
    F(p_m, kP, "m"),
    F(p_runqhead, kP, "runqhead"),
    F(p_runqtail, kP, "runqtail"),
    F(p_runnext, kP, "runnext"),
    // runtime.schedt
    FZ(sched_goidgen, kS, "goidgen"),
    F(sched_lastpoll, kS, "lastpoll"),
    F(sched_nmidle, kS, "nmidle"),
    F(sched_maxmcount, kS, "maxmcount"),
    F(sched_npidle, kS, "npidle"),
    F(sched_nmspinning, kS, "nmspinning"),
    F(sched_runqsize, kS, "runqsize|runq.size"),
    F(sched_gcwaiting, kS, "gcwaiting"),
    // additional
    F(g_size, kG, "@size"),
    F(g_schedlink, kG, "schedlink"),
    F(g_parent_goid, kG, "parentGoid"),
    F(g_waiting, kG, "waiting"),
    F(g_labels, kG, "labels"),
    F(m_size, kM, "@size"),
    F(m_isextra, kM, "isextra"),
    F(m_ncgocall, kM, "ncgocall"),
    F(m_schedlink, kM, "schedlink"),
    F(m_lockedext, kM, "lockedExt"),
    F(m_lockedint, kM, "lockedInt"),
    F(m_vdsosp, kM, "vdsoSP"),
    F(m_vdsopc, kM, "vdsoPC"),
    F(p_size, kP, "@size"),
    F(p_runq, kP, "runq"),
    F(p_gcmarkworkermode, kP, "gcMarkWorkerMode"),
    F(p_preempt, kP, "preempt"),
    F(sched_polluntil, kS, "pollUntil"),
    F(sched_lock, kS, "lock"),
    F(sched_nmidlelocked, kS, "nmidlelocked"),
    F(sched_mnext, kS, "mnext"),
    F(sched_nmsys, kS, "nmsys"),
    F(sched_ngsys, kS, "ngsys"),
    F(sched_pidle, kS, "pidle"),
    F(sched_needspinning, kS, "needspinning"),
    F(sched_runq, kS, "runq"),
    F(sched_stopwait, kS, "stopwait"),
    F(sched_sysmonwait, kS, "sysmonwait"),
    F(sched_procresizetime, kS, "procresizetime"),
    F(sched_customgomaxprocs, kS, "customGOMAXPROCS"),
};
#undef F
#undef FZ

// ------------------------------------------------------------------ table
// One row per field, one column per minor 17..26, copied from docs/go-runtime.md,
// "Finding the current g, m and p".
// 0 = the field does not exist in that version ("—" in the document).
using Row = std::array<uint32_t, 10>;
struct TableRow {
  uint32_t Offsets::*member;
  Row v;
};

const std::vector<TableRow>& table_rows() {
  // clang-format off
  //                                     1.17   1.18   1.19   1.20   1.21   1.22   1.23   1.24   1.25   1.26
  static const std::vector<TableRow> rows = {
      // ---- runtime.g
      {&Offsets::g_size,                  {  392,   392,   392,   392,   408,   424,   432,   440,   440,   456}},
      {&Offsets::g_m,                     {   48,    48,    48,    48,    48,    48,    48,    48,    48,    48}},
      {&Offsets::g_sched_sp,              {   56,    56,    56,    56,    56,    56,    56,    56,    56,    56}},
      {&Offsets::g_sched_pc,              {   64,    64,    64,    64,    64,    64,    64,    64,    64,    64}},
      {&Offsets::g_sched_bp,              {  104,   104,   104,   104,   104,   104,   104,   104,    96,    96}},
      {&Offsets::g_syscallsp,             {  112,   112,   112,   112,   112,   112,   112,   112,   104,   104}},
      {&Offsets::g_syscallpc,             {  120,   120,   120,   120,   120,   120,   120,   120,   112,   112}},
      {&Offsets::g_atomicstatus,          {  144,   144,   144,   144,   144,   144,   152,   152,   144,   144}},
      {&Offsets::g_goid,                  {  152,   152,   152,   152,   152,   152,   160,   160,   152,   152}},
      {&Offsets::g_schedlink,             {  160,   160,   160,   160,   160,   160,   168,   168,   160,   160}},
      {&Offsets::g_waitsince,             {  168,   168,   168,   168,   168,   168,   176,   176,   168,   168}},
      {&Offsets::g_waitreason,            {  176,   176,   176,   176,   176,   176,   184,   184,   176,   176}},
      {&Offsets::g_lockedm,               {  232,   232,   232,   232,   208,   208,   216,   216,   208,   208}},
      {&Offsets::g_parent_goid,           {    0,     0,     0,     0,   272,   272,   280,   280,   272,   280}},
      {&Offsets::g_gopc,                  {  296,   296,   296,   296,   280,   280,   288,   288,   280,   288}},
      {&Offsets::g_startpc,               {  312,   312,   312,   312,   296,   296,   304,   304,   296,   304}},
      {&Offsets::g_waiting,               {  328,   328,   328,   328,   312,   312,   320,   320,   312,   320}},
      {&Offsets::g_labels,                {  360,   360,   360,   360,   344,   344,   352,   352,   344,   352}},
      // ---- runtime.m
      {&Offsets::m_size,                  { 1024,  1008,  1008,  1000,  1008,  2024,  1760,  1808,  1816,  1824}},
      {&Offsets::m_g0,                    {    0,     0,     0,     0,     0,     0,     0,     0,     0,     0}},
      {&Offsets::m_procid,                {   72,    72,    72,    72,    72,    72,    72,    72,    64,    64}},
      {&Offsets::m_gsignal,               {   80,    80,    80,    80,    80,    80,    80,    80,    72,    72}},
      {&Offsets::m_tls,                   {  136,   136,   136,   136,   136,   136,   136,   136,   128,   128}},
      {&Offsets::m_mstartfn,              {  184,   184,   184,   184,   184,   184,   184,   184,   176,   176}},
      {&Offsets::m_curg,                  {  192,   192,   192,   192,   192,   192,   192,   192,   184,   184}},
      {&Offsets::m_p,                     {  208,   208,   208,   208,   208,   208,   208,   208,   200,   208}},
      {&Offsets::m_nextp,                 {  216,   216,   216,   216,   216,   216,   216,   216,   208,   216}},
      {&Offsets::m_oldp,                  {  224,   224,   224,   224,   224,   224,   224,   224,   216,   224}},
      {&Offsets::m_id,                    {  232,   232,   232,   232,   232,   232,   232,   232,   224,   232}},
      {&Offsets::m_spinning,              {  276,   276,   276,   276,   276,   276,   276,   276,   268,   276}},
      {&Offsets::m_blocked,               {  277,   277,   277,   277,   277,   277,   277,   277,   269,   277}},
      {&Offsets::m_incgo,                 {  280,   280,   280,   280,   280,   280,   280,   280,   272,   280}},
      {&Offsets::m_isextra,               {    0,     0,     0,   281,   281,   281,   281,   281,   273,   281}},
      {&Offsets::m_ncgocall,              {  304,   304,   304,   304,   304,   296,   296,   296,   312,   320}},
      {&Offsets::m_alllink,               {  344,   336,   336,   336,   336,   328,   328,   328,   344,   352}},
      {&Offsets::m_schedlink,             {  352,   344,   344,   344,   344,   336,   336,   336,   352,   360}},
      {&Offsets::m_lockedg,               {  360,   352,   352,   352,   352,   344,   344,   344,   360,   384}},
      {&Offsets::m_lockedext,             {  624,   616,   616,   616,   616,   608,   608,   608,   624,   648}},
      {&Offsets::m_lockedint,             {  628,   620,   620,   620,   620,   612,   612,   612,   628,   652}},
      {&Offsets::m_syscalltick,           {  676,   668,   668,   668,   664,   952,   740,   740,   756,   788}},
      {&Offsets::m_vdsosp,                {  832,   800,   800,   800,   808,  1120,   856,   880,   896,   896}},
      {&Offsets::m_vdsopc,                {  840,   808,   808,   808,   816,  1128,   864,   888,   904,   904}},
      // ---- runtime.p
      {&Offsets::p_size,                  {10000,  8888,  8912,  8904,  8912,  8944,  8944,  8952,  9512, 15920}},
      {&Offsets::p_id,                    {    0,     0,     0,     0,     0,     0,     0,     0,     0,     0}},
      {&Offsets::p_status,                {    4,     4,     4,     4,     4,     4,     4,     4,     4,     4}},
      {&Offsets::p_link,                  {    8,     8,     8,     8,     8,     8,     8,     8,     8,     8}},
      {&Offsets::p_schedtick,             {   16,    16,    16,    16,    16,    16,    16,    16,    16,    16}},
      {&Offsets::p_syscalltick,           {   20,    20,    20,    20,    20,    20,    20,    20,    20,    20}},
      {&Offsets::p_sysmontick,            {   24,    24,    24,    24,    24,    24,    24,    24,    24,    24}},
      {&Offsets::p_m,                     {   56,    56,    56,    56,    56,    56,    48,    48,    48,    48}},
      {&Offsets::p_runqhead,              { 1520,   400,   400,   400,   400,   400,   392,   392,   392,   400}},
      {&Offsets::p_runqtail,              { 1524,   404,   404,   404,   404,   404,   396,   396,   396,   404}},
      {&Offsets::p_runq,                  { 1528,   408,   408,   408,   408,   408,   400,   400,   400,   408}},
      {&Offsets::p_runnext,               { 3576,  2456,  2456,  2456,  2456,  2456,  2448,  2448,  2448,  2456}},
      {&Offsets::p_gcmarkworkermode,      { 5768,  4648,  4656,  4648,  4656,  4688,  4664,  4664,  4664,  4672}},
      {&Offsets::p_preempt,               { 9992,  8880,  8904,  8896,  8904,  8936,  8928,  8936,  9496, 13776}},
      // ---- runtime.schedt
      {&Offsets::sched_goidgen,           {    0,     0,     0,     0,     0,     0,     0,     0,     0,     0}},
      {&Offsets::sched_lastpoll,          {    8,     8,     8,     8,     8,     8,     8,     8,     8,     8}},
      {&Offsets::sched_polluntil,         {   16,    16,    16,    16,    16,    16,    16,    16,    16,    16}},
      {&Offsets::sched_lock,              {   24,    24,    24,    24,    24,    24,    24,    24,    32,    32}},
      {&Offsets::sched_nmidle,            {   40,    40,    40,    40,    40,    40,    40,    40,    48,    64}},
      {&Offsets::sched_nmidlelocked,      {   44,    44,    44,    44,    44,    44,    44,    44,    52,    68}},
      {&Offsets::sched_mnext,             {   48,    48,    48,    48,    48,    48,    48,    48,    56,    72}},
      {&Offsets::sched_maxmcount,         {   56,    56,    56,    56,    56,    56,    56,    56,    64,    80}},
      {&Offsets::sched_nmsys,             {   60,    60,    60,    60,    60,    60,    60,    60,    68,    84}},
      {&Offsets::sched_ngsys,             {   72,    72,    72,    72,    72,    72,    72,    72,    80,    96}},
      {&Offsets::sched_pidle,             {   80,    80,    80,    80,    80,    80,    80,    80,    88,   104}},
      {&Offsets::sched_npidle,            {   88,    88,    88,    88,    88,    88,    88,    88,    96,   112}},
      {&Offsets::sched_nmspinning,        {   92,    92,    92,    92,    92,    92,    92,    92,   100,   116}},
      {&Offsets::sched_needspinning,      {    0,     0,     0,    96,    96,    96,    96,    96,   104,   120}},
      {&Offsets::sched_runq,              {   96,    96,    96,   104,   104,   104,   104,   104,   112,   128}},
      // 1.25+: runqsize is gone; the count is runq.size at runq+16.
      {&Offsets::sched_runqsize,          {  112,   112,   112,   120,   120,   120,   120,   120,   128,   144}},
      {&Offsets::sched_gcwaiting,         {  256,   224,   224,   232,   232,   232,   232,   232,   248,   264}},
      {&Offsets::sched_stopwait,          {  260,   228,   228,   236,   236,   236,   236,   236,   252,   268}},
      {&Offsets::sched_sysmonwait,        {  272,   240,   240,   248,   248,   248,   248,   248,   264,   280}},
      {&Offsets::sched_procresizetime,    {  328,   288,   288,   296,   296,   296,   296,   296,   312,   328}},
      {&Offsets::sched_customgomaxprocs,  {    0,     0,     0,     0,     0,     0,     0,     0,   328,   344}},
  };
  // clang-format on
  return rows;
}

// ------------------------------------------------------------------ DWARF
struct DwarfCloser {
  void operator()(Dwarf* d) const { dwarf_end(d); }
};
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) close(fd);
  }
};

bool die_name_is(Dwarf_Die* die, const char* name) {
  const char* n = dwarf_diename(die);
  return n != nullptr && std::strcmp(n, name) == 0;
}

// DW_AT_data_member_location as a constant (Go emits a constant; handle the
// DW_OP_plus_uconst expression form too).
std::optional<uint64_t> member_location(Dwarf_Die* member) {
  Dwarf_Attribute attr;
  if (dwarf_attr(member, DW_AT_data_member_location, &attr) == nullptr) {
    return 0;  // absent: member of a union or offset 0
  }
  Dwarf_Word w = 0;
  if (dwarf_formudata(&attr, &w) == 0) return w;
  Dwarf_Op* ops = nullptr;
  size_t nops = 0;
  if (dwarf_getlocation(&attr, &ops, &nops) == 0 && nops == 1 && ops[0].atom == DW_OP_plus_uconst) {
    return ops[0].number;
  }
  return std::nullopt;
}

// Follows DW_AT_type through typedefs/qualifiers to the underlying type DIE.
bool member_type(Dwarf_Die* member, Dwarf_Die* out) {
  Dwarf_Attribute attr;
  if (dwarf_attr(member, DW_AT_type, &attr) == nullptr) return false;
  if (dwarf_formref_die(&attr, out) == nullptr) return false;
  for (int i = 0; i < 8; ++i) {
    int tag = dwarf_tag(out);
    if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type) break;
    Dwarf_Attribute a2;
    if (dwarf_attr(out, DW_AT_type, &a2) == nullptr) return false;
    Dwarf_Die next;
    if (dwarf_formref_die(&a2, &next) == nullptr) return false;
    *out = next;
  }
  return true;
}

// Offset of a dotted member path inside a structure DIE.
std::optional<uint64_t> path_offset(Dwarf_Die* st, const std::string& path) {
  Dwarf_Die cur = *st;
  uint64_t total = 0;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    Dwarf_Die child;
    if (dwarf_child(&cur, &child) != 0) return std::nullopt;
    bool found = false;
    do {
      if (dwarf_tag(&child) == DW_TAG_member && die_name_is(&child, part.c_str())) {
        auto loc = member_location(&child);
        if (!loc) return std::nullopt;
        total += *loc;
        Dwarf_Die t;
        if (member_type(&child, &t)) cur = t;
        found = true;
        break;
      }
    } while (dwarf_siblingof(&child, &child) == 0);
    if (!found) return std::nullopt;
  }
  return total;
}

}  // namespace

const std::vector<OffsetField>& offset_fields() { return kFields; }

Status check_offset_bounds(const Offsets& o) {
  for (const auto& f : kFields) {
    if (o.*f.member > kMaxGoStructOffset) {
      return make_error("implausible offset " + std::string(f.name) + "=" +
                        std::to_string(o.*f.member) + " (runtime structs are smaller than " +
                        std::to_string(kMaxGoStructOffset / 1024) + " KiB)");
    }
  }
  return {};
}

Expected<Offsets> offsets_from_table(int minor) {
  if (minor < kTableMinMinor || minor > kTableMaxMinor) {
    return make_error("no offset table for go1." + std::to_string(minor) + " (table covers go1." +
                      std::to_string(kTableMinMinor) + "–go1." + std::to_string(kTableMaxMinor) +
                      ")");
  }
  Offsets o;
  // Fields the table does not list (none today) stay 0.
  for (const auto& f : kFields) o.*f.member = 0;
  const size_t col = static_cast<size_t>(minor - kTableMinMinor);
  for (const auto& r : table_rows()) o.*r.member = r.v[col];
  o.source = "table:go1." + std::to_string(minor);
  return o;
}

Expected<Offsets> offsets_from_dwarf(const std::string& path) {
  auto in = open_input_file(path);
  if (!in) return in.error();
  FdGuard fd{dup(in->fd())};
  if (fd.fd < 0) return make_error("cannot open " + path + ": " + std::strerror(errno));
  // Declared after fd: destroyed (dwarf_end) before the fd is closed.
  std::unique_ptr<Dwarf, DwarfCloser> dw(dwarf_begin(fd.fd, DWARF_C_READ));
  if (!dw) {
    return make_error(path + ": no DWARF (" + std::string(dwarf_errmsg(-1)) + ")");
  }
  // Find the four structure types among the top-level DIEs of every CU.
  std::map<std::string, Dwarf_Die> structs;
  const std::array<const char*, 4> wanted = {kG, kM, kP, kS};
  Dwarf_Off off = 0, next = 0;
  size_t hsize = 0;
  while (structs.size() < wanted.size() &&
         dwarf_nextcu(dw.get(), off, &next, &hsize, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu;
    if (dwarf_offdie(dw.get(), off + hsize, &cu) != nullptr) {
      Dwarf_Die child;
      if (dwarf_child(&cu, &child) == 0) {
        do {
          if (dwarf_tag(&child) != DW_TAG_structure_type) continue;
          const char* n = dwarf_diename(&child);
          if (n == nullptr) continue;
          for (const char* w : wanted) {
            if (std::strcmp(n, w) == 0 && !structs.count(w) && dwarf_haschildren(&child)) {
              structs[w] = child;
            }
          }
        } while (dwarf_siblingof(&child, &child) == 0);
      }
    }
    off = next;
  }
  if (!structs.count(kG) || !structs.count(kM)) {
    return make_error(path + ": DWARF has no runtime.g/runtime.m types");
  }
  Offsets o;
  for (const auto& f : kFields) o.*f.member = 0;
  for (const auto& f : kFields) {
    auto it = structs.find(f.dwarf_struct);
    if (it == structs.end()) continue;
    std::string alts = f.dwarf_path;
    std::stringstream ss(alts);
    std::string alt;
    while (std::getline(ss, alt, '|')) {
      if (alt == "@size") {
        Dwarf_Word sz = 0;
        Dwarf_Attribute a;
        if (dwarf_attr(&it->second, DW_AT_byte_size, &a) != nullptr &&
            dwarf_formudata(&a, &sz) == 0) {
          o.*f.member = static_cast<uint32_t>(std::min<Dwarf_Word>(sz, kMaxGoStructOffset + 1));
        }
        break;
      }
      if (auto v = path_offset(&it->second, alt)) {
        o.*f.member = static_cast<uint32_t>(std::min<uint64_t>(*v, kMaxGoStructOffset + 1));
        break;
      }
    }
  }
  o.source = "dwarf";
  if (o.g_goid == 0 || o.m_curg == 0) return make_error(path + ": DWARF lacks g.goid/m.curg");
  if (Status b = check_offset_bounds(o); !b)
    return make_error(path + ": DWARF: " + b.error().message);
  return o;
}

Expected<Offsets> offsets_for(const BinaryInfo& bin) {
  std::string why;
  if (bin.has_dwarf) {
    auto d = offsets_from_dwarf(bin.path);
    if (d) return d;
    why = d.error().message + "; ";
  }
  auto minor = go_minor(bin.go_version);
  if (minor) {
    auto t = offsets_from_table(*minor);
    if (t) return t;
    why += t.error().message;
  } else {
    why += "Go version unknown (" + bin.go_version + ")";
  }
  return make_error("no static offsets: " + why + "; calibration needed");
}

}  // namespace schedscope::go
