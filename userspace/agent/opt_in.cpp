#include "agent/opt_in.h"

#include <CLI/CLI.hpp>

#include "app/options.h"

namespace schedscope::agent {

const std::vector<OptInFlag>& opt_in_flags() {
  static const std::vector<OptInFlag> flags = {
      {"--all-syscalls-for", "all_syscalls", "--all-syscalls", &OptIn::all_syscalls},
      {"--goroutines-for", "goroutines", "--goroutines", &OptIn::goroutines},
      {"--annotations-for", "annotations", "--annotations", &OptIn::annotations},
  };
  return flags;
}

bool matches_any(const std::vector<std::string>& globs, const ProcEntry& p) {
  for (const auto& g : globs)
    if (glob_match(g, p.exe) || glob_match(g, p.comm)) return true;
  return false;
}

Wanted wanted(const OptIn& o, const ProcEntry& p) {
  Wanted w;
  w.all_syscalls = matches_any(o.all_syscalls, p);
  w.goroutines = matches_any(o.goroutines, p);
  w.annotations = matches_any(o.annotations, p);
  return w;
}

namespace {
// The help of `top`'s flag from the observe options table.
std::string top_help(const char* flag) {
  for (const auto& f : app::observe_flags()) {
    std::string names = f.names;
    size_t at = names.find(flag);
    if (at == std::string::npos) continue;
    size_t end = at + std::string(flag).size();
    if (end == names.size() || names[end] == ',') return f.help;
  }
  return "";
}
}  // namespace

void add_opt_in_flags(CLI::App& cmd, OptIn& o) {
  for (const auto& f : opt_in_flags()) {
    std::string help = std::string("per target: top's ") + f.top_flag +
                       " for the processes whose executable path or comm matches this glob "
                       "(repeatable; off for the others): " + top_help(f.top_flag);
    cmd.add_option(f.name, o.*(f.globs), help)->type_name("GLOB")->group("Per target (costly, off unless asked)");
  }
}

}  // namespace schedscope::agent
