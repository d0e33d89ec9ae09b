// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* floor.bpf.c — the benchmark's floor: empty programs on the very hooks schedscope uses,
 * with the same early tgid filter, and nothing else. What a target loses with these
 * attached is the cost of observing at all (the tracepoint trampolines and the filter);
 * schedscope's overhead is judged against it. Built into its own skeleton for
 * build/ss-floor (tools/floor/), never linked into schedscope. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

const volatile __u32 targ_tgid = 0;

/* The filter's outcome is kept (an empty asm that "uses" it) so that clang cannot drop
 * the comparison; the programs then return, as schedscope's do for other processes. */
static __always_inline int filtered(bool match)
{
	asm volatile("" : : "r"(match));
	return 0;
}

/* default hooks (sched.bpf.c) */
SEC("tp_btf/sched_switch")
int BPF_PROG(floor_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return filtered(BPF_CORE_READ(prev, tgid) == targ_tgid ||
			BPF_CORE_READ(next, tgid) == targ_tgid);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(floor_sched_wakeup, struct task_struct *p)
{
	return filtered(BPF_CORE_READ(p, tgid) == targ_tgid);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(floor_sched_wakeup_new, struct task_struct *p)
{
	return filtered(BPF_CORE_READ(p, tgid) == targ_tgid);
}

SEC("tp_btf/task_newtask")
int BPF_PROG(floor_task_newtask, struct task_struct *task, __u64 clone_flags)
{
	return filtered(BPF_CORE_READ(task, tgid) == targ_tgid);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(floor_sched_process_exit, struct task_struct *p)
{
	return filtered(BPF_CORE_READ(p, tgid) == targ_tgid);
}

/* -S hooks (syscalls.bpf.c) */
SEC("tp_btf/sys_enter")
int BPF_PROG(floor_sys_enter, struct pt_regs *regs, long id)
{
	return filtered((__u32)(bpf_get_current_pid_tgid() >> 32) == targ_tgid);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
	return filtered((__u32)(bpf_get_current_pid_tgid() >> 32) == targ_tgid);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
