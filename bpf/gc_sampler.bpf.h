/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The GC sampler: one BPF timer per CPU, every `gc_sample_period_ns`, while some target's
 * gate is open (gc_common.bpf.h). At each tick, when the interrupted task belongs to a
 * target whose gate is open, it reads the thread's TLS g -> m -> p and m.curg and
 * classifies the tick: background mark worker (p.gcMarkWorkerMode != 0) or mark assist
 * (m.curg _Gwaiting with waitReasonGCAssistMarking while the M runs on g0). Only GC ticks
 * are shipped.
 *
 * No trap in the target and no wakeup of the observer. The timers start and stop by
 * themselves: a target's thread switched in, or waking another, on a CPU whose timer is
 * idle arms that CPU's timer while a gate is open (gc_sampler_arm, called by the scheduler
 * programs of sched.bpf.c after one load of `gc_gates_open`), and the timer re-arms itself
 * until it finds every gate closed. So a CPU ticks only inside mark phases and only after
 * a target ran on it in one; a thread that runs from before the phase's start is sampled
 * from its next switch or wakeup. Uprobe programs cannot use BPF timers, so the gate's
 * uprobes only move the count. Included by sched.bpf.c only: the timer callback is a
 * subprogram of the program that arms it. */
#ifndef SCHEDSCOPE_GC_SAMPLER_BPF_H
#define SCHEDSCOPE_GC_SAMPLER_BPF_H

#include "gc_common.bpf.h"

#define SS_CLOCK_MONOTONIC 1

/* key: the CPU. Each entry is only touched on its CPU: by the scheduler programs (interrupts
 * off) and by its timer's callback (pinned to the CPU), so plain stores suffice. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized by userspace before load: the possible CPUs */
	__type(key, __u32);
	__type(value, struct ss_gc_timer);
} gc_timers SEC(".maps") __weak;

static __always_inline void gc_sample(void)
{
	__u32 tid = 0;
	struct ss_target *tt = current_target(&tid);
	if (!tt)
		return;
	__u32 slot = tt->slot;
	__u64 *gate = bpf_map_lookup_elem(&gc_gate, &slot);
	if (!gate || !*gate)
		return;
	struct ss_go_offsets *o = go_offsets(tt);
	struct ss_gc_cfg *c = bpf_map_lookup_elem(&gc_cfg, &slot);
	if (!o || !c || !c->enabled)
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 g = go_tls_g(o, task), m = 0, curg = 0, p = 0;
	if (!go_current_g(o, g, &m, &curg))
		return;
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
		if (!bpf_probe_read_user(&status, sizeof(status),
					 (void *)(curg + c->g_atomicstatus)) &&
		    (status & ~0x1000u) == 4 &&
		    !bpf_probe_read_user(&wr, 1, (void *)(curg + c->g_waitreason)) &&
		    wr == c->wr_assist)
			kind = SS_GCS_ASSIST;
	}
	if (!kind)
		return;
	struct ss_gc_sample *e = reserve_event(SS_EV_GC_SAMPLE, sizeof(*e), bpf_ktime_get_ns());
	if (!e)
		return;
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
}

/* A tick: sample, and come again while a gate is open. Its run time is kept here: the
 * kernel's BPF statistics count the program that armed the timer, not its callbacks. */
static int gc_tick(void *map, __u32 *key, struct ss_gc_timer *v)
{
	__u64 t0 = bpf_ktime_get_ns();
	__u64 period = gc_sample_period_ns; /* 0 once the session detaches */
	if (!gc_gates_open || !period || bpf_timer_start(&v->timer, period, BPF_F_TIMER_CPU_PIN)) {
		v->armed = 0;
	} else {
		v->ticks++;
		gc_sample();
	}
	v->run_ns += bpf_ktime_get_ns() - t0;
	return 0;
}

/* Arms this CPU's timer if it is idle. The caller has seen `gc_gates_open` set. */
static __always_inline void gc_sampler_arm(void)
{
	__u64 period = gc_sample_period_ns;
	__u32 cpu = bpf_get_smp_processor_id();
	struct ss_gc_timer *v = bpf_map_lookup_elem(&gc_timers, &cpu);
	if (!period || !v || v->armed)
		return;
	if (!v->ready) {
		/* -EBUSY: made already (an entry is never reset while the map lives). */
		long err = bpf_timer_init(&v->timer, &gc_timers, SS_CLOCK_MONOTONIC);
		if ((err && err != -16) || bpf_timer_set_callback(&v->timer, gc_tick))
			return;
		v->ready = 1;
	}
	/* The first tick at a random point of a period, as on a free-running clock: a full
	 * period from each arming would miss every mark phase shorter than one. */
	if (!bpf_timer_start(&v->timer, 1 + bpf_get_prandom_u32() % period, BPF_F_TIMER_CPU_PIN)) {
		v->armed = 1;
		v->arms++;
	}
}

#endif
