// Text for a terminal from strings the target controls (thread names, function names of
// its pclntab, the executable path, USDT provider names) and from recordings made
// elsewhere: control bytes (ESC sequences, carriage returns, C1 controls) and bytes that
// are not UTF-8 are written as \xNN, so output can neither drive the terminal nor break a
// line. Valid UTF-8 text is kept.
#pragma once
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace schedscope {

// `s` with every non-printable byte as \xNN. keep_newlines: '\n' and '\t' pass (for
// whole rendered blocks of text); otherwise they are escaped too (for one field).
std::string printable(std::string_view s, bool keep_newlines = false);

// Renders into memory, then writes it to `out` through printable(.., true): the one way
// the text outputs (top, report, replay, inspect) reach stdout.
void write_printable(FILE* out, const std::function<void(FILE*)>& render);

}  // namespace schedscope
