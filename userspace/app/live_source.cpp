#include "app/live_source.h"

#include <cstdio>
#include <iostream>
#include <stdexcept>

#include "app/go_attach.h"

namespace schedscope::app {

ObserverSource::ObserverSource(Observer& o, detect::Pipeline& pipe, FlightRecorder* fr)
    : o_(o), pipe_(pipe), fr_(fr), programs_(o.attached_programs()) {
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
  auto f = pipe_.step();
  if (!f) throw std::runtime_error(f.error().message);
  if (!*f) {
    std::lock_guard<std::mutex> lk(mu_);
    end_reason_ = pipe_.end_reason();
    return std::nullopt;
  }
  const model::Frame& fr = **f;
  uint64_t rec = o_.model().records();
  double eps = fr.interval_s > 0 ? double(rec - last_records_) / fr.interval_s : 0;
  last_records_ = rec;
  bool p_table = o_.go() && o_.go()->ready();
  std::string c = cost_line(programs_, p_table, fr.interval_s, eps, fr.drops, fr.drops_interval);
  if (fr_) {
    (void)fr_->take_lines();  // the view shows the last of them (the note), not each
    c += "; " + fr_->status();
    if (!fr_->last_note().empty()) c += "; " + fr_->last_note();
  }
  std::lock_guard<std::mutex> lk(mu_);
  cost_ = std::move(c);
  return std::move(*f);
}

std::optional<model::Frame> ObserverSource::final_frame() { return pipe_.finish(); }

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
  ObserverFeed feed(o);
  detect::Pipeline pipe(feed, opt.detect, {opt.count, opt.duration_s});
  if (fr) pipe.add_sink(fr);
  ObserverSource src(o, pipe, fr);
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
  // The view quit before the source ended: the sinks still get the final frame.
  const model::Frame& fin = pipe.finish();
  const std::vector<detect::Alert>& all = fin.alerts;
  if (!all.empty()) {
    std::fprintf(stderr, "schedscope: %zu alert(s) raised while observing:\n", all.size());
    size_t shown = 0;
    for (auto it = all.rbegin(); it != all.rend() && shown < 10; ++it, ++shown)
      std::fprintf(stderr, "  [%s] %s\n", it->severity.c_str(), it->message.c_str());
    if (all.size() > 10) std::fprintf(stderr, "  ... and %zu more\n", all.size() - 10);
  }
  if (fr) {
    for (const auto& line : fr->take_lines()) std::fprintf(stderr, "schedscope: %s\n", line.c_str());
    for (const auto& p : fr->written()) std::fprintf(stderr, "schedscope: flight recording: %s\n", p.c_str());
  }
  return rc;
}

}  // namespace schedscope::app
