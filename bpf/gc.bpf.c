// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* gc.bpf.c — GC cycles, stop-the-world pauses and GC CPU share of a Go target.
 *
 * Uprobes at the entry of rare runtime functions, attached by userspace at file offsets
 * it computed from .gopclntab (never uretprobes, docs/go-runtime.md, "Why uretprobes break Go"):
 *
 *  ss_gc_stw_stop    runtime.stopTheWorldWithSema: runs on g0 (systemstack) in every
 *                    version, so no stack-split double fire; RAX = stwReason on 1.21+
 *  ss_gc_stw_start   runtime.startTheWorldWithSema (g0)
 *  ss_gc_markterm    runtime.gcMarkTermination: once per GC cycle, with the world stopped;
 *                    it runs on a user stack, so a morestack re-entry may fire it twice
 *                    (userspace ignores a second hit inside the same STW)
 *
 * A few hits per GC cycle: cheap enough to be on by default for Go targets.
 *
 * The GC sampler (gc_sampler.bpf.h) reads a target's threads at a per-CPU BPF timer while
 * its gate (below) is open; the timers are armed by the scheduler programs (sched.bpf.c). */
#include "gc_common.bpf.h"

__u64 gc_gates_open = 0;

__u64 gc_sample_period_ns = 0;

/* Moves a slot's gate and the count of open gates. Nothing else: the sampler's timers
 * follow the count by themselves (gc_sampler.bpf.h), with no wakeup of the observer. */
static __always_inline void gc_gate_set(__u32 slot, __u64 from, __u64 to)
{
	__u64 *g = bpf_map_lookup_elem(&gc_gate, &slot);
	if (g && __sync_val_compare_and_swap(g, from, to) == from)
		__sync_fetch_and_add(&gc_gates_open, to ? 1 : -1);
}

static __always_inline void gc_event(struct pt_regs *ctx, struct ss_target *tt, __u32 tid,
				     __u32 what, __u64 arg)
{
	struct ss_go_offsets *o = go_offsets(tt);
	struct ss_gc_event *e = reserve_event(SS_EV_GC, sizeof(*e), bpf_ktime_get_ns());
	if (!e)
		return;
	e->tid = tid;
	e->what = what;
	e->arg = arg;
	e->goid = o ? go_current_goid(o, ctx->r14) : 0;
	submit(e);
}

/* At most SS_GC_STACK_BUDGET stacks per CPU per 100 ms: a stop-the-world loop runs
 * thousands of times a second, and a sample names its caller as well as all would. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct budget_window);
} gc_stack_windows SEC(".maps");

SEC("uprobe")
int ss_gc_stw_stop(struct pt_regs *ctx)
{
	__u32 tid = 0;
	struct ss_target *tt = current_target(&tid);
	if (!tt)
		return 0;
	/* A mark phase starts after this stop (the sweep termination's); any stop when its
	 * reason cannot be told (before Go 1.21). */
	__u32 slot = tt->slot;
	struct ss_gc_cfg *c = bpf_map_lookup_elem(&gc_cfg, &slot);
	if (c && (c->mark_stw_reason == SS_GC_ANY_STW || (__u8)ctx->ax == c->mark_stw_reason))
		gc_gate_set(slot, 0, 1);
	gc_event(ctx, tt, tid, SS_GC_STW_STOP, ctx->ax);
	/* No stack for the mark termination's stop: the background mark worker's, the
	 * runtime's own, names no caller (when the reason cannot be told, every stop takes one). */
	if (c && c->mark_stw_reason != SS_GC_ANY_STW && (__u8)ctx->ax == SS_GC_STW_MARKTERM)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (!take_budget(&gc_stack_windows, now, SS_GC_STACK_BUDGET))
		return 0;
	struct ss_gc_stack *e = reserve_event(SS_EV_GC_STACK, sizeof(*e), now);
	if (!e)
		return 0;
	e->tid = tid;
	e->reason = ctx->ax;
	long n = bpf_get_stack(ctx, e->pcs, sizeof(e->pcs), BPF_F_USER_STACK);
	e->nframes = n > 0 ? (__u32)(n / sizeof(__u64)) : 0;
	submit(e);
	return 0;
}

SEC("uprobe")
int ss_gc_stw_start(struct pt_regs *ctx)
{
	__u32 tid = 0;
	struct ss_target *tt = current_target(&tid);
	if (tt)
		gc_event(ctx, tt, tid, SS_GC_STW_START, 0);
	return 0;
}

SEC("uprobe")
int ss_gc_markterm(struct pt_regs *ctx)
{
	__u32 tid = 0;
	struct ss_target *tt = current_target(&tid);
	if (!tt)
		return 0;
	/* The mark phase is over (a second hit of a morestack re-entry finds the gate closed). */
	gc_gate_set(tt->slot, 1, 0);
	gc_event(ctx, tt, tid, SS_GC_MARKTERM, 0);
	return 0;
}
