// `schedscope agent`: the Agent behind an HTTP server (cpp-httplib) until SIGINT/SIGTERM.
#pragma once
#include "agent/agent.h"

namespace schedscope::agent {

// Returns the CLI exit code.
int cmd_agent(const AgentOptions& opt);

}  // namespace schedscope::agent
