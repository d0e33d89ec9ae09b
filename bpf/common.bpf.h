/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared maps, configuration and helpers of the schedscope BPF programs.
 * Included by every *.bpf.c; maps are __weak so `bpftool gen object` merges them. */
#ifndef SCHEDSCOPE_COMMON_BPF_H
#define SCHEDSCOPE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "schedscope.h"

/* Configuration, set by userspace before load (rodata). Defined in sched.bpf.c. */
extern const volatile __u32 targ_tgid;        /* the observed process */
extern const volatile __u64 offcpu_min_ns;    /* ship SS_EV_OFFCPU for intervals at least this long */
extern const volatile __u64 slow_syscall_ns;  /* (-S) ship SS_EV_SYSCALL_SLOW at least this long */
extern const volatile __u32 capture_stacks;   /* capture user stacks at thread creation */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* resized by userspace before load */
} events SEC(".maps") __weak;

/* tid -> per-thread state, see struct ss_thread_state. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SS_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct ss_thread_state);
} threads SEC(".maps") __weak;

/* Ring-buffer reservations that failed, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps") __weak;

/* Syscall nr -> time blocked off-CPU in that syscall (default mode). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SS_MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct ss_sc_stat);
} sc_block SEC(".maps") __weak;

/* Run-queue latency histogram of the whole process, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SS_HIST_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} rq_hist SEC(".maps") __weak;

/* Go runtime offsets (one entry), written by userspace whenever calibration completes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ss_go_offsets);
} go_cfg SEC(".maps") __weak;

/* Scratch space for the large thread-creation record. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ss_thread_state);
} scratch_state SEC(".maps") __weak;

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *d = bpf_map_lookup_elem(&drops, &zero);
	if (d)
		*d += 1;
}

static __always_inline void *reserve(__u64 size)
{
	void *p = bpf_ringbuf_reserve(&events, size, 0);
	if (!p)
		count_drop();
	return p;
}

/* Batched consumption: no consumer wakeup per event (on a VM the wakeup's self-IPI is a
 * trap, several us inside the target's own syscall or context switch); userspace drains
 * the ring at least every 100ms and at every interval boundary. Only a ring more than a
 * quarter full wakes it at once, so a burst cannot overrun it while it sleeps. */
static __always_inline void submit(void *e)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	bpf_ringbuf_submit(e, avail >= size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* A per-CPU budget: at most `budget` takes per 100 ms window (0: no limit). `windows`
 * is a one-entry BPF_MAP_TYPE_PERCPU_ARRAY of struct budget_window. Used to sample user
 * stack walks, the costly part of a record, when their sites repeat by the thousand. */
struct budget_window {
	__u64 start_ns;
	__u32 used;
	__u32 pad;
};

static __always_inline bool take_budget(void *windows, __u64 now, __u32 budget)
{
	if (!budget)
		return true;
	__u32 k = 0;
	struct budget_window *w = bpf_map_lookup_elem(windows, &k);
	if (!w)
		return true;
	if (now - w->start_ns >= 100000000ull) {
		w->start_ns = now;
		w->used = 0;
	}
	if (w->used >= budget)
		return false;
	w->used++;
	return true;
}

static __always_inline __u32 log2_bucket(__u64 v)
{
	__u32 r = 0;
	/* floor(log2(v)), bounded for the verifier */
#pragma unroll
	for (int i = 5; i >= 0; i--) {
		__u32 shift = 1u << i;
		if (v >> shift) {
			v >>= shift;
			r += shift;
		}
	}
	return r < SS_HIST_BUCKETS ? r : SS_HIST_BUCKETS - 1;
}

static __always_inline void sc_stat_add(struct ss_sc_stat *s, __u64 dur)
{
	s->count++;
	s->total_ns += dur;
	if (dur > s->max_ns)
		s->max_ns = dur;
	__u32 b = log2_bucket(dur);
	if (b < SS_HIST_BUCKETS)
		s->hist[b]++;
}

/* Reads the Go context of `task` (which must be current or just switched out on this
 * CPU) from its TLS g. Leaves `out` zeroed (flags 0) when disabled or unreadable. */
static __always_inline void read_goctx(struct task_struct *task, __u32 tid, struct ss_goctx *out)
{
	__u32 zero = 0;
	struct ss_go_offsets *o = bpf_map_lookup_elem(&go_cfg, &zero);

	out->goid = 0;
	out->g_addr = 0;
	out->m_addr = 0;
	out->m_id = -1;
	out->p_id = -1;
	out->flags = 0;
	if (!o || !o->enabled)
		return;

	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase)
		return;
	__u64 g = 0, m = 0, curg = 0, procid = 0, p = 0;
	if (bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase + (__s64)o->tls_g)) || !g)
		return;
	if (bpf_probe_read_user(&m, sizeof(m), (void *)(g + o->g_m)) || !m)
		return;
	out->g_addr = g;
	out->m_addr = m;
	out->flags |= SS_GO_VALID;
	if (!bpf_probe_read_user(&procid, sizeof(procid), (void *)(m + o->m_procid)) &&
	    (__u32)procid == tid)
		out->flags |= SS_GO_TID_OK;
	bpf_probe_read_user(&out->m_id, sizeof(out->m_id), (void *)(m + o->m_id));
	if (!bpf_probe_read_user(&curg, sizeof(curg), (void *)(m + o->m_curg)) && curg) {
		bpf_probe_read_user(&out->goid, sizeof(out->goid), (void *)(curg + o->g_goid));
		if (curg != g)
			out->flags |= SS_GO_ONG0;
	} else {
		out->flags |= SS_GO_ONG0;
	}
	__u8 incgo = 0;
	if (o->m_incgo && !bpf_probe_read_user(&incgo, 1, (void *)(m + o->m_incgo)) && incgo)
		out->flags |= SS_GO_INCGO;
	if (bpf_probe_read_user(&p, sizeof(p), (void *)(m + o->m_p)) || !p) {
		p = 0;
		if (o->m_oldp && !bpf_probe_read_user(&p, sizeof(p), (void *)(m + o->m_oldp)) && p)
			out->flags |= SS_GO_OLDP;
	}
	if (p) {
		__s32 pid_ = -1;
		if (!bpf_probe_read_user(&pid_, sizeof(pid_), (void *)(p + o->p_id)))
			out->p_id = pid_;
	}
}

#endif
