// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* exec.bpf.c — the node agent's discovery on exec: one SS_EV_EXEC record per successful
 * execve of a process in the observer's PID namespace, so that a program started while
 * the agent runs is looked at within milliseconds rather than at the next /proc scan.
 * Loaded only when the session asks (SessionConfig::exec_events); execs are rare next
 * to the scheduler events, so it filters nothing but the namespace. */
#include "common.bpf.h"

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ss_sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	/* After exec the task is its group's leader: its pid is the tgid. 0: not visible in
	 * the observer's namespace. */
	__u32 pid = task_vpid(p);
	if (!pid)
		return 0;
	/* A new image: the thread's last syscall site (blocked_syscall) no longer holds one. */
	struct ss_thread_state *st = task_entry(p, pid);
	if (st)
		st->block_ip = 0;
	struct ss_exec *e = reserve_event(SS_EV_EXEC, sizeof(*e), bpf_ktime_get_ns());
	if (!e)
		return 0;
	e->pid = pid;
	e->pad = 0;
	/* Wake the consumer now: the point is to be early. */
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
