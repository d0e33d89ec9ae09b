// --annotations in alerts: an alert about a goroutine names the task and regions in
// flight on it; an alert about the whole process (GC, stop-the-world, storm, netpoller)
// names the oldest tasks in flight. Evidence lines only: the alert's kind, key and
// severity do not change.
#pragma once
#include "annotations/tracker.h"
#include "model/alert.h"

namespace schedscope::detect {

void annotate_alert(const annotations::Stats& s, model::Alert& a);

}  // namespace schedscope::detect
