// `schedscope doctor`: checks everything schedscope needs on this machine and says
// how to fix what is missing.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

namespace schedscope::app {

struct Check {
  std::string name;
  bool ok = false;
  bool required = true;  // failing a required check means schedscope cannot run
  std::string detail;    // what was found
  std::string fix;       // what to do when it fails
};

std::vector<Check> run_doctor();
// Prints the checks; returns the exit code (0 when every required check passed).
int print_doctor(const std::vector<Check>& checks, FILE* out, bool json);

}  // namespace schedscope::app
