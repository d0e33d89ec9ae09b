// Syscall number <-> name for x86_64, from the table generated at build time
// (scripts/gen-syscall-table.sh) out of the kernel's own unistd definitions.
#pragma once
#include <optional>
#include <string>

namespace schedscope::probe {

// "read", or "syscall_N" when the number is not in the table.
std::string syscall_name(int nr);
std::optional<int> syscall_number(const std::string& name);

}  // namespace schedscope::probe
