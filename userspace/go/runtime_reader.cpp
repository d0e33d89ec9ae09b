// Live scheduler state of a Go process read from its memory (/proc/PID/mem), plus the
// validation of runtime struct offsets against invariants and their calibration.
// Facts used here: docs/go-runtime.md, "Finding the current g, m and p" (constants,
// stable offsets) and "Observing Ps and Ms from outside" (globals).
#include "go/runtime_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "go/reader_detail.h"
#include "go/x86.h"
#include "util/input_file.h"

namespace schedscope::go {

const char* p_status_name(uint32_t status) {
  switch (status) {
    case 0:
      return "idle";
    case 1:
      return "running";
    case 2:
      return "syscall";
    case 3:
      return "gcstop";
    case 4:
      return "dead";
    default:
      return "unknown";
  }
}

using namespace detail;  // NOLINT(google-build-using-namespace)

namespace {

class ProcMemReader final : public MemReader {
 public:
  ProcMemReader(int pid, int fd) : pid_(pid), fd_(fd) {}
  ~ProcMemReader() override {
    if (fd_ >= 0) close(fd_);
  }
  ProcMemReader(const ProcMemReader&) = delete;
  ProcMemReader& operator=(const ProcMemReader&) = delete;

  bool read(uint64_t addr, void* buf, size_t len) override {
    if (len == 0) return true;
    if (addr >= (1ull << 63)) return false;
    if (fd_ >= 0) {
      ssize_t n = pread(fd_, buf, len, static_cast<off_t>(addr));
      if (n == static_cast<ssize_t>(len)) return true;
      if (n >= 0 || errno == EIO || errno == EFAULT) return false;  // unmapped: no fallback
    }
    iovec local{buf, len};
    iovec remote{reinterpret_cast<void*>(addr), len};  // NOLINT(performance-no-int-to-ptr)
    return process_vm_readv(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
  }

  // process_vm_readv copies whole iovecs and stops at the first it cannot read: the spans
  // before it are read, that one is read alone (read(): pread, its own fallbacks), and
  // the batch goes on after it. Refused outright (a seccomp filter): one by one from then on.
  void read_many(std::vector<ReadSpan>& spans) override {
    constexpr size_t kIov = 1024;  // IOV_MAX
    std::vector<iovec> local, remote;
    size_t i = 0;
    while (i < spans.size()) {
      if (!batch_) {
        for (; i < spans.size(); i++) spans[i].ok = read(spans[i].addr, spans[i].buf, spans[i].len);
        return;
      }
      local.clear();
      remote.clear();
      for (size_t j = i; j < spans.size() && local.size() < kIov; j++) {
        local.push_back({spans[j].buf, spans[j].len});
        remote.push_back(  // NOLINTNEXTLINE(performance-no-int-to-ptr)
            {reinterpret_cast<void*>(spans[j].addr), spans[j].len});
      }
      ssize_t r = process_vm_readv(pid_, local.data(), local.size(), remote.data(), remote.size(), 0);
      if (r < 0) {
        if (errno == EPERM || errno == ENOSYS || errno == EACCES) {
          batch_ = false;
          continue;
        }
        r = 0;  // EFAULT on the first span: read it alone below
      }
      size_t got = size_t(r);
      for (size_t j = 0; j < local.size(); j++) {
        if (got >= local[j].iov_len) {
          got -= local[j].iov_len;
          spans[i++].ok = true;
          continue;
        }
        spans[i].ok = read(spans[i].addr, spans[i].buf, spans[i].len);
        i++;
        break;
      }
    }
  }

 private:
  int pid_;
  int fd_;
  bool batch_ = true;  // process_vm_readv allowed
};

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

// Lowest PT_LOAD p_vaddr of an ELF file, page-aligned down.
Expected<uint64_t> lowest_load_vaddr(const std::string& path) {
  auto in = open_input_file(path);
  if (!in) return in.error();
  const int fd = in->fd();
  elf_version(EV_CURRENT);
  uint64_t lowest = UINT64_MAX;
  {
    std::unique_ptr<Elf, ElfCloser> elf(elf_begin(fd, ELF_C_READ, nullptr));
    size_t n = 0;
    if (elf && elf_getphdrnum(elf.get(), &n) == 0) {
      for (size_t i = 0; i < n; ++i) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf.get(), static_cast<int>(i), &ph) != nullptr && ph.p_type == PT_LOAD) {
          lowest = std::min<uint64_t>(lowest, ph.p_vaddr);
        }
      }
    }
  }
  if (lowest == UINT64_MAX) return make_error(path + ": no PT_LOAD segment");
  return lowest & ~uint64_t{0xfff};
}

}  // namespace

std::vector<int> process_tids(int pid) { return read_tids(pid); }

std::unique_ptr<MemReader> open_process_memory(int pid, std::string* err) {
  std::string proc = "/proc/" + std::to_string(pid);
  struct stat st {};
  if (stat(proc.c_str(), &st) != 0) {
    if (err) *err = "no such process: " + std::to_string(pid);
    return nullptr;
  }
  int fd = open((proc + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // Fall back to process_vm_readv only; check that it works on a mapped address.
    std::ifstream maps(proc + "/maps");
    std::string line;
    uint64_t start = 0;
    if (std::getline(maps, line)) start = std::strtoull(line.c_str(), nullptr, 16);
    auto r = std::make_unique<ProcMemReader>(pid, -1);
    uint8_t b = 0;
    if (start == 0 || !r->read(start, &b, 1)) {
      if (err)
        *err = "cannot read memory of pid " + std::to_string(pid) + ": " + std::strerror(errno);
      return nullptr;
    }
    return r;
  }
  return std::make_unique<ProcMemReader>(pid, fd);
}

Expected<uint64_t> load_bias(int pid, const BinaryInfo& bin) {
  if (!bin.pie) return uint64_t{0};
  auto low = lowest_load_vaddr(bin.path);
  if (!low) return low.error();
  std::string proc = "/proc/" + std::to_string(pid);
  char buf[4096];
  ssize_t n = readlink((proc + "/exe").c_str(), buf, sizeof buf - 1);
  std::string exe = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  if (auto pos = exe.find(" (deleted)"); pos != std::string::npos) exe.resize(pos);
  struct stat st {};
  const bool have_ino = stat(bin.path.c_str(), &st) == 0;
  std::ifstream maps(proc + "/maps");
  if (!maps) return make_error("cannot read " + proc + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream is(line);
    std::string range, perms, offset, dev, path;
    uint64_t inode = 0;
    is >> range >> perms >> offset >> dev >> inode;
    std::getline(is >> std::ws, path);
    if (std::strtoull(offset.c_str(), nullptr, 16) != 0) continue;
    const bool match = (!exe.empty() && path == exe) || (have_ino && inode == st.st_ino && inode);
    if (!match) continue;
    uint64_t start = std::strtoull(range.c_str(), nullptr, 16);
    return start - *low;
  }
  return make_error("executable mapping of " + bin.path + " not found in " + proc + "/maps");
}

// ------------------------------------------------------------------ RuntimeReader

RuntimeReader::RuntimeReader(std::unique_ptr<MemReader> mem, const BinaryInfo& bin, Offsets off,
                             uint64_t load_bias)
    : mem_(std::move(mem)), bin_(bin), off_(std::move(off)), bias_(load_bias) {
  if (bin_.symbolizer) {
    if (auto f = bin_.symbolizer->find_function("runtime.sysmon")) sysmon_entry_ = f->entry;
  }
}

std::string RuntimeReader::symbolize(uint64_t runtime_pc) const {
  if (!bin_.symbolizer || runtime_pc == 0 || runtime_pc < bias_) return {};
  auto loc = bin_.symbolizer->lookup(runtime_pc - bias_);
  return loc ? loc->func : std::string();
}

namespace {

// "main.main.gowrap1" (1.22+ go-statement wrapper) or "pkg.f.func3" (closure).
bool is_gowrap(const std::string& n) { return n.find(".gowrap") != std::string::npos; }
bool is_closure(const std::string& n) {
  auto pos = n.rfind(".func");
  if (pos == std::string::npos || pos + 5 >= n.size()) return false;
  for (size_t i = pos + 5; i < n.size(); ++i) {
    if (n[i] < '0' || n[i] > '9') return false;
  }
  return true;
}

}  // namespace

std::string RuntimeReader::start_func(uint64_t runtime_startpc) {
  if (runtime_startpc == 0) return {};
  auto it = start_cache_.find(runtime_startpc);
  if (it != start_cache_.end()) return it->second;
  std::string name = symbolize(runtime_startpc);
  const bool wrap = is_gowrap(name), closure = !wrap && is_closure(name);
  if ((wrap || closure) && bin_.symbolizer) {
    auto fi = bin_.symbolizer->find_function(name);
    const uint64_t size = fi ? fi->end - fi->entry : 0;
    if (fi && fi->entry == runtime_startpc - bias_ && size > 0 && size <= (wrap ? 2048u : 160u)) {
      std::vector<uint8_t> code(size);
      if (mem_->read(runtime_startpc, code.data(), code.size())) {
        std::vector<std::string> calls;
        for (const auto& in : x86::sweep(code, runtime_startpc)) {
          if (in.map != 0 || in.opcode != 0xe8 || !in.has_rel) continue;
          std::string t = symbolize(in.target);
          if (t.empty() || t.rfind("runtime.", 0) == 0) continue;
          if (std::find(calls.begin(), calls.end(), t) == calls.end()) calls.push_back(t);
        }
        if (calls.size() == 1) name = calls.front();
      }
    }
  }
  start_cache_[runtime_startpc] = name;
  return name;
}

std::optional<GSample> RuntimeReader::read_g(uint64_t addr) {
  Block g;
  if (!read_block(*mem_, addr, kGBlock, g)) return std::nullopt;
  return g_from_block(addr, g.b.data(), g.b.size());
}

GSample RuntimeReader::g_from_block(uint64_t addr, const uint8_t* b, size_t len) {
  Block g;  // out-of-range fields read as 0, as from read_block
  g.addr = addr;
  g.b.assign(b, b + len);
  GSample s;
  s.addr = addr;
  if (off_.g_goid) s.goid = g.u64(off_.g_goid);
  if (off_.g_atomicstatus) s.status = g.u32(off_.g_atomicstatus) & ~kGscan;
  if (off_.g_waitreason) s.waitreason = g.at<uint8_t>(off_.g_waitreason);
  if (off_.g_startpc) {
    s.startpc = g.u64(off_.g_startpc);
    s.func = start_func(s.startpc);
  }
  if (off_.g_m) s.m_addr = g.u64(off_.g_m);
  return s;
}

Expected<TimeHist> RuntimeReader::time_to_run() {
  const TimeToRun& t = bin_.time_to_run;
  if (!t.addr || !t.layout) return make_error(t.source.empty() ? "not located" : t.source);
  TimeHist h;
  h.layout = uint8_t(t.layout);
  h.slots.resize(time_hist_slots(t.layout));
  if (!mem_->read(t.addr + bias_, h.slots.data(), h.slots.size() * 8))
    return make_error("sched.timeToRun not readable");
  h.ts_ns = monotonic_ns();
  return h;
}

void RuntimeReader::map_namespace_tids(int pid) {
  ns_ = read_ns_tids(pid);
  ns_pid_src_ = ns_.nested ? pid : 0;
}

int32_t RuntimeReader::host_tid(int32_t ns_tid, bool& refreshed) {
  if (ns_pid_src_ == 0 || ns_tid <= 0) return ns_tid;
  auto it = ns_.to_host.find(ns_tid);
  if (it == ns_.to_host.end() && !refreshed) {  // a thread started since the last read
    refreshed = true;
    ns_ = read_ns_tids(ns_pid_src_);
    it = ns_.to_host.find(ns_tid);
  }
  // Not (yet) in /proc: unknown rather than a tid of the observer's namespace that may
  // name another thread.
  return it == ns_.to_host.end() ? 0 : it->second;
}

Expected<SchedSample> RuntimeReader::sample() {
  const Globals& gl = bin_.globals;
  if (gl.allp == 0 || gl.allm == 0) return make_error("runtime.allp/allm addresses unknown");
  SchedSample s;
  s.ts_ns = monotonic_ns();
  MemReader& mem = *mem_;
  bool refreshed = false;  // the namespace's tids re-read at most once a sample

  // sched
  if (gl.sched != 0) {
    Block sb;
    if (read_block(mem, gl.sched + bias_, 512, sb)) {
      s.goidgen = sb.u64(off_.sched_goidgen);
      s.lastpoll = sb.at<int64_t>(off_.sched_lastpoll);
      if (off_.sched_nmidle) s.nmidle = sb.at<int32_t>(off_.sched_nmidle);
      if (off_.sched_npidle) s.npidle = sb.at<int32_t>(off_.sched_npidle);
      if (off_.sched_nmspinning) s.nmspinning = sb.at<int32_t>(off_.sched_nmspinning);
      if (off_.sched_maxmcount) s.maxmcount = sb.at<int32_t>(off_.sched_maxmcount);
      if (off_.sched_gcwaiting) s.gcwaiting = sb.at<uint8_t>(off_.sched_gcwaiting);
    }
  }
  if (gl.gcphase != 0) s.gcphase = mem.get<uint32_t>(gl.gcphase + bias_).value_or(0);

  // allp
  auto allp_ptr = mem.get<uint64_t>(gl.allp + bias_);
  auto allp_len = mem.get<int64_t>(gl.allp + bias_ + 8);
  if (!allp_ptr || !allp_len) {
    return make_error("cannot read runtime.allp at " + hex(gl.allp + bias_) + " (process gone?)");
  }
  if (*allp_len < 0 || *allp_len > kMaxPs) {
    return make_error("implausible len(allp)=" + std::to_string(*allp_len));
  }
  s.gomaxprocs = static_cast<int32_t>(*allp_len);
  if (gl.gomaxprocs != 0) {
    if (auto v = mem.get<int32_t>(gl.gomaxprocs + bias_)) s.gomaxprocs = *v;
  }
  std::vector<uint64_t> pptrs(static_cast<size_t>(*allp_len));
  if (!pptrs.empty() && !mem.read(*allp_ptr, pptrs.data(), pptrs.size() * 8)) {
    return make_error("cannot read allp array at " + hex(*allp_ptr));
  }
  std::unordered_map<uint64_t, int32_t> p_ids;  // p addr -> id
  std::vector<Block> pblocks(pptrs.size());
  for (size_t i = 0; i < pptrs.size(); ++i) {
    if (read_block(
            mem, pptrs[i],
            std::max<size_t>({off_.p_m + 8u, off_.p_runqtail + 4u, off_.p_runnext + 8u, 64u}),
            pblocks[i])) {
      p_ids[pptrs[i]] = pblocks[i].at<int32_t>(off_.p_id);
    }
  }

  // allm. Each M's first kMBlock bytes: those of the previous sample's Ms in one batched
  // read, then the walk from the head through the blocks' alllink (an M not in the batch,
  // new since, is read alone). Then the Gs the Ms point at (curg, lockedg), in one batch.
  uint64_t head = mem.get<uint64_t>(gl.allm + bias_).value_or(0);
  std::unordered_map<uint64_t, Block> mblocks;
  std::unordered_map<uint64_t, Block> gblocks;
  if (off_.m_alllink != 0) {
    std::vector<uint64_t> order;
    if (off_.m_alllink + 8 <= kMBlock) {
      std::vector<ReadSpan> spans;
      std::vector<Block> batch(last_ms_.size());
      for (size_t i = 0; i < last_ms_.size(); i++) {
        batch[i].addr = last_ms_[i];
        batch[i].b.assign(kMBlock, 0);
        if (plausible_ptr(last_ms_[i]))
          spans.push_back({last_ms_[i], batch[i].b.data(), kMBlock, false});
      }
      mem.read_many(spans);
      size_t k = 0;
      for (auto& b : batch)
        if (plausible_ptr(b.addr) && spans[k++].ok) mblocks.emplace(b.addr, std::move(b));
      std::unordered_set<uint64_t> seen;
      uint64_t m = head;
      while (m != 0) {
        if (!plausible_ptr(m) || !seen.insert(m).second || order.size() >= kMaxMs) break;
        order.push_back(m);
        auto it = mblocks.find(m);
        if (it == mblocks.end()) {
          Block b;
          if (read_block(mem, m, kMBlock, b)) it = mblocks.emplace(m, std::move(b)).first;
        }
        uint64_t next = 0;
        if (it != mblocks.end() && off_.m_alllink + 8 <= it->second.b.size()) {
          next = it->second.u64(off_.m_alllink);
        } else if (auto n = mem.get<uint64_t>(m + off_.m_alllink)) {
          next = *n;
        } else {
          break;
        }
        m = next;
      }
    } else {
      order = walk_allm(mem, head, off_.m_alllink).ms;
      for (uint64_t maddr : order) {
        Block b;
        if (read_block(mem, maddr, kMBlock, b)) mblocks.emplace(maddr, std::move(b));
      }
    }
    last_ms_ = order;
    // The Gs: curg of every M, and lockedg when it is another G.
    std::vector<uint64_t> gaddrs;
    for (uint64_t maddr : order) {
      auto it = mblocks.find(maddr);
      if (it == mblocks.end()) continue;
      for (uint32_t off : {off_.m_curg, off_.m_lockedg}) {
        uint64_t g = off ? it->second.u64(off) : 0;
        if (g && plausible_ptr(g) && gblocks.emplace(g, Block{}).second) gaddrs.push_back(g);
      }
    }
    std::vector<ReadSpan> gspans;
    gspans.reserve(gaddrs.size());
    for (uint64_t g : gaddrs) {
      Block& b = gblocks[g];
      b.addr = g;
      b.b.assign(kGBlock, 0);
      gspans.push_back({g, b.b.data(), kGBlock, false});
    }
    mem.read_many(gspans);
    for (const auto& sp : gspans) {
      if (sp.ok) continue;
      Block b;  // near a mapping's end: read_block's shorter reads
      if (read_block(mem, sp.addr, kGBlock, b)) {
        gblocks[sp.addr] = std::move(b);
      } else {
        gblocks.erase(sp.addr);
      }
    }
    for (uint64_t maddr : order) {
      auto mit = mblocks.find(maddr);
      if (mit == mblocks.end()) continue;
      const Block& mb = mit->second;
      MSample m;
      m.addr = maddr;
      if (off_.m_id) m.id = mb.at<int64_t>(off_.m_id);
      if (off_.m_procid) m.tid = host_tid(static_cast<int32_t>(mb.u64(off_.m_procid)), refreshed);
      auto pid_of = [&](uint64_t p) -> int32_t {
        if (p == 0) return -1;
        auto it = p_ids.find(p);
        if (it != p_ids.end()) return it->second;
        return mem.get<int32_t>(p + off_.p_id).value_or(-1);
      };
      if (off_.m_p) m.p = pid_of(mb.u64(off_.m_p));
      if (off_.m_oldp) m.oldp = pid_of(mb.u64(off_.m_oldp));
      if (off_.m_curg) {
        if (uint64_t cg = mb.u64(off_.m_curg)) {
          if (auto it = gblocks.find(cg); it != gblocks.end()) {
            GSample g = g_from_block(cg, it->second.b.data(), it->second.b.size());
            m.curg_goid = g.goid;
            m.curg_func = g.func;
            m.curg_status = g.status;
          }
        }
      }
      if (off_.m_spinning) m.spinning = mb.at<uint8_t>(off_.m_spinning) != 0;
      if (off_.m_blocked) m.blocked = mb.at<uint8_t>(off_.m_blocked) != 0;
      if (off_.m_incgo) m.incgo = mb.at<uint8_t>(off_.m_incgo) != 0;
      if (off_.m_lockedg) {
        if (uint64_t lg = mb.u64(off_.m_lockedg)) {
          if (off_.g_goid) {
            auto it = gblocks.find(lg);
            m.lockedg_goid = it != gblocks.end() ? it->second.u64(off_.g_goid)
                                                 : mem.get<uint64_t>(lg + off_.g_goid).value_or(0);
          }
        }
      }
      if (off_.m_mstartfn && sysmon_entry_) {
        if (uint64_t fv = mb.u64(off_.m_mstartfn)) {
          auto it = sysmon_fv_.find(fv);
          if (it == sysmon_fv_.end()) {
            auto fn = mem.get<uint64_t>(fv);
            bool sysmon = fn.value_or(0) == sysmon_entry_ + bias_;
            if (fn && sysmon_fv_.size() < 4096) sysmon_fv_.emplace(fv, sysmon);
            m.sysmon = sysmon;
          } else {
            m.sysmon = it->second;
          }
        }
      }
      s.ms.push_back(std::move(m));
    }
  }

  // Ps
  for (size_t i = 0; i < pptrs.size(); ++i) {
    const Block& pb = pblocks[i];
    if (pb.b.empty()) continue;
    PSample p;
    p.addr = pptrs[i];
    p.id = pb.at<int32_t>(off_.p_id);
    p.status = pb.u32(off_.p_status);
    p.schedtick = pb.u32(off_.p_schedtick);
    p.syscalltick = pb.u32(off_.p_syscalltick);
    if (off_.p_runqhead && off_.p_runqtail) {
      uint32_t h = pb.u32(off_.p_runqhead), t = pb.u32(off_.p_runqtail);
      p.runq = (t - h) <= 256 ? t - h : 0;
    }
    if (off_.p_runnext && pb.u64(off_.p_runnext) != 0) p.runq += 1;
    uint64_t maddr = off_.p_m ? pb.u64(off_.p_m) : 0;
    p.m_addr = maddr;
    if (maddr == 0 && p.status == kPsyscall && off_.m_oldp) {
      // ≤1.25: the P of an M in a syscall has p.m == 0 and m.oldp == P.
      for (const auto& ms : s.ms) {
        auto mit = mblocks.find(ms.addr);  // the block read above (m.oldp is in it), else a read
        uint64_t oldp = mit != mblocks.end() && off_.m_oldp + 8 <= mit->second.b.size()
                            ? mit->second.u64(off_.m_oldp)
                            : mem.get<uint64_t>(ms.addr + off_.m_oldp).value_or(0);
        if (oldp == p.addr) {
          maddr = ms.addr;
          p.via_oldp = true;
          break;
        }
      }
    }
    if (maddr != 0) {
      Block mb;
      if (read_block(mem, maddr, kMBlock, mb)) {
        if (!p.via_oldp && off_.m_id) p.m_id = mb.at<int64_t>(off_.m_id);
        if (off_.m_procid) p.tid = host_tid(static_cast<int32_t>(mb.u64(off_.m_procid)), refreshed);
        if (off_.m_curg) {
          if (uint64_t cg = mb.u64(off_.m_curg)) {
            Block gb;
            if (read_block(mem, cg, kGBlock, gb)) {
              if (off_.g_goid) p.goid = gb.u64(off_.g_goid);
              if (off_.g_startpc) {
                p.g_startpc = gb.u64(off_.g_startpc);
                p.func = start_func(p.g_startpc);
              }
              uint32_t st = off_.g_atomicstatus ? gb.u32(off_.g_atomicstatus) & ~kGscan : 0;
              p.g_pc = (st == kGsyscall && off_.g_syscallpc) ? gb.u64(off_.g_syscallpc)
                                                             : gb.u64(off_.g_sched_pc);
              p.cur_func = symbolize(p.g_pc);
            }
          }
        }
      }
    }
    s.ps.push_back(std::move(p));
  }
  return s;
}

Expected<std::vector<GSample>> RuntimeReader::goroutines(size_t max) {
  const Globals& gl = bin_.globals;
  if (gl.allgs == 0) return make_error("runtime.allgs address unknown");
  if (off_.g_goid == 0) return make_error("g.goid offset unknown");
  auto ptr = mem_->get<uint64_t>(gl.allgs + bias_);
  auto len = mem_->get<int64_t>(gl.allgs + bias_ + 8);
  if (!ptr || !len) return make_error("cannot read runtime.allgs");
  int64_t n = *len;
  if (gl.allglen != 0) n = mem_->get<int64_t>(gl.allglen + bias_).value_or(n);
  if (n < 0 || n > (1 << 26)) return make_error("implausible allglen " + std::to_string(n));
  n = std::min<int64_t>(n, static_cast<int64_t>(max));
  std::vector<uint64_t> gptrs(static_cast<size_t>(n));
  if (n > 0 && !mem_->read(*ptr, gptrs.data(), gptrs.size() * 8)) {
    return make_error("cannot read allgs array at " + hex(*ptr));
  }
  std::vector<GSample> out;
  out.reserve(gptrs.size());
  for (uint64_t g : gptrs) {
    if (auto s = read_g(g)) out.push_back(std::move(*s));
  }
  return out;
}

std::optional<GSample> RuntimeReader::find_goroutine(uint64_t goid) {
  if (bin_.globals.allgs != 0) {
    if (auto all = goroutines()) {
      for (auto& g : *all) {
        if (g.goid == goid) return g;
      }
      return std::nullopt;
    }
  }
  if (off_.m_alllink == 0 || off_.m_curg == 0 || bin_.globals.allm == 0) return std::nullopt;
  uint64_t head = mem_->get<uint64_t>(bin_.globals.allm + bias_).value_or(0);
  for (uint64_t m : walk_allm(*mem_, head, off_.m_alllink).ms) {
    uint64_t cg = mem_->get<uint64_t>(m + off_.m_curg).value_or(0);
    if (cg == 0) continue;
    if (auto g = read_g(cg); g && g->goid == goid) return g;
  }
  return std::nullopt;
}

// ------------------------------------------------------------------ validation

namespace {

struct Check {
  std::string text;
  bool pass = true;
  bool note = false;  // informational, never fails validation
};

void add(std::vector<Check>& cs, bool pass, const std::string& text) {
  cs.push_back({text, pass, false});
}
void note(std::vector<Check>& cs, const std::string& text) { cs.push_back({text, true, true}); }

std::string frac(size_t a, size_t b) { return std::to_string(a) + "/" + std::to_string(b); }

bool is_func_entry(const BinaryInfo& bin, uint64_t bias, uint64_t pc) {
  if (!bin.symbolizer || pc < bias || pc == 0) return false;
  auto loc = bin.symbolizer->lookup(pc - bias);
  return loc && loc->func_entry == pc - bias;
}

std::vector<Check> validate_once(MemReader& mem, const BinaryInfo& bin, const Offsets& off,
                                 uint64_t bias, int pid, const std::vector<int>& tids) {
  std::vector<Check> cs;
  const Globals& gl = bin.globals;
  std::unordered_set<int> tidset(tids.begin(), tids.end());

  // --- Ps
  auto allp_ptr = mem.get<uint64_t>(gl.allp + bias);
  auto allp_len = mem.get<int64_t>(gl.allp + bias + 8);
  if (!allp_ptr || !allp_len || *allp_len <= 0 || *allp_len > kMaxPs) {
    add(cs, false, "runtime.allp readable with 0 < len <= 65536");
    return cs;
  }
  const size_t np = static_cast<size_t>(*allp_len);
  std::vector<uint64_t> pptrs(np);
  if (!mem.read(*allp_ptr, pptrs.data(), np * 8)) {
    add(cs, false, "allp array readable at " + hex(*allp_ptr));
    return cs;
  }
  std::unordered_set<uint64_t> pset(pptrs.begin(), pptrs.end());
  std::vector<Block> pbs(np);
  size_t id_ok = 0, status_ok = 0;
  for (size_t i = 0; i < np; ++i) {
    read_block(mem, pptrs[i], std::max<size_t>({off.p_m + 8u, off.p_runnext + 8u, 64u}), pbs[i]);
    if (pbs[i].at<int32_t>(off.p_id) == static_cast<int32_t>(i)) ++id_ok;
    if (pbs[i].u32(off.p_status) <= 4) ++status_ok;
  }
  add(cs, id_ok == np, "p.id==index for " + frac(id_ok, np) + " Ps");
  add(cs, status_ok == np, "p.status<=4 for " + frac(status_ok, np) + " Ps");
  if (gl.gomaxprocs != 0) {
    int32_t gmp = mem.get<int32_t>(gl.gomaxprocs + bias).value_or(-1);
    add(cs, gmp == static_cast<int32_t>(np),
        "len(allp)==gomaxprocs (" + std::to_string(np) + "==" + std::to_string(gmp) + ")");
  }

  // --- Ms
  if (off.m_alllink == 0) {
    add(cs, false, "m.alllink offset known");
    return cs;
  }
  uint64_t head = mem.get<uint64_t>(gl.allm + bias).value_or(0);
  AllmWalk w = walk_allm(mem, head, off.m_alllink);
  add(cs, w.complete && !w.ms.empty(),
      "allm list walks to nil: " + std::to_string(w.ms.size()) + " Ms" +
          (w.complete ? "" : " (cycle, unreadable or over the cap)"));
  if (w.ms.empty()) return cs;
  std::unordered_set<uint64_t> mset(w.ms.begin(), w.ms.end());
  std::vector<Block> mbs(w.ms.size());
  for (size_t i = 0; i < w.ms.size(); ++i) read_block(mem, w.ms[i], kMBlock, mbs[i]);

  if (off.m_procid != 0) {
    size_t match = 0, zero = 0, other = 0;
    std::set<uint64_t> distinct;
    for (const auto& mb : mbs) {
      uint64_t v = mb.u64(off.m_procid);
      if (v == 0) {
        ++zero;
      } else if (v < (1u << 31) && tidset.count(static_cast<int>(v))) {
        ++match;
        distinct.insert(v);
      } else {
        ++other;
      }
    }
    const size_t n = mbs.size();
    // procid is 0 for an M whose thread is being created and for unused extra Ms (cgo).
    const bool pass = match >= 1 && other == 0 && distinct.size() == match && zero <= 1 + n / 8;
    add(cs, pass,
        "m.procid==tid for " + frac(match, n) + " Ms" +
            (zero ? " (" + std::to_string(zero) + " with procid 0)" : ""));
    uint64_t m0tid = mbs.back().u64(off.m_procid);
    add(cs, m0tid == static_cast<uint64_t>(pid),
        "m0 (last in allm) procid==pid (" + std::to_string(m0tid) + "==" + std::to_string(pid) +
            ")");
  } else {
    add(cs, false, "m.procid offset known");
  }

  // g0: goid 0 and g0.m == m
  {
    size_t ok = 0;
    for (size_t i = 0; i < mbs.size(); ++i) {
      uint64_t g0 = mbs[i].u64(off.m_g0);
      Block gb;
      if (g0 && read_block(mem, g0, kGBlock, gb) && gb.u64(off.g_m) == w.ms[i] &&
          (off.g_goid == 0 || gb.u64(off.g_goid) == 0)) {
        ++ok;
      }
    }
    add(cs, ok == mbs.size(), "g0.goid==0 and g0.m==m for " + frac(ok, mbs.size()) + " Ms");
  }

  uint64_t goidgen =
      gl.sched ? mem.get<uint64_t>(gl.sched + bias + off.sched_goidgen).value_or(0) : 0;
  // curg.m == m, goid in [1, goidgen], distinct; startpc a function entry
  if (off.m_curg != 0) {
    size_t n = 0, ok = 0, goid_ok = 0, start_ok = 0, start_n = 0;
    std::set<uint64_t> goids;
    for (size_t i = 0; i < mbs.size(); ++i) {
      uint64_t cg = mbs[i].u64(off.m_curg);
      if (cg == 0) continue;
      ++n;
      Block gb;
      if (!read_block(mem, cg, kGBlock, gb)) continue;
      if (gb.u64(off.g_m) == w.ms[i] && cg != mbs[i].u64(off.m_g0)) ++ok;
      if (off.g_goid) {
        uint64_t id = gb.u64(off.g_goid);
        if (id >= 1 && (goidgen == 0 || id <= goidgen) && goids.insert(id).second) ++goid_ok;
      }
      // cgo: the extra M's curg (oneNewExtraM) has no start function (startpc 0).
      if (off.g_startpc && bin.symbolizer && gb.u64(off.g_startpc) != 0) {
        ++start_n;
        if (is_func_entry(bin, bias, gb.u64(off.g_startpc))) ++start_ok;
      }
    }
    add(cs, ok == n, "m.curg.m==m " + frac(ok, n));
    if (off.g_goid) {
      add(cs, goid_ok == n,
          "curg.goid distinct in [1, goidgen=" + std::to_string(goidgen) + "] " + frac(goid_ok, n));
    } else {
      add(cs, false, "g.goid offset known");
    }
    if (start_n)
      add(cs, start_ok == start_n, "curg.startpc is a function entry " + frac(start_ok, start_n));
  } else {
    add(cs, false, "m.curg offset known");
  }

  // p.m.p == p for running Ps; p.m == 0 for idle Ps
  if (off.p_m != 0) {
    size_t running = 0, ok = 0, idle = 0, idle_ok = 0;
    for (size_t i = 0; i < np; ++i) {
      uint32_t st = pbs[i].u32(off.p_status);
      uint64_t m = pbs[i].u64(off.p_m);
      if (st == kPrunning) {
        ++running;
        if (mset.count(m) && off.m_p && mem.get<uint64_t>(m + off.m_p).value_or(0) == pptrs[i])
          ++ok;
      } else if (st == kPidle) {
        ++idle;
        if (m == 0) ++idle_ok;
      }
    }
    add(cs, ok == running, "p.m.p==p for running Ps " + frac(ok, running));
    add(cs, idle_ok == idle, "p.m==0 for idle Ps " + frac(idle_ok, idle));
    if (running == 0) note(cs, "no running P in this snapshot: p.m/m.p not exercised");
  } else {
    add(cs, false, "p.m offset known");
  }

  // m.p / m.oldp point into allp or are nil
  if (off.m_p != 0) {
    size_t ok = 0;
    for (const auto& mb : mbs) {
      uint64_t p = mb.u64(off.m_p);
      uint64_t op = off.m_oldp ? mb.u64(off.m_oldp) : 0;
      if ((p == 0 || pset.count(p)) && (op == 0 || pset.count(op))) ++ok;
    }
    add(cs, ok == mbs.size(), "m.p and m.oldp in allp or nil for " + frac(ok, mbs.size()) + " Ms");
  }
  // m.id: distinct, >= 0, m0 has id 0
  if (off.m_id != 0) {
    std::set<int64_t> ids;
    size_t ok = 0;
    for (const auto& mb : mbs) {
      int64_t id = mb.at<int64_t>(off.m_id);
      if (id >= 0 && id < 1000000 && ids.insert(id).second) ++ok;
    }
    const bool m0_zero = mbs.back().at<int64_t>(off.m_id) == 0;
    add(cs, ok == mbs.size() && m0_zero,
        "m.id distinct, m0.id==0 for " + frac(ok, mbs.size()) + " Ms");
  }
  // sysmon M recognised by mstartfn
  if (off.m_mstartfn != 0 && bin.symbolizer) {
    if (auto f = bin.symbolizer->find_function("runtime.sysmon")) {
      size_t n = 0;
      for (const auto& mb : mbs) {
        uint64_t fv = mb.u64(off.m_mstartfn);
        if (fv && mem.get<uint64_t>(fv).value_or(0) == f->entry + bias) ++n;
      }
      add(cs, n == 1, "exactly one M with mstartfn==runtime.sysmon (" + std::to_string(n) + ")");
    }
  }
  // sched counters
  if (gl.sched != 0 && off.sched_npidle != 0) {
    int32_t npidle = mem.get<int32_t>(gl.sched + bias + off.sched_npidle).value_or(-1);
    size_t idle = 0;
    for (const auto& pb : pbs) idle += pb.u32(off.p_status) == kPidle;
    add(cs, npidle >= 0 && static_cast<size_t>(npidle) <= np,
        "sched.npidle in [0, len(allp)] (" + std::to_string(npidle) + ")");
    note(cs, "sched.npidle=" + std::to_string(npidle) + ", idle Ps=" + std::to_string(idle));
  }
  if (gl.sched != 0 && off.sched_maxmcount != 0) {
    int32_t mx = mem.get<int32_t>(gl.sched + bias + off.sched_maxmcount).value_or(-1);
    add(cs, mx > 0 && mx <= (1 << 24), "sched.maxmcount plausible (" + std::to_string(mx) + ")");
  }
  return cs;
}

Validation to_validation(const std::vector<Check>& cs) {
  Validation v;
  v.ok = !cs.empty();
  for (const auto& c : cs) {
    if (c.note) {
      v.checks.push_back("note: " + c.text);
    } else {
      v.checks.push_back((c.pass ? "ok: " : "FAIL: ") + c.text);
      if (!c.pass) v.ok = false;
    }
  }
  return v;
}

}  // namespace

Validation validate(MemReader& mem, const BinaryInfo& bin, const Offsets& off, uint64_t load_bias,
                    int pid, const TidSource& tids) {
  if (Status b = check_offset_bounds(off); !b) {
    return Validation{false, {"FAIL: " + b.error().message}};
  }
  if (bin.globals.allp == 0 || bin.globals.allm == 0) {
    return Validation{false, {"FAIL: runtime.allp/allm addresses unknown: cannot validate"}};
  }
  Validation best;
  long best_fail = -1;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    auto cs = validate_once(mem, bin, off, load_bias, pid, tids());
    Validation v = to_validation(cs);
    long fails = std::count_if(cs.begin(), cs.end(), [](const Check& c) { return !c.pass; });
    if (v.ok) return v;
    if (best_fail < 0 || fails < best_fail) {
      best = v;
      best_fail = fails;
    }
  }
  return best;
}

Validation validate(MemReader& mem, const BinaryInfo& bin, const Offsets& off, uint64_t load_bias,
                    int pid) {
  // m.procid holds the tids the process sees: those of its own PID namespace.
  return validate(mem, bin, off, load_bias, namespace_pid(pid),
                  [pid] { return namespace_tids(pid); });
}

}  // namespace schedscope::go

namespace schedscope::go {

namespace {

std::string first_failure(const Validation& v) {
  for (const auto& c : v.checks) {
    if (c.rfind("FAIL: ", 0) == 0) return c.substr(6);
  }
  return "?";
}

}  // namespace

Expected<std::pair<Offsets, Validation>> resolve_offsets(MemReader& mem, const BinaryInfo& bin,
                                                         uint64_t load_bias, int pid) {
  return resolve_offsets(mem, bin, load_bias, namespace_pid(pid),
                         [pid] { return namespace_tids(pid); });
}

Expected<std::pair<Offsets, Validation>> resolve_offsets(MemReader& mem, const BinaryInfo& bin,
                                                         uint64_t load_bias, int pid,
                                                         const TidSource& tids,
                                                         CalibrateOptions opts) {
  std::vector<std::string> trail;
  const bool can_validate = bin.globals.allm != 0 && bin.globals.allp != 0;
  auto finish = [&](Offsets o, Validation v) {
    trail.insert(trail.end(), v.checks.begin(), v.checks.end());
    v.checks = std::move(trail);
    return std::make_pair(std::move(o), std::move(v));
  };
  std::optional<std::pair<Offsets, Validation>> fallback;  // a static source that failed

  auto consider = [&](Expected<Offsets> o,
                      const std::string& what) -> std::optional<std::pair<Offsets, Validation>> {
    if (!o) {
      trail.push_back("source: " + what + " unavailable: " + o.error().message);
      return std::nullopt;
    }
    if (!can_validate) {
      trail.push_back("source: " + o->source + " (not validated)");
      return std::make_pair(*o, Validation{false,
                                           {"FAIL: runtime.allp/allm addresses unknown: "
                                            "cannot validate"}});
    }
    Validation v = validate(mem, bin, *o, load_bias, pid, tids);
    if (v.ok) {
      trail.push_back("source: " + o->source + " (validated)");
      return std::make_pair(*o, v);
    }
    trail.push_back("source: " + o->source + " failed validation: " + first_failure(v));
    if (!fallback) fallback = std::make_pair(*o, v);
    return std::nullopt;
  };

  if (bin.has_dwarf) {
    if (auto r = consider(offsets_from_dwarf(bin.path), "dwarf"))
      return finish(r->first, r->second);
  } else {
    trail.push_back("source: dwarf absent");
  }
  auto minor = go_minor(bin.go_version);
  if (minor && *minor >= kTableMinMinor && *minor <= kTableMaxMinor) {
    if (auto r = consider(offsets_from_table(*minor), "table")) return finish(r->first, r->second);
  } else {
    trail.push_back("source: no table for " +
                    (bin.go_version.empty() ? std::string("unknown version") : bin.go_version) +
                    (minor && *minor > kTableMaxMinor ? " (newer than the table)" : ""));
  }
  if (!can_validate) {
    if (fallback) return finish(fallback->first, fallback->second);
    return make_error(
        "no offsets: runtime.allp/allm unknown (cannot calibrate) and no static "
        "source; " +
        (trail.empty() ? std::string() : trail.back()));
  }
  std::vector<std::string> log;
  opts.log = &log;
  auto c = calibrate(mem, bin, load_bias, pid, tids, opts);
  if (!c) {
    trail.push_back("source: calibration failed: " + c.error().message);
    if (fallback) return finish(fallback->first, fallback->second);
    std::string all;
    for (auto& t : trail) all += (all.empty() ? "" : "; ") + t;
    return make_error(all);
  }
  Validation v = validate(mem, bin, *c, load_bias, pid, tids);
  trail.push_back(std::string("source: calibrated (") + (v.ok ? "validated" : "validation failed") +
                  ")");
  for (auto& l : log) trail.push_back("note: calibration: " + l);
  return finish(*c, v);
}

}  // namespace schedscope::go
