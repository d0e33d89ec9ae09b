// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* goroutines.bpf.c — the opt-in (--goroutines) goroutine creation/exit observer.
 *
 * Two plain entry uprobes, attached by userspace at file offsets it computed itself
 * (never uretprobes: they corrupt Go stacks, see docs/go-runtime.md, "Why uretprobes break Go"):
 *
 *  ss_go_newproc1_ret  at every RET instruction of runtime.newproc1: RAX = newg, and
 *                      R14 = g0 of the creating M (newproc1 runs on the system stack), so
 *                      the creating G is g0.m.curg
 *  ss_go_exit          at the entry of runtime.gdestroy (1.22+) or runtime.goexit0
 *                      (<=1.21): on g0, RAX = the exiting G, goid still valid
 *
 * Each hit costs the target a uprobe trap (~6-25 us on the measured VM), hence opt-in.
 * Hits of the target are counted per CPU in `go_hits` so userspace can show the cost. */
#include "common.bpf.h"

/* Per-CPU uprobe hits of the targets: key target slot * SS_GOHIT_SLOTS + SS_GOHIT_*
 * (sized by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SS_GOHIT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} go_hits SEC(".maps") __weak;

/* A hit of a target's thread: counted in `go_hits` (slot `which`); the target's Go offsets
 * when its context reads are on (else NULL: nothing more to do), with *tid its thread. */
static __always_inline struct ss_go_offsets *target_hit(__u32 which, __u32 *tid)
{
	struct ss_target *tt = current_target(tid);
	if (!tt)
		return NULL;
	__u32 k = tt->slot * SS_GOHIT_SLOTS + which;
	__u64 *h = bpf_map_lookup_elem(&go_hits, &k);
	if (h)
		*h += 1;
	return go_offsets(tt);
}

SEC("uprobe")
int ss_go_newproc1_ret(struct pt_regs *ctx)
{
	__u32 tid = 0;
	struct ss_go_offsets *o = target_hit(SS_GOHIT_CREATE, &tid);
	if (!o)
		return 0;
	__u64 newg = ctx->ax;
	__u64 g0 = ctx->r14;
	if (!newg)
		return 0;
	struct ss_go_create *e = reserve_event(SS_EV_GO_CREATE, sizeof(*e), bpf_ktime_get_ns());
	if (!e)
		return 0;
	e->tid = tid;
	e->flags = 0;
	e->goid = 0;
	e->startpc = 0;
	e->creator_goid = 0;
	go_goid(o, newg, &e->goid);
	if (o->g_startpc &&
	    !bpf_probe_read_user(&e->startpc, sizeof(e->startpc), (void *)(newg + o->g_startpc)))
		e->flags |= SS_GOC_STARTPC;
	__u64 m, curg;
	if (go_current_g(o, g0, &m, &curg) && curg && !go_goid(o, curg, &e->creator_goid))
		e->flags |= SS_GOC_CREATOR;
	else
		e->creator_goid = 0;
	submit(e);
	return 0;
}

SEC("uprobe")
int ss_go_exit(struct pt_regs *ctx)
{
	__u32 tid = 0;
	struct ss_go_offsets *o = target_hit(SS_GOHIT_EXIT, &tid);
	if (!o)
		return 0;
	__u64 gp = ctx->ax;
	if (!gp)
		return 0;
	struct ss_go_exit *e = reserve_event(SS_EV_GO_EXIT, sizeof(*e), bpf_ktime_get_ns());
	if (!e)
		return 0;
	e->tid = tid;
	e->pad = 0;
	e->goid = 0;
	go_goid(o, gp, &e->goid);
	submit(e);
	return 0;
}
