#include "agent/serve.h"

#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "app/observe.h"
#include "app/target.h"

namespace schedscope::agent {

int cmd_agent(const AgentOptions& opt) {
  auto where = parse_listen(opt.listen);
  if (!where) {
    fprintf(stderr, "schedscope agent: %s\n", where.error().message.c_str());
    return app::kExitUsage;
  }
  if (opt.interval_s < 0.1 || opt.interval_s > 3600) {
    fprintf(stderr, "schedscope agent: --interval must be 100ms to 1h\n");
    return app::kExitUsage;
  }
  if (opt.scan_s < 0.1 || opt.scan_s > 3600) {
    fprintf(stderr, "schedscope agent: --scan must be 100ms to 1h\n");
    return app::kExitUsage;
  }
  if (opt.max_targets < 1 || opt.max_targets > probe::kMaxTargets) {
    fprintf(stderr, "schedscope agent: --max-targets must be 1 to %u\n", probe::kMaxTargets);
    return app::kExitUsage;
  }
  if (opt.flight.window_s > 0) {
    struct stat st {};
    if (stat(opt.flight.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      fprintf(stderr, "schedscope agent: --dir: no such directory: %s\n", opt.flight.dir.c_str());
      return app::kExitUsage;
    }
    if (access(opt.flight.dir.c_str(), W_OK) != 0) {
      fprintf(stderr, "schedscope agent: --dir: cannot write into %s: %s\n", opt.flight.dir.c_str(),
              std::strerror(errno));
      return app::kExitUsage;
    }
  }
  app::install_stop_handlers();
  auto a = Agent::open(opt);
  if (!a) {
    fprintf(stderr, "schedscope agent: %s\n", a.error().message.c_str());
    return app::kExitNoPrivilege;
  }
  Agent& agent = **a;
  httplib::Server srv;
  srv.Get("/metrics", [&agent](const httplib::Request&, httplib::Response& res) {
    res.set_content(agent.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  srv.Get("/targets", [&agent](const httplib::Request&, httplib::Response& res) {
    res.set_content(agent.targets_json(), "application/json");
  });
  srv.Get("/healthz", [&agent](const httplib::Request&, httplib::Response& res) {
    bool ok = agent.healthy();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "the agent's loop is stuck\n", "text/plain");
  });
  srv.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        "<html><body><h1>schedscope agent</h1><a href=\"/metrics\">/metrics</a> "
        "<a href=\"/targets\">/targets</a> <a href=\"/healthz\">/healthz</a></body></html>\n",
        "text/html");
  });
  if (!srv.bind_to_port(where->first.c_str(), where->second)) {
    fprintf(stderr, "schedscope agent: cannot listen on %s (in use, or a bad address)\n", opt.listen.c_str());
    return app::kExitError;
  }
  std::thread http([&srv] { srv.listen_after_bind(); });
  fprintf(stderr, "schedscope agent: listening on %s (/metrics, /targets, /healthz)\n", opt.listen.c_str());
  agent.run();
  srv.stop();
  http.join();
  return app::kExitOk;
}

}  // namespace schedscope::agent
