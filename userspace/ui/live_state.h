// The pure part of the live view (no curses): formatting, per-P tracking across frames,
// the alert history, the panes' sort orders, column fitting and the pane layout.
// ui/live.cpp draws with these; tests/unit/test_live.cpp tests them.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "annotations/tracker.h"
#include "model/alert.h"
#include "model/model.h"

namespace schedscope::ui::live {

// ---------------------------------------------------------------- formatting
std::string fmt_ms(double ms);                         // "0.4ms" "850ms" "12.3s" "5m03s" "2h05m"
std::string fmt_us(double us);                         // "49us" "8.3ms" "1.20s"
std::string fmt_count(double v);                       // "622" "12.3k" "4.5M" (rounded)
std::string fmt_clock(double s);                       // "00:42" "12:03" "1:02:03"
std::string fit(const std::string& s, size_t w);       // cut to w characters
std::string fit_tail(const std::string& s, size_t w);  // keep the end: "~" + tail
std::string pad(const std::string& s, size_t w, bool right);  // fit, then pad to w
// Words packed into lines of at most w characters (a longer word is cut); at least one line.
std::vector<std::string> wrap_text(const std::string& s, size_t w);

// ---------------------------------------------------------------- per-P tracking
// Tracks each P across frames: when its status or ticks last changed (time in state)
// and its schedtick / syscalltick rates over the last interval.
class PTracker {
 public:
  struct Info {
    double in_state_s = 0;     // since status/schedtick/syscalltick last changed
    bool since_first = false;  // unchanged since first seen: in_state_s is a lower bound
    bool known = false;        // the P was seen in an earlier frame
    double sched_per_s = 0, syscall_per_s = 0;  // over the last interval (known only)
  };
  // Frames in time order; a frame older than the last one (a seek back) resets.
  void update(const model::Frame& f);
  [[nodiscard]] Info info(int32_t p) const;
  [[nodiscard]] std::map<int32_t, Info> all() const;
  void reset();

 private:
  struct Track {
    uint32_t status = 0, schedtick = 0, syscalltick = 0;
    uint64_t since_ns = 0, last_ns = 0;
    bool since_first = true;
    Info info;
  };
  std::map<int32_t, Track> t_;
  uint64_t last_ts_ = 0;
};

// ---------------------------------------------------------------- alert history
struct AlertEntry {
  std::string key;                // kind:p:tid:first-raised of the latest raise
  std::vector<std::string> keys;  // every raise merged into this entry
  model::Alert alert;            // the latest version (message and duration grow)
  double first_s = 0;             // seconds since attach when first raised
  double last_s = 0;              // seconds since attach when last seen active
  bool active = false;
  int raised = 1;  // > 1: re-raised right after clearing, merged (see AlertHistory)
};

// "kind:p:tid:since" — one entry per alert episode.
std::string alert_key(const model::Alert& a);

// Every alert seen, across frames (the detectors only carry active ones and those that
// cleared at this frame). Oldest first; at most `max` entries (the oldest cleared go).
// A raise whose condition started (since_ns) no later than one interval after the same
// kind on the same P/tid was last seen active continues that entry: one episode, even
// when the detector cleared it for a frame in between.
class AlertHistory {
 public:
  explicit AlertHistory(size_t max = 500) : max_(max) {}
  void update(const model::Frame& f);
  [[nodiscard]] const std::vector<AlertEntry>& entries() const { return e_; }
  [[nodiscard]] int active(const char* severity = nullptr) const;
  void clear() { e_.clear(); }

 private:
  size_t max_;
  std::vector<AlertEntry> e_;
};

// ---------------------------------------------------------------- sorting
// Sort keys of each pane; the first is the default. Numbers sort descending and names
// ascending unless reversed.
const std::vector<std::string>& p_sort_keys();  // P status for sched/s runq M
const std::vector<std::string>&
thread_sort_keys();  // cpu% for state off-cpu tid switches rq-p99 name
const std::vector<std::string>& syscall_sort_keys();  // count time p99 p50 in-flight total name
const std::vector<std::string>& alert_sort_keys();    // time severity kind state

std::vector<size_t> order_ps(const model::Frame& f, const std::map<int32_t, PTracker::Info>& info,
                             int key, bool reverse);
std::vector<size_t> order_threads(const model::Frame& f, int key, bool reverse);
std::vector<size_t> order_syscalls(const model::Frame& f, int key, bool reverse);
std::vector<size_t> order_alerts(const std::vector<AlertEntry>& a, int key, bool reverse);

// --annotations: pane 3 also shows the regions, the task types and the slowest tasks of
// runtime/trace (docs/live-view.md); `v` switches between them and the syscalls.
enum class Pane3 : int { kSyscalls = 0, kRegions = 1, kTasks = 2, kSlowest = 3, kViews = 4 };
const char* pane3_name(Pane3 v);                          // "Syscalls" "Regions" "Tasks" "Slowest tasks"
const std::vector<std::string>& region_sort_keys();      // total count avg p99 max path
const std::vector<std::string>& task_sort_keys();        // p99 started in-flight max type
const std::vector<std::string>& slowest_sort_keys();     // duration (slowest first)
std::vector<size_t> order_regions(const std::vector<annotations::RegionRow>& r, int key,
                                  bool reverse);
std::vector<size_t> order_tasks(const std::vector<annotations::TaskRow>& t, int key,
                                bool reverse);
// The slowest tasks as table rows: per task a line with its id, name and duration, then
// its region tree (indented by depth, with goroutine, P, start and length), its logs
// and what its goroutines did off-CPU meanwhile. Columns: TASK REGION G P START MS.
struct SlowestRow {
  std::vector<std::string> cells;
  bool task = false;  // the task's own line
};
std::vector<SlowestRow> slowest_rows(const std::vector<annotations::SlowTask>& tasks);

int severity_rank(const std::string& s);  // critical 3, warning 2, info 1, else 0

// ---------------------------------------------------------------- columns and layout
struct Col {
  std::string name;
  int width = 4;  // minimum width (the flexible column takes what is left); 0: off
  bool right = false;
  int prio = 0;  // 0: always shown; higher numbers are hidden first when narrow
};
// Widths of the columns for a line of `total` characters (0: hidden), one space
// between shown columns; the spare width goes to column `flex` (if shown, -1: none).
std::vector<int> fit_columns(const std::vector<Col>& cols, int total, int flex);

// Fields packed into lines of `width` (separated by `gap` spaces): the field indices
// of each line. A field wider than the line gets a line of its own (and is cut).
std::vector<std::vector<size_t>> wrap_fields(const std::vector<std::string>& fields, int width,
                                             int gap = 2);

struct Rect {
  int y = 0, x = 0, h = 0, w = 0;
};
enum Pane : int { kPs = 0, kThreads = 1, kSyscalls = 2, kAlerts = 3, kPanes = 4 };
struct Layout {
  Rect pane[kPanes];
  bool shown[kPanes] = {false, false, false, false};
};
// Places the four panes in `area`. want[i]: the rows pane i would like (its title and
// column-header lines included). Maximized, or when the area is too small for all four,
// only the focused pane is shown. Wide areas put syscalls and alerts side by side.
Layout layout_panes(Rect area, int focused, bool maximized, const int want[kPanes]);

}  // namespace schedscope::ui::live
