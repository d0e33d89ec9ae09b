#include "app/commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/doctor.h"
#include "app/live_source.h"
#include "app/output_watch.h"
#include "app/probes_cmd.h"
#include "go/binary_json.h"
#include "go/runtime_json.h"
#include "model/frame_json.h"
#include "ui/print.h"
#include "util/safe_file.h"
#include "util/json_out.h"
#include "util/printable.h"

namespace schedscope::app {

bool FramePrinter::print(const model::Frame& f) {
  if (json_) {
    std::string line = model::frame_json_text(f);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), out_);
  } else {
    write_printable(out_, [&](FILE* m) { ui::print_text(f, m); });
  }
  ok_ = watch_.flush() && ok_;
  return ok_;
}

int cmd_doctor(bool json) { return print_doctor(run_doctor(), stdout, json); }

namespace {

std::string scalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return dump_json(v);
}

// Human form of the inspect JSON: scalars first, then each object as an indented block.
std::string inspect_text(const nlohmann::json& j) {
  std::string out;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!it.value().is_object() && !it.value().is_array())
      out += "  " + it.key() + std::string(it.key().size() < 18 ? 18 - it.key().size() : 1, ' ') +
             scalar(it.value()) + "\n";
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_object()) {
      out += it.key() + ":\n";
      std::string line = " ";
      std::string numbered;  // wait_reasons.names: "1 GC assist marking, 2 IO wait, ..." wrapped
      for (auto f = it.value().begin(); f != it.value().end(); ++f) {
        if (f.key() == "names" && f.value().is_array()) {
          std::string l = " ";
          for (size_t i = 1; i < f.value().size(); i++) {
            std::string item = " " + std::to_string(i) + " " + scalar(f.value()[i]) +
                               (i + 1 < f.value().size() ? "," : "");
            if (l.size() + item.size() > 96) {
              numbered += l + "\n";
              l = " ";
            }
            l += item;
          }
          if (l.size() > 1) numbered += l + "\n";
          continue;
        }
        std::string item =
            " " + f.key() + "=" + (f.value().is_array() ? dump_json(f.value()) : scalar(f.value()));
        if (line.size() + item.size() > 96) {
          out += line + "\n";
          line = " ";
        }
        line += item;
      }
      out += line + "\n" + numbered;
    } else if (it.value().is_array()) {
      out += it.key() + ":\n";
      for (const auto& e : it.value()) out += "   " + scalar(e) + "\n";
    }
  }
  return out;
}

}  // namespace

int cmd_top(const TopOptions& opt) {
  install_stop_handlers();
  // The live view on a terminal; the batch form otherwise (--batch, --json, -o, a pipe).
  const char* term = getenv("TERM");
  const bool live = !opt.batch && opt.output.empty() && isatty(STDOUT_FILENO) != 0 &&
                    isatty(STDIN_FILENO) != 0 && term && *term && strcmp(term, "dumb") != 0;
  FILE* out = stdout;
  // -o FILE: created through OutputFile (util/safe_file.h) and renamed to its name at once,
  // so it can be followed (tail -f) while it grows; never opened through a symlink.
  std::unique_ptr<OutputFile> out_safe;
  std::unique_ptr<FILE, int (*)(FILE*)> out_file(nullptr, fclose);
  if (!opt.output.empty()) {
    if (std::string why = output_path_problem(opt.output); !why.empty()) {
      std::cerr << "schedscope top: " << why << "\n";
      return kExitUsage;
    }
    auto of = OutputFile::create(opt.output);
    Status pub = of ? (*of)->publish() : Status(of.error());
    int dfd = pub ? ::fcntl((*of)->fd(), F_DUPFD_CLOEXEC, 3) : -1;
    if (pub && dfd >= 0) out_file.reset(fdopen(dfd, "w"));
    if (!out_file) {
      std::string why =
          !pub ? pub.error().message : "cannot write " + opt.output + ": " + strerror(errno);
      if (dfd >= 0 && !out_file) ::close(dfd);
      if (of && !(*of)->published()) (*of)->discard();
      std::cerr << "schedscope: " << why << "\n";
      return kExitError;
    }
    for (const auto& n : (*of)->notices()) std::fprintf(stderr, "schedscope: %s\n", n.c_str());
    out_safe = std::move(of.value());
    out = out_file.get();
  }
  OutputWatch watch(out, opt.output.empty() ? "standard output" : opt.output);
  std::unique_ptr<FlightRecorder> fr;
  if (opt.flight.window_s > 0) {
    struct stat st {};
    if (stat(opt.flight.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      std::cerr << "schedscope top: no such directory: " << opt.flight.dir << "\n";
      return kExitUsage;
    }
    if (access(opt.flight.dir.c_str(), W_OK) != 0) {
      std::cerr << "schedscope top: cannot write into " << opt.flight.dir << ": " << strerror(errno) << "\n";
      return kExitError;
    }
    fr = std::make_unique<FlightRecorder>(opt.flight, opt.observe, opt.detect);
  }
  int code = 0;
  auto obs = Observer::start(opt.observe, &code, [&](Observer& ob) {
    if (fr) fr->attach(ob);
    // The batch form says on stderr when it counts everything (the live view shows it).
    if (!live)
      ob.on_ready = [](const std::string& line) {
        std::fprintf(stderr, "schedscope: %s\n", line.c_str());
      };
  });
  if (!obs) {
    std::cerr << "schedscope: " << obs.error().message << "\n";
    return code;
  }
  Observer& o = **obs;
  const auto& t = o.target();
  if (opt.observe.verbose || !opt.json) {
    std::fprintf(stderr, "schedscope: observing pid %d (%s)%s%s\n", t.pid,
                 printable(t.comm).c_str(),
                 t.go_version.empty() ? "" : (", " + t.go_version).c_str(),
                 t.go_note.empty() ? "" : ("; " + t.go_note).c_str());
    if (opt.observe.verbose && o.go())
      for (const auto& c : o.go()->checks()) std::fprintf(stderr, "  validated: %s\n", c.c_str());
  }
  if (fr && !opt.json)
    std::fprintf(stderr, "schedscope: flight recorder on: the last %.0fs are kept in memory and written to %s when an alert fires\n",
                 opt.flight.window_s, opt.flight.dir.c_str());
  if (live) return top_live(o, opt, fr.get());
  ObserverFeed feed(o);
  detect::Pipeline pipe(feed, opt.detect, {opt.count, opt.duration_s});
  FramePrinter printer(out, opt.json, watch);
  pipe.add_sink(&printer);
  if (fr) pipe.add_sink(fr.get());
  auto say_flight = [&] {
    if (fr)
      for (const auto& line : fr->take_lines()) std::fprintf(stderr, "schedscope: %s\n", line.c_str());
  };
  for (;;) {
    auto f = pipe.step();
    if (!f) {
      std::cerr << "schedscope: " << f.error().message << "\n";
      return kExitError;
    }
    say_flight();
    if (!*f) break;
  }
  (void)pipe.finish();
  say_flight();
  if (out_safe && !watch.failed() && ::fsync(fileno(out)) != 0)
    std::fprintf(stderr, "schedscope: cannot fsync %s: %s\n", opt.output.c_str(), strerror(errno));
  // The reader of the output went away (| head): a quiet stop, BPF detached on return.
  if (watch.gone()) return kExitPipe;
  if (!watch.error().empty()) {
    std::fprintf(stderr, "schedscope: %s\n", watch.error().c_str());
    return kExitError;
  }
  if (o.target_gone() && !opt.json)
    std::fprintf(stderr, "schedscope: target %d exited\n", t.pid);
  return kExitOk;
}

int cmd_inspect(const InspectOptions& opt) {
  std::string path = opt.path;
  if (opt.pid) {
    int code = 0;
    auto pi = probe_pid(opt.pid, &code);
    if (!pi) {
      std::cerr << "schedscope: " << pi.error().message << "\n";
      return code;
    }
    path = "/proc/" + std::to_string(opt.pid) + "/exe";
  }
  if (access(path.c_str(), R_OK) != 0) {
    std::cerr << "schedscope: cannot read " << path << ": " << strerror(errno) << "\n";
    return kExitError;
  }
  auto bin = go::inspect_binary(path);
  if (!bin) {
    std::cerr << "schedscope: " << bin.error().message << "\n";  // names the path
    return kExitError;
  }
  nlohmann::json j = go::inspect_to_json(*bin);
  if (bin->is_go) {
    if (opt.pid) {
      std::string err;
      auto bias = go::load_bias(opt.pid, *bin);
      auto mem = go::open_process_memory(opt.pid, &err);
      if (bias && mem) {
        auto r = go::resolve_offsets(*mem, *bin, *bias, opt.pid);
        if (r) {
          j["offsets"] = go::offsets_to_json(r->first);
          j["validation"] = {{"ok", r->second.ok}, {"checks", r->second.checks}};
        } else {
          j["offsets"] = {{"source", "none"}, {"error", r.error().message}};
        }
      } else {
        j["offsets"] = {{"source", "none"},
                        {"error", bias ? err : bias.error().message}};
      }
    } else if (auto off = go::offsets_for(*bin)) {
      j["offsets"] = go::offsets_to_json(*off);
    } else {
      j["offsets"] = {{"source", "calibration needed"}, {"error", off.error().message}};
    }
  }
  {
    auto rt = runtime_json(bin->is_go, opt.pid, path);
    j["runtime"] = rt["runtime"];
    j["usdt"] = rt["usdt"];
  }
  if (opt.json) {
    std::cout << dump_json(j, 2) << "\n";
    return kExitOk;
  }
  std::cout << printable(inspect_text(j), /*keep_newlines=*/true);
  return kExitOk;
}

}  // namespace schedscope::app
