// The costly options of `top` that a target of the node agent gets only when asked, per
// target: every syscall traced (-S), the goroutine uprobes (--goroutines) and the
// runtime/trace annotation uprobes (--annotations). One row per option: the agent's flag,
// the `top` flag it stands for (whose help, from the observe options table, it repeats)
// and the globs, matched like --exclude (the executable's path or the comm).
#pragma once
#include <string>
#include <vector>

#include "agent/discovery.h"

namespace CLI {
class App;
}

namespace schedscope::agent {

struct OptIn {
  std::vector<std::string> all_syscalls;  // --all-syscalls-for GLOB
  std::vector<std::string> goroutines;    // --goroutines-for GLOB
  std::vector<std::string> annotations;   // --annotations-for GLOB
  [[nodiscard]] bool any() const { return !all_syscalls.empty() || !goroutines.empty() || !annotations.empty(); }
};

struct OptInFlag {
  const char* name;      // the agent's flag: "--all-syscalls-for"
  const char* key;       // its name in /targets ("options") and the docs: "all_syscalls"
  const char* top_flag;  // the observe flag of `top` it stands for: "--all-syscalls"
  std::vector<std::string> OptIn::*globs;
};
// In the order --help lists them.
const std::vector<OptInFlag>& opt_in_flags();

// What one process gets.
struct Wanted {
  bool all_syscalls = false, goroutines = false, annotations = false;
};
// Does any glob match the process's executable path or its comm?
bool matches_any(const std::vector<std::string>& globs, const ProcEntry& p);
Wanted wanted(const OptIn& o, const ProcEntry& p);

// Registers the flags (repeatable, group "Per target") on the agent's subcommand.
void add_opt_in_flags(CLI::App& cmd, OptIn& o);

}  // namespace schedscope::agent
