#include "app/annotations_attach.h"

#include <cstdio>
#include <cstring>

#include "annotations/probes.h"
#include "annotations/tracker.h"
#include "util/units.h"

namespace schedscope::app {

bool parse_duty(const std::string& v, double* on_s, double* period_s) {
  auto slash = v.find('/');
  if (slash == std::string::npos) return false;
  auto on = parse_duration(v.substr(0, slash));
  auto period = parse_duration(v.substr(slash + 1));
  if (!on || !period || *on <= 0 || *period < *on) return false;
  *on_s = *on;
  *period_s = *period;
  return true;
}

void AnnotationsControl::emit(uint32_t state, uint32_t nprobes, const std::string& note,
                               uint64_t now_ns, const Inject& inject) {
  state_ = state;
  note_ = note;
  ss_annot_state r{};
  r.h.type = SS_EV_ANNOT_STATE;
  r.h.size = sizeof r;
  r.h.ts = now_ns;
  r.state = state;
  r.nprobes = nprobes;
  r.hits = hits_prev_;
  r.on_ns = on_ns_ + (attached_ ? now_ns - attached_since_ : 0);
  snprintf(r.note, sizeof r.note, "%s", note.c_str());
  inject(&r.h, sizeof r);
}

void AnnotationsControl::unavailable(const std::string& why, const Inject& inject) {
  emit(SS_ANNOT_STATE_OFF, 0, "not attached: " + why, probe::monotonic_ns(), inject);
}

void AnnotationsControl::attach(probe::Session& s, int pid, const go::BinaryInfo& bin,
                                 const Inject& inject) {
  uint64_t now = probe::monotonic_ns();
  probes_.path = "/proc/" + std::to_string(pid) + "/exe";
  auto f = elf::ElfFile::open(probes_.path);
  if (!f) return emit(SS_ANNOT_STATE_OFF, 0, "not attached: " + f.error().message, now, inject);
  auto probes = annotations::annotation_probes(**f, bin);
  if (!probes) return emit(SS_ANNOT_STATE_OFF, 0, "not attached: " + probes.error().message, now, inject);
  where_.clear();
  for (const auto& p : *probes) {
    probes_.offset_kinds.push_back({p.offset, p.kind});
    char buf[160];
    snprintf(buf, sizeof buf, "%s%s+0x%llx", where_.empty() ? "" : ", ",
             p.func.substr(p.func.find('.') + 1).c_str(),
             static_cast<unsigned long long>(p.addr - p.entry));
    where_ += buf;
  }
  found_ = true;
  if (auto st = s.attach_annotations(pid, probes_); !st)
    return emit(SS_ANNOT_STATE_OFF, 0, "not attached: " + st.error().message, now, inject);
  attached_ = true;
  attached_since_ = period_start_ = last_tick_ = now;
  emit(SS_ANNOT_STATE_ON, uint32_t(probes_.offset_kinds.size()),
       std::to_string(probes_.offset_kinds.size()) + " uprobe(s) past the stack check: " + where_, now, inject);
}

void AnnotationsControl::tick(probe::Session& s, int pid, uint64_t now_ns, const Inject& inject) {
  if (!found_) return;
  uint64_t hits = s.annotation_hits(uint32_t(pid));
  uint64_t d = hits - std::min(hits, hits_prev_);
  hits_prev_ = hits;
  double interval_s = double(now_ns - std::min(now_ns, last_tick_)) / 1e9;
  last_tick_ = now_ns;
  double rate = interval_s > 0 ? double(d) / interval_s : 0;
  if (attached_ && opt_.max_rate > 0 && interval_s >= 0.2 && rate > opt_.max_rate) {
    s.detach_annotations(pid);
    on_ns_ += now_ns - attached_since_;
    attached_ = false;
    ceiling_ = true;
    char buf[200];
    snprintf(buf, sizeof buf,
             "detached: %.0f hits/s went over the ceiling of %.0f/s (--annotations-max-rate), "
             "~%.0f ms of target CPU/s",
             rate, opt_.max_rate, rate * annotations::kAnnotUprobeCostUs / 1000.0);
    return emit(SS_ANNOT_STATE_CEILING, 0, buf, now_ns, inject);
  }
  if (!ceiling_ && opt_.duty_period_s > 0) {
    uint64_t period = uint64_t(opt_.duty_period_s * 1e9), on = uint64_t(opt_.duty_on_s * 1e9);
    while (now_ns - period_start_ >= period) period_start_ += period;
    bool want = now_ns - period_start_ < on;
    if (want && !attached_) {
      if (auto st = s.attach_annotations(pid, probes_); st) {
        attached_ = true;
        attached_since_ = now_ns;
      }
    } else if (!want && attached_) {
      s.detach_annotations(pid);
      on_ns_ += now_ns - attached_since_;
      attached_ = false;
    }
  }
  if (ceiling_) return emit(SS_ANNOT_STATE_CEILING, 0, note_, now_ns, inject);
  std::string duty;
  if (opt_.duty_period_s > 0) {
    char buf[96];
    snprintf(buf, sizeof buf, " (duty cycle %gs of every %gs)", opt_.duty_on_s, opt_.duty_period_s);
    duty = buf;
  }
  if (attached_)
    emit(SS_ANNOT_STATE_ON, uint32_t(probes_.offset_kinds.size()),
         std::to_string(probes_.offset_kinds.size()) + " uprobe(s) past the stack check: " + where_ + duty,
         now_ns, inject);
  else
    emit(SS_ANNOT_STATE_PAUSED, 0, "paused until the next window" + duty, now_ns, inject);
}

}  // namespace schedscope::app

// ---- the Observer's --annotations steps (declared in app/observe.h)
#include "app/observe.h"

namespace schedscope::app {

void Observer::annotations_init() {
  if (!opt_.annotations.on) return;
  annot_ = std::make_unique<AnnotationsControl>(opt_.annotations);
  auto inj = [this](const ss_hdr* r, size_t n) { inject(r, n); };
  if (!opt_.go) return annot_->unavailable("needs Go awareness (--no-go given)", inj);
  if (!go_ || !go_->is_go()) return annot_->unavailable(go_ ? go_->note() : "not a Go program", inj);
  if (go_->ready()) return annotations_attach();
  annot_->unavailable("waiting for the Go runtime offsets", inj);
}

void Observer::annotations_attach() {
  if (!annot_ || annot_tried_ || !go_ || !go_->ready() || !session_) return;
  annot_tried_ = true;
  annot_->attach(*session_, model_.target().pid, go_->binary(),
                 [this](const ss_hdr* r, size_t n) { inject(r, n); });
  if (opt_.verbose) fprintf(stderr, "schedscope: annotations: attached=%d\n", annot_->attached());
}

void Observer::annotations_tick() {
  if (!annot_ || !session_) return;
  annot_->tick(*session_, model_.target().pid, probe::monotonic_ns(),
               [this](const ss_hdr* r, size_t n) { inject(r, n); });
}

}  // namespace schedscope::app
