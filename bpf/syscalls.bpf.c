// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* syscalls.bpf.c — the opt-in (-S/--all-syscalls) exact syscall observer on
 * raw_syscalls sys_enter/sys_exit: the in-flight syscall with its start time (per CPU while
 * the thread stays on it, in the thread's entry once it switched out: struct ss_sc_cpu),
 * per-syscall counts and log2 latency histograms aggregated in kernel (per CPU), and an
 * event only for calls slower than slow_syscall_ns. Not loaded in the default mode:
 * enabling raw_syscalls puts every syscall of the machine on the tracing slow path.
 * Only the targets whose ss_target.flags has SS_TGT_ALL_SYSCALLS are traced (the node
 * agent asks it per target): the calls of any other task end at the target filter, before
 * the thread lookup, the clock read and the aggregates. */
#include "common.bpf.h"

/* Syscall nr -> every completed call (count, latency histogram), per target (key: slot *
 * SS_MAX_SYSCALLS + nr; sized by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SS_MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct ss_sc_stat);
} sc_all SEC(".maps") __weak;

SEC("tp_btf/sys_enter")
int BPF_PROG(ss_sys_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = 0;
	struct ss_target *tt = current_target_of(pid_tgid, &tid);
	if (!tt || !(tt->flags & SS_TGT_ALL_SYSCALLS))
		return 0;
	__u32 zero = 0;
	struct ss_sc_cpu *c = bpf_map_lookup_elem(&sc_cpu, &zero);
	if (!c)
		return 0;
	if (c->tid != tid) {
		/* Left by a thread whose switch-out did not take it (its process is no target
		 * any more, or its entry was gone): into its entry if it has one. */
		if (c->tid && c->pending) {
			struct ss_thread_state *ost = thread_entry_by_ktid(c->ktid, c->tid);
			if (ost)
				ost->sc_count += c->pending;
		}
		c->tid = tid;
		c->pending = 0;
	}
	c->ktid = (__u32)pid_tgid;
	c->slot = tt->slot;
	c->nr = id;
	c->enter_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ss_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	/* The Bloom bit first: the calls of every other process end there, as before. */
	struct ss_sc_cpu *c = maybe_target((__u32)(pid_tgid >> 32)) ? bpf_map_lookup_elem(&sc_cpu, &zero) : NULL;
	struct ss_target *tt = NULL;
	struct ss_thread_state *st = NULL;
	__u64 start;
	__u32 tid, slot;
	__s32 nr;
	if (c && c->enter_ns && c->ktid == (__u32)pid_tgid) {
		/* The call this thread's sys_enter put in the slot, which the target filter had
		 * let through there, and the thread never left the CPU since (its switch-out
		 * takes the slot): no filter, no lookup of the thread. */
		start = c->enter_ns;
		nr = c->nr;
		tid = c->tid;
		slot = c->slot;
		c->enter_ns = 0;
		c->pending++;
	} else {
		tid = 0;
		tt = current_target_of(pid_tgid, &tid);
		if (!tt || !(tt->flags & SS_TGT_ALL_SYSCALLS))
			return 0;
		/* Switched out inside the call: its switch-out moved the call into the entry. */
		st = thread_entry((__u32)(pid_tgid >> 32), (__u32)pid_tgid, tid);
		if (!st || !st->sc_enter_ns)
			return 0;
		start = st->sc_enter_ns;
		nr = st->sc_nr;
		slot = tt->slot;
		st->sc_enter_ns = 0;
		st->sc_nr = SS_NO_SYSCALL;
		st->sc_count++;
	}
	__u64 now = bpf_ktime_get_ns();
	__u64 dur = now - start;
	if (nr < 0 || nr >= SS_MAX_SYSCALLS)
		return 0;
	sc_note_seen(slot, nr);
	__u32 k = slot * SS_MAX_SYSCALLS + nr;
	struct ss_sc_stat *sc = bpf_map_lookup_elem(&sc_all, &k);
	if (sc)
		sc_stat_add(sc, dur);
	if (dur < slow_syscall_ns)
		return 0;
	/* A slow call: the record carries the Go context, read with the target's offsets. */
	if (!tt) {
		__u32 t = 0;
		tt = current_target_of(pid_tgid, &t);
		if (!tt)
			return 0;
	}
	if (!st)
		st = thread_entry((__u32)(pid_tgid >> 32), (__u32)pid_tgid, tid);
	struct ss_syscall_slow *e = reserve_event(SS_EV_SYSCALL_SLOW, sizeof(*e), now);
	if (!e)
		return 0;
	e->start_ns = start;
	e->tid = tid;
	e->nr = nr;
	e->ret = ret;
	read_goctx(tt, bpf_get_current_task_btf(), st ? m_of(st) : 0, &e->go);
	submit(e);
	return 0;
}
