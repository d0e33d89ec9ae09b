#include "capacity/rules.h"

#include "capacity/thresholds.h"

#include <algorithm>
#include <cmath>

#include "util/strfmt.h"

namespace schedscope::capacity {

const char* question_name(Question q) {
  switch (q) {
    case Question::kRaiseGomaxprocs:
      return "raise_gomaxprocs";
    case Question::kShard:
      return "shard";
    case Question::kFewerGoroutines:
      return "fewer_goroutines";
    case Question::kCpuQuota:
      return "cpu_quota";
  }
  return "?";
}

const char* answer_name(Answer a) {
  switch (a) {
    case Answer::kUnknown:
      return "unknown";
    case Answer::kNo:
      return "no";
    case Answer::kLookElsewhere:
      return "look_elsewhere";
    case Answer::kYes:
      return "yes";
  }
  return "?";
}

namespace {
int percentile_of(const std::vector<uint64_t>& h, double q) {
  uint64_t n = 0;
  for (auto v : h) n += v;
  if (!n) return -1;
  double want = q * double(n);
  uint64_t acc = 0;
  for (size_t i = 0; i < h.size(); i++) {
    acc += h[i];
    if (double(acc) >= want) return int(i);
  }
  return int(h.size()) - 1;
}
int max_of(const std::vector<uint64_t>& h) {
  for (size_t i = h.size(); i-- > 0;)
    if (h[i]) return int(i);
  return -1;
}
void add_hist(std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.size() < b.size()) a.resize(b.size());
  for (size_t i = 0; i < b.size(); i++) a[i] += b[i];
}
std::string ms(double us) { return strfmt("%.1f ms", us / 1000); }
}  // namespace

bool Evidence::procs_known() const { return gomaxprocs > 0 && ticks >= kMinTicks; }

double Evidence::saturated_share() const {
  if (!ticks || gomaxprocs <= 0) return 0;
  uint64_t n = 0;
  for (size_t k = size_t(gomaxprocs); k < procs.size(); k++) n += procs[k];
  return double(n) / double(ticks);
}
int Evidence::procs_percentile(double q) const { return percentile_of(procs, q); }
int Evidence::procs_max() const { return max_of(procs); }
double Evidence::procs_mean() const {
  if (!ticks) return 0;
  double n = 0;
  for (size_t k = 0; k < procs.size(); k++) n += double(k) * double(procs[k]);
  return n / double(ticks);
}
uint64_t Evidence::runq_samples() const {
  uint64_t n = 0;
  for (auto v : runq) n += v;
  return n;
}
int Evidence::runq_percentile(double q) const { return percentile_of(runq, q); }
int Evidence::runq_max() const { return max_of(runq); }
double Evidence::throttled_share() const {
  return nr_periods ? double(nr_throttled) / double(nr_periods) : 0;
}

void accumulate(Evidence& a, const Evidence& b) {
  a.span_s += b.span_s;
  if (b.gomaxprocs) a.gomaxprocs = b.gomaxprocs;
  if (b.cpus) a.cpus = b.cpus;
  if (!b.go_version.empty()) a.go_version = b.go_version;
  a.ticks += b.ticks;
  add_hist(a.procs, b.procs);
  if (b.tick_hz > 0) a.tick_hz = b.tick_hz;
  a.reads_known = a.reads_known || b.reads_known;
  a.reads += b.reads;
  a.runq_known = a.runq_known || b.runq_known;
  add_hist(a.runq, b.runq);
  if (b.latency_known) {
    a.latency_p99_us = a.latency_known ? std::max(a.latency_p99_us, b.latency_p99_us) : b.latency_p99_us;
    a.latency_known = true;
    a.latency_samples += b.latency_samples;
  }
  if (b.census_known) {
    a.census_known = true;
    a.goroutines = b.goroutines;
    a.io_wait = b.io_wait;
    a.lock_wait = b.lock_wait;
  }
  if (b.cgroup_known) {
    a.cgroup_known = true;
    a.cgroup = b.cgroup;
    a.quota_known = b.quota_known;
    a.quota_cores = b.quota_cores;
    a.nr_periods += b.nr_periods;
    a.nr_throttled += b.nr_throttled;
    a.throttled_ms += b.throttled_ms;
  }
  // Shares are of their span: weight them by it.
  double total = a.span_s;
  if (total > 0) {
    double prev = total - b.span_s;
    a.gc_share = (a.gc_share * prev + b.gc_share * b.span_s) / total;
    a.syscalls_per_s = (a.syscalls_per_s * prev + b.syscalls_per_s * b.span_s) / total;
    if (b.cpu_cores >= 0)
      a.cpu_cores = a.cpu_cores >= 0 ? (a.cpu_cores * prev + b.cpu_cores * b.span_s) / total : b.cpu_cores;
  }
  a.stw_ms += b.stw_ms;
  a.kernel_rq_p99_us = std::max(a.kernel_rq_p99_us, b.kernel_rq_p99_us);
}

namespace {

std::string procs_line(const Evidence& e) {
  return strfmt("all %d P(s) running %.0f%% of the time (p50 %d, p99 %d, max %d of %d)",
                e.gomaxprocs, 100 * e.saturated_share(), e.procs_percentile(0.5),
                e.procs_percentile(0.99), e.procs_max(), e.gomaxprocs);
}

// Ps held (Go's view) whose threads get little CPU (the kernel's view): the host or the
// cgroup, not the number of Ps, holds the goroutines back.
bool starved(const Evidence& e) {
  return e.cpu_cores >= 0 && e.procs_known() && e.cpu_cores < kOnCpuShare * e.procs_mean();
}

// What else makes goroutines wait, from what is measured anyway. `from_raise`: asked by
// raise_gomaxprocs itself (busy Ps are then no cause to name).
std::string elsewhere(const Evidence& e, bool from_raise = false) {
  std::vector<std::string> c;
  if (starved(e))
    c.push_back(strfmt("the threads holding the Ps got %.2f CPUs for %.2f Ps running (the host's "
                       "CPUs or the quota)", e.cpu_cores, e.procs_mean()));
  if (!from_raise && e.procs_known() && e.saturated_share() >= kSaturatedShare)
    c.push_back(strfmt("every P busy %.0f%% of the time (see raise_gomaxprocs)",
                       100 * e.saturated_share()));
  if (e.quota_known && e.throttled_share() >= kThrottledShare)
    c.push_back(strfmt("CPU quota throttling (%.0f%% of periods)", 100 * e.throttled_share()));
  if (e.kernel_rq_p99_us >= 5000)
    c.push_back(strfmt("threads waiting for a CPU (kernel run-queue latency p99 %s)",
                       ms(e.kernel_rq_p99_us).c_str()));
  double stw_share = e.span_s > 0 ? e.stw_ms / (e.span_s * 1000) : 0;
  if (e.gc_share >= 0.25 || stw_share >= 0.05)
    c.push_back(strfmt("GC (assist + workers %.0f%% of GOMAXPROCS, stop-the-world %.1f ms)",
                       100 * e.gc_share, e.stw_ms));
  if (e.gomaxprocs > 0 && e.syscalls_per_s >= 1000.0 * e.gomaxprocs)
    c.push_back(strfmt("syscalls (%.0f blocking episodes/s)", e.syscalls_per_s));
  if (e.census_known && (e.lock_wait >= 100 || (e.goroutines > 0 && e.lock_wait >= 0.1 * e.goroutines)))
    c.push_back(strfmt("lock contention (%.0f goroutines waiting on a mutex or semaphore)", e.lock_wait));
  if (c.empty())
    return "not GC, syscalls, locks or CPU contention as measured; see the off-CPU and syscall "
           "tables";
  std::string s;
  for (const auto& x : c) s += (s.empty() ? "" : "; ") + x;
  return s;
}

Verdict raise(const Evidence& e) {
  Verdict v{Question::kRaiseGomaxprocs, Answer::kUnknown, "", ""};
  if (!e.gomaxprocs) {
    v.because = "GOMAXPROCS unknown (not a Go target, or the runtime offsets did not resolve)";
    return v;
  }
  if (!e.procs_known()) {
    v.because = strfmt("GOMAXPROCS %d; no Ps-running samples yet", e.gomaxprocs);
    return v;
  }
  if (e.saturated_share() < kSaturatedShare) {
    v.answer = Answer::kNo;
    v.because = procs_line(e);
    v.advice = "the Ps are not all busy: the scheduler is not the bottleneck";
    return v;
  }
  if (!e.latency_known || !e.latency_samples) {
    v.because = procs_line(e) + "; no goroutine scheduling latency";
    return v;
  }
  v.because = procs_line(e) + "; scheduling latency p99 " + ms(e.latency_p99_us);
  if (e.latency_p99_us > kLatencyHighUs && starved(e)) {
    v.answer = Answer::kLookElsewhere;
    v.advice = "the Ps are held but their threads wait for a CPU: more Ps would wait too; " +
               elsewhere(e, true);
  } else if (e.latency_p99_us > kLatencyHighUs) {
    v.answer = Answer::kYes;
    int room = e.cpus;
    if (e.quota_known && e.quota_cores > 0) room = std::min(room ? room : 1 << 20, int(std::floor(e.quota_cores)));
    if (room > e.gomaxprocs)
      v.advice = strfmt("runnable goroutines wait for a P: raise GOMAXPROCS towards %d (the CPUs "
                        "the target may use)", room);
    else
      v.advice = strfmt("runnable goroutines wait for a P and GOMAXPROCS already matches the %d "
                        "CPU(s) available: add CPU", std::max(room, 1));
  } else if (e.latency_p99_us < kLatencyLowUs) {
    v.answer = Answer::kNo;
    v.advice = "the Ps are busy but goroutines get one quickly: raising GOMAXPROCS would not help";
  } else {
    v.answer = Answer::kNo;
    v.advice = "latency between 1 and 10 ms: not decisive, watch it";
  }
  return v;
}

Verdict shard(const Evidence& e) {
  Verdict v{Question::kShard, Answer::kUnknown, "", ""};
  if (!e.runq_known) {
    v.because = "run queues not sampled (not a Go target, or the p.runqhead/runqtail offsets are unknown)";
    return v;
  }
  int mx = std::max(0, e.runq_max());
  int p99 = std::max(0, e.runq_percentile(0.99));
  std::string q = strfmt("longest run queue: max %d, p99 %d of 256 (%llu samples)", mx, p99,
                         static_cast<unsigned long long>(e.runq_samples()));
  if (e.latency_known && e.latency_samples)
    q += "; scheduling latency p99 " + ms(e.latency_p99_us);
  v.because = q;
  if (mx >= int(kRunqNear)) {
    v.answer = Answer::kYes;
    v.advice = "runnable goroutines pile up on one P faster than it runs them: spread the "
               "producing across goroutines or bound it (a worker pool); more goroutines from "
               "the same producer only queue more";
    return v;
  }
  if (mx < int(kRunqShort) && e.latency_known && e.latency_samples &&
      e.latency_p99_us > kLatencyHighUs) {
    v.answer = Answer::kLookElsewhere;
    v.advice = "queues are short yet goroutines wait: " + elsewhere(e);
    return v;
  }
  v.answer = Answer::kNo;
  v.advice = "no run queue near its capacity";
  return v;
}

Verdict fewer(const Evidence& e) {
  Verdict v{Question::kFewerGoroutines, Answer::kUnknown, "", ""};
  if (!e.census_known) {
    v.because = "no goroutine census (not a Go target, or the census is off)";
    return v;
  }
  double share = e.goroutines > 0 ? e.io_wait / e.goroutines : 0;
  v.because = strfmt("%.0f goroutines, %.0f (%.0f%%) parked in the netpoller (IO wait)",
                     e.goroutines, e.io_wait, 100 * share);
  if (e.goroutines >= kManyGoroutines && share >= kMostParked) {
    v.answer = Answer::kYes;
    v.advice = "one goroutine per connection waiting on the network: a bounded worker pool "
               "(or fewer, multiplexed connections) would do the same with less memory and GC work";
  } else {
    v.answer = Answer::kNo;
    v.advice = e.goroutines >= kManyGoroutines ? "many goroutines, but most are not parked on the network"
                                               : "the goroutine count is moderate";
  }
  return v;
}

Verdict quota(const Evidence& e) {
  Verdict v{Question::kCpuQuota, Answer::kUnknown, "", ""};
  if (!e.cgroup_known) {
    v.because = "the target's cgroup could not be read";
    return v;
  }
  if (!e.quota_known) {
    v.because = "no CPU quota on cgroup " + e.cgroup;
    return v;
  }
  double share = e.throttled_share();
  std::string gmp = e.gomaxprocs ? std::to_string(e.gomaxprocs) : std::string("unknown");
  v.because = strfmt("quota %.2f CPUs (cgroup %s), GOMAXPROCS %s, throttled in %.0f%% of %llu "
                     "periods (%.0f ms)",
                     e.quota_cores, e.cgroup.c_str(), gmp.c_str(), 100 * share,
                     static_cast<unsigned long long>(e.nr_periods), e.throttled_ms);
  bool above = e.gomaxprocs > 0 && double(e.gomaxprocs) > std::ceil(e.quota_cores - 1e-9);
  if (e.nr_periods && share >= kThrottledShare) {
    v.answer = Answer::kYes;
    if (above)
      v.advice = strfmt("GOMAXPROCS %d is above the quota: the Ps outrun it and the cgroup is "
                        "throttled; set GOMAXPROCS=%d (Go 1.25+ derives it from the quota unless "
                        "GOMAXPROCS is set) or raise the quota to %d CPUs",
                        e.gomaxprocs, std::max(1, int(std::ceil(e.quota_cores - 1e-9))), e.gomaxprocs);
    else
      v.advice = "the quota is spent before the period ends: raise it, or use less CPU";
    return v;
  }
  if (e.gomaxprocs > 0 && e.quota_cores >= e.gomaxprocs + kQuotaHeadroom && e.procs_known() &&
      e.saturated_share() >= kSaturatedShare && !starved(e) && e.latency_known && e.latency_samples &&
      e.latency_p99_us > kLatencyHighUs) {
    v.answer = Answer::kYes;
    v.because += "; " + procs_line(e) + ", scheduling latency p99 " + ms(e.latency_p99_us);
    v.advice = strfmt("the quota allows %.1f CPUs but only %d Ps run goroutines: raise GOMAXPROCS "
                      "to %d",
                      e.quota_cores, e.gomaxprocs, int(std::floor(e.quota_cores)));
    return v;
  }
  v.answer = Answer::kNo;
  v.advice = above ? "GOMAXPROCS is above the quota, but the cgroup is rarely throttled"
                   : "the quota fits";
  return v;
}

}  // namespace

Verdict judge(Question q, const Evidence& e) {
  switch (q) {
    case Question::kRaiseGomaxprocs:
      return raise(e);
    case Question::kShard:
      return shard(e);
    case Question::kFewerGoroutines:
      return fewer(e);
    case Question::kCpuQuota:
      return quota(e);
  }
  return {};
}

Verdict decide(Question q, const std::vector<std::pair<double, Verdict>>& intervals,
               const Evidence& summed) {
  double t[4] = {0, 0, 0, 0}, known = 0, total = 0;
  for (const auto& [s, iv] : intervals) {
    t[int(iv.answer)] += s;
    total += s;
    if (iv.answer != Answer::kUnknown) known += s;
  }
  auto latest_advice = [&](Answer a) {
    for (auto it = intervals.rbegin(); it != intervals.rend(); ++it)
      if (it->second.answer == a) return it->second.advice;
    return std::string();
  };
  Verdict sv = judge(q, summed);
  Verdict v{q, Answer::kUnknown, sv.because, ""};
  for (Answer a : {Answer::kYes, Answer::kLookElsewhere}) {
    double ta = t[int(a)];
    if (ta >= kEvidenceS - 1e-6 && ta >= kAgreeShare * known - 1e-6) {
      v.answer = a;
      v.because += strfmt(" [%s in %.0f of %.0f s]", answer_name(a), ta, total);
      v.advice = sv.answer == a ? sv.advice : latest_advice(a);
      return v;
    }
  }
  if (known >= kEvidenceS - 1e-6) {
    v.answer = Answer::kNo;
    double ty = t[int(Answer::kYes)] + t[int(Answer::kLookElsewhere)];
    if (sv.answer == Answer::kNo) {
      v.advice = sv.advice;
    } else {
      v.advice = strfmt("not sustained: %.0f of %.0f s pointed elsewhere than no", ty, known);
    }
    return v;
  }
  v.advice = strfmt("%.0f s of the %.0f s of evidence needed so far", known, kEvidenceS);
  if (sv.answer == Answer::kUnknown) v.advice = "";
  return v;
}

}  // namespace schedscope::capacity
