#include "probe/syscalls.h"

#include <string_view>
#include <unordered_map>

namespace schedscope::probe {
namespace {

struct Entry {
  int nr;
  std::string_view name;
};

constexpr Entry kTable[] = {
#define X(nr, name) {nr, name},
#include "syscall_table.inc"
#undef X
};

}  // namespace

std::string syscall_name(int nr) {
  static const auto* by_nr = [] {
    auto* m = new std::unordered_map<int, std::string_view>();
    for (const auto& e : kTable) (*m)[e.nr] = e.name;
    return m;
  }();
  if (auto it = by_nr->find(nr); it != by_nr->end()) return std::string(it->second);
  return "syscall_" + std::to_string(nr);
}

std::optional<int> syscall_number(const std::string& name) {
  for (const auto& e : kTable)
    if (e.name == name) return e.nr;
  if (name.rfind("syscall_", 0) == 0) {
    try {
      return std::stoi(name.substr(8));
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace schedscope::probe
