// Pins the layout of the BPF<->userspace ABI (bpf/schedscope.h). A failing assert here
// means the two sides would disagree: bump SS_ABI_VERSION and fix both.
#include <cstddef>

#include "annotations.h"
#include "schedscope.h"

static_assert(sizeof(ss_hdr) == 16);
static_assert(sizeof(ss_goctx) == 40);
static_assert(offsetof(ss_goctx, p_id) == 32);
static_assert(sizeof(ss_thread_state) == 400);
static_assert(offsetof(ss_thread_state, rq_hist) == 104);
static_assert(offsetof(ss_thread_state, go) == 344);
static_assert(sizeof(ss_sc_stat) == 152);
static_assert(sizeof(ss_thread_new) == 288);
static_assert(offsetof(ss_thread_new, stack) == 80);
static_assert(sizeof(ss_thread_exit) == 424);
static_assert(sizeof(ss_offcpu) == 112);
static_assert(sizeof(ss_syscall_slow) == 80);
static_assert(sizeof(ss_go_offsets) == 64);
static_assert(offsetof(ss_go_offsets, m_win) == 48);
static_assert(offsetof(ss_go_offsets, g_startpc) == 44);
static_assert(sizeof(ss_go_create) == 48);
static_assert(offsetof(ss_go_create, goid) == 24);
static_assert(offsetof(ss_go_create, creator_goid) == 40);
static_assert(sizeof(ss_go_exit) == 32);
static_assert(offsetof(ss_go_exit, goid) == 24);
static_assert(sizeof(ss_usdt_cfg) == 8);
static_assert(sizeof(ss_usdt_key) == 8);
static_assert(sizeof(ss_usdt_hit) == 160);
static_assert(offsetof(ss_usdt_hit, args) == 32);
static_assert(sizeof(ss_usdt_count) == 32);
static_assert(sizeof(ss_usdt_probe) == 272);
static_assert(sizeof(ss_gc_event) == 40);
static_assert(offsetof(ss_gc_event, arg) == 24);
static_assert(offsetof(ss_gc_event, goid) == 32);
static_assert(sizeof(ss_gc_sample) == 40);
static_assert(sizeof(ss_gc_stack) == 160);
static_assert(offsetof(ss_gc_stack, pcs) == 32);
static_assert(offsetof(ss_gc_sample, goid) == 24);
static_assert(offsetof(ss_gc_sample, p_id) == 32);
static_assert(sizeof(ss_gc_cfg) == 24);
static_assert(sizeof(ss_sc_cpu) == 32);
static_assert(sizeof(ss_gc_timer) == 48);  // a struct bpf_timer (16) and the counts
static_assert(offsetof(ss_gc_timer, ticks) == 16);
static_assert(sizeof(ss_target) == 12);
static_assert(sizeof(ss_exec) == 24);
static_assert(offsetof(ss_exec, pid) == 16);
static_assert(sizeof(ss_cap_counts) == 8 * (1 + SS_CAP_PROCS + SS_CAP_RUNQ));
static_assert(offsetof(ss_cap_sample, cgroup) == 72);
static_assert(offsetof(ss_cap_sample, counts) == 200);
static_assert(sizeof(ss_annot) == 256);
static_assert(offsetof(ss_annot, goid) == 40);
static_assert(offsetof(ss_annot, s1) == 64);
static_assert(offsetof(ss_annot, s2) == 128);
static_assert(sizeof(ss_annot_state) == 240);
static_assert(offsetof(ss_annot_state, note) == 40);
