// printf into a std::string: the one-line messages and evidence lines of alerts.
#pragma once
#include <cstdarg>
#include <cstdio>
#include <string>

namespace schedscope {

std::string strfmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
// Truncated at 511 bytes: these are lines for people, not data.
inline std::string strfmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

}  // namespace schedscope
