// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sched.bpf.c — the default (nearly free) observer: scheduler tracepoints only.
 *
 *  sched_switch      off-CPU intervals per thread with the reason, and the syscall the
 *                    thread is blocked in (saved user registers at switch-out), Go context
 *  sched_wakeup      run-queue latency (wakeup -> on CPU); a new thread's first wait is
 *                    counted from its creation at its first switch-in (no wakeup_new hook)
 *  task_newtask      thread creation with the creating thread; its Go context and user stack
 *                    within a budget
 *  sched_process_exit thread exit with its final totals; deletes the thread's entry
 *
 * While a target is in a GC mark phase, a target's thread switched in or waking another
 * arms its CPU's GC sampler timer (gc_sampler.bpf.h); else that costs one load.
 *
 * Every program filters on the set of targets first (target_of, common.bpf.h). State
 * lives in maps that userspace reads once per interval; the ring buffer only carries
 * creations, exits and long off-CPU intervals. */
#include "common.bpf.h"
#include "gc_sampler.bpf.h"

const volatile __u32 ns_ino = 0;
__u32 ns_depth1 = 0;
__u32 targets_unresolved = 0;
__s64 hash_threads = 0;
__u64 target_bits[SS_TARGET_BITS / 64] = {};
const volatile __u64 offcpu_min_ns = 1000000;
const volatile __u64 slow_syscall_ns = 1000000;
const volatile __u32 capture_stacks = 1;
const volatile __u32 all_syscalls = 0;
const volatile __u32 thread_slot_mask = SS_THREAD_SLOTS - 1;
/* A creation's details, the creator's user stack and goroutine: a token bucket per CPU,
 * `stack_burst` creations at once and `stack_rate` per second after that (0: no limit).
 * A user stack walk is the bulk of task_newtask's cost (~8 us on the measured VM), the
 * creator's Go context most of the rest (~0.4 us under thread churn); in a thread storm
 * a sample of the creation sites and goroutines is as telling as every one of them, and
 * the rest of the record (tid, parent, flags) is always sent (docs/kernel-side.md). */
const volatile __u32 stack_rate = SS_DETAIL_RATE;
const volatile __u32 stack_burst = SS_DETAIL_BURST;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ss_token_bucket);
} stack_tokens SEC(".maps");

#define TASK_INTERRUPTIBLE_ 0x1
#define TASK_UNINTERRUPTIBLE_ 0x2

struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

/* A signal pending for the thread (Go's tgkill) or its process (kill): it wakes a thread
 * blocked in an interruptible call, whose call then restarts after the handler. */
static __always_inline bool signal_pending_for(struct task_struct *t)
{
	return t->pending.signal.sig[0] || t->signal->shared_pending.signal.sig[0];
}

static __always_inline __u32 task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return t->__state;
	return (__u32)BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

#define PF_EXITING_ 0x00000004 /* include/linux/sched.h: set by do_exit() before sched_process_exit */

/* A new thread's state: nothing counted yet, off CPU, in no syscall, no Go context. */
static __always_inline void init_state(struct ss_thread_state *st, __u32 tgid, struct task_struct *t)
{
	__builtin_memset(st, 0, sizeof(*st));
	st->tgid = tgid;
	st->sc_nr = SS_NO_SYSCALL;
	st->block_nr = SS_NO_SYSCALL;
	st->last_block_nr = SS_NO_SYSCALL;
	goctx_none(&st->go);
	st->state = SS_TS_OFFCPU;
	task_comm(st->comm, t);
}

/* The state of a thread, made when the thread has none yet: never for an exiting thread.
 * Its entry is deleted at sched_process_exit, and it still switches out (and maybe in)
 * after that: a new entry then would outlive the thread. A new entry takes the thread's
 * slot when it is free, else goes to the hash; an entry in the hash (seeded by userspace
 * in another PID namespace, or made while the slot was held) moves to the slot once it
 * is free. */
static __always_inline struct ss_thread_state *get_state(__u32 tid, __u32 tgid, struct task_struct *t,
						       bool *fresh)
{
	__u32 i;
	__u32 ktid = t->pid;
	struct ss_thread_slot_id *sid = slot_id_of(ktid, &i);
	if (!sid)
		return NULL;
	__u64 id = kthread_id(t->tgid, ktid);
	if (sid->id == id)
		return bpf_map_lookup_elem(&thread_slots, &i);
	struct ss_thread_state *st = hash_thread(tid);
	if (!st && (t->flags & PF_EXITING_))
		return NULL;
	if (!sid->id && __sync_val_compare_and_swap(&sid->id, 0, id) == 0) {
		struct ss_thread_state *slot = bpf_map_lookup_elem(&thread_slots, &i);
		if (slot) {
			if (st) {
				__builtin_memcpy(slot, st, sizeof(*slot));
				hash_thread_delete(tid);
			} else {
				init_state(slot, tgid, t);
				*fresh = true;
			}
			sid->tid = tid;
			return slot;
		}
		sid->id = 0;
	}
	if (st)
		return st;
	__u32 zero = 0;
	struct ss_thread_state *init = bpf_map_lookup_elem(&scratch_state, &zero);
	if (!init)
		return NULL;
	init_state(init, tgid, t);
	__sync_fetch_and_add(&hash_threads, 1);
	if (bpf_map_update_elem(&threads, &tid, init, BPF_NOEXIST) == 0)
		*fresh = true;
	else
		__sync_fetch_and_add(&hash_threads, -1);
	return bpf_map_lookup_elem(&threads, &tid);
}

/* The syscall `prev` is blocked in, from its saved user registers: orig_ax >= 0 and the
 * two bytes before the user IP are the `syscall` instruction (0f 05). A 32-bit call
 * (int $0x80, sysenter) also leaves its number there, from the i386 table: hence the
 * instruction check. An exception leaves -1 (docs/kernel-side.md). */
static __always_inline void blocked_syscall(struct task_struct *prev, struct ss_thread_state *st)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(prev);
	st->block_nr = SS_NO_SYSCALL;
	if (!regs)
		return;
	long nr = regs->orig_ax;
	if (nr < 0 || nr >= SS_MAX_SYSCALLS)
		return;
	__u64 ip = regs->ip;
	/* block_ip is the last site found so: the same site needs no second read of user
	 * memory (a thread blocks at a few sites, Go's in runtime.futex and friends, again and
	 * again). The exec program clears it when loaded (the agent); otherwise a new image
	 * would have to fault, not call, at that very address to be taken for a syscall. */
	if (ip < 2)
		return;
	if (ip != st->block_ip) {
		__u8 insn[2] = {};
		if (bpf_probe_read_user(insn, 2, (void *)(ip - 2)))
			return;
		if (insn[0] != 0x0f || insn[1] != 0x05)
			return;
	}
	st->block_nr = nr;
	st->block_ip = ip;
	st->block_bp = regs->bp;
	st->block_args[0] = regs->di;
	st->block_args[1] = regs->si;
	st->block_args[2] = regs->dx;
}

/* Closes the off-CPU interval that started at st->last_switch_ns and ended at `now`:
 * per-reason totals, run-queue wait, the syscall it blocked in, the event if long. */
static __always_inline void end_offcpu(const struct ss_target *tt, struct ss_thread_state *st,
				       __u32 tid, __u64 now)
{
	{
		__u64 dur = now - st->last_switch_ns;
		__u32 reason = st->off_reason & (SS_OFF_REASONS - 1);
		st->offcpu_ns[reason] += dur;
		st->offcpu_count[reason] += 1;
		__u64 rq = 0;
		if (st->wakeup_ns && st->wakeup_ns <= now) {
			rq = now - st->wakeup_ns;
			st->rq_ns += rq;
			st->rq_count += 1;
			__u32 b = log2_bucket(rq);
			if (b < SS_HIST_BUCKETS)
				st->rq_hist[b]++;
			__u32 hk = tt->slot * SS_HIST_BUCKETS + b;
			__u64 *g = bpf_map_lookup_elem(&rq_hist, &hk);
			if (g)
				*g += 1;
		}
		__s32 nr = st->block_nr;
		if (nr >= 0 && nr < SS_MAX_SYSCALLS) {
			sc_note_seen(tt->slot, nr);
			__u32 k = tt->slot * SS_MAX_SYSCALLS + nr;
			struct ss_sc_stat *sc = bpf_map_lookup_elem(&sc_block, &k);
			if (sc)
				sc_stat_add(sc, dur);
		}
		if (dur >= offcpu_min_ns) {
			struct ss_offcpu *e = reserve_event(SS_EV_OFFCPU, sizeof(*e), now);
			if (e) {
				e->start_ns = st->last_switch_ns;
				e->rq_ns = rq;
				e->tid = tid;
				e->reason = reason;
				e->syscall_nr = nr;
				e->pad = 0;
				e->args[0] = st->block_args[0];
				e->args[1] = st->block_args[1];
				e->args[2] = st->block_args[2];
				e->go = st->go;
				submit(e);
			}
		}
	}
}

/* Off-CPU by our account, yet running now (switching out, or exiting): the switch that
 * put it back on CPU was not seen (the kernel at times runs a woken task again without a
 * sched_switch event for it, nor a wakeup event). The blocked interval still happened: it
 * ends at the wakeup if one was seen, else now (the short on-CPU stretch since is counted
 * in it). Only a block in a syscall is closed so: a thread seeded from /proc as sleeping
 * without one may have been running already. */
static __always_inline void close_unseen_switch_in(const struct ss_target *tt, struct ss_thread_state *st,
						   __u32 tid, __u64 now)
{
	if (st->state == SS_TS_OFFCPU && st->last_switch_ns && st->block_nr >= 0 &&
	    st->off_reason != SS_OFF_PREEMPTED) {
		__u64 end = st->wakeup_ns > st->last_switch_ns && st->wakeup_ns <= now ? st->wakeup_ns : now;
		st->wakeup_ns = 0;
		end_offcpu(tt, st, tid, end);
		st->state = SS_TS_ONCPU;
		st->last_switch_ns = end;
		/* Woken by a signal: the call may be restarting now, as after a seen switch-in. */
		if (st->signal_wake) {
			st->last_block_nr = st->block_nr;
			st->last_block_arg0 = st->block_args[0];
			st->last_block_end_ns = end;
		} else {
			st->last_block_nr = SS_NO_SYSCALL;
		}
		st->signal_wake = 0;
		st->block_nr = SS_NO_SYSCALL;
	}
}

static __always_inline void switch_out(const struct ss_target *tt, struct task_struct *prev,
				       bool preempt, __u64 now)
{
	__u32 tid = task_vpid(prev);
	bool fresh = false;
	struct ss_thread_state *st = get_state(tid, tt->tgid, prev, &fresh);
	if (!st)
		return;
	close_unseen_switch_in(tt, st, tid, now);
	if (all_syscalls)
		sc_cpu_take(tid, st);
	if (st->state == SS_TS_ONCPU && st->last_switch_ns)
		st->oncpu_ns += now - st->last_switch_ns;
	/* Preempted (even after set_current_state) means the task stays runnable. */
	__u32 s = preempt ? 0 : task_state(prev);
	__u32 reason = SS_OFF_OTHER;
	if (s == 0)
		reason = SS_OFF_PREEMPTED;
	else if (s & TASK_UNINTERRUPTIBLE_)
		reason = SS_OFF_DISK;
	else if (s & TASK_INTERRUPTIBLE_)
		reason = SS_OFF_SLEEP;
	st->state = SS_TS_OFFCPU;
	st->off_reason = reason;
	st->last_switch_ns = now;
	/* A preempted thread is runnable at once: its run-queue wait starts now. */
	st->wakeup_ns = reason == SS_OFF_PREEMPTED ? now : 0;
	if (reason == SS_OFF_PREEMPTED)
		st->block_nr = SS_NO_SYSCALL;
	else
		blocked_syscall(prev, st);
	if (st->block_nr >= 0) {
		bool same = st->block_nr == st->last_block_nr &&
			    st->block_args[0] == st->last_block_arg0 && st->last_block_end_ns &&
			    now - st->last_block_end_ns < SS_BLOCK_MERGE_NS;
		if (!same || !st->block_since_ns)
			st->block_since_ns = now;
	} else if (reason != SS_OFF_PREEMPTED || st->last_block_nr < 0) {
		st->block_since_ns = 0;
	}
	read_goctx(tt, prev, m_of(st), &st->go);
}

static __always_inline void switch_in(const struct ss_target *tt, struct task_struct *next,
				      __u64 now)
{
	__u32 tid = task_vpid(next);
	bool fresh = false;
	struct ss_thread_state *st = get_state(tid, tt->tgid, next, &fresh);
	if (!st)
		return;
	if (fresh && !next->nvcsw && !next->nivcsw) {
		/* Its first time on a CPU (it never switched out): a thread created since attach,
		 * whose entry starts here rather than at task_newtask (making it there costs the
		 * creating thread ~0.5 us more, measured: docs/kernel-side.md). It was runnable
		 * from its creation: that wait is its first off-CPU interval and run-queue wait. */
		__u64 born = next->start_time;
		if (born && born < now) {
			st->off_reason = SS_OFF_PREEMPTED;
			st->last_switch_ns = born;
			st->wakeup_ns = born;
		}
	}
	if (st->state == SS_TS_OFFCPU && st->last_switch_ns)
		end_offcpu(tt, st, tid, now);
	if (st->state == SS_TS_OFFCPU && st->off_reason == SS_OFF_PREEMPTED && st->last_block_nr >= 0) {
		/* Preempted during the blip between two pieces of one block (e.g. while handling
		 * the signal that interrupted it): time in the run queue is not progress. */
		if (st->last_switch_ns && now > st->last_switch_ns)
			st->last_block_end_ns += now - st->last_switch_ns;
	} else if (st->block_nr >= 0 && (st->signal_wake || signal_pending_for(next))) {
		/* Woken by a signal (pending until it returns to user mode): the call will be
		 * restarted after the handler, so the block may continue. A call that returned
		 * normally starts a new block next time, even if it is the same call again. */
		st->last_block_nr = st->block_nr;
		st->last_block_arg0 = st->block_args[0];
		st->last_block_end_ns = now;
	} else {
		st->last_block_nr = SS_NO_SYSCALL;
	}
	st->state = SS_TS_ONCPU;
	st->last_switch_ns = now;
	st->wakeup_ns = 0;
	st->signal_wake = 0;
	st->block_nr = SS_NO_SYSCALL;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(ss_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct ss_target *pt = target_of(prev);
	struct ss_target *nt = target_of(next);
	/* (no `!pt && !nt` test: clang would OR the two pointers, which the verifier refuses) */
	__u64 now = 0;
	if (pt) {
		now = bpf_ktime_get_ns();
		switch_out(pt, prev, preempt, now);
	}
	if (nt) {
		if (!now)
			now = bpf_ktime_get_ns();
		switch_in(nt, next, now);
		if (gc_gates_open)
			gc_sampler_arm();
	}
	return 0;
}

static __always_inline void on_wakeup(struct task_struct *p)
{
	/* A target's thread that runs on and wakes another (the one that started the world
	 * again, say) arms the sampler on its CPU, where it may run the mark phase. */
	if (gc_gates_open && target_of(bpf_get_current_task_btf()))
		gc_sampler_arm();
	if (!target_of(p))
		return;
	struct ss_thread_state *st = task_entry(p, task_vpid(p));
	if (st && st->state == SS_TS_OFFCPU && !st->wakeup_ns) {
		st->wakeup_ns = bpf_ktime_get_ns();
		/* Noted here too: the kernel at times runs a woken task with no sched_switch
		 * event for it (close_unseen_switch_in), and then only the wakeup tells. The
		 * thread's own queue only (Go's tgkill): the process's costs a wakeup ~20 ns
		 * more under thread churn (docs/kernel-side.md). */
		st->signal_wake = st->block_nr >= 0 && p->pending.signal.sig[0];
	}
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(ss_sched_wakeup, struct task_struct *p)
{
	on_wakeup(p);
	return 0;
}

SEC("tp_btf/task_newtask")
int BPF_PROG(ss_task_newtask, struct task_struct *task, __u64 clone_flags)
{
	struct ss_target *tt = target_of(task);
	if (!tt)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u32 tid = task_vpid(task);
	__u32 parent = current_vpid();
	if (tid == parent) /* the process itself (launch mode fork); not a new thread of it */
		return 0;

	struct ss_thread_new *e = reserve_event(SS_EV_THREAD_NEW, sizeof(*e), now);
	if (!e)
		return 0;
	e->tid = tid;
	e->parent_tid = parent;
	e->clone_flags = clone_flags;
	struct task_struct *cur = bpf_get_current_task_btf();
	e->nframes = 0;
	e->flags = 0;
	if (!stack_rate || take_token(&stack_tokens, now, 1000000000ull / stack_rate, stack_burst)) {
		/* The creator's entry holds its M (the hint): looked up only where there is a
		 * Go context to read and its M is not found from its FS base, so a process
		 * that is not Go pays no lookup. */
		struct ss_go_offsets *o = go_offsets(tt);
		struct ss_thread_state *creator =
			o && !o->m_fs ? thread_entry(cur->tgid, cur->pid, parent) : NULL;
		read_goctx(tt, cur, m_of(creator), &e->go);
		if (capture_stacks) {
			long n = bpf_get_stack(ctx, e->stack, sizeof(e->stack), BPF_F_USER_STACK);
			if (n > 0)
				e->nframes = n / sizeof(__u64);
		}
	} else {
		/* Over the budget: neither the stack nor the creator's goroutine (userspace
		 * names the creator's M from the creating thread's own entry). */
		goctx_none(&e->go);
		e->flags = SS_TN_DETAIL_SKIPPED;
	}
	task_comm(e->comm, cur);
	submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ss_sched_process_exit, struct task_struct *p)
{
	struct ss_target *tt = target_of(p);
	if (!tt)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u32 tid = task_vpid(p);
	__u32 tgid = tt->tgid;
	struct ss_thread_state *st = task_entry(p, tid);
	if (st && all_syscalls)
		sc_cpu_take(tid, st); /* its last calls, into the final totals */
	struct ss_thread_exit *e = reserve_event(SS_EV_THREAD_EXIT, sizeof(*e), now);
	if (e) {
		e->tid = tid;
		e->is_leader = tid == tgid;
		if (st) {
			/* Its last sleep ends here if the switch back onto a CPU was missed. */
			close_unseen_switch_in(tt, st, tid, now);
			if (st->state == SS_TS_ONCPU && st->last_switch_ns)
				st->oncpu_ns += now - st->last_switch_ns;
			st->last_switch_ns = now;
			__builtin_memcpy(&e->final, st, sizeof(*st));
		} else {
			__builtin_memset(&e->final, 0, sizeof(e->final));
		}
		task_comm(e->final.comm, p);
		submit(e);
	}
	/* The exit record carries the final totals: the entry goes now, after the record was
	 * submitted (a snapshot without the thread comes after its record in the ring). The
	 * thread's last switches find no entry and make none (get_state: PF_EXITING). */
	if (st)
		thread_entry_delete(p->tgid, p->pid, tid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
