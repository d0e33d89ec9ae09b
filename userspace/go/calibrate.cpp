// Live calibration of runtime struct offsets with no version knowledge
// (docs/go-runtime.md, "Where these numbers come from": "Its layout must come from
// calibration against the invariants").
//
// Only the fields documented stable across every measured release are assumed:
// m.g0=0, g.m=48 (checked, searched if wrong), g.sched.sp/pc=56/64, p.id/status/link/
// schedtick/syscalltick/sysmontick = 0/4/8/16/20/24, sched.goidgen/lastpoll = 0/8.
// Everything else is searched in live memory reached from runtime.allm/allp/sched:
//   m.alllink + m.procid  the pointer offset that chains Ms from allm to nil, jointly with
//                         the u64 offset whose values are distinct thread ids of the
//                         process and equal the pid (m0, the last M) at the end;
//   p.m                   in running Ps points to an M of the list, 0 in idle Ps;
//   m.p                   in that M points back to the P; nextp/oldp = m.p+8/+16 (checked);
//   m.curg                0 or a g with g.m==M (never g0), 0 for some M (sysmon), not always;
//   g.goid                0 in every g0, distinct values in [1, sched.goidgen] over curgs
//                         and allgs; atomicstatus next to it (goid-8, checked: 2/3 on curgs);
//   g.startpc             a function entry (symbolizer) in every g, 0 in g0; gopc = -16;
//   m.id, spinning...     hypotheses from the neighbourhood of m.p, each checked on data;
//   m.mstartfn            a funcval whose PC is runtime.sysmon for exactly one M;
//   p.runq*               after p.goidcache/goidcacheend (a u64 pair within 16 of goidgen);
//   sched counters        maxmcount == 10000 (the default), neighbours checked.
// Each round takes several snapshots; a field needs the same answer in a majority of
// rounds. Whatever finds no evidence stays 0.
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "go/pidns.h"
#include "go/reader_detail.h"
#include "go/runtime_reader.h"

namespace schedscope::go {

using namespace detail;  // NOLINT(google-build-using-namespace)

namespace {

bool tol_ok(size_t bad, size_t total) { return bad <= total / 10; }

struct Snap {
  uint64_t goidgen = 0;
  bool have_sched = false;
  Block sched;
  size_t allp_len = 0;          // len(allp)
  std::vector<uint64_t> pptrs;  // its first kMaxCalibratePs entries
  std::vector<Block> ps;
  // P unchanged (status and schedtick) from before the M reads to after them: a P/M
  // pair read from such a P is consistent.
  std::vector<bool> p_stable;
  std::unordered_set<uint64_t> pset;
  std::vector<uint64_t> ms;  // allm order: newest first, m0 last
  std::vector<Block> mb;
  std::unordered_set<uint64_t> mset;
  std::vector<uint64_t> allgs;
  std::unordered_map<uint64_t, Block> gs;  // g blocks read in this snapshot
};

class Calibrator {
 public:
  Calibrator(MemReader& mem, const BinaryInfo& bin, uint64_t bias, int pid, const TidSource& tids,
             const CalibrateOptions& opts, std::vector<std::string>* log)
      : mem_(mem), bin_(bin), bias_(bias), pid_(pid), tids_(tids), opts_(opts), log_(log) {
    if (bin_.symbolizer) {
      if (auto f = bin_.symbolizer->find_function("runtime.sysmon")) sysmon_ = f->entry + bias_;
    }
  }

  Expected<Offsets> run();

 private:
  void say(const std::string& s) {
    if (log_) log_->push_back(s);
  }
  const Block& gblock(Snap& s, uint64_t addr) {
    auto it = s.gs.find(addr);
    if (it != s.gs.end()) return it->second;
    Block b;
    read_block(mem_, addr, kGBlock, b);
    if (b.b.empty() || !plausible_ptr(addr)) b.b.assign(kGBlock, 0);
    return s.gs.emplace(addr, std::move(b)).first->second;
  }
  bool is_entry(uint64_t pc) const {
    if (!bin_.symbolizer || pc < bias_ || pc == 0) return false;
    auto l = bin_.symbolizer->lookup(pc - bias_);
    return l && l->func_entry == pc - bias_;
  }
  bool in_text(uint64_t pc) const {
    if (!bin_.symbolizer || pc < bias_ || pc == 0) return false;
    return bin_.symbolizer->lookup(pc - bias_).has_value();
  }
  uint64_t curg_of(const Snap& s, size_t mi) const {
    return o_.m_curg ? s.mb[mi].u64(o_.m_curg) : 0;
  }
  // curgs and allgs of a snapshot, each once
  std::vector<uint64_t> user_gs(const Snap& s) const {
    std::vector<uint64_t> gs;
    std::unordered_set<uint64_t> seen;
    for (size_t i = 0; i < s.ms.size(); ++i) {
      uint64_t cg = curg_of(s, i);
      if (cg && seen.insert(cg).second) gs.push_back(cg);
    }
    for (uint64_t g : s.allgs) {
      if (plausible_ptr(g) && seen.insert(g).second) gs.push_back(g);
    }
    return gs;
  }

  bool find_alllink_procid();
  void take_snapshots();
  int take_snapshot();  // number of stable running Ps in it
  bool any_running_p();
  void find_g_m();
  void find_p_m();
  void find_m_p();
  void find_m_curg();
  void find_g_goid();
  void find_g_status();
  void find_g_neighbours();
  void find_g_startpc();
  void find_g_syscall();
  void find_m_misc();
  void find_p_runq();
  void find_sched();

  MemReader& mem_;
  const BinaryInfo& bin_;
  uint64_t bias_;
  int pid_;
  const TidSource& tids_;
  CalibrateOptions opts_;
  std::vector<std::string>* log_;
  uint64_t sysmon_ = 0;
  Offsets o_;
  std::vector<Snap> snaps_;
};

// ---- m.alllink and m.procid, jointly
bool Calibrator::find_alllink_procid() {
  const uint64_t head = mem_.get<uint64_t>(bin_.globals.allm + bias_).value_or(0);
  if (!plausible_ptr(head)) {
    say("allm head unreadable or nil");
    return false;
  }
  std::vector<int> tids = tids_();
  std::unordered_set<uint64_t> tidset(tids.begin(), tids.end());
  const size_t cap = tids.size() * 2 + 64;
  std::unordered_map<uint64_t, Block> cache;
  auto block = [&](uint64_t a) -> const Block& {
    auto it = cache.find(a);
    if (it != cache.end()) return it->second;
    Block b;
    if (!read_block(mem_, a, kMBlock, b)) b.b.clear();
    return cache.emplace(a, std::move(b)).first->second;
  };
  struct Best {
    size_t match = 0, len = 0;
    uint32_t link = 0, procid = 0;
  } best;
  for (uint32_t link = 8; link + 8 <= kMBlock; link += 8) {
    std::vector<uint64_t> chain{head};
    std::unordered_set<uint64_t> seen{head};
    bool complete = false;
    while (chain.size() <= cap) {
      const Block& b = block(chain.back());
      if (b.b.size() < link + 8) break;
      uint64_t next = b.u64(link);
      if (next == 0) {
        complete = true;
        break;
      }
      if (!plausible_ptr(next) || !seen.insert(next).second) break;
      chain.push_back(next);
    }
    if (!complete || (chain.size() < 2 && tids.size() > 1)) continue;
    for (uint32_t q = 8; q + 8 <= kMBlock; q += 8) {
      if (q == link) continue;
      size_t match = 0;
      bool bad = false;
      std::set<uint64_t> distinct;
      for (uint64_t m : chain) {
        uint64_t v = block(m).u64(q);
        if (v == 0) continue;
        if (!tidset.count(v) || !distinct.insert(v).second) {
          bad = true;
          break;
        }
        ++match;
      }
      if (bad || match == 0) continue;
      if (block(chain.back()).u64(q) != static_cast<uint64_t>(pid_)) continue;  // m0 = main thread
      if (match > best.match || (match == best.match && chain.size() > best.len)) {
        best = {match, chain.size(), link, q};
      }
    }
  }
  if (best.match == 0) {
    say("no (alllink, procid) pair: no pointer chain from allm whose Ms carry this process's tids");
    return false;
  }
  o_.m_alllink = best.link;
  o_.m_procid = best.procid;
  say("m.alllink=" + std::to_string(best.link) + " m.procid=" + std::to_string(best.procid) + " (" +
      std::to_string(best.match) + " of " + std::to_string(best.len) + " Ms carry a tid; " +
      std::to_string(tids.size()) + " threads)");
  return true;
}

int Calibrator::take_snapshot() {
  const Globals& gl = bin_.globals;
  const uint64_t allm = gl.allm + bias_;
  {
    Snap s;
    if (gl.sched != 0) {
      s.have_sched = read_block(mem_, gl.sched + bias_, 512, s.sched);
      s.goidgen = s.sched.u64(0);
    }
    uint64_t ap = mem_.get<uint64_t>(gl.allp + bias_).value_or(0);
    int64_t an = mem_.get<int64_t>(gl.allp + bias_ + 8).value_or(0);
    if (an > 0 && an <= kMaxPs) {
      s.allp_len = static_cast<size_t>(an);
      s.pptrs.resize(std::min(static_cast<size_t>(an), kMaxCalibratePs));
      if (!mem_.read(ap, s.pptrs.data(), s.pptrs.size() * 8)) s.pptrs.clear();
    }
    for (uint64_t p : s.pptrs) {
      Block b;
      read_block(mem_, p, kPBlock, b);
      s.ps.push_back(std::move(b));
      s.pset.insert(p);
    }
    AllmWalk w = walk_allm(mem_, mem_.get<uint64_t>(allm).value_or(0), o_.m_alllink);
    if (!w.complete) return 0;
    s.ms = w.ms;
    for (uint64_t m : s.ms) {
      Block b;
      read_block(mem_, m, kMBlock, b);
      // Read what the M points at right away (g0, curg, gsignal, ...): a goroutine can
      // move to another M between this snapshot and a later read.
      if (s.mb.size() < 256) {
        for (uint32_t off = 0; off + 8 <= b.b.size(); off += 8) {
          uint64_t v = b.u64(off);
          if (plausible_ptr(v) && !s.pset.count(v) && !s.gs.count(v)) {
            Block g;
            if (read_block(mem_, v, kGBlock, g)) s.gs.emplace(v, std::move(g));
          }
        }
      }
      s.mb.push_back(std::move(b));
      s.mset.insert(m);
    }
    if (gl.allgs != 0) {
      uint64_t gp = mem_.get<uint64_t>(gl.allgs + bias_).value_or(0);
      int64_t gn = mem_.get<int64_t>(gl.allgs + bias_ + 8).value_or(0);
      if (gl.allglen != 0) gn = mem_.get<int64_t>(gl.allglen + bias_).value_or(gn);
      if (gn > 0 && gn <= 1 << 20) {
        s.allgs.resize(static_cast<size_t>(std::min<int64_t>(gn, 512)));
        if (!mem_.read(gp, s.allgs.data(), s.allgs.size() * 8)) s.allgs.clear();
        for (uint64_t g : s.allgs) gblock(s, g);
      }
    }
    if (s.ps.empty() || s.ms.empty()) return 0;
    int running = 0;
    for (size_t i = 0; i < s.ps.size(); ++i) {
      uint32_t again[6] = {};
      const bool same = mem_.read(s.pptrs[i], again, sizeof again) && again[1] == s.ps[i].u32(4) &&
                        again[4] == s.ps[i].u32(16);
      s.p_stable.push_back(same);
      running += same && again[1] == kPrunning;
    }
    snaps_.push_back(std::move(s));
    return running;
  }
}

// Any P _Prunning right now? (cheap: the allp array and one word per P)
bool Calibrator::any_running_p() {
  const Globals& gl = bin_.globals;
  uint64_t ap = mem_.get<uint64_t>(gl.allp + bias_).value_or(0);
  int64_t an = mem_.get<int64_t>(gl.allp + bias_ + 8).value_or(0);
  if (an <= 0 || an > kMaxPs) return false;
  std::vector<uint64_t> pp(static_cast<size_t>(an));
  if (!mem_.read(ap, pp.data(), pp.size() * 8)) return false;
  for (uint64_t p : pp) {
    if (mem_.get<uint32_t>(p + 4).value_or(0) == kPrunning) return true;
  }
  return false;
}

void Calibrator::take_snapshots() {
  constexpr int kWantRunning = 3;  // stable running-P observations wanted for p.m / m.p
  int running = 0;
  for (int k = 0; k < opts_.snapshots; ++k) {
    if (k > 0 && opts_.interval_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(opts_.interval_ms));
    }
    running += take_snapshot();
  }
  if (running >= kWantRunning || opts_.max_wait_ms <= 0) return;
  // Too little ran on a P: poll cheaply for a running P, then snapshot at once.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.max_wait_ms);
  int extra = 0;
  while (running < kWantRunning && extra < 32 && std::chrono::steady_clock::now() < deadline) {
    if (any_running_p()) {
      running += take_snapshot();
      ++extra;
      continue;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  say("waited for running Ps: " + std::to_string(extra) + " extra snapshot(s), " +
      std::to_string(running) + " stable running-P observations");
}

// ---- g.m (48 in every release; searched if that does not hold)
void Calibrator::find_g_m() {
  auto check = [&](uint32_t off) {
    size_t ok = 0, n = 0;
    for (auto& s : snaps_) {
      for (size_t i = 0; i < s.ms.size(); ++i) {
        uint64_t g0 = s.mb[i].u64(0);
        ++n;
        if (g0 && gblock(s, g0).u64(off) == s.ms[i]) ++ok;
      }
    }
    return n > 0 && tol_ok(n - ok, n);
  };
  if (check(48)) {
    o_.g_m = 48;
    return;
  }
  for (uint32_t off = 8; off < 256; off += 8) {
    if (check(off)) {
      o_.g_m = off;
      say("g.m is not 48: found " + std::to_string(off));
      return;
    }
  }
  o_.g_m = 0;
  say("g.m not found (g0.m != m at every offset)");
}

// ---- p.m: an M of allm in running Ps, 0 in idle Ps
void Calibrator::find_p_m() {
  size_t running = 0;
  for (auto& s : snaps_) {
    for (size_t i = 0; i < s.ps.size(); ++i)
      running += s.p_stable[i] && s.ps[i].u32(4) == kPrunning;
  }
  if (running == 0) {
    say("p.m: no stable running P seen in " + std::to_string(snaps_.size()) + " snapshots");
    return;
  }
  for (uint32_t off = 16; off < 512; off += 8) {
    size_t n = 0, bad = 0;
    for (auto& s : snaps_) {
      for (size_t i = 0; i < s.ps.size(); ++i) {
        if (!s.p_stable[i]) continue;
        const Block& p = s.ps[i];
        uint32_t st = p.u32(4);
        uint64_t v = p.u64(off);
        if (st == kPrunning) {
          ++n;
          bad += !s.mset.count(v);
        } else if (st == kPidle) {
          ++n;
          bad += v != 0;
        }
      }
    }
    if (tol_ok(bad, n)) {
      o_.p_m = off;
      say("p.m=" + std::to_string(off) + " (" + std::to_string(running) +
          " stable running Ps seen)");
      return;
    }
  }
  say("p.m not found");
}

// ---- m.p: in the M of a running P, points back to it; nextp/oldp follow
void Calibrator::find_m_p() {
  if (o_.p_m == 0) return;
  auto all_in_allp = [&](uint32_t off) {
    size_t n = 0, bad = 0;
    for (auto& s : snaps_) {
      for (auto& m : s.mb) {
        uint64_t v = m.u64(off);
        ++n;
        bad += v != 0 && !s.pset.count(v);
      }
    }
    return tol_ok(bad, n);
  };
  for (uint32_t off = 8; off + 8 <= kMBlock; off += 8) {
    if (off == o_.m_alllink || off == o_.m_procid) continue;
    size_t pairs = 0, bad = 0;
    for (auto& s : snaps_) {
      std::unordered_map<uint64_t, size_t> idx;
      for (size_t i = 0; i < s.ms.size(); ++i) idx[s.ms[i]] = i;
      for (size_t pi = 0; pi < s.ps.size(); ++pi) {
        if (!s.p_stable[pi] || s.ps[pi].u32(4) != kPrunning) continue;
        auto it = idx.find(s.ps[pi].u64(o_.p_m));
        if (it == idx.end()) continue;
        ++pairs;
        bad += s.mb[it->second].u64(off) != s.pptrs[pi];
      }
    }
    // Racy (an M may switch P between the reads): most pairs, and every M's value in allp.
    if (pairs < bad + 1 || bad * 4 > pairs || !all_in_allp(off)) continue;
    o_.m_p = off;
    say("m.p=" + std::to_string(off) + " (" + std::to_string(pairs - bad) + "/" +
        std::to_string(pairs) + " running P/M pairs point back)");
    if (all_in_allp(off + 8) && all_in_allp(off + 16)) {
      o_.m_nextp = off + 8;
      o_.m_oldp = off + 16;
      size_t nonzero = 0;
      for (auto& s : snaps_) {
        for (auto& m : s.mb) nonzero += m.u64(o_.m_oldp) != 0;
      }
      say("m.nextp/oldp=m.p+8/+16 consistent (nil or in allp; " + std::to_string(nonzero) +
          " non-nil oldp seen)");
    } else {
      say("m.nextp/oldp: m.p+8/+16 hold values outside allp; left unknown");
    }
    return;
  }
  say("m.p not found");
}

// ---- m.curg: nil or a g whose g.m is this M (not g0); nil for some M (sysmon)
void Calibrator::find_m_curg() {
  if (o_.g_m == 0) return;
  struct Cand {
    uint32_t off;
    size_t nonzero;
  };
  std::vector<Cand> cands;
  for (uint32_t off = 8; off + 8 <= kMBlock; off += 8) {
    if (off == o_.m_alllink || off == o_.m_procid || off == o_.m_p || off == o_.m_nextp ||
        off == o_.m_oldp) {
      continue;
    }
    size_t n = 0, zero = 0, good = 0, bad = 0;
    for (auto& s : snaps_) {
      for (size_t i = 0; i < s.ms.size(); ++i) {
        uint64_t v = s.mb[i].u64(off);
        ++n;
        if (v == 0) {
          ++zero;
        } else if (plausible_ptr(v) && v != s.mb[i].u64(0) && gblock(s, v).u64(o_.g_m) == s.ms[i]) {
          ++good;
        } else {
          ++bad;
        }
      }
    }
    if (zero > 0 && good > 0 && tol_ok(bad, n)) cands.push_back({off, good});
  }
  if (cands.empty()) {
    say("m.curg not found");
    return;
  }
  auto best = std::max_element(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
    return a.nonzero < b.nonzero || (a.nonzero == b.nonzero && a.off > b.off);
  });
  o_.m_curg = best->off;
  say("m.curg=" + std::to_string(best->off) + " (" + std::to_string(best->nonzero) +
      " curgs with g.m==m; " + std::to_string(cands.size()) + " candidate offsets)");
}

// ---- g.goid: 0 in every g0; never 0 on a user g; at most sched.goidgen; distinct over
// gs; the main goroutine (allgs[0]) has goid 1.
void Calibrator::find_g_goid() {
  if (o_.m_curg == 0) return;
  struct Cand {
    uint32_t off;
    double sum;
    size_t changes;
    bool status_like;
  };
  std::vector<Cand> cands;
  size_t users = 0;
  for (auto& s : snaps_) {
    for (size_t i = 0; i < s.ms.size(); ++i) users += curg_of(s, i) != 0;
    users += s.allgs.size();
  }
  if (users == 0) {
    say("g.goid: no user goroutine seen");
    return;
  }
  for (uint32_t off = 8; off + 8 <= kGBlock; off += 8) {
    if (off == o_.g_m) continue;
    size_t n0 = 0, bad0 = 0, n = 0, zero = 0, over = 0, collisions = 0, changes = 0;
    bool main_ok = true;
    double sum = 0;
    bool status_like = true;
    std::unordered_map<uint64_t, uint64_t> last;  // g addr -> value over snapshots
    for (auto& s : snaps_) {
      // goids are handed out from goidgen; slack for gs created after it was read
      const uint64_t bound = s.goidgen ? s.goidgen + 256 : (1ull << 40);
      for (size_t i = 0; i < s.ms.size(); ++i) {
        uint64_t g0 = s.mb[i].u64(0);
        if (g0) {
          ++n0;
          bad0 += gblock(s, g0).u64(off) != 0;
        }
      }
      if (!s.allgs.empty() && gblock(s, s.allgs[0]).u64(off) != 1) main_ok = false;
      std::unordered_map<uint64_t, uint64_t> val;  // g addr -> value in this snapshot
      for (size_t i = 0; i < s.ms.size(); ++i) {
        if (uint64_t cg = curg_of(s, i)) val[cg] = 0;
      }
      for (uint64_t g : s.allgs) {
        if (plausible_ptr(g)) val[g] = 0;
      }
      std::unordered_map<uint64_t, int> seen;
      for (auto& [g, v] : val) {
        v = gblock(s, g).u64(off);
        ++n;
        zero += v == 0;
        over += v > bound;
        if (++seen[v] >= 2) ++collisions;  // every g beyond the first
        sum += static_cast<double>(v);
        if (v > 11) status_like = false;
        auto it = last.find(g);
        if (it != last.end() && it->second != v) ++changes;
        last[g] = v;
      }
    }
    const bool pass = main_ok && n > 0 && tol_ok(bad0, n0) && zero <= n / 50 && tol_ok(over, n) &&
                      collisions <= n / 20;
    if (pass) cands.push_back({off, sum, changes, status_like});
  }
  if (cands.size() > 1) {  // the status word (2 running / 3 syscall) is never the goid
    std::vector<Cand> keep;
    for (auto& c : cands) {
      if (!c.status_like) keep.push_back(c);
    }
    if (!keep.empty()) cands = keep;
  }
  if (cands.empty()) {
    say("g.goid not found");
    return;
  }
  // Fewest changes of a g's value over time, then the largest values (goid > parentGoid).
  auto best = std::min_element(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
    if (a.changes != b.changes) return a.changes < b.changes;
    if (a.sum != b.sum) return a.sum > b.sum;
    return a.off < b.off;
  });
  o_.g_goid = best->off;
  std::string others;
  for (auto& c : cands) {
    if (c.off != best->off) others += " " + std::to_string(c.off);
  }
  say("g.goid=" + std::to_string(best->off) + " (" + std::to_string(users) +
      " user g observations" + (others.empty() ? "" : "; other candidates:" + others) + ")");
}

// ---- g.atomicstatus: 2 (running) or 3 (syscall) on curgs; hypothesis goid-8 first
void Calibrator::find_g_status() {
  if (o_.g_goid == 0 || o_.m_curg == 0) return;
  auto check = [&](uint32_t off) {
    size_t n = 0, bad = 0;
    for (auto& s : snaps_) {
      for (size_t i = 0; i < s.ms.size(); ++i) {
        uint64_t cg = curg_of(s, i);
        if (!cg) continue;
        uint32_t st = gblock(s, cg).u32(off) & ~kGscan;
        ++n;
        bad += st != kGrunning && st != kGsyscall;
      }
      for (uint64_t g : s.allgs) {
        uint32_t st = gblock(s, g).u32(off) & ~kGscan;
        ++n;
        bad += st > 11;
      }
    }
    return n > 0 && tol_ok(bad, n);
  };
  if (o_.g_goid >= 8 && check(o_.g_goid - 8)) {
    o_.g_atomicstatus = o_.g_goid - 8;
    say("g.atomicstatus=goid-8=" + std::to_string(o_.g_atomicstatus) + " (2/3 on curgs)");
    find_g_neighbours();
    return;
  }
  for (uint32_t off = o_.g_goid; off >= 12; off -= 4) {
    if (check(off - 4)) {
      o_.g_atomicstatus = off - 4;
      say("g.atomicstatus=" + std::to_string(o_.g_atomicstatus) + " (searched)");
      find_g_neighbours();
      return;
    }
  }
  say("g.atomicstatus not found");
}

// ---- g.schedlink (goid+8: nil or a g) and g.waitreason (goid+24: a small code, non-zero
// for waiting gs), the layout of every release 1.17–1.26, each checked on data.
void Calibrator::find_g_neighbours() {
  size_t n = 0, bad_link = 0, waiting = 0, bad_reason = 0;
  for (auto& s : snaps_) {
    for (uint64_t g : user_gs(s)) {
      const Block& gb = gblock(s, g);
      ++n;
      uint64_t link = gb.u64(o_.g_goid + 8);
      bad_link += link != 0 && !plausible_ptr(link);
      uint8_t reason = gb.at<uint8_t>(o_.g_goid + 24);
      if ((gb.u32(o_.g_atomicstatus) & ~kGscan) == 4) {  // _Gwaiting
        ++waiting;
        bad_reason += reason == 0 || reason > 100;
      } else {
        bad_reason += reason > 100;
      }
    }
  }
  if (n > 0 && bad_link == 0) o_.g_schedlink = o_.g_goid + 8;
  if (waiting > 0 && tol_ok(bad_reason, n)) {
    o_.g_waitreason = o_.g_goid + 24;
    say("g.waitreason=goid+24 (" + std::to_string(waiting) + " waiting gs carry a reason)");
  }
}

// ---- g.startpc: a function entry in every user g, 0 in g0; gopc = startpc-16
void Calibrator::find_g_startpc() {
  if (!bin_.symbolizer) {
    say("g.startpc: no symbolizer");
    return;
  }
  auto users = [&](Snap& s) { return user_gs(s); };
  for (uint32_t off = 8; off + 8 <= kGBlock; off += 8) {
    if (off == o_.g_m || off == o_.g_goid) continue;
    size_t n = 0, bad = 0, good = 0;
    for (auto& s : snaps_) {
      for (size_t i = 0; i < s.ms.size(); ++i) {
        if (uint64_t g0 = s.mb[i].u64(0)) {
          ++n;
          bad += gblock(s, g0).u64(off) != 0;
        }
      }
      for (uint64_t g : users(s)) {
        ++n;
        if (is_entry(gblock(s, g).u64(off))) {
          ++good;
        } else {
          ++bad;
        }
      }
    }
    if (good == 0 || !tol_ok(bad, n)) continue;
    o_.g_startpc = off;
    say("g.startpc=" + std::to_string(off) + " (" + std::to_string(good) + " function entries)");
    if (off >= 16 + 8) {
      size_t gn = 0, gbad = 0;
      for (auto& s : snaps_) {
        for (uint64_t g : users(s)) {
          uint64_t pc = gblock(s, g).u64(off - 16);
          ++gn;
          gbad += !in_text(pc) || is_entry(pc);
        }
      }
      if (gn > 0 && tol_ok(gbad, gn)) {
        o_.g_gopc = off - 16;
        say("g.gopc=startpc-16 (return addresses in text)");
      }
    }
    return;
  }
  say("g.startpc not found");
}

// ---- g.syscallsp/syscallpc (evidence: a g in a syscall), g.sched.bp (stack addresses)
void Calibrator::find_g_syscall() {
  auto in_stack = [](const Block& g, uint64_t v) { return v >= g.u64(0) && v < g.u64(8); };
  auto gather = [&](Snap& s) { return user_gs(s); };
  // syscallsp: nonzero only for gs in a syscall (status 3 when known), within the g's
  // stack, with syscallpc (next word) in text; 0 in g0.
  for (uint32_t off = 72; off < 200 && bin_.symbolizer; off += 8) {
    if (off == o_.g_m) continue;
    size_t n = 0, bad = 0, good = 0;
    for (auto& s : snaps_) {
      for (uint64_t g : gather(s)) {
        const Block& gb = gblock(s, g);
        uint64_t v = gb.u64(off);
        if (v == 0 || gb.u64(8) == 0) continue;  // dead g, stack freed
        ++n;
        const bool st_ok =
            o_.g_atomicstatus == 0 || (gb.u32(o_.g_atomicstatus) & ~kGscan) == kGsyscall;
        if (in_stack(gb, v) && in_text(gb.u64(off + 8)) && st_ok) {
          ++good;
        } else {
          ++bad;
        }
      }
      for (size_t i = 0; i < s.ms.size(); ++i) {
        if (uint64_t g0 = s.mb[i].u64(0)) {
          ++n;
          bad += gblock(s, g0).u64(off) != 0;
        }
      }
    }
    if (good > 0 && tol_ok(bad, n)) {
      o_.g_syscallsp = off;
      o_.g_syscallpc = off + 8;
      say("g.syscallsp/pc=" + std::to_string(off) + "/" + std::to_string(off + 8) + " (" +
          std::to_string(good) + " gs in a syscall)");
      break;
    }
  }
  if (o_.g_syscallsp == 0) say("g.syscallsp/pc: no goroutine in a syscall seen; left unknown");
  // sched.bp: the last gobuf word, right before syscallsp; nil or within the g's own
  // stack, and non-nil somewhere (g0s included).
  std::vector<uint32_t> bp_cands;
  if (o_.g_syscallsp) {
    bp_cands.push_back(o_.g_syscallsp - 8);
  } else {
    for (uint32_t off = o_.g_sched_pc + 8; off < 136; off += 8) bp_cands.push_back(off);
  }
  for (uint32_t off : bp_cands) {
    size_t n = 0, bad = 0, good = 0;
    for (auto& s : snaps_) {
      std::vector<uint64_t> gs = gather(s);
      for (size_t i = 0; i < s.ms.size(); ++i) gs.push_back(s.mb[i].u64(0));
      for (uint64_t g : gs) {
        if (!g) continue;
        const Block& gb = gblock(s, g);
        uint64_t v = gb.u64(off);
        if (v == 0 || gb.u64(8) == 0) continue;  // a dead g whose stack was freed: stale
        ++n;
        if (in_stack(gb, v)) {
          ++good;
        } else {
          ++bad;
        }
      }
    }
    if (good > 0 && tol_ok(bad, n)) {
      o_.g_sched_bp = off;
      say("g.sched.bp=" + std::to_string(off) + " (" + std::to_string(good) + " frame pointers)");
      break;
    }
  }
}

// ---- the rest of m: id, bools, mstartfn, gsignal, tls, schedlink
void Calibrator::find_m_misc() {
  auto bools = [&](uint32_t off) {
    size_t n = 0, bad = 0;
    for (auto& s : snaps_) {
      for (auto& m : s.mb) {
        ++n;
        bad += m.at<uint8_t>(off) > 1;
      }
    }
    return n > 0 && bad == 0;
  };
  auto ids_ok = [&](uint32_t off) {
    for (auto& s : snaps_) {
      std::set<int64_t> ids;
      size_t dec = 0;
      for (size_t i = 0; i < s.mb.size(); ++i) {
        int64_t id = s.mb[i].at<int64_t>(off);
        if (id < 0 || id > static_cast<int64_t>(4 * s.mb.size() + 64) || !ids.insert(id).second) {
          return false;
        }
        if (i > 0 && s.mb[i - 1].at<int64_t>(off) > id) ++dec;
      }
      if (s.mb.back().at<int64_t>(off) != 0) return false;
      if (s.mb.size() > 2 && dec * 5 < (s.mb.size() - 1) * 4) return false;
    }
    return !snaps_.empty();
  };
  if (o_.m_oldp && ids_ok(o_.m_oldp + 8)) {
    o_.m_id = o_.m_oldp + 8;
    say("m.id=oldp+8=" + std::to_string(o_.m_id) + " (distinct, decreasing along allm, m0=0)");
  } else {
    // Without m.p (no running P seen) search the whole m.
    const uint32_t from = o_.m_p ? o_.m_p + 8 : 8, to = o_.m_p ? o_.m_p + 256 : kMBlock;
    for (uint32_t off = from; off < to && off + 8 <= kMBlock; off += 8) {
      if (off == o_.m_alllink || off == o_.m_curg || off == o_.m_procid) continue;
      if (ids_ok(off)) {
        o_.m_id = off;
        say("m.id=" + std::to_string(off) + " (searched)");
        break;
      }
    }
  }
  if (o_.m_id == 0) say("m.id not found");
  // spinning/blocked/incgo: at id+44/45/48 in every release 1.17–1.26; accepted only when
  // every M holds a 0/1 byte there. (isextra is not guessed: before 1.20 its slot is a
  // zero padding byte, indistinguishable from a false bool.)
  if (o_.m_id) {
    const std::pair<uint32_t Offsets::*, uint32_t> hyp[] = {
        {&Offsets::m_spinning, 44}, {&Offsets::m_blocked, 45}, {&Offsets::m_incgo, 48}};
    std::string got;
    for (auto [mem, d] : hyp) {
      if (bools(o_.m_id + d)) {
        o_.*mem = o_.m_id + d;
        got += " +" + std::to_string(d);
      }
    }
    say("m.spinning/blocked/incgo at m.id+44/45/48 (hypothesis; bool-valued:" + got + ")");
  }
  // mstartfn: a funcval pointer; exactly one M (sysmon) starts at runtime.sysmon
  if (sysmon_ && o_.m_curg) {
    for (uint32_t off = 8; off < o_.m_curg; off += 8) {
      size_t n = 0, bad = 0, sysmon_snaps = 0;
      for (auto& s : snaps_) {
        size_t sys = 0;
        for (auto& m : s.mb) {
          uint64_t fv = m.u64(off);
          if (fv == 0) continue;
          ++n;
          uint64_t pc = plausible_ptr(fv) ? mem_.get<uint64_t>(fv).value_or(0) : 0;
          if (!is_entry(pc)) ++bad;
          sys += pc == sysmon_;
        }
        sysmon_snaps += sys == 1;
      }
      if (n > 0 && tol_ok(bad, n) && sysmon_snaps * 2 > snaps_.size()) {
        o_.m_mstartfn = off;
        say("m.mstartfn=" + std::to_string(off) + " (one M starts at runtime.sysmon)");
        break;
      }
    }
  }
  // gsignal: a g with g.m == M, not g0/curg, goid 0; hypothesis procid+8, else searched.
  auto gsig_ok = [&](uint32_t off) {
    size_t n = 0, bad = 0;
    for (auto& s : snaps_) {
      for (size_t i = 0; i < s.ms.size(); ++i) {
        uint64_t v = s.mb[i].u64(off);
        ++n;
        if (!plausible_ptr(v) || v == s.mb[i].u64(0) || v == curg_of(s, i)) {
          ++bad;
          continue;
        }
        const Block& gb = gblock(s, v);
        bad += gb.u64(o_.g_m) != s.ms[i] || (o_.g_goid && gb.u64(o_.g_goid) != 0);
      }
    }
    return n > 0 && tol_ok(bad, n);
  };
  if (o_.g_m && o_.m_curg) {
    if (gsig_ok(o_.m_procid + 8)) {
      o_.m_gsignal = o_.m_procid + 8;
    } else {
      for (uint32_t off = 8; off < o_.m_curg; off += 8) {
        if (off != o_.m_procid && off != o_.m_alllink && gsig_ok(off)) {
          o_.m_gsignal = off;
          break;
        }
      }
    }
    if (o_.m_gsignal) say("m.gsignal=" + std::to_string(o_.m_gsignal));
  }
  // tls[0] holds the thread's current g (g0, curg or gsignal) when Go set FS itself
  // (not with cgo); hypothesis procid+64.
  {
    const uint32_t off = o_.m_procid + 64;
    size_t n = 0, bad = 0, good = 0;
    for (auto& s : snaps_) {
      for (size_t i = 0; i < s.ms.size(); ++i) {
        uint64_t v = s.mb[i].u64(off);
        ++n;
        if (v == 0) continue;
        if (v == s.mb[i].u64(0) || v == curg_of(s, i) ||
            (o_.m_gsignal && v == s.mb[i].u64(o_.m_gsignal))) {
          ++good;
        } else {
          ++bad;
        }
      }
    }
    if (good > 0 && tol_ok(bad, n)) {
      o_.m_tls = off;
      say("m.tls=procid+64=" + std::to_string(off) + " (tls[0] is the thread's g)");
    }
  }
  // schedlink: next word after alllink, nil or an M
  {
    size_t n = 0, bad = 0;
    for (auto& s : snaps_) {
      for (auto& m : s.mb) {
        uint64_t v = m.u64(o_.m_alllink + 8);
        ++n;
        bad += v != 0 && !s.mset.count(v);
      }
    }
    if (n > 0 && bad == 0) o_.m_schedlink = o_.m_alllink + 8;
  }
}

// ---- p.runqhead/runqtail/runq/runnext, after goidcache/goidcacheend
void Calibrator::find_p_runq() {
  for (uint32_t off = std::max<uint32_t>(o_.p_m, 24) + 8; off + 24 + 2048 + 8 <= kPBlock;
       off += 8) {
    size_t n = 0, bad = 0, evidence = 0;
    for (auto& s : snaps_) {
      const uint64_t bound = s.goidgen ? s.goidgen + 1 : (1ull << 40);
      for (auto& p : s.ps) {
        if (p.b.size() < off + 24 + 2048 + 8) {
          ++bad;
          continue;
        }
        ++n;
        uint64_t a = p.u64(off), b = p.u64(off + 8);
        uint32_t h = p.u32(off + 16), t = p.u32(off + 20);
        uint64_t next = p.u64(off + 24 + 2048);
        bool ok = (a == 0 && b == 0) || (a >= 1 && a <= b && b - a <= 16 && b <= bound);
        ok = ok && (t - h) <= 256;
        ok = ok && (next == 0 || plausible_ptr(next));
        if (ok && a != 0) ++evidence;
        bad += !ok;
      }
    }
    if (evidence > 0 && bad == 0) {
      o_.p_runqhead = off + 16;
      o_.p_runqtail = off + 20;
      o_.p_runq = off + 24;
      o_.p_runnext = off + 24 + 2048;
      say("p.runqhead=" + std::to_string(off + 16) + " (after goidcache/goidcacheend at " +
          std::to_string(off) + "), runnext=" + std::to_string(o_.p_runnext));
      return;
    }
  }
  say("p.runq*: goidcache pair not found; left unknown");
}

// ---- sched counters: maxmcount == 10000 (default), its neighbours checked
void Calibrator::find_sched() {
  if (snaps_.empty() || !snaps_[0].have_sched) return;
  for (uint32_t off = 16; off < 256; off += 4) {
    bool all = true;
    for (auto& s : snaps_) all = all && s.sched.at<int32_t>(off) == 10000;
    if (!all || off < 16) continue;
    bool ok = true;
    int64_t max_id = -1;
    for (auto& s : snaps_) {
      const int32_t nm = static_cast<int32_t>(s.ms.size()) + 8;
      const int32_t np = static_cast<int32_t>(s.allp_len);
      auto i32 = [&](int32_t d) { return s.sched.at<int32_t>(off + d); };
      if (o_.m_id) {
        for (auto& m : s.mb) max_id = std::max(max_id, m.at<int64_t>(o_.m_id));
      }
      int64_t mnext = s.sched.at<int64_t>(off - 8);
      ok = ok && mnext > max_id && mnext < 1000000;
      ok = ok && i32(-16) >= 0 && i32(-16) <= nm;  // nmidle
      ok = ok && i32(4) >= 0 && i32(4) <= nm;      // nmsys
      ok = ok && i32(32) >= 0 && i32(32) <= np;    // npidle
      ok = ok && i32(36) >= 0 && i32(36) <= nm;    // nmspinning
      uint64_t pidle = s.sched.u64(off + 24);
      ok = ok && (pidle == 0 || s.pset.count(pidle));
    }
    if (!ok) continue;
    o_.sched_maxmcount = off;
    o_.sched_mnext = off - 8;
    o_.sched_nmidle = off - 16;
    o_.sched_nmidlelocked = off - 12;
    o_.sched_nmsys = off + 4;
    o_.sched_ngsys = off + 16;
    o_.sched_pidle = off + 24;
    o_.sched_npidle = off + 32;
    o_.sched_nmspinning = off + 36;
    say("sched.maxmcount=" + std::to_string(off) +
        " (==10000), nmidle/mnext/nmsys/ngsys/pidle/npidle/nmspinning at "
        "-16/-8/+4/+16/+24/+32/+36");
    return;
  }
  say("sched.maxmcount (10000) not found; sched counters left unknown");
}

Expected<Offsets> Calibrator::run() {
  const Globals& gl = bin_.globals;
  if (gl.allm == 0 || gl.allp == 0) return make_error("runtime.allm/allp addresses unknown");
  // Start from nothing but the documented-stable fields.
  for (const auto& f : offset_fields()) o_.*f.member = 0;
  o_.g_m = 48;
  o_.g_sched_sp = 56;
  o_.g_sched_pc = 64;
  o_.p_status = 4;
  o_.p_link = 8;
  o_.p_schedtick = 16;
  o_.p_syscalltick = 20;
  o_.p_sysmontick = 24;
  o_.sched_lastpoll = 8;
  o_.sched_polluntil = 16;
  if (!find_alllink_procid()) return make_error("calibration: m.alllink/m.procid not found");
  take_snapshots();
  if (snaps_.empty()) return make_error("calibration: no consistent snapshot of allp/allm");
  find_g_m();
  find_p_m();
  find_m_p();
  find_m_curg();
  find_g_goid();
  find_g_status();
  find_g_startpc();
  find_g_syscall();
  find_m_misc();
  find_p_runq();
  find_sched();
  o_.source = "calibrated";
  if (Status b = check_offset_bounds(o_); !b)
    return make_error("calibration: " + b.error().message);
  return o_;
}

}  // namespace

Expected<Offsets> calibrate(MemReader& mem, const BinaryInfo& bin, uint64_t load_bias, int pid,
                            const TidSource& tids, const CalibrateOptions& opts) {
  const int rounds = std::max(1, opts.rounds);
  std::vector<Offsets> results;
  std::vector<std::string> errors;
  for (int r = 0; r < rounds; ++r) {
    Calibrator c(mem, bin, load_bias, pid, tids, opts, r == 0 ? opts.log : nullptr);
    auto o = c.run();
    if (o) {
      results.push_back(std::move(*o));
    } else {
      errors.push_back(o.error().message);
    }
  }
  if (results.empty()) return make_error(errors.empty() ? "calibration failed" : errors.front());
  // Per field, the value a majority of rounds agree on; 0 when there is none.
  Offsets out = results.front();
  const size_t need = static_cast<size_t>(rounds) / 2 + 1;
  std::vector<std::string> disagree;
  for (const auto& f : offset_fields()) {
    std::map<uint32_t, size_t> votes;
    for (const auto& r : results) ++votes[r.*f.member];
    auto best = std::max_element(votes.begin(), votes.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    if (best->second >= need) {
      out.*f.member = best->first;
    } else {
      out.*f.member = 0;
      disagree.emplace_back(f.name);
    }
  }
  if (opts.log) {
    std::string d;
    for (auto& n : disagree) d += " " + n;
    opts.log->push_back(std::to_string(results.size()) + "/" + std::to_string(rounds) +
                        " rounds succeeded" +
                        (d.empty() ? "; all fields agree" : "; no majority for:" + d));
  }
  out.source = "calibrated";
  if (out.m_alllink == 0 || out.m_procid == 0) {
    return make_error("calibration: rounds disagree on m.alllink/m.procid");
  }
  return out;
}

Expected<Offsets> calibrate(MemReader& mem, const BinaryInfo& bin, uint64_t load_bias, int pid) {
  return calibrate(mem, bin, load_bias, namespace_pid(pid), [pid] { return namespace_tids(pid); });
}

}  // namespace schedscope::go
