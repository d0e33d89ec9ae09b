// `schedscope probes`: the USDT probes of a process (its executable and every mapped
// library) or of one ELF file, with their argument specs and semaphores.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace schedscope::app {

struct ProbesOptions {
  int pid = 0;
  std::string path;    // or a binary / library
  bool json = false;
  std::string filter;  // substring of provider:name
};

int cmd_probes(const ProbesOptions& opt);

// The runtime of a binary or process and its USDT summary, for `inspect`.
nlohmann::json runtime_json(bool is_go, int pid, const std::string& path);

}  // namespace schedscope::app
