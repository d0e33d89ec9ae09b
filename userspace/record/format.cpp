#include "record/format.h"

#include <zstd.h>

#include <array>
#include <limits>
#include <type_traits>

#include "annotations.h"

namespace schedscope::record {

static_assert(sizeof(kFileMagic) == 8 && sizeof(kChunkMagic) == 4);
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the format is little-endian");

const char* record_kind_name(uint16_t kind) {
  switch (kind) {
    case kRecRaw:
      return "raw";
    case kRecKernel:
      return "kernel";
    case kRecGo:
      return "go";
    case kRecName:
      return "name";
    case kRecSymbols:
      return "symbols";
    case kRecFrame:
      return "frame";
    case kRecInfo:
      return "info";
    case kRecGoBaseline:
      return "go_baseline";
    case kRecGoCensus:
      return "go_census";
    case kRecGoSchedLatency:
      return "go_sched_latency";
    default:
      return "unknown";
  }
}

const char* frame_mode_name(FrameMode m) {
  switch (m) {
    case FrameMode::kBaseline:
      return "baseline";
    case FrameMode::kSkipped:
      return "skipped";
    case FrameMode::kShown:
      return "shown";
    case FrameMode::kFinal:
      return "final";
  }
  return "shown";
}

std::optional<FrameMode> frame_mode_from(std::string_view s) {
  if (s == "baseline") return FrameMode::kBaseline;
  if (s == "skipped") return FrameMode::kSkipped;
  if (s == "shown") return FrameMode::kShown;
  if (s == "final") return FrameMode::kFinal;
  return std::nullopt;
}

uint32_t crc32(const void* data, size_t len, uint32_t seed) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = seed ^ 0xFFFFFFFFu;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < len; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

namespace {
template <typename T>
void put_le(uint8_t* out, T v) {
  std::memcpy(out, &v, sizeof v);
}
template <typename T>
T get_le(const uint8_t* in) {
  T v;
  std::memcpy(&v, in, sizeof v);
  return v;
}
}  // namespace

void encode_file_header(const FileHeader& h, uint8_t out[kFileHeaderSize]) {
  std::memcpy(out, kFileMagic, 8);
  put_le<uint16_t>(out + 8, h.format_version);
  put_le<uint16_t>(out + 10, h.abi_version);
  put_le<uint32_t>(out + 12, crc32(out, 12));
}

void encode_chunk_header(const ChunkHeader& h, uint8_t out[kChunkHeaderSize]) {
  std::memcpy(out, kChunkMagic, 4);
  put_le<uint16_t>(out + 4, h.type);
  put_le<uint16_t>(out + 6, h.codec);
  put_le<uint32_t>(out + 8, h.raw_len);
  put_le<uint32_t>(out + 12, h.stored_len);
  put_le<uint32_t>(out + 16, h.payload_crc);
  put_le<uint32_t>(out + 20, crc32(out, 20));
}

bool decode_chunk_header(const uint8_t in[kChunkHeaderSize], ChunkHeader* h) {
  if (std::memcmp(in, kChunkMagic, 4) != 0) return false;
  if (get_le<uint32_t>(in + 20) != crc32(in, 20)) return false;
  h->type = get_le<uint16_t>(in + 4);
  h->codec = get_le<uint16_t>(in + 6);
  h->raw_len = get_le<uint32_t>(in + 8);
  h->stored_len = get_le<uint32_t>(in + 12);
  h->payload_crc = get_le<uint32_t>(in + 16);
  return true;
}

std::vector<uint8_t> make_chunk(uint16_t type, const uint8_t* data, size_t len, int zstd_level) {
  ChunkHeader h;
  h.type = type;
  h.raw_len = uint32_t(len);
  std::vector<uint8_t> out(kChunkHeaderSize);
  size_t bound = ZSTD_compressBound(len);
  out.resize(kChunkHeaderSize + bound);
  size_t n = ZSTD_compress(out.data() + kChunkHeaderSize, bound, data, len, zstd_level);
  if (ZSTD_isError(n) || n >= len) {
    h.codec = kCodecNone;
    out.resize(kChunkHeaderSize);
    out.insert(out.end(), data, data + len);
    n = len;
  } else {
    h.codec = kCodecZstd;
    out.resize(kChunkHeaderSize + n);
  }
  h.stored_len = uint32_t(n);
  h.payload_crc = crc32(out.data() + kChunkHeaderSize, n);
  encode_chunk_header(h, out.data());
  return out;
}

std::optional<std::vector<uint8_t>> open_chunk_payload(const ChunkHeader& h, const uint8_t* stored,
                                                       std::string* why) {
  if (crc32(stored, h.stored_len) != h.payload_crc) {
    *why = "payload checksum mismatch";
    return std::nullopt;
  }
  if (h.raw_len > kMaxChunkRaw) {
    *why = "chunk larger than the format allows";
    return std::nullopt;
  }
  if (h.codec == kCodecNone) {
    if (h.raw_len != h.stored_len) {
      *why = "stored chunk length mismatch";
      return std::nullopt;
    }
    return std::vector<uint8_t>(stored, stored + h.stored_len);
  }
  if (h.codec != kCodecZstd) {
    *why = "unknown compression " + std::to_string(h.codec);
    return std::nullopt;
  }
  unsigned long long content = ZSTD_getFrameContentSize(stored, h.stored_len);
  if (content != h.raw_len) {
    *why = "compressed frame does not match the chunk header";
    return std::nullopt;
  }
  std::vector<uint8_t> out(h.raw_len);
  size_t n = ZSTD_decompress(out.data(), out.size(), stored, h.stored_len);
  if (ZSTD_isError(n) || n != h.raw_len) {
    *why = std::string("decompression failed: ") +
           (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output");
    return std::nullopt;
  }
  return out;
}

const std::vector<AbiSize>& abi_sizes() {
  static const std::vector<AbiSize> v = {
      {"ss_hdr", sizeof(ss_hdr)},
      {"ss_thread_state", sizeof(ss_thread_state)},
      {"ss_sc_stat", sizeof(ss_sc_stat)},
      {"ss_thread_new", sizeof(ss_thread_new)},
      {"ss_thread_exit", sizeof(ss_thread_exit)},
      {"ss_offcpu", sizeof(ss_offcpu)},
      {"ss_syscall_slow", sizeof(ss_syscall_slow)},
      {"ss_go_create", sizeof(ss_go_create)},
      {"ss_go_exit", sizeof(ss_go_exit)},
      {"ss_gc_event", sizeof(ss_gc_event)},
      {"ss_gc_sample", sizeof(ss_gc_sample)},
      {"ss_gc_stack", sizeof(ss_gc_stack)},
      {"ss_usdt_hit", sizeof(ss_usdt_hit)},
      {"ss_usdt_count", sizeof(ss_usdt_count)},
      {"ss_usdt_probe", sizeof(ss_usdt_probe)},
      {"ss_annot", sizeof(ss_annot)},
      {"ss_annot_state", sizeof(ss_annot_state)},
  };
  return v;
}

void append_record(ByteWriter& out, RecordKind kind, const void* payload, size_t len) {
  out.u16(kind);
  out.u16(0);
  out.u32(uint32_t(len));
  out.put(payload, len);
}

// ---- KernelSnapshot
void encode_kernel(ByteWriter& out, const probe::KernelSnapshot& s) {
  out.u64(s.ts_ns);
  out.u64(s.drops);
  for (uint64_t b : s.rq_hist) out.u64(b);
  out.u32(uint32_t(s.threads.size()));
  for (const auto& t : s.threads) {
    out.u32(t.tid);
    out.put(&t.st, sizeof t.st);
  }
  for (const auto* v : {&s.sc_block, &s.sc_all}) {
    out.u32(uint32_t(v->size()));
    for (const auto& a : *v) {
      out.i32(a.nr);
      out.put(&a.stat, sizeof a.stat);
    }
  }
  out.u32(uint32_t(s.drops_per_cpu.size()));
  for (uint64_t d : s.drops_per_cpu) out.u64(d);
  out.u64(s.go_create_hits);
  out.u64(s.go_exit_hits);
}

bool decode_kernel(ByteReader& c, probe::KernelSnapshot* s) {
  *s = probe::KernelSnapshot{};
  if (!c.get(s->ts_ns) || !c.get(s->drops)) return false;
  for (auto& b : s->rq_hist)
    if (!c.get(b)) return false;
  uint32_t n = 0;
  if (!c.get(n)) return false;
  for (uint32_t i = 0; i < n; i++) {
    probe::ThreadEntry e{};
    if (!c.get(e.tid) || !c.get(&e.st, sizeof e.st)) return false;
    s->threads.push_back(e);
  }
  for (auto* v : {&s->sc_block, &s->sc_all}) {
    if (!c.get(n)) return false;
    for (uint32_t i = 0; i < n; i++) {
      probe::SyscallAgg a{};
      if (!c.get(a.nr) || !c.get(&a.stat, sizeof a.stat)) return false;
      v->push_back(a);
    }
  }
  if (!c.get(n)) return false;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t d = 0;
    if (!c.get(d)) return false;
    s->drops_per_cpu.push_back(d);
  }
  return c.get(s->go_create_hits) && c.get(s->go_exit_hits);
}

// ---- SchedSample: every field, explicitly
void encode_go(ByteWriter& out, const go::SchedSample& s) {
  out.u64(s.ts_ns);
  out.i32(s.gomaxprocs);
  out.u64(s.goidgen);
  out.i64(s.lastpoll);
  out.i32(s.nmidle);
  out.i32(s.npidle);
  out.i32(s.nmspinning);
  out.i32(s.maxmcount);
  out.u32(s.gcwaiting);
  out.u32(s.gcphase);
  out.u32(uint32_t(s.ps.size()));
  for (const auto& p : s.ps) {
    out.i32(p.id);
    out.u32(p.status);
    out.u64(p.addr);
    out.u64(p.m_addr);
    out.i64(p.m_id);
    out.i32(p.tid);
    out.u64(p.goid);
    out.u64(p.g_startpc);
    out.u64(p.g_pc);
    out.str(p.func);
    out.str(p.cur_func);
    out.u32(p.schedtick);
    out.u32(p.syscalltick);
    out.u32(p.runq);
    out.u8(p.via_oldp ? 1 : 0);
  }
  out.u32(uint32_t(s.ms.size()));
  for (const auto& m : s.ms) {
    out.i64(m.id);
    out.u64(m.addr);
    out.i32(m.tid);
    out.i32(m.p);
    out.i32(m.oldp);
    out.u64(m.curg_goid);
    out.str(m.curg_func);
    out.u8(uint8_t((m.spinning ? 1 : 0) | (m.blocked ? 2 : 0) | (m.incgo ? 4 : 0) |
                   (m.sysmon ? 8 : 0)));
    out.u64(m.lockedg_goid);
    out.u32(m.curg_status);
  }
}

bool decode_go(ByteReader& c, go::SchedSample* s) {
  *s = go::SchedSample{};
  if (!c.get(s->ts_ns) || !c.get(s->gomaxprocs) || !c.get(s->goidgen) || !c.get(s->lastpoll) ||
      !c.get(s->nmidle) || !c.get(s->npidle) || !c.get(s->nmspinning) || !c.get(s->maxmcount) ||
      !c.get(s->gcwaiting) || !c.get(s->gcphase))
    return false;
  uint32_t n = 0;
  if (!c.get(n)) return false;
  for (uint32_t i = 0; i < n; i++) {
    go::PSample p;
    uint8_t oldp = 0;
    if (!c.get(p.id) || !c.get(p.status) || !c.get(p.addr) || !c.get(p.m_addr) ||
        !c.get(p.m_id) || !c.get(p.tid) || !c.get(p.goid) || !c.get(p.g_startpc) ||
        !c.get(p.g_pc) || !c.str(p.func) || !c.str(p.cur_func) || !c.get(p.schedtick) ||
        !c.get(p.syscalltick) || !c.get(p.runq) || !c.get(oldp))
      return false;
    p.via_oldp = oldp != 0;
    s->ps.push_back(std::move(p));
  }
  if (!c.get(n)) return false;
  for (uint32_t i = 0; i < n; i++) {
    go::MSample m;
    uint8_t flags = 0;
    if (!c.get(m.id) || !c.get(m.addr) || !c.get(m.tid) || !c.get(m.p) || !c.get(m.oldp) ||
        !c.get(m.curg_goid) || !c.str(m.curg_func) || !c.get(flags) || !c.get(m.lockedg_goid) ||
        !c.get(m.curg_status))
      return false;
    m.spinning = flags & 1;
    m.blocked = flags & 2;
    m.incgo = flags & 4;
    m.sysmon = flags & 8;
    s->ms.push_back(std::move(m));
  }
  return true;
}

// ---- symbols
void encode_symbols(ByteWriter& out, const std::vector<SymbolEntry>& syms) {
  out.u32(uint32_t(syms.size()));
  for (const auto& e : syms) {
    out.u64(e.pc);
    out.u8(uint8_t((e.is_runtime ? 1 : 0) | (e.has_start_func ? 2 : 0)));
    out.str(e.frame);
    if (e.has_start_func) out.str(e.start_func);
  }
}

bool decode_symbols(ByteReader& c, std::vector<SymbolEntry>* syms) {
  syms->clear();
  uint32_t n = 0;
  if (!c.get(n)) return false;
  for (uint32_t i = 0; i < n; i++) {
    SymbolEntry e;
    uint8_t rt = 0;
    if (!c.get(e.pc) || !c.get(rt) || !c.str(e.frame)) return false;
    e.is_runtime = (rt & 1) != 0;
    e.has_start_func = (rt & 2) != 0;
    if (e.has_start_func && !c.str(e.start_func)) return false;
    syms->push_back(std::move(e));
  }
  return true;
}

// ---- alerts
nlohmann::json alert_to_json(const model::Alert& a) {
  return {{"kind", a.kind},         {"severity", a.severity},     {"ts_ns", a.ts_ns},
          {"since_ns", a.since_ns}, {"p", a.p},                   {"m", a.m},
          {"tid", a.tid},           {"goid", a.goid},             {"func", a.func},
          {"stack", a.stack},       {"syscall", a.syscall},       {"duration_ms", a.duration_ms},
          {"handed_off", a.handed_off}, {"threads", a.threads},   {"message", a.message},
          {"evidence", a.evidence}, {"active", a.active}};
}

model::Alert alert_from_json(const nlohmann::json& j) {
  model::Alert a;
  if (!j.is_object()) return a;
  auto str = [&](const char* k, std::string& v) {
    if (auto it = j.find(k); it != j.end() && it->is_string()) v = it->get<std::string>();
  };
  auto strs = [&](const char* k, std::vector<std::string>& v) {
    if (auto it = j.find(k); it != j.end() && it->is_array())
      for (const auto& e : *it)
        if (e.is_string()) v.push_back(e.get<std::string>());
  };
  // Range-checked: a damaged or hand-edited file must not cause an out-of-range cast.
  auto num = [&](const char* k, auto& v) {
    using T = std::decay_t<decltype(v)>;
    auto it = j.find(k);
    if (it == j.end() || !it->is_number()) return;
    if constexpr (std::is_floating_point_v<T>) {
      v = it->get<double>();
    } else if (it->is_number_unsigned()) {
      uint64_t x = it->get<uint64_t>();
      if (x <= uint64_t(std::numeric_limits<T>::max())) v = T(x);
    } else if (it->is_number_integer()) {
      int64_t x = it->get<int64_t>();
      if (x >= int64_t(std::numeric_limits<T>::min()) &&
          (x < 0 || uint64_t(x) <= uint64_t(std::numeric_limits<T>::max())))
        v = T(x);
    }
  };
  str("kind", a.kind);
  str("severity", a.severity);
  num("ts_ns", a.ts_ns);
  num("since_ns", a.since_ns);
  num("p", a.p);
  num("m", a.m);
  num("tid", a.tid);
  num("goid", a.goid);
  str("func", a.func);
  strs("stack", a.stack);
  str("syscall", a.syscall);
  num("duration_ms", a.duration_ms);
  if (auto it = j.find("handed_off"); it != j.end() && it->is_boolean()) a.handed_off = it->get<bool>();
  num("threads", a.threads);
  str("message", a.message);
  strs("evidence", a.evidence);
  if (auto it = j.find("active"); it != j.end() && it->is_boolean()) a.active = it->get<bool>();
  return a;
}

nlohmann::json alerts_to_json(const std::vector<model::Alert>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : v) a.push_back(alert_to_json(x));
  return a;
}

std::vector<model::Alert> alerts_from_json(const nlohmann::json& j) {
  std::vector<model::Alert> out;
  if (!j.is_array()) return out;
  for (const auto& e : j) out.push_back(alert_from_json(e));
  return out;
}

}  // namespace schedscope::record
