#include "app/probes_cmd.h"

#include <cstdio>
#include <iostream>

#include "app/target.h"
#include "elf/elf_file.h"
#include "usdt/notes.h"
#include "util/hex.h"
#include "util/json_out.h"
#include "util/printable.h"

namespace schedscope::app {

namespace {

void filter_probes(std::vector<usdt::FileProbes>& files, const std::string& f) {
  if (f.empty()) return;
  for (auto& fp : files) {
    std::vector<usdt::Probe> keep;
    for (auto& p : fp.probes)
      if (p.full_name().find(f) != std::string::npos) keep.push_back(std::move(p));
    fp.probes = std::move(keep);
  }
}

}  // namespace

int cmd_probes(const ProbesOptions& opt) {
  std::vector<usdt::FileProbes> files;
  if (opt.pid) {
    int code = 0;
    auto pi = probe_pid(opt.pid, &code);
    if (!pi) {
      std::cerr << "schedscope: " << pi.error().message << "\n";
      return code;
    }
    files = usdt::discover(opt.pid);
  } else {
    auto fp = usdt::probes_of_file(opt.path);
    if (!fp.error.empty()) {
      std::cerr << "schedscope: " << opt.path << ": " << fp.error << "\n";
      return kExitError;
    }
    fp.is_exe = true;
    files.push_back(std::move(fp));
  }
  filter_probes(files, opt.filter);
  size_t total = 0;
  for (const auto& f : files) total += f.probes.size();
  if (opt.json) {
    nlohmann::json j = {{"files", usdt::files_to_json(files)}, {"probes", total}};
    if (opt.pid) j["pid"] = opt.pid;
    std::cout << dump_json(j, 2) << "\n";
    return kExitOk;
  }
  if (total == 0) {
    std::cout << "no USDT probes" << (opt.filter.empty() ? "" : " matching '" + opt.filter + "'")
              << " in " << (opt.pid ? "the executable or mapped libraries of " + std::to_string(opt.pid) : opt.path)
              << "\n";
    return kExitOk;
  }
  for (const auto& f : files) {
    if (f.probes.empty()) continue;
    std::cout << printable(f.path) << (f.is_exe && opt.pid ? "  (executable)" : "") << "  "
              << f.probes.size() << " probe(s)\n";
    for (const auto& p : f.probes) {
      std::cout << "  " << printable(p.full_name()) << "  pc " << hex(p.pc) << " (file offset "
                << hex(p.file_offset) << ")";
      if (p.semaphore)
        std::cout << "  semaphore " << hex(p.semaphore) << " (file offset " << hex(p.semaphore_offset)
                  << ")";
      else
        std::cout << "  no semaphore";
      std::cout << "\n";
      if (p.args.empty()) {
        std::cout << "      no arguments\n";
        continue;
      }
      for (size_t i = 0; i < p.args.size(); i++)
        std::cout << "      arg" << i << "  " << printable(p.args[i].spec) << "  "
                  << printable(p.args[i].describe()) << "\n";
    }
  }
  std::cout << total << " probe(s); attach with `schedscope top|record --usdt PROVIDER:NAME`\n";
  return kExitOk;
}

nlohmann::json runtime_json(bool is_go, int pid, const std::string& path) {
  std::vector<std::string> files;
  std::vector<usdt::FileProbes> probes;
  if (pid) {
    files = usdt::mapped_files(pid);
    probes = usdt::discover(pid);
  } else {
    files.push_back(path);
    auto fp = usdt::probes_of_file(path);
    if (!fp.probes.empty()) probes.push_back(fp);
    if (auto f = elf::ElfFile::open(path))
      for (const auto& n : (*f)->needed_libraries()) files.push_back(n);
  }
  size_t n = 0;
  nlohmann::json providers = nlohmann::json::object();
  for (const auto& fp : probes)
    for (const auto& p : fp.probes) {
      n++;
      providers[p.provider] = providers.value(p.provider, 0) + 1;
    }
  return {{"runtime", usdt::detect_runtime(is_go, files, probes)},
          {"usdt", {{"probes", n}, {"providers", providers}}}};
}

}  // namespace schedscope::app
