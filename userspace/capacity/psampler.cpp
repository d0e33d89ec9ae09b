#include "capacity/psampler.h"

#include "capacity/thresholds.h"

#include <pthread.h>
#include <sys/uio.h>
#include <time.h>

#include <algorithm>
#include <cmath>

namespace schedscope::capacity {

uint64_t measure(const std::vector<uint32_t>& status, const std::vector<uint32_t>& runq,
                 bool runq_known) {
  uint32_t k = 0, longest = 0;
  for (size_t i = 0; i < status.size(); i++) {
    if ((status[i] & ~0x1000u) == kPRunning) k++;
    if (i < runq.size()) longest = std::max(longest, runq[i]);
  }
  return uint64_t(k) | (uint64_t(runq_known ? longest : 0) << 32);
}

void add(ss_cap_counts& c, uint64_t m, bool runq_known, uint32_t weight) {
  c.ticks += weight;
  c.procs[std::min<uint64_t>(m & 0xffffffffu, SS_CAP_PROCS - 1)] += weight;
  if (runq_known) c.runq[std::min<uint64_t>(m >> 32, SS_CAP_RUNQ - 1)] += weight;
}

uint64_t tally(const std::vector<uint32_t>& status, const std::vector<uint32_t>& runq,
               bool runq_known, ss_cap_counts& c, uint32_t weight) {
  uint64_t m = measure(status, runq, runq_known);
  add(c, m, runq_known, weight);
  return m;
}

uint64_t stretch_key(uint64_t m, size_t nps) {
  const uint64_t longest = m >> 32;
  const uint64_t queue = longest >= kRunqNear ? 2 : longest >= kRunqShort ? 1 : 0;
  return ((m & 0xffffffffu) >= nps && nps > 0 ? 1u : 0u) | (queue << 32);
}

void add_gap(ss_cap_counts& c, uint64_t prev, uint64_t cur, size_t nps, bool runq_known,
             uint32_t weight) {
  if (weight > 1 && stretch_key(prev, nps) != stretch_key(cur, nps)) {
    add(c, prev, runq_known, weight / 2);
    add(c, cur, runq_known, weight - weight / 2);
  } else {
    add(c, cur, runq_known, weight);
  }
}

uint32_t Stretch::next(uint64_t key, uint32_t weight) {
  if (key != last_ || (key >> 32) != 0) {  // a change, or a long queue: every period
    last_ = key;
    same_ = 0;
    stretch_ = 1;
    return stretch_;
  }
  same_ += weight ? weight : stretch_;
  const uint64_t need =
      stretch_ < kShortStretch ? uint64_t(kStableReads) * stretch_ : kLongStableSlots;
  if (same_ >= need && stretch_ < kMaxStretch) {
    same_ = 0;
    stretch_ = std::min(stretch_ * 2, kMaxStretch);
  }
  return stretch_;
}

uint32_t next_gap(Stretch& s, uint32_t floor, uint64_t key, uint32_t weight) {
  return std::max(s.next(key, weight), floor);
}

uint32_t budget_floor(double cost_ns_per_wakeup, double share, uint64_t period_ns,
                      uint32_t max_floor) {
  if (!(cost_ns_per_wakeup > 0) || !(share > 0) || period_ns == 0) return 1;
  // cost / (floor x period) <= share
  double f = std::ceil(cost_ns_per_wakeup / (share * double(period_ns)));
  return uint32_t(std::clamp(f, 1.0, double(std::max<uint32_t>(max_floor, 1))));
}

uint32_t Budget::close(uint64_t wall_ns, uint64_t cpu_ns) {
  if (started_ && n_ > 0 && cpu_ns >= c0_) {
    double cost = double(cpu_ns - c0_) / double(n_);
    cost_ns_ = last_cost_ns_ > 0 ? (last_cost_ns_ + cost) / 2 : cost;
    last_cost_ns_ = cost;
    floor_ = budget_floor(cost_ns_, share_, period_ns_);
  }
  started_ = true;
  w0_ = wall_ns;
  c0_ = cpu_ns;
  n_ = 0;
  return floor_;
}

PSampler::PSampler(const PSamplerConfig& c) : cfg_(c) {
  runq_ = c.p_runqhead && c.p_runqtail == c.p_runqhead + 4;  // read together
  th_ = std::thread([this] { run(); });
}

PSampler::~PSampler() {
  stop_ = true;
  if (th_.joinable()) th_.join();
}

ss_cap_counts PSampler::counts() const {
  std::lock_guard<std::mutex> lk(mu_);
  return counts_;
}

uint64_t PSampler::reads() const {
  std::lock_guard<std::mutex> lk(mu_);
  return reads_;
}

bool PSampler::read(uint64_t addr, void* buf, size_t len) const {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_readv(cfg_.pid, &local, 1, &remote, 1, 0) == ssize_t(len);
}

bool PSampler::refresh_ps() {
  uint64_t hdr[2] = {0, 0};  // allp: data pointer, len
  if (!read(cfg_.allp, hdr, sizeof hdr)) return false;
  if (hdr[1] == 0 || hdr[1] > 4096 || !hdr[0]) return false;
  ps_.assign(size_t(hdr[1]), 0);
  return read(hdr[0], ps_.data(), ps_.size() * 8);
}

namespace {
uint64_t ns_of(const timespec& t) { return uint64_t(t.tv_sec) * 1'000'000'000 + uint64_t(t.tv_nsec); }
}  // namespace

void PSampler::run() {
  pthread_setname_np(pthread_self(), "ss-psampler");
  timespec next{};
  clock_gettime(CLOCK_MONOTONIC, &next);
  uint64_t n = 0;
  std::vector<uint32_t> status, runq;
  std::vector<uint32_t> headtail;
  std::vector<uint64_t> runnext;
  std::vector<iovec> local, remote;
  Stretch stretch;
  Budget budget(kCpuBudget, cfg_.period_ns);
  uint32_t weight = 1;  // the periods this read stands for
  uint64_t prev = 0;    // the previous read's measure()
  bool have_prev = false;
  bool have = false;
  while (!stop_) {
    uint64_t key = 0;
    bool read_ok = false;
    // allp changes only when GOMAXPROCS does: its pointers are re-read every 100 reads.
    if (!have || n % 100 == 0) have = refresh_ps();
    n++;
    if (have) {
      size_t np = ps_.size();
      status.assign(np, 0);
      headtail.assign(2 * np, 0);
      runnext.assign(np, 0);
      local.clear();
      remote.clear();
      for (size_t i = 0; i < np; i++) {
        local.push_back({&status[i], 4});
        remote.push_back({reinterpret_cast<void*>(ps_[i] + cfg_.p_status), 4});
        if (runq_) {  // runqhead and runqtail are adjacent uint32s
          local.push_back({&headtail[2 * i], 8});
          remote.push_back({reinterpret_cast<void*>(ps_[i] + cfg_.p_runqhead), 8});
          if (cfg_.p_runnext) {
            local.push_back({&runnext[i], 8});
            remote.push_back({reinterpret_cast<void*>(ps_[i] + cfg_.p_runnext), 8});
          }
        }
      }
      size_t want = 0;
      for (const auto& v : local) want += v.iov_len;
      // At most IOV_MAX (1024) vectors a call: 341 Ps with everything; more are chunked.
      bool ok = true;
      size_t got = 0;
      for (size_t off = 0; off < local.size() && ok; off += 1023) {
        size_t cnt = std::min<size_t>(1023, local.size() - off);
        ssize_t r = process_vm_readv(cfg_.pid, &local[off], cnt, &remote[off], cnt, 0);
        ok = r > 0;
        if (ok) got += size_t(r);
      }
      if (ok && got == want) {
        runq.assign(np, 0);
        for (size_t i = 0; i < np && runq_; i++)
          runq[i] = (headtail[2 * i + 1] - headtail[2 * i]) + (runnext[i] ? 1 : 0);
        uint64_t m = measure(status, runq, runq_);
        {
          std::lock_guard<std::mutex> lk(mu_);
          if (have_prev) {
            add_gap(counts_, prev, m, np, runq_, weight);
          } else {
            add(counts_, m, runq_, weight);
          }
          reads_++;
        }
        prev = m;
        have_prev = true;
        key = stretch_key(m, np);
        read_ok = true;
      } else {
        have = false;
        have_prev = false;
      }
    } else {
      have_prev = false;
    }
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    budget.woke();
    if (budget.due(ns_of(now))) {
      timespec cpu{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
      budget.close(ns_of(now), ns_of(cpu));
    }
    // The next read stands for the whole gap.
    weight = read_ok ? next_gap(stretch, budget.floor(), key, weight) : budget.floor();
    next.tv_nsec += long(cfg_.period_ns * weight);
    while (next.tv_nsec >= 1'000'000'000) {
      next.tv_nsec -= 1'000'000'000;
      next.tv_sec++;
    }
    // Behind (this thread waited for a CPU): skip the missed samples rather than take them
    // all at once; the rate achieved is what the counts say (samples per interval).
    if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
      next = now;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
  }
}

}  // namespace schedscope::capacity
