// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* floor.bpf.c — the benchmark's floor: empty programs on the very hooks schedscope uses,
 * with the same early filter (a Bloom bit, then the task's tgid in a hash map of targets), and
 * nothing else. What a target loses with these attached is the cost of observing at all
 * (the tracepoint trampolines and the filter); schedscope's overhead is judged against
 * it. Built into its own skeleton for build/ss-floor (tools/floor/), never linked into
 * schedscope.
 *
 * With keep_state (ss-floor -t) the scheduler programs also keep the least a per-thread
 * observer keeps: one slot per thread in an array indexed by its tid (taken at the
 * thread's first switch, freed at its exit, as schedscope's `thread_slots`), holding its last switch,
 * wakeup and the on-CPU, off-CPU and run-queue totals, from one clock read per switch.
 * With -S too, the syscall programs keep the least a per-call latency observer keeps: the
 * call in flight in a per-CPU slot (its thread, its start) and, at its exit on the same
 * CPU, a count and a total per CPU, from two clock reads per call. It sends nothing. What
 * that costs over the floor is what any observer of per-thread off-CPU time (and call
 * latency) pays on the machine, before it does anything of its own. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/* tgid -> anything: the observed process, as in schedscope's `targets` map. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} targets SEC(".maps");

/* Bloom bits of the targets' tgids, as in schedscope (common.bpf.h: maybe_target). */
#define SS_TARGET_BITS 65536
__u64 target_bits[SS_TARGET_BITS / 64] = {};

static __always_inline bool is_target(__u32 tgid)
{
	__u32 i = tgid & (SS_TARGET_BITS - 1);
	if (!(target_bits[i >> 6] & (1ull << (i & 63))))
		return false;
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

/* The filter's outcome is kept (an empty asm that "uses" it) so that clang cannot drop
 * the lookup; the programs then return, as schedscope's do for other processes. */
static __always_inline int filtered(bool match)
{
	asm volatile("" : : "r"(match));
	return 0;
}

const volatile __u32 keep_state = 0;

/* (keep_state) a thread's state, the least an off-CPU observer keeps. */
struct floor_thread {
	__u64 last_switch_ns, wakeup_ns, oncpu_ns, offcpu_ns, rq_ns, rq_count;
};

/* (keep_state) one slot per kernel tid modulo the slot count, as schedscope's
 * `thread_slots`: who holds it (kernel tgid << 32 | tid, 0 free) and its state. A thread
 * whose slot another holds keeps none here (schedscope puts it in a hash map). */
#define FLOOR_SLOTS 32768 /* schedscope's SS_THREAD_SLOTS */
struct floor_slot {
	__u64 id;
	struct floor_thread t;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOOR_SLOTS);
	__type(key, __u32);
	__type(value, struct floor_slot);
} floor_slots SEC(".maps");

#define PF_EXITING_ 0x00000004

static __always_inline __u64 floor_id(struct task_struct *t)
{
	return ((__u64)t->tgid << 32) | (__u32)t->pid;
}

/* The slot of t, whoever holds it. */
static __always_inline struct floor_slot *slot_of(struct task_struct *t)
{
	__u32 i = t->pid & (FLOOR_SLOTS - 1);
	return bpf_map_lookup_elem(&floor_slots, &i);
}

/* The thread's state; its slot taken if free, except by an exiting thread (its state is
 * gone). */
static __always_inline struct floor_thread *thread_of(struct task_struct *t)
{
	struct floor_slot *sl = slot_of(t);
	if (!sl)
		return NULL;
	__u64 id = floor_id(t);
	if (sl->id == id)
		return &sl->t;
	if (sl->id || (t->flags & PF_EXITING_))
		return NULL;
	if (__sync_val_compare_and_swap(&sl->id, 0, id) != 0)
		return NULL;
	__builtin_memset(&sl->t, 0, sizeof(sl->t));
	return &sl->t;
}

/* (keep_state) the state at a switch: `prev` switched out, `next` in. */
static __noinline int state_switch(bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = 0;
	if (is_target(prev->tgid)) {
		now = bpf_ktime_get_ns();
		struct floor_thread *st = thread_of(prev);
		if (st) {
			if (st->last_switch_ns)
				st->oncpu_ns += now - st->last_switch_ns;
			st->last_switch_ns = now;
			st->wakeup_ns = preempt ? now : 0;
		}
	}
	if (is_target(next->tgid)) {
		if (!now)
			now = bpf_ktime_get_ns();
		struct floor_thread *st = thread_of(next);
		if (st) {
			if (st->last_switch_ns)
				st->offcpu_ns += now - st->last_switch_ns;
			if (st->wakeup_ns) {
				st->rq_ns += now - st->wakeup_ns;
				st->rq_count++;
			}
			st->last_switch_ns = now;
			st->wakeup_ns = 0;
		}
	}
	return 0;
}

/* default hooks (sched.bpf.c). keep_state is tested first, so that without it the
 * programs are the plain floor's: the verifier drops the other branch. */
SEC("tp_btf/sched_switch")
int BPF_PROG(floor_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	if (keep_state)
		return state_switch(preempt, prev, next);
	/* Each outcome kept on its own: clang would OR the two looked-up pointers for `||`,
	 * which the verifier refuses. */
	filtered(is_target(prev->tgid));
	return filtered(is_target(next->tgid));
}

/* (keep_state) a wakeup: its time, while the thread waits for a CPU. */
static __noinline int state_wakeup(struct task_struct *p)
{
	if (!is_target(p->tgid))
		return 0;
	struct floor_slot *sl = slot_of(p);
	struct floor_thread *st = sl && sl->id == floor_id(p) ? &sl->t : NULL;
	if (st && !st->wakeup_ns)
		st->wakeup_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(floor_sched_wakeup, struct task_struct *p)
{
	if (keep_state)
		return state_wakeup(p);
	return filtered(is_target(p->tgid));
}

SEC("tp_btf/task_newtask")
int BPF_PROG(floor_task_newtask, struct task_struct *task, __u64 clone_flags)
{
	return filtered(is_target(task->tgid));
}

/* (keep_state) a thread's exit: its entry goes. */
static __noinline int state_exit(struct task_struct *p)
{
	if (!is_target(p->tgid))
		return 0;
	struct floor_slot *sl = slot_of(p);
	if (sl && sl->id == floor_id(p))
		sl->id = 0;
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(floor_sched_process_exit, struct task_struct *p)
{
	if (keep_state)
		return state_exit(p);
	return filtered(is_target(p->tgid));
}

/* (keep_state, -S) the call in flight on a CPU, and the calls completed there. */
struct floor_call {
	__u64 enter_ns, count, total_ns;
	__u32 tid, pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct floor_call);
} floor_calls SEC(".maps");

/* (keep_state) a call's start, in the CPU's slot. */
static __noinline int state_sys_enter(void)
{
	__u64 pt = bpf_get_current_pid_tgid();
	if (!is_target((__u32)(pt >> 32)))
		return 0;
	__u32 zero = 0;
	struct floor_call *c = bpf_map_lookup_elem(&floor_calls, &zero);
	if (c) {
		c->tid = (__u32)pt;
		c->enter_ns = bpf_ktime_get_ns();
	}
	return 0;
}

/* (keep_state) a call's end on the CPU it started on: counted, its latency added. */
static __noinline int state_sys_exit(void)
{
	__u64 pt = bpf_get_current_pid_tgid();
	if (!is_target((__u32)(pt >> 32)))
		return 0;
	__u32 zero = 0;
	struct floor_call *c = bpf_map_lookup_elem(&floor_calls, &zero);
	if (c && c->tid == (__u32)pt && c->enter_ns) {
		c->count++;
		c->total_ns += bpf_ktime_get_ns() - c->enter_ns;
		c->enter_ns = 0;
	}
	return 0;
}

/* -S hooks (syscalls.bpf.c) */
SEC("tp_btf/sys_enter")
int BPF_PROG(floor_sys_enter, struct pt_regs *regs, long id)
{
	if (keep_state)
		return state_sys_enter();
	return filtered(is_target((__u32)(bpf_get_current_pid_tgid() >> 32)));
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
	if (keep_state)
		return state_sys_exit();
	return filtered(is_target((__u32)(bpf_get_current_pid_tgid() >> 32)));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
