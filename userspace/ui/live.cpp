// The top-style live view. One worker thread pulls frames from the FrameSource into a
// queue; the UI thread polls the keyboard (100 ms) and redraws on new frames and keys.
// The terminal is restored on every way out: quit, source end (after q), exceptions,
// SIGINT/SIGTERM/SIGHUP (they end the loop) and crash signals (endwin, then the default
// action). stderr is captured while the screen is up and replayed after it.
#include "ui/live.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <clocale>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "capacity/present.h"
#include "go/runtime_reader.h"
#include "model/annotations_json.h"
#include "ui/annotations_view.h"
#include "ui/live_state.h"
#include "util/printable.h"

// Last: curses defines macros (OK, ERR, TRUE) and, without this, function-like macros
// named like std members (erase, clear, move, timeout).
#define NCURSES_NOMACROS 1
#include <curses.h>

namespace schedscope::ui {
namespace {

using namespace live;

// ================================================================ signals and terminal

volatile std::sig_atomic_t g_stop_sig = 0;       // SIGINT/SIGTERM/SIGHUP arrived
volatile std::sig_atomic_t g_curses_active = 0;  // between newterm and endwin
int g_saved_stderr = -1;                         // the real stderr while the screen is up
int g_capture_fd = -1;                           // stderr output meanwhile

constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
constexpr int kCrashSignals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
struct sigaction g_prev_stop[3];
struct sigaction g_prev_crash[5];

void on_stop_signal(int sig, siginfo_t* si, void* ctx) {
  g_stop_sig = sig;
  // Chain to the handler that was there (the observer's sets app::g_stop).
  for (size_t i = 0; i < 3; i++) {
    if (kStopSignals[i] != sig) continue;
    const struct sigaction& prev = g_prev_stop[i];
    if (prev.sa_flags & SA_SIGINFO) {
      if (prev.sa_sigaction) prev.sa_sigaction(sig, si, ctx);
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
      prev.sa_handler(sig);
    }
  }
}

// Copies what stderr got while captured to the real stderr; async-signal-safe.
void restore_stderr() {
  if (g_saved_stderr < 0) return;
  dup2(g_saved_stderr, STDERR_FILENO);
  if (g_capture_fd >= 0) {
    char buf[4096];
    off_t off = 0;
    ssize_t n;
    while ((n = pread(g_capture_fd, buf, sizeof buf, off)) > 0) {
      if (write(STDERR_FILENO, buf, size_t(n)) < 0) break;
      off += n;
    }
    close(g_capture_fd);
    g_capture_fd = -1;
  }
  close(g_saved_stderr);
  g_saved_stderr = -1;
}

void on_crash_signal(int sig) {
  if (g_curses_active) {
    g_curses_active = 0;
    endwin();  // not async-signal-safe, but the process is going down anyway
  }
  restore_stderr();
  // SA_RESETHAND put the default action back: it runs when this handler returns.
  raise(sig);
}

// SIGINT/SIGTERM/SIGHUP end the loop (installed before curses, which then leaves them).
class StopSignals {
 public:
  StopSignals() {
    g_stop_sig = 0;
    struct sigaction sa {};
    sa.sa_sigaction = on_stop_signal;
    sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: interrupt the keyboard poll
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < 3; i++) sigaction(kStopSignals[i], &sa, &g_prev_stop[i]);
  }
  ~StopSignals() {
    for (size_t i = 0; i < 3; i++) sigaction(kStopSignals[i], &g_prev_stop[i], nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
};

enum ColorPair : short {
  kRed = 1,
  kYellow,
  kCyan,
  kGreen,
  kTitleFocus,
  kTitle,
  kMagenta,
};

// The curses screen, stderr capture and crash handlers, undone by end() / the destructor.
class Screen {
 public:
  Screen() {
    if (FILE* tmp = std::tmpfile()) {
      g_capture_fd = dup(fileno(tmp));
      std::fclose(tmp);
    }
    if (g_capture_fd >= 0) {
      std::fflush(stderr);
      g_saved_stderr = dup(STDERR_FILENO);
      if (g_saved_stderr >= 0) dup2(g_capture_fd, STDERR_FILENO);
    }
    struct sigaction sa {};
    sa.sa_handler = on_crash_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < 5; i++) sigaction(kCrashSignals[i], &sa, &g_prev_crash[i]);
    sigaction(SIGWINCH, nullptr, &prev_winch_);
    sigaction(SIGTSTP, nullptr, &prev_tstp_);

    if (const char* c = setlocale(LC_CTYPE, nullptr)) prev_ctype_ = c;
    setlocale(LC_CTYPE, "");  // UTF-8 line drawing; LC_NUMERIC stays "C"
    scr_ = newterm(nullptr, stdout, stdin);
    if (!scr_) {
      end();
      const char* term = getenv("TERM");
      throw std::runtime_error(std::string("cannot start the live view on this terminal (TERM=") +
                               (term ? term : "") + "); use --batch");
    }
    set_term(scr_);
    g_curses_active = 1;
    cbreak();  // keys at once; Ctrl-C still signals
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    intrflush(stdscr, FALSE);
    curs_set(0);
    set_escdelay(25);
    wtimeout(stdscr, 100);
    if (has_colors()) {
      start_color();
      use_default_colors();
      init_pair(kRed, COLOR_RED, -1);
      init_pair(kYellow, COLOR_YELLOW, -1);
      init_pair(kCyan, COLOR_CYAN, -1);
      init_pair(kGreen, COLOR_GREEN, -1);
      init_pair(kTitleFocus, COLOR_BLACK, COLOR_CYAN);
      init_pair(kTitle, COLOR_WHITE, COLOR_BLUE);
      init_pair(kMagenta, COLOR_MAGENTA, -1);
      colors_ = true;
    }
  }
  ~Screen() { end(); }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  void end() {
    if (ended_) return;
    ended_ = true;
    if (g_curses_active) {
      g_curses_active = 0;
      endwin();
    }
    if (scr_) {
      delscreen(scr_);
      scr_ = nullptr;
    }
    for (size_t i = 0; i < 5; i++) sigaction(kCrashSignals[i], &g_prev_crash[i], nullptr);
    sigaction(SIGWINCH, &prev_winch_, nullptr);
    sigaction(SIGTSTP, &prev_tstp_, nullptr);
    std::fflush(stdout);
    restore_stderr();
    setlocale(LC_CTYPE, prev_ctype_.c_str());
  }
  [[nodiscard]] bool colors() const { return colors_; }

 private:
  SCREEN* scr_ = nullptr;
  bool ended_ = false;
  bool colors_ = false;
  std::string prev_ctype_ = "C";
  struct sigaction prev_winch_ {};
  struct sigaction prev_tstp_ {};
};

// ================================================================ the frame pump

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<model::Frame> frames;
  std::deque<double> positions;  // the source's position after each of frames (replay)
  bool final_ready = false;  // the source ended (final_frame taken, or an error)
  std::optional<model::Frame> final_frame;
  std::exception_ptr error;
  bool quit = false;
  bool hold = false;  // paused replay: no next() unless a step is asked
  int steps = 0;
  uint64_t seeks = 0;  // bumped on each seek: a frame read before it is stale
};

class Worker {
 public:
  Worker(model::FrameSource& src, Shared& sh) : src_(src), sh_(sh) {
    // Signals go to the UI thread: it polls the keyboard and notices them at once.
    sigset_t block, old;
    sigemptyset(&block);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT, SIGQUIT})
      sigaddset(&block, s);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    th_ = std::thread([this] { run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~Worker() {
    request_stop();
    join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void request_stop() {
    {
      std::lock_guard<std::mutex> lk(sh_.mu);
      if (sh_.quit) return;
      sh_.quit = true;
    }
    sh_.cv.notify_all();
    src_.interrupt();
  }
  void join() {
    if (th_.joinable()) th_.join();
  }

 private:
  void run() {
    try {
      // A frame that arrived after the replay was paused (next() was already waiting for
      // it): kept until a step or the resume, so a paused view does not move.
      std::optional<model::Frame> held;
      uint64_t held_seeks = 0;
      double held_pos = 0;
      for (;;) {
        bool step = false;
        uint64_t seeks = 0;
        {
          std::unique_lock<std::mutex> lk(sh_.mu);
          sh_.cv.wait(lk, [&] { return sh_.quit || !sh_.hold || sh_.steps > 0; });
          if (sh_.quit) return;
          if (sh_.hold) {
            sh_.steps--;
            step = true;
          }
          if (held && held_seeks == sh_.seeks) {
            sh_.frames.push_back(std::move(*held));
            sh_.positions.push_back(held_pos);
            held.reset();
            continue;
          }
          held.reset();
          seeks = sh_.seeks;
        }
        std::optional<model::Frame> f = src_.next();
        const double pos = src_.position_s();
        std::lock_guard<std::mutex> lk(sh_.mu);
        if (sh_.quit) return;
        if (!f) break;
        if (sh_.hold && !step) {
          held = std::move(f);
          held_seeks = seeks;
          held_pos = pos;
          continue;
        }
        sh_.frames.push_back(std::move(*f));
        sh_.positions.push_back(pos);
        while (sh_.frames.size() > 1000) {  // the UI is stuck
          sh_.frames.pop_front();
          sh_.positions.pop_front();
        }
      }
      std::optional<model::Frame> fin = src_.final_frame();
      std::lock_guard<std::mutex> lk(sh_.mu);
      sh_.final_frame = std::move(fin);
      sh_.final_ready = true;
    } catch (...) {
      std::lock_guard<std::mutex> lk(sh_.mu);
      sh_.error = std::current_exception();
      sh_.final_ready = true;
    }
  }
  model::FrameSource& src_;
  Shared& sh_;
  std::thread th_;
};

// ================================================================ the view

const char* const kPaneName[kPanes] = {"Ps", "Threads", "Syscalls", "Alerts"};

struct PaneState {
  int first = 0;  // first row shown
  int sort = 0;
  bool reverse = false;
};

int sev_pair(const std::string& s) {
  if (s == "critical") return kRed;
  if (s == "warning") return kYellow;
  if (s == "info") return kCyan;
  return 0;
}

std::string fmt1(const char* fmt, double v) {
  char b[64];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

std::string id_or_dash(long long v, long long none) { return v == none ? "-" : std::to_string(v); }

std::string small_ms(double ms) { return ms < 0.05 ? "-" : fmt_ms(ms); }

class View {
 public:
  View(model::FrameSource& src, const LiveOptions& opt, Shared& sh, bool colors)
      : src_(src), opt_(opt), sh_(sh), colors_(colors), live_(src.live()) {}

  // pos: where the source was after reading f (replay: the header's position).
  void on_frame(model::Frame f, double pos) {
    if (!live_) shown_pos_ = pos;
    ptrack_.update(f);
    if (f.interval_s > 0) interval_s_ = f.interval_s;
    hist_.update(f);
    if (paused_ && live_) {
      missed_++;
      latest_ = std::move(f);
      return;
    }
    show(std::move(f));
  }

  void on_final(std::optional<model::Frame> f, const std::string& reason) {
    ended_ = true;
    end_text_ = reason.empty() ? (live_ ? "observation ended" : "end of recording") : reason;
    if (paused_ && latest_) show(std::move(*latest_));
    paused_ = false;
    latest_.reset();
    if (f) {
      hist_.update(*f);
      show(std::move(*f));
    }
  }

  // false: quit.
  bool on_key(int ch);
  void draw();

 private:
  void show(model::Frame f) {
    shown_ = std::move(f);
    // The slowest tasks' rows, built once per frame shown (the pane and its row count read them).
    slowest_.clear();
    if (shown_->annotations) slowest_ = slowest_rows(shown_->annotations->slowest);
    pinfo_ = ptrack_.all();
    alerts_ = hist_.entries();
  }
  void flash(const std::string& s) {
    flash_ = s;
    flash_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  }
  void set_paused(bool p);
  void scroll(int delta);
  void focus(int pane);
  int rows_of(int pane) const;

  attr_t attr_pair(int pair) const { return colors_ && pair ? attr_t(COLOR_PAIR(pair)) : 0; }
  void put(int y, int x, int maxw, const std::string& s, attr_t attr = 0) const;
  int draw_header(int W, int max_lines);
  void draw_footer(int y, int W);
  void draw_title(const Rect& r, int pane, const std::string& info);
  void draw_table(const Rect& r, int pane, const std::vector<Col>& cols, int flex,
                  const std::vector<std::vector<std::string>>& rows,
                  const std::vector<attr_t>& attrs, int sorted_col, int first, int body_h);
  void draw_ps(const Rect& r);
  void draw_threads(const Rect& r);
  void draw_syscalls(const Rect& r);
  void draw_annotations(const Rect& r);
  void draw_alerts(const Rect& r);
  // Pane 3 shows the syscalls, or with --annotations the regions, tasks or slowest tasks.
  [[nodiscard]] bool has_annotations() const {
    return shown_ && shown_->annotations && shown_->annotations->asked;
  }
  [[nodiscard]] Pane3 view3() const { return has_annotations() ? view3_ : Pane3::kSyscalls; }
  PaneState& state_of(int pane) {
    return pane == kSyscalls && view3() != Pane3::kSyscalls ? annot_ps_[int(view3()) - 1]
                                                            : pane_[pane];
  }
  [[nodiscard]] const std::vector<std::string>& keys_of(int pane) const;
  [[nodiscard]] std::string pane_name(int pane) const {
    return pane == kSyscalls ? pane3_name(view3()) : kPaneName[pane];
  }
  [[nodiscard]] const annotations::Tables& annot_tables() const {
    return annot_total_ ? shown_->annotations->total : shown_->annotations->interval;
  }
  void draw_help(int H, int W);
  std::vector<std::string> alert_details(const AlertEntry& e, int w) const;

  std::vector<SlowestRow> slowest_;
  model::FrameSource& src_;
  LiveOptions opt_;
  Shared& sh_;
  bool colors_;
  bool live_;

  PTracker ptrack_;
  AlertHistory hist_;
  std::optional<model::Frame> shown_, latest_;
  std::map<int32_t, PTracker::Info> pinfo_;
  std::vector<AlertEntry> alerts_;

  bool paused_ = false;
  int missed_ = 0;
  bool ended_ = false;
  std::string end_text_;
  int focus_ = kThreads;
  bool maximized_ = false;
  bool help_ = false;
  PaneState pane_[kPanes];
  Pane3 view3_ = Pane3::kSyscalls;
  PaneState annot_ps_[3];     // regions, tasks, slowest
  bool annot_total_ = false;  // regions and tasks since attach instead of this interval
  int alert_sel_ = 0;  // position in the sorted alert list
  double speed_ = 1;
  double shown_pos_ = 0;  // replay: the position of the frame shown
  double interval_s_ = 1;  // of the last regular frame
  std::string flash_;
  std::chrono::steady_clock::time_point flash_until_{};
  Layout layout_;
  int body_rows_[kPanes] = {1, 1, 1, 1};  // rows of each pane's body at the last draw
};

void View::put(int y, int x, int maxw, const std::string& s, attr_t attr) const {
  if (maxw <= 0 || y < 0 || y >= LINES || x >= COLS) return;
  maxw = std::min(maxw, COLS - x);
  if (attr) attron(int(attr));
  const std::string p = printable(s);  // names and paths come from the target
  mvaddnstr(y, x, p.c_str(), std::min<int>(maxw, int(p.size())));
  if (attr) attroff(int(attr));
}

void View::set_paused(bool p) {
  if (p == paused_) return;
  paused_ = p;
  if (!live_) {
    {
      std::lock_guard<std::mutex> lk(sh_.mu);
      sh_.hold = p;
      sh_.steps = 0;
    }
    sh_.cv.notify_all();
  } else if (!p) {
    if (latest_) show(std::move(*latest_));
    latest_.reset();
    missed_ = 0;
  }
}

int View::rows_of(int pane) const {
  if (!shown_) return 0;
  switch (pane) {
    case kPs:
      return shown_->go ? int(shown_->go->ps.size()) : 0;
    case kThreads:
      return int(shown_->threads.size());
    case kSyscalls:
      switch (view3()) {
        case Pane3::kRegions:
          return int(annot_tables().regions.size());
        case Pane3::kTasks:
          return int(annot_tables().tasks.size());
        case Pane3::kSlowest:
          return int(slowest_.size());
        default:
          return int(shown_->syscalls.size());
      }
    default:
      return int(alerts_.size());
  }
}

void View::scroll(int delta) {
  int n = rows_of(focus_);
  if (focus_ == kAlerts) {
    alert_sel_ = std::clamp(alert_sel_ + delta, 0, std::max(0, n - 1));
    return;
  }
  PaneState& ps = state_of(focus_);
  int page = std::max(1, body_rows_[focus_]);
  ps.first = std::clamp(ps.first + delta, 0, std::max(0, n - page));
}

void View::focus(int pane) {
  if (focus_ == pane && !help_)
    maximized_ = !maximized_;
  else
    focus_ = pane;
}

const std::vector<std::string>& View::keys_of(int pane) const {
  switch (pane) {
    case kPs:
      return p_sort_keys();
    case kThreads:
      return thread_sort_keys();
    case kSyscalls:
      switch (view3()) {
        case Pane3::kRegions:
          return region_sort_keys();
        case Pane3::kTasks:
          return task_sort_keys();
        case Pane3::kSlowest:
          return slowest_sort_keys();
        default:
          return syscall_sort_keys();
      }
    default:
      return alert_sort_keys();
  }
}

bool View::on_key(int ch) {
  if (help_) {  // any key closes the help (q too, as in htop)
    if (ch != KEY_RESIZE) help_ = false;
    return true;
  }
  int page = std::max(1, body_rows_[focus_] - 1);
  switch (ch) {
    case 'q':
    case 'Q':
      return false;
    case ' ':
      set_paused(!paused_);
      break;
    case '\t':
      focus_ = (focus_ + 1) % kPanes;
      break;
    case KEY_BTAB:
      focus_ = (focus_ + kPanes - 1) % kPanes;
      break;
    case '1':
    case 'p':
      focus(kPs);
      break;
    case '2':
    case 't':
      focus(kThreads);
      break;
    case '3':
    case 's':
      focus(kSyscalls);
      break;
    case '4':
    case 'a':
      focus(kAlerts);
      break;
    case 'z':
    case '\r':
    case '\n':
    case KEY_ENTER:
      maximized_ = !maximized_;
      break;
    case 27:  // Esc
      maximized_ = false;
      break;
    case 'o':
    case '>':
    case '<': {
      PaneState& ps = state_of(focus_);
      int n = int(keys_of(focus_).size());
      ps.sort = (ps.sort + (ch == '<' ? n - 1 : 1)) % n;
      ps.reverse = false;
      flash("sort " + pane_name(focus_) + " by " + keys_of(focus_)[size_t(ps.sort)]);
      break;
    }
    case 'r':
      state_of(focus_).reverse = !state_of(focus_).reverse;
      break;
    case 'v':
      if (!has_annotations()) {
        flash("v: the regions, tasks and slowest tasks need --annotations");
      } else {
        view3_ = Pane3((int(view3_) + 1) % int(Pane3::kViews));
        focus_ = kSyscalls;
        flash(std::string("pane 3: ") + pane3_name(view3_));
      }
      break;
    case 'T':
      if (!has_annotations()) {
        flash("T: the regions and tasks tables need --annotations");
      } else {
        annot_total_ = !annot_total_;
        flash(annot_total_ ? "regions and tasks: since attach" : "regions and tasks: this interval");
      }
      break;
    case KEY_UP:
    case 'k':
      scroll(-1);
      break;
    case KEY_DOWN:
    case 'j':
      scroll(1);
      break;
    case KEY_PPAGE:
      scroll(-page);
      break;
    case KEY_NPAGE:
      scroll(page);
      break;
    case KEY_HOME:
    case 'g':
      scroll(-1000000);
      break;
    case KEY_END:
    case 'G':
      scroll(1000000);
      break;
    case '.':
    case 'n':
      if (live_) {
        flash("step: only when replaying a recording");
      } else {
        set_paused(true);
        {
          std::lock_guard<std::mutex> lk(sh_.mu);
          sh_.steps++;
        }
        sh_.cv.notify_all();
      }
      break;
    case KEY_LEFT:
    case KEY_RIGHT:
      if (!src_.can_seek()) {
        flash("seek: only when replaying a recording");
      } else {
        double to = std::max(0.0, shown_pos_ + (ch == KEY_LEFT ? -5.0 : 5.0));
        {
          std::lock_guard<std::mutex> lk(sh_.mu);
          sh_.frames.clear();
          sh_.positions.clear();
          sh_.seeks++;
        }
        src_.seek(to);
        ptrack_.reset();
        if (paused_) {  // show where we landed
          std::lock_guard<std::mutex> lk(sh_.mu);
          sh_.steps++;
        }
        sh_.cv.notify_all();
        flash("seek to " + fmt1("%.1fs", to));
      }
      break;
    case '+':
    case '=':
    case '-':
    case '_':
      if (live_) {
        flash("speed: only when replaying a recording");
      } else {
        speed_ = std::clamp(ch == '+' || ch == '=' ? speed_ * 2 : speed_ / 2, 0.125, 64.0);
        src_.set_speed(speed_);
        flash("speed x" + fmt1("%g", speed_));
      }
      break;
    case '?':
    case 'h':
    case KEY_F(1):
      help_ = true;
      break;
    case 12:  // Ctrl-L
      clearok(curscr, TRUE);
      break;
    default:
      break;
  }
  return true;
}

// ---------------------------------------------------------------- header and footer

int View::draw_header(int W, int max_lines) {
  const model::Frame& f = *shown_;
  const bool narrow = W < 120;
  struct Field {
    std::string text;
    attr_t attr = 0;
  };
  struct Group {
    int prio = 0;  // when the lines do not fit, the highest numbers go first
    std::vector<Field> fields;
  };
  std::vector<Group> groups;

  // Identity and state.
  Group g1;
  g1.fields.push_back({opt_.title, A_BOLD});
  g1.fields.push_back({"pid " + std::to_string(f.target.pid) + " (" + f.target.comm + ")", A_BOLD});
  if (!f.target.go_version.empty())
    g1.fields.push_back({f.target.go_version + (f.target.go_enabled ? "" : " (Go context off)")});
  else
    g1.fields.push_back({"not a Go program (kernel view only)"});
  if (f.go) g1.fields.push_back({"GOMAXPROCS " + std::to_string(f.go->gomaxprocs)});
  int limit = f.go && f.go->maxmcount > 0 ? f.go->maxmcount : f.target.max_threads;
  double used = limit > 0 ? double(f.threads_alive) / limit : 0;
  g1.fields.push_back({"threads " + std::to_string(f.threads_alive) + "/" + std::to_string(limit) +
                           (narrow ? " max" : " (runtime limit)"),
                       used >= 0.8   ? attr_pair(kRed) | A_BOLD
                       : used >= 0.5 ? attr_pair(kYellow)
                                     : attr_t(0)});
  if (f.target.goroutines && f.goroutines.enabled) {  // --goroutines: counted by uprobes
    const auto& g = f.goroutines;
    g1.fields.push_back({"goroutines " +
                         (g.live ? "~" + std::to_string(*g.live) : std::string("?")) + " (+" +
                         fmt_count(g.created_per_s) + "/s -" +
                         (g.exited_source == "census" ? "~" : "") +  // census: an estimate
                         fmt_count(g.exited_per_s) + "/s)"});
  }
  if (f.final)
    g1.fields.push_back({"totals over " + fmt1("%.1fs", f.elapsed_s)});
  else
    g1.fields.push_back({"interval " + fmt1("%.1fs", f.interval_s)});
  g1.fields.push_back({"elapsed " + fmt_clock(f.elapsed_s)});
  if (src_.can_seek() || !live_)
    g1.fields.push_back({"replay " + fmt1("%.1f", shown_pos_) + "/" +
                         fmt1("%.1fs", src_.length_s()) + " x" + fmt1("%g", speed_)});
  if (paused_)
    g1.fields.push_back({live_ && missed_
                             ? "PAUSED (" + std::to_string(missed_) + " new frames held)"
                             : std::string("PAUSED"),
                         A_REVERSE | A_BOLD});
  groups.push_back(std::move(g1));

  if (ended_)
    groups.push_back({0,
                      {{"*** " + end_text_ + ": totals since attach below; press q to quit ***",
                        A_REVERSE | A_BOLD | attr_pair(kYellow)}}});

  // Rates.
  Group g2{2, {}};
  if (f.target.all_syscalls)
    g2.fields.push_back({"syscalls/s " + fmt_count(f.syscalls_per_s)});
  else
    g2.fields.push_back({"blocking episodes/s " + fmt_count(f.syscalls_per_s)});
  g2.fields.push_back({"ctx switches/s " + fmt_count(f.switches_per_s)});
  g2.fields.push_back(
      {"run-queue latency p50 " + fmt_us(f.rq_p50_us) + " p99 " + fmt_us(f.rq_p99_us)});
  if (f.go_latency.available && f.go_latency.lat.samples)
    g2.fields.push_back({"goroutine latency p50 " + fmt_us(f.go_latency.lat.p50_us) + " p99 " +
                         fmt_us(f.go_latency.lat.p99_us) + " p99.9 " +
                         fmt_us(f.go_latency.lat.p999_us)});
  g2.fields.push_back({"new threads/s " + fmt1("%.1f", f.creations_per_s) + " (created " +
                       std::to_string(f.creations_total) + ", exited " +
                       std::to_string(f.exits_total) + ")"});
  if (f.drops_interval)
    g2.fields.push_back({"DROPS " + std::to_string(f.drops) + " (+" +
                             std::to_string(f.drops_interval) +
                             " this interval: raise --ringbuf-size)",
                         attr_pair(kRed) | A_BOLD});
  else
    g2.fields.push_back({"drops " + std::to_string(f.drops)});
  groups.push_back(std::move(g2));

  // USDT: the runtime adapter's pauses and threads, --usdt probe rates.
  if (!f.usdt.empty()) {
    const auto& u = f.usdt;
    Group gu{1, {}};
    if (!u.runtime.empty()) gu.fields.push_back({"runtime " + u.runtime + " (USDT)", A_BOLD});
    for (const auto& p : u.pauses) {
      bool hot = p.share >= 0.1 || p.max_ms >= 100 || p.ongoing_ms >= 100;
      gu.fields.push_back({p.kind + " pauses " + std::to_string(p.count) + " " +
                               fmt1("%.1f", p.total_ms) + "ms (max " + fmt1("%.1f", p.max_ms) +
                               "ms, " + fmt1("%.1f", p.share * 100) + "% of wall)" +
                               (p.ongoing_ms > 0 ? " IN PAUSE " + fmt1("%.0f", p.ongoing_ms) + "ms" : ""),
                           hot ? attr_pair(kRed) | A_BOLD : attr_t(0)});
    }
    if (u.threads_started || u.threads_stopped)
      gu.fields.push_back({"runtime threads +" + std::to_string(u.threads_started) + " -" +
                           std::to_string(u.threads_stopped) + " since attach"});
    for (const auto& p : u.probes)
      if (p.role == "generic")
        gu.fields.push_back({p.probe + " " + fmt_count(p.per_s) + "/s (" + std::to_string(p.total) +
                             ")"});
    if (!gu.fields.empty()) groups.push_back(std::move(gu));
  }

  // GC and goroutine census.
  if (f.gc.enabled || f.census || f.goroutine_counts.available) {
    Group gg{1, {}};
    const auto& g = f.gc;
    if (g.enabled) {
      gg.fields.push_back({"GC cycles " + std::to_string(g.cycles) + " (total " +
                               std::to_string(g.cycles_total) + ")" +
                               (g.in_cycle ? " MARKING" : ""),
                           g.in_cycle ? attr_pair(kYellow) : attr_t(0)});
      gg.fields.push_back({"STW " + std::to_string(g.stw_count) + " / " +
                           fmt1("%.2f", g.stw_ms) + "ms (max " + fmt1("%.2f", g.stw_max_ms) +
                           "ms)"});
      gg.fields.push_back({"assist " + fmt1("%.0f%%", g.assist_share * 100) + " workers " +
                           fmt1("%.0f%%", g.worker_share * 100)});
      if (g.mmu_10ms >= 0)
        gg.fields.push_back({"MMU 1ms " + fmt1("%.0f%%", std::max(0.0, g.mmu_1ms) * 100) +
                                 " 10ms " + fmt1("%.0f%%", g.mmu_10ms * 100) + " 100ms " +
                                 fmt1("%.0f%%", std::max(0.0, g.mmu_100ms) * 100),
                             g.mmu_10ms < 0.2   ? attr_pair(kRed) | A_BOLD
                             : g.mmu_10ms < 0.5 ? attr_pair(kYellow)
                                                : attr_t(0)});
    }
    if (f.census) {
      auto io = f.census->waiting_by_reason.find(gc::kWaitReasonIOWait);
      gg.fields.push_back({"goroutines " + std::to_string(f.census->live()) + " (IO wait " +
                           std::to_string(io == f.census->waiting_by_reason.end() ? 0u
                                                                                  : io->second) +
                           ")"});
    }
    if (f.goroutine_counts.available)
      gg.fields.push_back({"created " + fmt_count(f.goroutine_counts.created_per_s) + "/s"});
    groups.push_back(std::move(gg));
  }

  // Capacity decisions (docs/capacity.md): a "yes" in bold yellow.
  if (f.capacity.present) {
    bool yes = false;
    for (const auto& v : f.capacity.verdicts) yes = yes || v.answer == capacity::Answer::kYes;
    groups.push_back({1, {{capacity::summary_line(f.capacity), yes ? attr_pair(kYellow) | A_BOLD : attr_t(0)}}});
  }

  // Mode and cost.
  std::string mode;
  if (f.target.all_syscalls)
    mode = narrow ? "mode: -S, every syscall (costly; default: blocking ones only)"
                  : "mode: -S, every syscall counted and timed (raw_syscalls tracepoints, costly); "
                    "the default mode shows blocking syscalls only, from sched tracepoints";
  else
    mode = narrow ? "mode: default, blocking syscalls only (-S adds every call, costly)"
                  : "mode: default, blocking syscalls seen at switch-out (sched tracepoints "
                    "only); -S adds every call's count and latency (costly)";
  groups.push_back({4, {{mode}}});
  Group gc{3, {}};
  std::string cost = src_.cost();
  if (!cost.empty()) gc.fields.push_back({cost});
  if (f.target.goroutines)
    gc.fields.push_back({f.goroutines.enabled ? "goroutine uprobes: " + f.goroutines.cost
                                              : "goroutines: off (" + f.goroutines.note + ")"});
  if (!gc.fields.empty()) groups.push_back(std::move(gc));
  if (f.annotations) {  // --annotations (docs/annotations.md)
    Group ga{2, {}};
    for (auto& s : annotations_live_fields(*f.annotations, narrow)) ga.fields.push_back({std::move(s)});
    groups.push_back(std::move(ga));
  }

  // Alerts summary.
  int act = 0, crit = 0, warn = 0;
  const AlertEntry* top = nullptr;
  for (const auto& e : alerts_) {
    if (!e.active) continue;
    act++;
    crit += e.alert.severity == "critical";
    warn += e.alert.severity == "warning";
    int r = severity_rank(e.alert.severity), rt = top ? severity_rank(top->alert.severity) : -1;
    if (r > rt || (r == rt && e.first_s >= top->first_s)) top = &e;
  }
  std::vector<Field> notes;
  if (!f.notices.empty())
    notes.push_back({"notices: " + std::to_string(f.notices.size()) + " blocked M" +
                         (f.notices.size() == 1 ? "" : "s") +
                         " (long syscall, P handed off: cyan in Threads)",
                     attr_pair(kCyan)});
  if (top) {
    attr_t a = attr_pair(sev_pair(top->alert.severity));
    groups.push_back({1,
                      {{"ALERTS " + std::to_string(act) + " active (" + std::to_string(crit) +
                            " critical, " + std::to_string(warn) + " warning):",
                        a | A_BOLD},
                       {top->alert.message, a}}});
  } else {
    groups.push_back(
        {1,
         {{"alerts: none active" + (alerts_.empty() ? std::string()
                                                    : ", " + std::to_string(alerts_.size()) +
                                                          " in history (4 shows them)")}}});
  }
  for (auto& n : notes) groups.back().fields.push_back(std::move(n));

  // Lines of each group (a field wider than the screen is wrapped over several).
  std::vector<std::vector<std::vector<Field>>> lines_of;
  size_t total = 0;
  for (auto& g : groups) {
    std::vector<Field> split;
    for (auto& fl : g.fields) {
      if (int(fl.text.size()) <= W) {
        split.push_back(std::move(fl));
        continue;
      }
      for (auto& part : wrap_text(fl.text, size_t(W))) split.push_back({part, fl.attr});
    }
    std::vector<std::string> texts;
    for (const auto& fl : split) texts.push_back(fl.text);
    std::vector<std::vector<Field>> ls;
    for (const auto& idx : wrap_fields(texts, W)) {
      std::vector<Field> line;
      for (size_t i : idx) line.push_back(split[i]);
      ls.push_back(std::move(line));
    }
    total += ls.size();
    lines_of.push_back(std::move(ls));
  }
  std::vector<bool> keep(groups.size(), true);
  for (int prio = 4; prio >= 1 && total > size_t(max_lines); prio--)
    for (size_t i = 0; i < groups.size(); i++)
      if (keep[i] && groups[i].prio == prio && total > size_t(max_lines)) {
        keep[i] = false;
        total -= lines_of[i].size();
      }
  int y = 0;
  for (size_t gi = 0; gi < groups.size(); gi++) {
    if (!keep[gi]) continue;
    for (const auto& line : lines_of[gi]) {
      if (y >= max_lines) return y;
      int x = 0;
      for (const auto& fl : line) {
        put(y, x, W - x, fl.text, fl.attr);
        x += int(fl.text.size()) + 2;
      }
      y++;
    }
  }
  return y;
}

void View::draw_footer(int y, int W) {
  std::string keys =
      "q quit  space pause  Tab/1-4 pane  z zoom  o sort  r reverse  arrows scroll  ? help";
  if (!live_) keys += "  . step  <-/-> seek  +/- speed";
  if (has_annotations()) keys += "  v regions/tasks  T totals";
  attron(A_REVERSE);
  mvhline(y, 0, ' ', W);
  attroff(A_REVERSE);
  put(y, 0, W, keys, A_REVERSE);
  if (!flash_.empty() && std::chrono::steady_clock::now() < flash_until_) {
    int x = std::max(0, W - int(flash_.size()) - 1);
    put(y, x, W - x, flash_, A_REVERSE | A_BOLD);
  }
}

// ---------------------------------------------------------------- panes

void View::draw_title(const Rect& r, int pane, const std::string& info) {
  bool f = pane == focus_;
  std::string t = std::string(f ? "> " : "  ") + std::to_string(pane + 1) + " " + pane_name(pane);
  if (f && maximized_) t += " (zoomed)";
  t += "  " + info;
  attr_t attr = f ? (colors_ ? attr_pair(kTitleFocus) | A_BOLD : A_REVERSE | A_BOLD)
                  : (colors_ ? attr_pair(kTitle) : A_REVERSE);
  attron(int(attr));
  mvhline(r.y, r.x, ' ', r.w);
  attroff(int(attr));
  put(r.y, r.x, r.w, t, attr);
}

void View::draw_table(const Rect& r, int pane, const std::vector<Col>& cols, int flex,
                      const std::vector<std::vector<std::string>>& rows,
                      const std::vector<attr_t>& attrs, int sorted_col, int first, int body_h) {
  std::vector<int> w = fit_columns(cols, r.w, flex);
  int x = r.x;
  for (size_t c = 0; c < cols.size(); c++) {
    if (!w[c]) continue;
    attr_t a = A_BOLD | (int(c) == sorted_col ? A_UNDERLINE | attr_pair(kCyan) : 0);
    put(r.y + 1, x, r.x + r.w - x, pad(cols[c].name, size_t(w[c]), cols[c].right), a);
    x += w[c] + 1;
  }
  (void)pane;
  for (int i = 0; i < body_h && first + i < int(rows.size()); i++) {
    const auto& row = rows[size_t(first + i)];
    int y = r.y + 2 + i;
    x = r.x;
    attr_t a = attrs[size_t(first + i)];
    if (a & A_REVERSE) {
      attron(int(a));
      mvhline(y, r.x, ' ', r.w);
      attroff(int(a));
    }
    for (size_t c = 0; c < cols.size() && c < row.size(); c++) {
      if (!w[c]) continue;
      bool is_flex = int(c) == flex;
      std::string cell = is_flex && row[c].size() > size_t(w[c])
                             ? fit(row[c], size_t(w[c]))
                             : pad(row[c], size_t(w[c]), cols[c].right);
      put(y, x, r.x + r.w - x, cell, a);
      x += w[c] + 1;
    }
  }
}

std::string rows_info(int first, int shown, int n) {
  if (n == 0) return "(none)";
  int last = std::min(n, first + shown);
  if (first == 0 && last == n) return std::to_string(n) + " rows";
  return "rows " + std::to_string(first + 1) + "-" + std::to_string(last) + " of " +
         std::to_string(n);
}

std::string sort_info(const std::vector<std::string>& keys, const PaneState& ps) {
  return "sort: " + keys[size_t(ps.sort)] + (ps.reverse ? " (reversed)" : "");
}

void View::draw_ps(const Rect& r) {
  const model::Frame& f = *shown_;
  PaneState& ps = pane_[kPs];
  int body = std::max(0, r.h - 2);
  body_rows_[kPs] = body;
  if (!f.go) {
    draw_title(r, kPs, "no P table");
    std::string why = f.target.go_note.empty() ? "not a Go program" : f.target.go_note;
    put(r.y + 1, r.x + 2, r.w - 2, "no Go runtime data: " + why, A_DIM);
    return;
  }
  std::vector<size_t> ord = order_ps(f, pinfo_, ps.sort, ps.reverse);
  int n = int(ord.size());
  ps.first = std::clamp(ps.first, 0, std::max(0, n - body));
  draw_title(r, kPs,
             sort_info(p_sort_keys(), ps) + "  " + rows_info(ps.first, body, n) +
                 "  FOR: time since status/ticks last changed");
  static const std::vector<Col> cols = {
      {"P", 3, true, 0},       {"STATUS", 8, false, 0},
      {"M", 4, true, 2},       {"TID", 7, true, 0},
      {"G", 7, true, 0},       {"FOR", 7, true, 0},
      {"SCHED/s", 8, true, 1}, {"SYSC/s", 7, true, 3},
      {"RUNQ", 5, true, 2},    {"G FUNCTION (@ current)", 16, false, 0}};
  static const int sort_col[] = {0, 1, 5, 6, 8, 2};
  std::set<int32_t> stuck;
  for (const auto& e : alerts_)
    if (e.active && e.alert.kind == "stuck_p") stuck.insert(e.alert.p);
  std::vector<std::vector<std::string>> rows;
  std::vector<attr_t> attrs;
  for (size_t i : ord) {
    const go::PSample& p = f.go->ps[i];
    auto it = pinfo_.find(p.id);
    PTracker::Info in = it == pinfo_.end() ? PTracker::Info{} : it->second;
    std::string forv = "-";
    if (in.known)
      forv = in.in_state_s <= 1e-9 ? "<" + fmt_ms(interval_s_ * 1e3)
                                   : (in.since_first ? ">" : "") + fmt_ms(in.in_state_s * 1e3);
    std::string func = p.goid ? p.func : (p.status == 0 ? "" : "(no G)");
    if (!p.cur_func.empty() && p.cur_func != p.func && p.goid) func += " @ " + p.cur_func;
    if (stuck.count(p.id)) func = "STUCK " + func;  // also without colours
    rows.push_back({std::to_string(p.id), go::p_status_name(p.status),
                    id_or_dash(p.m_id, -1) + (p.via_oldp ? "*" : ""), id_or_dash(p.tid, 0),
                    id_or_dash(static_cast<long long>(p.goid), 0), forv,
                    in.known ? fmt_count(in.sched_per_s) : "-",
                    in.known ? fmt_count(in.syscall_per_s) : "-", std::to_string(p.runq), func});
    attr_t a = 0;
    if (stuck.count(p.id))
      a = attr_pair(kRed) | A_BOLD;
    else if (p.status == 1 && in.known && !in.since_first && in.in_state_s >= 1.0)
      a = attr_pair(kYellow);
    else if (p.status == 0)
      a = A_DIM;
    attrs.push_back(a);
  }
  draw_table(r, kPs, cols, 9, rows, attrs, sort_col[ps.sort], ps.first, body);
}

void View::draw_threads(const Rect& r) {
  const model::Frame& f = *shown_;
  PaneState& ps = pane_[kThreads];
  int body = std::max(0, r.h - 2);
  body_rows_[kThreads] = body;
  std::vector<size_t> ord = order_threads(f, ps.sort, ps.reverse);
  int n = int(ord.size());
  ps.first = std::clamp(ps.first, 0, std::max(0, n - body));
  draw_title(r, kThreads,
             sort_info(thread_sort_keys(), ps) + "  " + rows_info(ps.first, body, n) +
                 (f.final ? "  totals since attach"
                          : "  off-CPU ms this interval: PRE(empted) SLP DSK OTH"));
  bool all = f.target.all_syscalls;
  std::vector<Col> cols = {
      {"TID", 7, true, 0},         {"NAME", 12, false, 4}, {"STATE", 8, false, 0},
      {"SYSCALL", 12, false, 0},   {"FOR", 7, true, 0},    {"CPU%", 5, true, 0},
      {"PRE", 6, true, 3},         {"SLP", 6, true, 3},    {"DSK", 6, true, 5},
      {"OTH", 6, true, 6},         {"RQp99", 7, true, 4},  {"SC/s", all ? 6 : 0, true, 2},
      {"M", 4, true, 1},           {"P", 3, true, 1},      {"G", 6, true, 1},
      {"G FUNCTION", 12, false, 0}};
  static const int sort_col[] = {5, 4, 2, -1, -1, 10, 0, 1};
  std::set<uint32_t> stuck, blocked;
  for (const auto& e : alerts_) {
    if (!e.active) continue;
    if (e.alert.kind == "stuck_p") stuck.insert(e.alert.tid);
    if (e.alert.kind == "blocked_m") blocked.insert(e.alert.tid);
  }
  for (const auto& note : f.notices)
    if (note.kind == "blocked_m") blocked.insert(note.tid);
  std::vector<std::vector<std::string>> rows;
  std::vector<attr_t> attrs;
  for (size_t i : ord) {
    const model::ThreadRow& t = f.threads[i];
    double forms = t.syscall.empty() ? t.state_ms : t.syscall_ms;
    std::string func = t.go_func;
    if (t.incgo) func += func.empty() ? "[cgo]" : " [cgo]";
    rows.push_back({std::to_string(t.tid), t.name, model::thread_state_name(t.state), t.syscall.empty() ? "-" : t.syscall,
                    t.state == model::ThreadState::kExited ? "-" : fmt_ms(forms), fmt1("%.1f", t.oncpu_pct),
                    small_ms(t.offcpu_ms.preempted), small_ms(t.offcpu_ms.sleep),
                    small_ms(t.offcpu_ms.disk), small_ms(t.offcpu_ms.other),
                    t.rq_p99_us > 0 ? fmt_us(t.rq_p99_us) : "-",
                    all ? fmt_count(t.syscalls_per_s) : "", id_or_dash(t.m, -1),
                    id_or_dash(t.p, -1) + (t.p_from_oldp ? "*" : ""),
                    id_or_dash(static_cast<long long>(t.goid), 0), func});
    attr_t a = 0;
    if (stuck.count(t.tid))
      a = attr_pair(kRed) | A_BOLD;
    else if (blocked.count(t.tid))
      a = attr_pair(kCyan);
    else if (t.state == model::ThreadState::kExited)
      a = A_DIM;
    else if (t.state == model::ThreadState::kRunning)
      a = attr_pair(kGreen);
    attrs.push_back(a);
  }
  int sc = sort_col[ps.sort];
  if (ps.sort == 3) sc = 6;  // off-cpu: the first breakdown column
  draw_table(r, kThreads, cols, 15, rows, attrs, sc, ps.first, body);
}

void View::draw_syscalls(const Rect& r) {
  const model::Frame& f = *shown_;
  PaneState& ps = pane_[kSyscalls];
  int body = std::max(0, r.h - 2);
  body_rows_[kSyscalls] = body;
  std::vector<size_t> ord = order_syscalls(f, ps.sort, ps.reverse);
  int n = int(ord.size());
  ps.first = std::clamp(ps.first, 0, std::max(0, n - body));
  bool all = f.target.all_syscalls;
  draw_title(r, kSyscalls,
             sort_info(syscall_sort_keys(), ps) + "  " + rows_info(ps.first, body, n) +
                 (all ? "  every call (-S)" : "  blocking episodes"));
  std::vector<Col> cols = {{"SYSCALL", 14, false, 0}, {all ? "CALLS/s" : "COUNT", 7, true, 0},
                           {"TOTAL", 8, true, 3},     {all ? "TIME" : "BLOCKED", 8, true, 0},
                           {"p50", 7, true, 2},       {"p99", 7, true, 0},
                           {"MAX", 7, true, 4},       {"INFL", 4, true, 1}};
  static const int sort_col[] = {1, 3, 5, 4, 7, 2, 0};
  std::vector<std::vector<std::string>> rows;
  std::vector<attr_t> attrs;
  for (size_t i : ord) {
    const model::SyscallRow& s = f.syscalls[i];
    rows.push_back({s.name, all ? fmt_count(s.calls_per_s) : std::to_string(s.count),
                    std::to_string(s.total_count), fmt_ms(s.time_ms), fmt_us(s.p50_us),
                    fmt_us(s.p99_us), fmt_us(s.max_us), std::to_string(s.in_flight)});
    attrs.push_back(s.count == 0 && s.in_flight == 0 ? A_DIM : 0);
  }
  draw_table(r, kSyscalls, cols, -1, rows, attrs, sort_col[ps.sort], ps.first, body);
}

void View::draw_annotations(const Rect& r) {
  const annotations::Stats& a = *shown_->annotations;
  const Pane3 v = view3();
  PaneState& ps = state_of(kSyscalls);
  int body = std::max(0, r.h - 2);
  body_rows_[kSyscalls] = body;
  std::vector<Col> cols;
  std::vector<std::vector<std::string>> rows;
  std::vector<attr_t> attrs;
  int sorted = -1, flex = 0;
  const char* when = annot_total_ ? "since attach (T)" : "this interval (T)";
  std::string info;
  if (v == Pane3::kRegions) {
    const auto& reg = annot_tables().regions;
    cols = {{"REGION (path)", 14, false, 0}, {"COUNT", 6, true, 0}, {"TOTAL", 8, true, 0},
            {"AVG", 7, true, 1},             {"p50", 7, true, 3},   {"p99", 7, true, 0},
            {"MAX", 7, true, 2},             {"PS (P:count)", 12, false, 4},
            {"THR", 4, true, 4}};
    static const int sort_col[] = {2, 1, 3, 5, 6, 0};
    sorted = sort_col[ps.sort];
    for (size_t i : order_regions(reg, ps.sort, ps.reverse)) {
      const auto& x = reg[i];
      std::string pss;
      for (const auto& [p, n] : x.ps)
        pss += (pss.empty() ? "" : " ") + (p < 0 ? std::string("?") : std::to_string(p)) + ":" +
               std::to_string(n);
      rows.push_back({x.path, std::to_string(x.count), fmt_ms(x.total_ms), fmt_ms(x.avg_ms),
                      fmt_ms(x.p50_ms), fmt_ms(x.p99_ms), fmt_ms(x.max_ms), pss,
                      std::to_string(x.threads)});
      attrs.push_back(0);
    }
    info = when;
  } else if (v == Pane3::kTasks) {
    const auto& tk = annot_tables().tasks;
    cols = {{"TASK TYPE", 14, false, 0}, {"STARTED", 7, true, 0}, {"ENDED", 7, true, 0},
            {"INFL", 5, true, 0},        {"p50", 7, true, 1},     {"p99", 7, true, 0},
            {"MAX", 7, true, 0}};
    static const int sort_col[] = {5, 1, 3, 6, 0};
    sorted = sort_col[ps.sort];
    for (size_t i : order_tasks(tk, ps.sort, ps.reverse)) {
      const auto& x = tk[i];
      rows.push_back({x.type, std::to_string(x.started), std::to_string(x.ended),
                      std::to_string(x.in_flight), fmt_ms(x.p50_ms), fmt_ms(x.p99_ms),
                      fmt_ms(x.max_ms)});
      attrs.push_back(0);
    }
    info = when;
  } else {
    cols = {{"TASK", 8, true, 0}, {"NAME / REGION TREE", 16, false, 0}, {"G", 7, true, 0},
            {"P", 3, true, 1},    {"START ms", 9, true, 1},            {"MS", 9, true, 0}};
    flex = 1;
    for (const auto& row : slowest_) {
      rows.push_back(row.cells);
      attrs.push_back(row.task ? attr_t(A_BOLD) : attr_t(0));
    }
    info = "since attach, slowest first";
  }
  int n = int(rows.size());
  ps.first = std::clamp(ps.first, 0, std::max(0, n - body));
  std::string state = a.state == SS_ANNOT_STATE_OFF || a.state == SS_ANNOT_STATE_CEILING
                          ? std::string("  ") + model::annotation_state_name(a.state)
                          : "";
  draw_title(r, kSyscalls,
             sort_info(keys_of(kSyscalls), ps) + "  " + rows_info(ps.first, body, n) + "  " +
                 info + state + "  v: next view");
  draw_table(r, kSyscalls, cols, flex, rows, attrs, sorted, ps.first, body);
}

std::vector<std::string> View::alert_details(const AlertEntry& e, int w) const {
  const model::Alert& a = e.alert;
  std::vector<std::string> out;
  std::string id = "[" + a.severity + "] " + a.kind;
  if (a.p >= 0) id += "  P" + std::to_string(a.p);
  if (a.m >= 0) id += "  M" + std::to_string(a.m);
  if (a.tid) id += "  tid " + std::to_string(a.tid);
  if (a.goid) id += "  G" + std::to_string(a.goid);
  if (!a.func.empty()) id += " " + a.func;
  if (!a.syscall.empty()) id += "  in " + a.syscall;
  if (a.threads) id += "  threads " + std::to_string(a.threads);
  id += "  first +" + fmt_clock(e.first_s) +
        (e.active ? ", active" : ", cleared (last active +" + fmt_clock(e.last_s) + ")");
  for (auto& l : wrap_text(id, size_t(w))) out.push_back(l);
  for (auto& l : wrap_text(a.message, size_t(w))) out.push_back(l);
  if (e.raised > 1)
    out.push_back("raised " + std::to_string(e.raised) +
                  " times in this episode (the detector cleared it in between)");
  for (const auto& ev : a.evidence)
    for (auto& l : wrap_text(ev, size_t(std::max(8, w - 2)))) out.push_back("  " + l);
  // The stack, unless the evidence already walks it.
  bool stack_in_evidence = false;
  if (!a.stack.empty()) {
    std::string fn = a.stack[0].substr(0, a.stack[0].find(' '));
    for (const auto& ev : a.evidence) stack_in_evidence |= ev.find(fn) != std::string::npos;
  }
  if (!stack_in_evidence)
    for (const auto& st : a.stack) out.push_back("  at " + st);
  return out;
}

void View::draw_alerts(const Rect& r) {
  PaneState& ps = pane_[kAlerts];
  std::vector<size_t> ord = order_alerts(alerts_, ps.sort, ps.reverse);
  int n = int(ord.size());
  alert_sel_ = std::clamp(alert_sel_, 0, std::max(0, n - 1));
  std::vector<std::string> details;
  if (n) details = alert_details(alerts_[ord[size_t(alert_sel_)]], r.w - 2);
  // The list, then the details of the selected alert right below it.
  int avail = std::max(0, r.h - 2);
  int det_need = n ? int(details.size()) + 1 : 0;
  int body = std::min(n, std::max(std::min(n, 3), avail - det_need));
  body = std::min(body, avail);
  int det_h = std::min(det_need, avail - body);
  body_rows_[kAlerts] = std::max(1, body);
  if (alert_sel_ < ps.first) ps.first = alert_sel_;
  if (body > 0 && alert_sel_ >= ps.first + body) ps.first = alert_sel_ - body + 1;
  ps.first = std::clamp(ps.first, 0, std::max(0, n - std::max(1, body)));
  draw_title(r, kAlerts,
             sort_info(alert_sort_keys(), ps) + "  " + rows_info(ps.first, body, n) +
                 (n ? "  Up/Down select, details below" : ""));
  static const std::vector<Col> cols = {{"WHEN", 7, true, 0},   {"SEVERITY", 8, false, 0},
                                        {"KIND", 13, false, 1}, {"STATE", 7, false, 2},
                                        {"FOR", 6, true, 3},    {"MESSAGE", 16, false, 0}};
  static const int sort_col[] = {0, 1, 2, 3};
  std::vector<std::vector<std::string>> rows;
  std::vector<attr_t> attrs;
  for (size_t k = 0; k < ord.size(); k++) {
    const AlertEntry& e = alerts_[ord[k]];
    rows.push_back({"+" + fmt_clock(e.first_s), e.alert.severity, e.alert.kind,
                    e.active ? "ACTIVE" : "cleared",
                    e.alert.duration_ms > 0 ? fmt_ms(e.alert.duration_ms) : "-", e.alert.message});
    attr_t a = attr_pair(sev_pair(e.alert.severity)) | (e.active ? A_BOLD : 0);
    if (int(k) == alert_sel_ && focus_ == kAlerts) a |= A_REVERSE;
    attrs.push_back(a);
  }
  if (n == 0) {
    draw_table(r, kAlerts, cols, 5, rows, attrs, sort_col[ps.sort], 0, 0);
    put(r.y + 2, r.x + 2, r.w - 2,
        "no alerts so far (stuck P, blocked M, syscall storm, thread limit)", A_DIM);
    return;
  }
  draw_table(r, kAlerts, cols, 5, rows, attrs, sort_col[ps.sort], ps.first, body);
  if (det_h <= 0) return;
  int y = r.y + 2 + body;
  const AlertEntry& sel = alerts_[ord[size_t(alert_sel_)]];
  attr_t sa = attr_pair(sev_pair(sel.alert.severity));
  attron(A_DIM);
  mvhline(y, r.x, ACS_HLINE, r.w);
  attroff(A_DIM);
  put(y, r.x + 2, r.w - 2, " details: " + sel.alert.kind + " ", A_BOLD | sa);
  for (int i = 0; i + 1 < det_h && i < int(details.size()); i++)
    put(y + 1 + i, r.x + 1, r.w - 1, details[size_t(i)], i == 0 ? (sa | A_BOLD) : 0);
}

void View::draw_help(int H, int W) {
  static const char* const kHelp[] = {
      "schedscope live view: keys",
      "",
      "  q               quit (Ctrl-C too)",
      "  space           pause / resume (live: display frozen, data still collected)",
      "  Tab / S-Tab     next / previous pane",
      "  1-4, p t s a    focus Ps / Threads / Syscalls / Alerts (again: zoom)",
      "  z, Enter / Esc  zoom the focused pane / back to all panes",
      "  o or > / <      next / previous sort column of the focused pane",
      "  r               reverse the sort",
      "  Up Down (j k)   scroll; in Alerts: select (details below the list)",
      "  PgUp PgDn       page;  Home End (g G): first / last row",
      "  . or n          replay: one frame while paused",
      "  Left / Right    replay: seek -5s / +5s",
      "  + / -           replay: faster / slower",
      "  v               --annotations: pane 3 shows Syscalls / Regions / Tasks / Slowest tasks",
      "  T               --annotations: Regions and Tasks this interval / since attach",
      "  Ctrl-L          redraw the screen",
      "",
      "Header: run-queue latency = threads waiting for a CPU (kernel); goroutine latency =",
      "    goroutines waiting for a P (the runtime's own histogram, Go 1.17+).",
      "Ps: P, STATUS, M, TID of the M, G (goid) and its start function @ current function,",
      "    FOR = time since the status or ticks last changed (>: since first seen),",
      "    SCHED/s and SYSC/s = schedtick / syscalltick per second, RUNQ = local run queue.",
      "    Red: stuck P (ticks frozen while its M is blocked in the kernel).",
      "Threads: STATE, the SYSCALL it is blocked in and FOR how long, CPU% of the interval,",
      "    off-CPU ms: PRE(empted) SLP(eeping) DSK OTH(er), run-queue latency p99, M P G.",
      "Syscalls: blocking episodes (default) or every call (-S): count, time, p50/p99, in flight.",
      "Alerts: every alert raised since attach (colour = severity), with its evidence.",
      "Regions, Tasks, Slowest tasks (--annotations, key v): runtime/trace regions by path, task",
      "    types, and the slowest tasks with their region tree, logs and off-CPU time.",
      "",
      "press any key to close",
  };
  int n = int(sizeof kHelp / sizeof kHelp[0]);
  int w = 0;
  for (const char* l : kHelp) w = std::max(w, int(std::string(l).size()));
  w = std::min(w + 4, W);
  int h = std::min(n + 2, H);
  int y0 = std::max(0, (H - h) / 2), x0 = std::max(0, (W - w) / 2);
  for (int y = 0; y < h; y++) mvhline(y0 + y, x0, ' ', w);
  attron(A_BOLD);
  mvhline(y0, x0, ACS_HLINE, w);
  mvhline(y0 + h - 1, x0, ACS_HLINE, w);
  mvvline(y0, x0, ACS_VLINE, h);
  mvvline(y0, x0 + w - 1, ACS_VLINE, h);
  mvaddch(y0, x0, ACS_ULCORNER);
  mvaddch(y0, x0 + w - 1, ACS_URCORNER);
  mvaddch(y0 + h - 1, x0, ACS_LLCORNER);
  mvaddch(y0 + h - 1, x0 + w - 1, ACS_LRCORNER);
  attroff(A_BOLD);
  for (int i = 0; i < n && i + 1 < h - 1; i++)
    put(y0 + 1 + i, x0 + 2, w - 4, kHelp[i], i == 0 ? A_BOLD : 0);
}

void View::draw() {
  werase(stdscr);
  if (opt_.repaint_each_frame) redrawwin(stdscr);
  int H = LINES, W = COLS;
  if (H < 6 || W < 30) {
    put(0, 0, W,
        "terminal too small (" + std::to_string(W) + "x" + std::to_string(H) + "); q quits");
    wrefresh(stdscr);
    return;
  }
  if (!shown_) {
    put(0, 0, W, opt_.title + ": waiting for the first frame (one interval)...", A_BOLD);
    std::string cost = src_.cost();
    if (!cost.empty()) put(1, 0, W, cost);
    if (ended_) put(2, 0, W, end_text_ + "; press q to quit", A_BOLD);
    draw_footer(H - 1, W);
    if (help_) draw_help(H, W);
    wrefresh(stdscr);
    return;
  }
  int hy = draw_header(W, std::max(2, std::min(10, H / 3)));
  const model::Frame& f = *shown_;
  int want[kPanes];
  want[kPs] = 2 + (f.go ? int(f.go->ps.size()) : 1);
  want[kThreads] = 2 + int(f.threads.size());
  want[kSyscalls] = 2 + std::max<int>(1, view3() == Pane3::kSyscalls ? int(f.syscalls.size())
                                                                     : rows_of(kSyscalls));
  want[kAlerts] = 2 + std::max<int>(1, int(alerts_.size())) + (alerts_.empty() ? 0 : 7);
  Rect area{hy, 0, H - 1 - hy, W};
  layout_ = layout_panes(area, focus_, maximized_, want);
  for (int p = 0; p < kPanes; p++) {
    if (!layout_.shown[p] || layout_.pane[p].h <= 0) continue;
    const Rect& r = layout_.pane[p];
    switch (p) {
      case kPs:
        draw_ps(r);
        break;
      case kThreads:
        draw_threads(r);
        break;
      case kSyscalls:
        if (view3() == Pane3::kSyscalls)
          draw_syscalls(r);
        else
          draw_annotations(r);
        break;
      default:
        draw_alerts(r);
    }
  }
  draw_footer(H - 1, W);
  if (help_) draw_help(H, W);
  wrefresh(stdscr);
}

}  // namespace

int run_live(model::FrameSource& src, const LiveOptions& opt) {
  StopSignals stop_signals;  // before curses: it then leaves SIGINT/SIGTERM alone
  Screen screen;
  Shared sh;
  Worker worker(src, sh);
  View view(src, opt, sh, screen.colors());
  std::exception_ptr err;
  bool final_taken = false;
  bool dirty = true;
  int idle = 0;
  for (;;) {
    if (g_stop_sig) break;
    std::deque<model::Frame> got;
    std::deque<double> got_pos;
    std::optional<model::Frame> fin;
    bool ended = false;
    {
      std::lock_guard<std::mutex> lk(sh.mu);
      got.swap(sh.frames);
      got_pos.swap(sh.positions);
      if (sh.final_ready && !final_taken) {
        final_taken = ended = true;
        fin = std::move(sh.final_frame);
        err = sh.error;
      }
    }
    for (size_t i = 0; i < got.size(); i++)
      view.on_frame(std::move(got[i]), i < got_pos.size() ? got_pos[i] : 0);
    dirty |= !got.empty();
    if (err) break;
    if (ended) {
      view.on_final(std::move(fin), src.end_reason());
      dirty = true;
    }
    if (dirty) view.draw();
    dirty = false;
    int ch = wgetch(stdscr);  // up to 100 ms
    if (ch == ERR) {
      if (++idle >= 5) {  // a transient message expires; a replay position moves
        idle = 0;
        dirty = true;
      }
      continue;
    }
    if (!view.on_key(ch)) break;
    dirty = true;
  }
  worker.request_stop();
  screen.end();  // the terminal first; the worker may take a moment to notice
  worker.join();
  if (err) std::rethrow_exception(err);
  return 0;
}

}  // namespace schedscope::ui
