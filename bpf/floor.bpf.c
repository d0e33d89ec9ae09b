// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* floor.bpf.c — the benchmark's floor: empty programs on the very hooks schedscope uses,
 * with the same early filter (a Bloom bit, then the task's tgid in a hash map of targets), and
 * nothing else. What a target loses with these attached is the cost of observing at all
 * (the tracepoint trampolines and the filter); schedscope's overhead is judged against
 * it. Built into its own skeleton for build/ss-floor (tools/floor/), never linked into
 * schedscope. */
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

/* default hooks (sched.bpf.c) */
SEC("tp_btf/sched_switch")
int BPF_PROG(floor_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	/* Each outcome kept on its own: clang would OR the two looked-up pointers for `||`,
	 * which the verifier refuses. */
	filtered(is_target(prev->tgid));
	return filtered(is_target(next->tgid));
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(floor_sched_wakeup, struct task_struct *p)
{
	return filtered(is_target(p->tgid));
}

SEC("tp_btf/task_newtask")
int BPF_PROG(floor_task_newtask, struct task_struct *task, __u64 clone_flags)
{
	return filtered(is_target(task->tgid));
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(floor_sched_process_exit, struct task_struct *p)
{
	return filtered(is_target(p->tgid));
}

/* -S hooks (syscalls.bpf.c) */
SEC("tp_btf/sys_enter")
int BPF_PROG(floor_sys_enter, struct pt_regs *regs, long id)
{
	return filtered(is_target((__u32)(bpf_get_current_pid_tgid() >> 32)));
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
	return filtered(is_target((__u32)(bpf_get_current_pid_tgid() >> 32)));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
