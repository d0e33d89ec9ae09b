#include "app/live_source.h"

#include <cstdio>
#include <iostream>
#include <stdexcept>

#include "app/go_attach.h"

namespace schedscope::app {

ObserverSource::ObserverSource(Observer& o, detect::Detectors& det, int count, double duration_s)
    : o_(o), det_(det), count_(count), duration_s_(duration_s), programs_(o.attached_programs()) {
  last_records_ = o_.model().records();
  cost_ = cost_line(programs_, false, 0, -1, 0, 0);
}

std::string ObserverSource::cost_line(const std::vector<std::string>& programs, bool p_table,
                                      double interval_s, double events_per_s, uint64_t drops,
                                      uint64_t drops_interval) {
  std::string s = "probes: " + std::to_string(programs.size()) +
                  (programs.size() == 1 ? " BPF program (" : " BPF programs (");
  for (size_t i = 0; i < programs.size(); i++) {
    std::string n = programs[i];
    if (n.rfind("ss_", 0) == 0) n = n.substr(3);
    s += (i ? " " : "") + n;
  }
  s += ")";
  char buf[160];
  if (p_table) {
    std::snprintf(buf, sizeof buf, " + P table read from /proc/PID/mem every %.1fs", interval_s);
    s += buf;
  }
  if (events_per_s >= 0) {
    std::snprintf(buf, sizeof buf, "; ring buffer %.0f events/s", events_per_s);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "; drops %llu", static_cast<unsigned long long>(drops));
  s += buf;
  if (drops_interval) {
    std::snprintf(buf, sizeof buf, " (+%llu now)", static_cast<unsigned long long>(drops_interval));
    s += buf;
  }
  return s;
}

std::optional<model::Frame> ObserverSource::next() {
  auto ended = [&](const std::string& why) {
    std::lock_guard<std::mutex> lk(mu_);
    end_reason_ = why;
    return std::nullopt;
  };
  auto why_stopped = [&] {
    return o_.target_gone() ? "target " + std::to_string(o_.target().pid) + " exited"
                            : std::string("stopped");
  };
  if (o_.target_gone() || o_.stopped()) return ended(why_stopped());
  if (count_ > 0 && n_ >= count_) return ended("the -n limit was reached");
  if (duration_s_ > 0 && elapsed_ + 1e-3 >= duration_s_) return ended("the -d limit was reached");
  auto f = o_.next();
  if (!f) throw std::runtime_error(f.error().message);
  if (o_.target_gone() || o_.stopped()) return ended(why_stopped());  // the final covers it
  det_.evaluate(*f);
  n_++;
  elapsed_ += f->interval_s;
  uint64_t rec = o_.model().records();
  double eps = f->interval_s > 0 ? double(rec - last_records_) / f->interval_s : 0;
  last_records_ = rec;
  bool p_table = o_.go() && o_.go()->ready();
  std::string c = cost_line(programs_, p_table, f->interval_s, eps, f->drops, f->drops_interval);
  if (fr_) {
    for (auto& line : fr_->after_frame(o_, *f, det_.all())) flight_note_ = line;
    c += "; " + fr_->status();
    // "flight recorder: wrote PATH (...)" -> "wrote PATH"
    if (!flight_note_.empty()) c += "; " + flight_note_.substr(0, flight_note_.find(" (")).substr(17);
  }
  std::lock_guard<std::mutex> lk(mu_);
  cost_ = std::move(c);
  return std::move(*f);
}

std::optional<model::Frame> ObserverSource::final_frame() {
  model::Frame f = o_.final_frame();
  f.alerts = det_.all();
  return f;
}

std::string ObserverSource::cost() const {
  std::lock_guard<std::mutex> lk(mu_);
  return cost_;
}

std::string ObserverSource::end_reason() const {
  std::lock_guard<std::mutex> lk(mu_);
  return end_reason_;
}

void ObserverSource::interrupt() { g_stop = 1; }  // the observer polls it every <=100 ms

int top_live(Observer& o, const TopOptions& opt, FlightRecorder* fr) {
  detect::Detectors det(opt.detect);
  ObserverSource src(o, det, opt.count, opt.duration_s);
  src.set_flight_recorder(fr);
  ui::LiveOptions lo;
  lo.title = "schedscope top";
  lo.repaint_each_frame = !opt.observe.command.empty();  // the target shares the terminal
  int rc = kExitOk;
  try {
    rc = ui::run_live(src, lo);
  } catch (const std::exception& e) {
    std::cerr << "schedscope: " << e.what() << "\n";
    return kExitError;
  }
  // A short recap on the restored terminal.
  if (o.target_gone()) std::fprintf(stderr, "schedscope: target %d exited\n", o.target().pid);
  std::vector<detect::Alert> all = det.all();
  if (!all.empty()) {
    std::fprintf(stderr, "schedscope: %zu alert(s) raised while observing:\n", all.size());
    size_t shown = 0;
    for (auto it = all.rbegin(); it != all.rend() && shown < 10; ++it, ++shown)
      std::fprintf(stderr, "  [%s] %s\n", it->severity.c_str(), it->message.c_str());
    if (all.size() > 10) std::fprintf(stderr, "  ... and %zu more\n", all.size() - 10);
  }
  if (fr) {
    for (const auto& line : fr->finish(o, all)) std::fprintf(stderr, "schedscope: %s\n", line.c_str());
    for (const auto& p : fr->written()) std::fprintf(stderr, "schedscope: flight recording: %s\n", p.c_str());
  }
  return rc;
}

}  // namespace schedscope::app
