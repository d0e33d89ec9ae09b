// The agent's pure parts: discovery filters and the container/pod labels of cgroup
// paths, the Prometheus series one target's frames add up to (alerts, Ps, threads,
// bounded syscall names whose counters never go back), the text format, alerts log
// rotation and the --listen parser.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "agent/agent.h"
#include "agent/alerts_log.h"
#include "agent/discovery.h"
#include "agent/metrics.h"
#include "agent/opt_in.h"
#include <CLI/CLI.hpp>
#include "synthetic.h"

using namespace schedscope;
using namespace schedscope::agent;

TEST(AgentDiscovery, ContainerAndPodFromCgroupPaths) {
  auto k = container_of(
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f3c9a7e_1b2d_4c5e_8f90_123456789abc.slice/"
      "cri-containerd-4f2a9c1e7b3d5a6f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f.scope");
  EXPECT_EQ(k.pod, "0f3c9a7e-1b2d-4c5e-8f90-123456789abc");
  EXPECT_EQ(k.container, "4f2a9c1e7b3d");
  auto d = container_of("/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope");
  EXPECT_EQ(d.container, "0123456789ab");
  EXPECT_EQ(d.pod, "");
  auto v1 = container_of("/docker/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210");
  EXPECT_EQ(v1.container, "fedcba987654");
  auto cgfs = container_of("/kubepods/besteffort/pod11111111-2222-3333-4444-555555555555/"
                           "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd");
  EXPECT_EQ(cgfs.pod, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(cgfs.container, "abcdefabcdef");
  auto none = container_of("/user.slice/user-1000.slice/session-2.scope");
  EXPECT_EQ(none.container, "");
  EXPECT_EQ(none.pod, "");
}

TEST(AgentDiscovery, CgroupPathPrefersTheUnifiedHierarchy) {
  EXPECT_EQ(cgroup_path("0::/system.slice/ssh.service\n"), "/system.slice/ssh.service");
  EXPECT_EQ(cgroup_path("12:cpu,cpuacct:/docker/abc\n0::/docker/abc2\n"), "/docker/abc2");
  EXPECT_EQ(cgroup_path("12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc\n"), "/docker/abc");
  EXPECT_EQ(cgroup_path(""), "");
}

TEST(AgentDiscovery, FiltersKeepWhatTheGlobsSay) {
  ProcEntry p{42, "/srv/bin/my-service", "my-service", "/system.slice/my.service"};
  EXPECT_TRUE(keep({}, p));
  EXPECT_TRUE(keep({{"*/my-service"}, {}, {}, {}}, p));
  EXPECT_FALSE(keep({{"*/other"}, {}, {}, {}}, p));
  EXPECT_TRUE(keep({{}, {"my-*"}, {}, {}}, p));
  EXPECT_FALSE(keep({{}, {"prometheus"}, {}, {}}, p));
  EXPECT_TRUE(keep({{}, {}, {"/system.slice/*"}, {}}, p));
  EXPECT_FALSE(keep({{}, {}, {"/kubepods*"}, {}}, p));
  EXPECT_FALSE(keep({{}, {}, {}, {"my-service"}}, p)) << "exclude by comm";
  EXPECT_FALSE(keep({{}, {}, {}, {"/srv/*"}}, p)) << "exclude by exe";
  EXPECT_FALSE(keep({{"*/my-service"}, {}, {}, {"*"}}, p)) << "exclude wins";
}

TEST(AgentDiscovery, ListsThisMachinesProcessesButNotItself) {
  auto procs = list_processes(int(getpid()));
  bool parent = false;
  for (auto& p : procs) {
    EXPECT_NE(p.pid, int(getpid()));
    EXPECT_FALSE(p.exe.empty());
    if (p.pid == int(getppid())) parent = true;
  }
  EXPECT_TRUE(parent);
  ProcEntry me{int(getpid()), "", "", ""};
  read_details(me);
  EXPECT_FALSE(me.comm.empty());
  EXPECT_EQ(me.cgroup.front(), '/');
}

TEST(AgentDiscovery, RecognisesGoByTheBinaryAndRemembersIt) {
  GoRecognizer r;
  auto self = r.check(int(getpid()));  // the unit tests are C++
  EXPECT_FALSE(self.is_go);
  EXPECT_EQ(self.note, "not a Go program");
  EXPECT_EQ(r.cached(), 1u);
  (void)r.check(int(getpid()));
  EXPECT_EQ(r.cached(), 1u);
}

namespace {
model::Frame frame_with(int pid, std::vector<model::SyscallRow> rows) {
  model::Frame f;
  f.target.pid = pid;
  f.target.comm = "svc";
  f.target.exe = "/bin/svc";
  f.target.go_version = "go1.22.1";
  f.syscalls = std::move(rows);
  return f;
}
model::SyscallRow row(int nr, const char* name, uint64_t total, double ms) {
  model::SyscallRow r;
  r.nr = nr;
  r.name = name;
  r.total_count = total;
  r.time_ms = ms;
  return r;
}
}  // namespace

TEST(AgentMetrics, SyscallNamesAreBoundedAndCountersNeverGoBack) {
  TargetSeries s;
  // Interval 1: read and futex in the top 2; nanosleep summed in "other".
  update(s, frame_with(7, {row(0, "read", 100, 50), row(202, "futex", 40, 10), row(35, "nanosleep", 5, 1)}), {}, 2);
  EXPECT_EQ(s.blocking_syscalls_total["read"], 100u);
  EXPECT_EQ(s.blocking_syscalls_total["futex"], 40u);
  EXPECT_EQ(s.blocking_syscalls_total["other"], 5u);
  EXPECT_EQ(s.blocking_syscalls_total.count("nanosleep"), 0u);
  // Interval 2: nanosleep outgrows both, but the names stay: its growth goes to "other".
  update(s, frame_with(7, {row(0, "read", 110, 5), row(202, "futex", 41, 1), row(35, "nanosleep", 500, 20)}), {}, 2);
  EXPECT_EQ(s.blocking_syscalls_total["read"], 110u);
  EXPECT_EQ(s.blocking_syscalls_total["futex"], 41u);
  EXPECT_EQ(s.blocking_syscalls_total["other"], 500u);
  EXPECT_EQ(s.blocking_syscalls_total.size(), 3u);
  EXPECT_DOUBLE_EQ(s.blocking_syscall_seconds_total["read"], 0.055);
  EXPECT_DOUBLE_EQ(s.blocking_syscall_seconds_total["other"], 0.021);
  // A syscall absent from a frame keeps its counter.
  update(s, frame_with(7, {}), {}, 2);
  EXPECT_EQ(s.blocking_syscalls_total["read"], 110u);
}

TEST(AgentMetrics, AlertsActiveAndTotalsPerKind) {
  TargetSeries s;
  auto f = frame_with(9, {});
  detect::Alert stuck;
  stuck.kind = "stuck_p";
  stuck.syscall = "read";
  stuck.active = true;
  detect::Alert cleared;
  cleared.kind = "syscall_storm";
  cleared.active = false;
  f.alerts = {stuck, cleared};
  update(s, f, {stuck, cleared, cleared}, 10);
  EXPECT_TRUE(s.alert_active["stuck_p"]);
  EXPECT_FALSE(s.alert_active["syscall_storm"]);
  EXPECT_FALSE(s.alert_active["gc_stall"]);
  EXPECT_EQ(s.alert_active.size(), alert_kinds().size());
  EXPECT_EQ(s.alert_syscall["stuck_p"], "read");
  EXPECT_EQ(s.alerts_total["stuck_p"], 1u);
  EXPECT_EQ(s.alerts_total["syscall_storm"], 2u);
  EXPECT_EQ(s.alerts_total["thread_limit"], 0u);
  // The next frame without it: inactive, no syscall series.
  update(s, frame_with(9, {}), {stuck, cleared, cleared}, 10);
  EXPECT_FALSE(s.alert_active["stuck_p"]);
  EXPECT_TRUE(s.alert_syscall.empty());
}

TEST(AgentMetrics, PsThreadsAndLatencyHistogram) {
  using namespace schedscope::synthetic;
  TargetSeries s;
  auto f = frame_with(11, {});
  go::SchedSample g;
  g.gomaxprocs = 3;
  g.ps = {P(0, 1, 0, 11, 1, 1, 1), P(1, 0, -1, 0, 0, 1, 1), P(2, 2, 1, 12, 2, 1, 1)};
  f.go = g;
  model::ThreadRow a, b, c;
  a.state = model::ThreadState::kRunning;
  b.state = model::ThreadState::kSleeping;
  c.state = model::ThreadState::kExited;
  f.threads = {a, b, b, c};
  f.creations_total = 4;
  f.go_latency.available = true;
  f.go_latency.lat.buckets = {{1000, 2000, 5}, {200'000, 400'000, 2}, {2'000'000'000, UINT64_MAX, 1}};
  update(s, f, {}, 10);
  EXPECT_EQ(s.gomaxprocs, 3);
  EXPECT_EQ(s.ps["running"], 1);
  EXPECT_EQ(s.ps["idle"], 1);
  EXPECT_EQ(s.ps["syscall"], 1);
  EXPECT_EQ(s.threads["running"], 1);
  EXPECT_EQ(s.threads["sleeping"], 2);
  EXPECT_EQ(s.threads.count("exited"), 0u);
  EXPECT_EQ(s.threads_created_total, 4u);
  // 1-2 us -> le 5e-6; 200-400 us -> le 5e-4; beyond 2 s -> +Inf.
  EXPECT_EQ(s.latency_buckets[1], 5u);
  EXPECT_EQ(s.latency_buckets[7], 2u);
  EXPECT_EQ(s.latency_buckets.back(), 1u);
  EXPECT_EQ(s.latency_count, 8u);

  std::string text = render({s}, AgentSeries{});
  EXPECT_NE(text.find("schedscope_ps{pid=\"11\",status=\"running\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("schedscope_goroutine_sched_latency_seconds_bucket{pid=\"11\",le=\"5e-06\"} 5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("schedscope_goroutine_sched_latency_seconds_bucket{pid=\"11\",le=\"0.0005\"} 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("schedscope_goroutine_sched_latency_seconds_bucket{pid=\"11\",le=\"+Inf\"} 8\n"),
            std::string::npos);
  EXPECT_NE(text.find("schedscope_goroutine_sched_latency_seconds_count{pid=\"11\"} 8\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE schedscope_goroutine_sched_latency_seconds histogram\n"), std::string::npos);
  // No census, no GC: those families are left out, not shown empty.
  EXPECT_EQ(text.find("schedscope_goroutines"), std::string::npos);
  EXPECT_EQ(text.find("schedscope_gc_"), std::string::npos);
}

TEST(AgentMetrics, TextFormatEscapesLabelsAndListsTheAgentsOwn) {
  TargetSeries s;
  update(s, frame_with(5, {}), {}, 10);
  s.exe = "/opt/we\"ird\\path\nx";
  AgentSeries ag;
  ag.targets = {{"observed", 1}, {"unobservable", 2}};
  ag.drops_total = 3;
  ag.resident_memory_bytes = 4096;
  std::string text = render({s}, ag);
  EXPECT_NE(text.find("exe=\"/opt/we\\\"ird\\\\path\\nx\""), std::string::npos) << text;
  EXPECT_NE(text.find("schedscope_agent_targets{state=\"unobservable\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("schedscope_agent_drops_total 3\n"), std::string::npos);
  EXPECT_NE(text.find("schedscope_agent_resident_memory_bytes 4096\n"), std::string::npos);
  // Every sample line is NAME{...} VALUE or NAME VALUE; every family has HELP and TYPE.
  std::istringstream in(text);
  std::string line, family;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    EXPECT_EQ(line.rfind(family, 0), 0u) << line << " outside its family " << family;
    EXPECT_NE(line.rfind(' '), std::string::npos);
    samples++;
  }
  EXPECT_GT(samples, 20);
  // Without targets only the agent's own series remain.
  std::string empty = render({}, ag);
  EXPECT_EQ(empty.find("pid="), std::string::npos);
}

TEST(AgentAlertsLog, OneJsonLinePerAlertRotatedPastItsCap) {
  char dir[] = "/tmp/ss-alerts-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/alerts.jsonl";
  auto log = AlertsLog::open(path, 600);
  ASSERT_TRUE(log.ok()) << log.error().message;
  detect::Alert a;
  a.kind = "stuck_p";
  a.syscall = "read";
  a.message = "P1 stuck";
  AlertOrigin o{123, "/bin/svc", "svc", "abc", ""};
  for (int i = 0; i < 6; i++) (*log)->write(o, a, 1700000000.5 + i);
  EXPECT_EQ((*log)->lines(), 6u);
  EXPECT_EQ((*log)->last_error(), "");
  int lines = 0;
  for (const char* f : {"", ".1"}) {
    std::ifstream in(path + f);
    ASSERT_TRUE(in.good()) << path << f;
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      EXPECT_EQ(j["pid"], 123);
      EXPECT_EQ(j["container"], "abc");
      EXPECT_EQ(j["alert"]["kind"], "stuck_p");
      EXPECT_EQ(j["alert"]["syscall"], "read");
      lines++;
    }
  }
  // Rotation keeps one old file: the lines still there are the newest ones.
  EXPECT_GE(lines, 2);
  EXPECT_LE(lines, 6);
  std::ifstream cur(path);
  cur.seekg(0, std::ios::end);
  EXPECT_LE(uint64_t(cur.tellg()), 600u);
  std::remove(path.c_str());
  std::remove((path + ".1").c_str());
  rmdir(dir);
}

TEST(AgentListen, ParsesAddressAndPort) {
  auto a = parse_listen("127.0.0.1:9464");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 9464);
  auto any = parse_listen(":9464");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->first, "0.0.0.0");
  auto v6 = parse_listen("[::1]:80");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  EXPECT_FALSE(parse_listen("9464").ok());
  EXPECT_FALSE(parse_listen("host:0").ok());
  EXPECT_FALSE(parse_listen("host:99999").ok());
  EXPECT_FALSE(parse_listen("host:9x").ok());
}

namespace {
// A target with every section filled: Go sample, census, latency, GC, 30 syscalls.
TargetSeries full_target(int pid) {
  using namespace schedscope::synthetic;
  TargetSeries s;
  auto f = frame_with(pid, {});
  for (int i = 0; i < 30; i++) f.syscalls.push_back(row(i, ("sc" + std::to_string(i)).c_str(), uint64_t(100 - i), 1));
  go::SchedSample g;
  g.gomaxprocs = 2;
  g.ps = {P(0, 1, 0, pid, 1, 1, 1), P(1, 0, -1, 0, 0, 1, 1)};
  f.go = g;
  f.go_latency.available = true;
  f.go_latency.lat.buckets = {{1000, 2000, 5}};
  gc::Census c;
  c.by_status[2] = 1;
  c.by_status[4] = 9;
  f.census = c;
  f.gc.enabled = true;
  f.gc.mmu_1ms = 0.5;
  f.gc.mmu_10ms = 0.7;
  f.gc.mmu_100ms = 0.9;
  model::ThreadRow r;
  f.threads = {r};
  update(s, f, {}, 10);
  return s;
}
}  // namespace

TEST(AgentMetrics, EveryFamilyIsDocumentedAndTheSeriesPerTargetAreAsDocumented) {
  AgentSeries ag;
  ag.targets = {{"observed", 1}, {"starting", 0}, {"kernel_only", 0}, {"unobservable", 0}};
  std::string text = render({full_target(77)}, ag);
  std::set<std::string> families;
  int per_target = 0, agent_own = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) families.insert(line.substr(7, line.find(' ', 7) - 7));
    if (line[0] == '#') continue;
    (line.find("pid=\"77\"") != std::string::npos ? per_target : agent_own)++;
  }
  // docs/agent.md: "86 series per target with the defaults" and "the agent's 12".
  EXPECT_EQ(per_target, 86) << text;
  EXPECT_EQ(agent_own, 12);
  // An active alert naming a syscall adds its one series.
  TargetSeries alerting = full_target(78);
  alerting.alert_active["stuck_p"] = true;
  alerting.alert_syscall["stuck_p"] = "read";
  std::string more = render({alerting}, ag);
  EXPECT_NE(more.find("schedscope_alert_syscall_info{pid=\"78\",kind=\"stuck_p\",syscall=\"read\"} 1\n"),
            std::string::npos);
  std::istringstream in2(more);
  while (std::getline(in2, line))
    if (line.rfind("# TYPE ", 0) == 0) families.insert(line.substr(7, line.find(' ', 7) - 7));
  std::ifstream doc(std::string(SCHEDSCOPE_SOURCE_DIR) + "/docs/agent.md");
  std::stringstream ds;
  ds << doc.rdbuf();
  std::set<std::string> documented;
  std::istringstream dl(ds.str());
  while (std::getline(dl, line))
    if (line.rfind("| `schedscope_", 0) == 0) documented.insert(line.substr(3, line.find('`', 3) - 3));
  // A target with every per-target option on (--all-syscalls-for, --goroutines-for,
  // --annotations-for) adds their families, as documented: 2 syscalls here, each 11
  // buckets + +Inf + _sum + _count; 2 goroutine counters; 3 annotation counters.
  TargetSeries opted = full_target(79);
  {
    auto f = frame_with(79, {});
    f.target.all_syscalls = true;
    auto a = row(0, "read", 3, 1);
    a.hist_total[12] = 3;
    a.total_ns = 15000;
    auto b = row(1, "write", 1, 1);
    b.hist_total[20] = 1;
    b.total_ns = 1500000;
    f.syscalls = {a, b};
    f.goroutines.enabled = true;
    f.goroutines.created_total = 5;
    annotations::Stats st;
    st.asked = true;
    f.annotations = st;
    update(opted, f, {}, 10);
  }
  std::string with_opts = render({opted}, ag);
  std::istringstream in3(with_opts);
  int opt_series = 0;
  while (std::getline(in3, line)) {
    if (line.rfind("# TYPE ", 0) == 0) families.insert(line.substr(7, line.find(' ', 7) - 7));
    if (line.rfind("schedscope_syscall_latency_seconds", 0) == 0 || line.rfind("schedscope_goroutines_", 0) == 0 ||
        line.rfind("schedscope_annotation_", 0) == 0)
      opt_series++;
  }
  EXPECT_EQ(opt_series, 2 * 14 + 2 + 3) << with_opts;
  EXPECT_EQ(families, documented);
}

TEST(AgentOptIn, GlobsMatchTheExecutablePathOrTheComm) {
  ProcEntry p{1, "/srv/api/bin/my-service", "my-service", "/system.slice/x.service"};
  EXPECT_TRUE(matches_any({"*/my-service"}, p)) << "exe path";
  EXPECT_TRUE(matches_any({"my-*"}, p)) << "comm";
  EXPECT_TRUE(matches_any({"nope", "/srv/*"}, p)) << "any of several; * crosses /";
  EXPECT_FALSE(matches_any({"*/other"}, p));
  EXPECT_FALSE(matches_any({"/system.slice/*"}, p)) << "not the cgroup";
  EXPECT_FALSE(matches_any({}, p)) << "nothing asked: off";
  OptIn o;
  o.all_syscalls = {"*/my-service"};
  o.goroutines = {"prometheus"};
  o.annotations = {"my-serv?ce"};
  auto w = wanted(o, p);
  EXPECT_TRUE(w.all_syscalls);
  EXPECT_FALSE(w.goroutines);
  EXPECT_TRUE(w.annotations);
  EXPECT_FALSE(OptIn{}.any());
  EXPECT_TRUE(o.any());
}

TEST(AgentOptIn, FlagsAreRepeatableAndRepeatTopsHelp) {
  CLI::App app{"t"};
  OptIn o;
  add_opt_in_flags(app, o);
  std::vector<std::string> args = {"t", "--all-syscalls-for", "*/a", "--all-syscalls-for", "b",
                                   "--goroutines-for", "c", "--annotations-for", "*/d"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  app.parse(int(argv.size()), argv.data());
  EXPECT_EQ(o.all_syscalls, (std::vector<std::string>{"*/a", "b"}));
  EXPECT_EQ(o.goroutines, (std::vector<std::string>{"c"}));
  EXPECT_EQ(o.annotations, (std::vector<std::string>{"*/d"}));
  // --help teaches each flag with the help of top's flag it stands for.
  std::string help = app.help();
  for (const auto& f : opt_in_flags()) EXPECT_NE(help.find(f.name), std::string::npos) << f.name;
  EXPECT_NE(help.find("trace every syscall (raw_syscalls)"), std::string::npos) << help;
  EXPECT_NE(help.find("count goroutines created by start function"), std::string::npos) << help;
  EXPECT_NE(help.find("runtime/trace tasks, regions and logs"), std::string::npos) << help;
  CLI::App bad{"t"};
  OptIn o2;
  add_opt_in_flags(bad, o2);
  std::vector<std::string> args2 = {"t", "--goroutines-for"};
  std::vector<char*> argv2;
  for (auto& a : args2) argv2.push_back(a.data());
  EXPECT_THROW(bad.parse(int(argv2.size()), argv2.data()), CLI::ParseError) << "a glob is required";
}

TEST(AgentMetrics, AllSyscallsHistogramsAreExactAndBoundedAndBlockingSeriesStay) {
  TargetSeries s;
  auto f = frame_with(5, {});
  f.target.all_syscalls = true;
  // Every call: read 10 calls in [2^12, 2^13) ns (-> le 16384e-9), 2 in [2^20, 2^21)
  // (-> le 4194304e-9); futex 1 in bucket 0 (-> le 1024e-9); nanosleep named past the cap.
  auto rd = row(0, "read", 12, 1);
  rd.hist_total[12] = 10;
  rd.hist_total[20] = 2;
  rd.total_ns = 5'000'000;
  auto fx = row(202, "futex", 1, 0);
  fx.hist_total[0] = 1;
  fx.total_ns = 1;
  auto ns = row(35, "nanosleep", 0, 0);
  f.syscalls = {rd, fx};
  // The blocking table of a -S frame stays in the blocking series.
  f.blocking_syscalls = {row(0, "read", 2, 4)};
  update(s, f, {}, 1);
  ASSERT_TRUE(s.all_syscalls);
  EXPECT_EQ(s.blocking_syscalls_total["read"], 2u);
  EXPECT_EQ(s.blocking_syscalls_total.count("futex"), 0u);
  ASSERT_EQ(s.syscall_latency.count("read"), 1u);
  const auto& h = s.syscall_latency["read"];
  EXPECT_EQ(h.count, 12u);
  EXPECT_EQ(h.buckets[2], 10u);  // le 16384e-9: [4096, 8192) ns
  EXPECT_EQ(h.buckets[6], 2u);   // le 4194304e-9: [2^20, 2^21) ns
  EXPECT_DOUBLE_EQ(h.sum, 0.005);
  EXPECT_EQ(s.syscall_latency["other"].buckets[0], 1u) << "futex past the cap of 1 name";
  // Next interval: only the growth is added; a new syscall goes to "other" too.
  rd.hist_total[12] = 13;
  rd.total_ns = 5'000'300;
  ns.hist_total[30] = 1;
  ns.total_ns = 2'000'000'000;
  f.syscalls = {rd, ns};
  update(s, f, {}, 1);
  EXPECT_EQ(s.syscall_latency["read"].count, 15u);
  EXPECT_EQ(s.syscall_latency["read"].buckets[2], 13u);
  EXPECT_EQ(s.syscall_latency["other"].buckets.back(), 1u) << "[2^30, 2^31) ns: only +Inf holds it";
  EXPECT_EQ(s.syscall_latency.size(), 2u);
  std::string text = render({s}, AgentSeries{});
  EXPECT_NE(text.find("schedscope_syscall_latency_seconds_bucket{pid=\"5\",syscall=\"read\",le=\"1.6384e-05\"} 13\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("schedscope_syscall_latency_seconds_count{pid=\"5\",syscall=\"read\"} 15\n"),
            std::string::npos) << text;
  // A target without -S: no such series.
  TargetSeries plain;
  update(plain, frame_with(6, {row(0, "read", 3, 1)}), {}, 10);
  EXPECT_FALSE(plain.all_syscalls);
  EXPECT_EQ(render({plain}, AgentSeries{}).find("schedscope_syscall_latency_seconds"), std::string::npos);
}
