// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* goroutines.bpf.c — the opt-in (--goroutines) goroutine creation/exit observer.
 *
 * Two plain entry uprobes, attached by userspace at file offsets it computed itself
 * (never uretprobes: they corrupt Go stacks, see docs/go-runtime.md §3):
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

/* Per-CPU uprobe hits of the target, by SS_GOHIT_* slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SS_GOHIT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} go_hits SEC(".maps") __weak;

static __always_inline void count_hit(__u32 slot)
{
	__u64 *h = bpf_map_lookup_elem(&go_hits, &slot);
	if (h)
		*h += 1;
}

SEC("uprobe")
int ss_go_newproc1_ret(struct pt_regs *ctx)
{
	__u64 pid_tgid = target_current();
	if (!pid_tgid)
		return 0;
	count_hit(SS_GOHIT_CREATE);
	__u32 zero = 0;
	struct ss_go_offsets *o = bpf_map_lookup_elem(&go_cfg, &zero);
	if (!o || !o->enabled)
		return 0;
	__u64 newg = ctx->ax;
	__u64 g0 = ctx->r14;
	if (!newg)
		return 0;
	struct ss_go_create *e = reserve(sizeof(*e));
	if (!e)
		return 0;
	e->h.type = SS_EV_GO_CREATE;
	e->h.size = sizeof(*e);
	e->h.ts = bpf_ktime_get_ns();
	e->tid = (__u32)pid_tgid;
	e->flags = 0;
	e->goid = 0;
	e->startpc = 0;
	e->creator_goid = 0;
	bpf_probe_read_user(&e->goid, sizeof(e->goid), (void *)(newg + o->g_goid));
	if (o->g_startpc &&
	    !bpf_probe_read_user(&e->startpc, sizeof(e->startpc), (void *)(newg + o->g_startpc)))
		e->flags |= SS_GOC_STARTPC;
	__u64 m = 0, curg = 0;
	if (g0 && !bpf_probe_read_user(&m, sizeof(m), (void *)(g0 + o->g_m)) && m &&
	    !bpf_probe_read_user(&curg, sizeof(curg), (void *)(m + o->m_curg)) && curg &&
	    !bpf_probe_read_user(&e->creator_goid, sizeof(e->creator_goid), (void *)(curg + o->g_goid)))
		e->flags |= SS_GOC_CREATOR;
	submit(e);
	return 0;
}

SEC("uprobe")
int ss_go_exit(struct pt_regs *ctx)
{
	__u64 pid_tgid = target_current();
	if (!pid_tgid)
		return 0;
	count_hit(SS_GOHIT_EXIT);
	__u32 zero = 0;
	struct ss_go_offsets *o = bpf_map_lookup_elem(&go_cfg, &zero);
	if (!o || !o->enabled)
		return 0;
	__u64 gp = ctx->ax;
	if (!gp)
		return 0;
	struct ss_go_exit *e = reserve(sizeof(*e));
	if (!e)
		return 0;
	e->h.type = SS_EV_GO_EXIT;
	e->h.size = sizeof(*e);
	e->h.ts = bpf_ktime_get_ns();
	e->tid = (__u32)pid_tgid;
	e->pad = 0;
	e->goid = 0;
	bpf_probe_read_user(&e->goid, sizeof(e->goid), (void *)(gp + o->g_goid));
	submit(e);
	return 0;
}
