// The stop request: set by the SIGINT/SIGTERM/SIGHUP handlers (app::install_stop_handlers)
// and by a closed output; the observation loop and long scans of untrusted input in any
// layer poll it, so Ctrl-C ends them within a moment.
#pragma once
#include <csignal>

namespace schedscope {

inline volatile std::sig_atomic_t g_stop = 0;

}  // namespace schedscope
