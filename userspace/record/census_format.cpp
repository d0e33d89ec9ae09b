#include "record/census_format.h"

namespace schedscope::record {

// u64 ts, u32 allglen, u32 read, u32 by_status[16], u32 n, {u32 reason, u32 count} x n,
// u64 rss_bytes, u64 read_ns, u32 nf, {str func, u32 count} x nf (IO wait),
// then u32 nl, {str func, u32 count} x nl (live by start function; absent in recordings
// made before it: read as none)
void encode_census(ByteWriter& out, const gc::Census& c) {
  out.u64(c.ts_ns);
  out.u32(c.allglen);
  out.u32(c.read);
  for (uint32_t v : c.by_status) out.u32(v);
  out.u32(uint32_t(c.waiting_by_reason.size()));
  for (const auto& [r, n] : c.waiting_by_reason) {
    out.u32(r);
    out.u32(n);
  }
  out.u64(c.rss_bytes);
  out.u64(uint64_t(c.read_ms * 1e6));
  out.u32(uint32_t(c.io_wait_funcs.size()));
  for (const auto& [f, n] : c.io_wait_funcs) {
    out.str(f);
    out.u32(n);
  }
  out.u32(uint32_t(c.live_funcs.size()));
  for (const auto& [f, n] : c.live_funcs) {
    out.str(f);
    out.u32(n);
  }
}

bool decode_census(ByteReader& in, gc::Census* c) {
  *c = gc::Census{};
  uint32_t n = 0;
  if (!in.get(c->ts_ns) || !in.get(c->allglen) || !in.get(c->read)) return false;
  for (uint32_t& v : c->by_status)
    if (!in.get(v)) return false;
  if (!in.get(n) || n > in.left() / 8) return false;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t r = 0, k = 0;
    if (!in.get(r) || !in.get(k)) return false;
    c->waiting_by_reason[r] = k;
  }
  uint64_t read_ns = 0;
  if (!in.get(c->rss_bytes) || !in.get(read_ns)) return false;
  c->read_ms = double(read_ns) / 1e6;
  uint32_t nf = 0;
  if (!in.get(nf) || nf > in.left() / 8) return false;
  for (uint32_t i = 0; i < nf; i++) {
    std::string f;
    uint32_t k = 0;
    if (!in.str(f) || !in.get(k)) return false;
    c->io_wait_funcs.emplace_back(std::move(f), k);
  }
  if (in.left() == 0) return true;  // recorded before the live start functions
  uint32_t nl = 0;
  if (!in.get(nl) || nl > in.left() / 8) return false;
  for (uint32_t i = 0; i < nl; i++) {
    std::string f;
    uint32_t k = 0;
    if (!in.str(f) || !in.get(k)) return false;
    c->live_funcs.emplace_back(std::move(f), k);
  }
  return true;
}

// u64 ts, u8 layout, u32 n, {u16 slot, u64 count} x n (the non-zero slots; cumulative)
void encode_time_hist(ByteWriter& out, const go::TimeHist& h) {
  out.u64(h.ts_ns);
  out.u8(h.layout);
  uint32_t n = 0;
  for (uint64_t v : h.slots) n += v != 0;
  out.u32(n);
  for (size_t i = 0; i < h.slots.size(); i++)
    if (h.slots[i]) {
      out.u16(uint16_t(i));
      out.u64(h.slots[i]);
    }
}

bool decode_time_hist(ByteReader& in, go::TimeHist* h) {
  *h = go::TimeHist{};
  uint32_t n = 0;
  if (!in.get(h->ts_ns) || !in.get(h->layout) || !in.get(n)) return false;
  const size_t slots = go::time_hist_slots(h->layout);
  if (slots == 0 || n > slots) return false;
  h->slots.assign(slots, 0);
  for (uint32_t i = 0; i < n; i++) {
    uint16_t idx = 0;
    uint64_t v = 0;
    if (!in.get(idx) || !in.get(v) || idx >= slots) return false;
    h->slots[idx] = v;
  }
  return true;
}

}  // namespace schedscope::record
