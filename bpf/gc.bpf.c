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
 *  ss_gc_sampler     perf_event (software cpu-clock, one event per CPU, ~1 kHz): when the
 *                    interrupted task belongs to the target, reads its TLS g -> m -> p
 *                    and m.curg and classifies the tick: background mark worker
 *                    (p.gcMarkWorkerMode != 0) or mark assist (m.curg _Gwaiting with
 *                    waitReasonGCAssistMarking while the M runs on g0). Only GC ticks are
 *                    shipped. No trap in the target, but a timer interrupt per tick
 *                    (a VM exit or two in a VM): userspace enables the events only while
 *                    some target may be in a GC mark phase (the gates below), woken by the
 *                    uprobe that opens the first gate or closes the last. It reads a
 *                    target only while that target's gate is open. */
#include "common.bpf.h"

/* The sampler's offsets of each target (key: its slot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized by userspace before load */
	__type(key, __u32);
	__type(value, struct ss_gc_cfg);
} gc_cfg SEC(".maps") __weak;

/* The sampler's gate, per target (key: its slot): 0 closed, 1 open from a stop-the-world
 * that starts a mark phase to gcMarkTermination, SS_GC_GATE_ALWAYS set by userspace when
 * a phase cannot be followed (its uprobes are missing). The uprobes move it only between
 * 0 and 1, with compare-and-swap; `gc_gates_open` counts the targets whose gate is open,
 * so that the sampler tests one word before anything else. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized by userspace before load */
	__type(key, __u32);
	__type(value, __u64); /* 64 bits: compare-and-swap on 32 needs -mcpu=v3 */
} gc_gate SEC(".maps") __weak;

__u64 gc_gates_open = 0;

/* Moves a slot's gate; true when that made the count of open gates leave or reach zero:
 * the sampler's timers must then start or stop, which userspace does (sync_sampler), woken
 * by the record this stop or mark termination sends. */
static __always_inline bool gc_gate_set(__u32 slot, __u64 from, __u64 to)
{
	__u64 *g = bpf_map_lookup_elem(&gc_gate, &slot);
	if (!g || __sync_val_compare_and_swap(g, from, to) != from)
		return false;
	__u64 was = __sync_fetch_and_add(&gc_gates_open, to ? 1 : -1);
	return to ? was == 0 : was == 1;
}

static __always_inline void gc_event(struct pt_regs *ctx, struct ss_target *tt, __u32 tid, __u32 what,
				     __u64 arg, bool wake)
{
	struct ss_go_offsets *o = go_offsets(tt);
	struct ss_gc_event *e = reserve_event(SS_EV_GC, sizeof(*e), bpf_ktime_get_ns());
	if (!e)
		return;
	e->tid = tid;
	e->what = what;
	e->arg = arg;
	e->goid = o ? go_current_goid(o, ctx->r14) : 0;
	if (wake)
		bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	else
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
	bool wake = false;
	if (c && (c->mark_stw_reason == SS_GC_ANY_STW || (__u8)ctx->ax == c->mark_stw_reason))
		wake = gc_gate_set(slot, 0, 1);
	gc_event(ctx, tt, tid, SS_GC_STW_STOP, ctx->ax, wake);
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
		gc_event(ctx, tt, tid, SS_GC_STW_START, 0, false);
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
	bool wake = gc_gate_set(tt->slot, 1, 0);
	gc_event(ctx, tt, tid, SS_GC_MARKTERM, 0, wake);
	return 0;
}

SEC("perf_event")
int ss_gc_sampler(struct bpf_perf_event_data *ctx)
{
	if (!gc_gates_open)
		return 0;
	__u32 tid = 0;
	struct ss_target *tt = current_target(&tid);
	if (!tt)
		return 0;
	__u32 slot = tt->slot;
	__u64 *gate = bpf_map_lookup_elem(&gc_gate, &slot);
	if (!gate || !*gate)
		return 0;
	struct ss_go_offsets *o = go_offsets(tt);
	struct ss_gc_cfg *c = bpf_map_lookup_elem(&gc_cfg, &slot);
	if (!o || !c || !c->enabled)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 g = go_tls_g(o, task), m = 0, curg = 0, p = 0;
	if (!go_current_g(o, g, &m, &curg))
		return 0;
	bpf_probe_read_user(&p, sizeof(p), (void *)(m + o->m_p));
	__u32 kind = 0;
	if (p && c->p_gcmarkworkermode) {
		__u8 mode = 0;
		/* gcMarkWorkerMode is an int (8 bytes); modes are 0..3 */
		/* 1 dedicated, 2 fractional, 3 idle (gcMarkWorkerMode, stable 1.17-1.26) */
		if (!bpf_probe_read_user(&mode, 1, (void *)(p + c->p_gcmarkworkermode)) && mode)
			kind = mode == 3 ? SS_GCS_IDLE_WORKER : SS_GCS_WORKER;
	}
	if (!kind && curg && curg != g) {
		__u32 status = 0;
		__u8 wr = 0;
		if (!bpf_probe_read_user(&status, sizeof(status), (void *)(curg + c->g_atomicstatus)) &&
		    (status & ~0x1000u) == 4 &&
		    !bpf_probe_read_user(&wr, 1, (void *)(curg + c->g_waitreason)) &&
		    wr == c->wr_assist)
			kind = SS_GCS_ASSIST;
	}
	if (!kind)
		return 0;
	struct ss_gc_sample *e = reserve_event(SS_EV_GC_SAMPLE, sizeof(*e), bpf_ktime_get_ns());
	if (!e)
		return 0;
	e->tid = tid;
	e->kind = kind;
	e->goid = 0;
	if (curg)
		go_goid(o, curg, &e->goid);
	e->p_id = -1;
	if (p)
		bpf_probe_read_user(&e->p_id, sizeof(e->p_id), (void *)(p + o->p_id));
	e->cpu = bpf_get_smp_processor_id();
	submit(e);
	return 0;
}
