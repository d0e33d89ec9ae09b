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

/* Configuration, set by userspace before load (rodata). Defined in sched.bpf.c. Options
 * of the session, the same for every target. */
extern const volatile __u64 offcpu_min_ns;    /* ship SS_EV_OFFCPU for intervals at least this long */
extern const volatile __u64 slow_syscall_ns;  /* (-S) ship SS_EV_SYSCALL_SLOW at least this long */
extern const volatile __u32 capture_stacks;   /* capture user stacks at thread creation */
extern const volatile __u32 all_syscalls;     /* -S programs loaded: the scheduler programs
						 move `sc_cpu` into the thread's entry */
/* The observer's PID namespace: 0 for the initial one (the ids BPF sees are the observer's),
 * else its inode; target tgids and every tid sent to userspace are then ids in that
 * namespace, as the observer's /proc shows them. */
extern const volatile __u32 ns_ino;
/* (ns_ino set) the depth of that namespace + 1, found at the first task seen in it (a
 * process cannot ask for the parents of its own PID namespace, so userspace cannot tell). */
extern __u32 ns_depth1;
/* (ns_ino set) entries of `targets_ns` not yet found in `targets`: while there are some,
 * a task that is no known target has its tgid translated and looked up there. */
extern __u32 targets_unresolved;
/* A one-hash Bloom filter of the kernel tgids in `targets` (bit tgid % SS_TARGET_BITS),
 * checked before the hash lookup: most tasks the scheduler tracepoints see are no
 * target, and a bit test costs them nothing next to a hash lookup. Bits are set (atomic
 * OR) by userspace when it adds a target, here when a target is resolved, and never
 * cleared: a stale bit only costs a lookup. Defined in sched.bpf.c. */
#define SS_TARGET_BITS 65536
extern __u64 target_bits[SS_TARGET_BITS / 64];

static __always_inline bool maybe_target(__u32 tg)
{
	__u32 i = tg & (SS_TARGET_BITS - 1);
	return target_bits[i >> 6] & (1ull << (i & 63));
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* resized by userspace before load */
} events SEC(".maps") __weak;

/* The observed processes: tgid as the kernel sees it -> the target. Written by userspace
 * (initial PID namespace), or here from `targets_ns` (the observer in a child namespace
 * only knows the tgids of its own). max_entries: the session's target capacity. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* resized by userspace before load */
	__type(key, __u32);
	__type(value, struct ss_target);
} targets SEC(".maps") __weak;

/* (ns_ino set) tgid in the observer's namespace -> the target, as userspace added it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* resized by userspace before load */
	__type(key, __u32);
	__type(value, struct ss_target);
} targets_ns SEC(".maps") __weak;

/* Per-thread state (struct ss_thread_state) lives in a slot or, failing that, in the
 * `threads` hash map. A thread's slot is its kernel tid modulo the slot count: an array
 * lookup, which the verifier inlines, where a hash lookup is a helper call that hashes
 * and walks a bucket (the state cost ~2.5 times as much in a hash under thread churn,
 * measured: docs/kernel-side.md). `thread_ids` says who holds each slot, `thread_slots`
 * holds the states; userspace maps both and reads them in place, and seeds the threads
 * that exist at attach into their slots. A thread whose slot another holds (a tid equal
 * modulo the count), and a thread seeded by an observer in another PID namespace (which
 * knows no kernel tid), has its entry in the hash, keyed by its tid in the observer's
 * namespace; a seeded one moves to its slot at its next switch when the slot is free. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SS_THREAD_SLOTS); /* set by userspace before load */
	__type(key, __u32);
	__type(value, struct ss_thread_slot_id);
} thread_ids SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SS_THREAD_SLOTS); /* set by userspace before load */
	__type(key, __u32);
	__type(value, struct ss_thread_state);
} thread_slots SEC(".maps") __weak;

/* tid (observer's namespace) -> per-thread state of the threads without a slot. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SS_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct ss_thread_state);
} threads SEC(".maps") __weak;

/* The slot count - 1 (the count a power of two), set by userspace. Defined in sched.bpf.c. */
extern const volatile __u32 thread_slot_mask;
/* Entries in `threads`, or more, never fewer: raised before an insert (here and by
 * userspace), lowered after a delete that found the entry. While it is 0 a thread without
 * its slot has no entry at all, and no hash lookup is made to learn it (under thread churn
 * every new thread's first switch would miss once). Defined in sched.bpf.c. */
extern __s64 hash_threads;

/* Deletes a thread's entry from `threads`, and counts it gone. */
static __always_inline void hash_thread_delete(__u32 tid)
{
	if (bpf_map_delete_elem(&threads, &tid) == 0)
		__sync_fetch_and_add(&hash_threads, -1);
}

/* The entry of `tid` in `threads`, or NULL; no lookup while the map is empty. */
static __always_inline struct ss_thread_state *hash_thread(__u32 tid)
{
	return hash_threads > 0 ? bpf_map_lookup_elem(&threads, &tid) : NULL;
}

static __always_inline __u64 kthread_id(__u32 ktgid, __u32 ktid)
{
	return ((__u64)ktgid << 32) | ktid;
}

/* The slot's holder record of kernel tid `ktid` (whoever holds it), or NULL. */
static __always_inline struct ss_thread_slot_id *slot_id_of(__u32 ktid, __u32 *idx)
{
	*idx = ktid & thread_slot_mask;
	return bpf_map_lookup_elem(&thread_ids, idx);
}

/* The entry of a thread, by its kernel tgid and tid and its tid in the observer's
 * namespace, or NULL: its slot if it holds it, else the hash. */
static __always_inline struct ss_thread_state *thread_entry(__u32 ktgid, __u32 ktid, __u32 tid)
{
	__u32 i;
	struct ss_thread_slot_id *sid = slot_id_of(ktid, &i);
	if (sid && sid->id == kthread_id(ktgid, ktid))
		return bpf_map_lookup_elem(&thread_slots, &i);
	return hash_thread(tid);
}

/* The entry of a thread known by its kernel tid alone (its process may be no target any
 * more): its slot if a thread of that kernel tid holds it, else the hash. */
static __always_inline struct ss_thread_state *thread_entry_by_ktid(__u32 ktid, __u32 tid)
{
	__u32 i;
	struct ss_thread_slot_id *sid = slot_id_of(ktid, &i);
	if (sid && sid->id && (__u32)sid->id == ktid)
		return bpf_map_lookup_elem(&thread_slots, &i);
	return hash_thread(tid);
}

/* The entry of task t (a BTF pointer), whose tid in the observer's namespace is `tid`. */
static __always_inline struct ss_thread_state *task_entry(struct task_struct *t, __u32 tid)
{
	return thread_entry(t->tgid, t->pid, tid);
}

/* Deletes the entry of a thread: frees its slot, or deletes it from the hash. */
static __always_inline void thread_entry_delete(__u32 ktgid, __u32 ktid, __u32 tid)
{
	__u32 i;
	struct ss_thread_slot_id *sid = slot_id_of(ktid, &i);
	if (sid && sid->id == kthread_id(ktgid, ktid)) {
		sid->tid = 0;
		sid->id = 0;
		return;
	}
	hash_thread_delete(tid);
}

/* Ring-buffer reservations that failed, per CPU (the ring is the session's). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps") __weak;

/* ---- ids as the observer sees them (PID namespaces) ---- */

/* Entry `level` of pid->numbers[]: the number and namespace inode (0 on a read error). */
static __always_inline __u32 upid_at(struct pid *pid, __u32 level, __u32 *ino)
{
	struct upid up = {};
	__u64 addr = (__u64)pid + bpf_core_field_offset(struct pid, numbers) +
		     (__u64)level * bpf_core_type_size(struct upid);
	*ino = 0;
	if (bpf_probe_read_kernel(&up, sizeof(up), (void *)addr))
		return 0;
	*ino = BPF_CORE_READ(up.ns, ns.inum);
	return (__u32)up.nr;
}

#define SS_MAX_PIDNS_LEVEL 32 /* the kernel's MAX_PID_NS_LEVEL */

/* The number of `pid` in the observer's namespace (0: not visible there). */
static __always_inline __u32 pid_nr_in_ns(struct pid *pid)
{
	if (!pid)
		return 0;
	__u32 level = BPF_CORE_READ(pid, level);
	__u32 ino = 0, nr;
	__u32 d = ns_depth1;
	if (d) {
		if (level < d - 1)
			return 0;
		nr = upid_at(pid, (d - 1) & (SS_MAX_PIDNS_LEVEL - 1), &ino);
		return ino == ns_ino ? nr : 0;
	}
	/* Not found yet: look for the observer's namespace among the levels of this pid. */
	for (__u32 i = 1; i < SS_MAX_PIDNS_LEVEL; i++) {
		if (i > level)
			break;
		nr = upid_at(pid, i, &ino);
		if (ino == ns_ino) {
			ns_depth1 = i + 1;
			return nr;
		}
	}
	return 0;
}

/* Thread id of t in the observer's namespace. t is a BTF pointer (a tp_btf argument or
 * bpf_get_current_task_btf()), as in every program here: its fields are read with direct
 * loads, which the verifier turns into fault-safe loads, not with bpf_probe_read_kernel
 * calls (a helper call each, on the paths every context switch takes:
 * docs/kernel-side.md). */
static __always_inline __u32 task_vpid(struct task_struct *t)
{
	if (!ns_ino)
		return t->pid;
	return pid_nr_in_ns(t->thread_pid);
}

/* t's comm into dst, with two direct 8-byte loads (t a BTF pointer, as in task_vpid). The
 * kernel keeps comm NUL-terminated and padded (set_task_comm), so dst is a C string. */
static __always_inline void task_comm(char dst[SS_COMM_LEN], struct task_struct *t)
{
	_Static_assert(sizeof(t->comm) == SS_COMM_LEN, "task_struct.comm is 16 bytes");
	const __u64 *src = (const __u64 *)t->comm;
	((__u64 *)dst)[0] = src[0];
	((__u64 *)dst)[1] = src[1];
}

/* (ns_ino set) t, whose kernel tgid `tg` is in no entry of `targets`, may be a target
 * added by its tgid in the observer's namespace: translate, look it up in `targets_ns`
 * and, found, enter it in `targets` so that its next events take the fast path. */
static __noinline struct ss_target *resolve_target(struct task_struct *t, __u32 tg)
{
	__u32 vtgid = pid_nr_in_ns(BPF_CORE_READ(t, group_leader, thread_pid));
	if (!vtgid)
		return NULL;
	struct ss_target *v = bpf_map_lookup_elem(&targets_ns, &vtgid);
	if (!v)
		return NULL;
	struct ss_target copy = *v;
	if (bpf_map_update_elem(&targets, &tg, &copy, BPF_NOEXIST) == 0) {
		__u32 i = tg & (SS_TARGET_BITS - 1);
		__sync_fetch_and_or(&target_bits[i >> 6], 1ull << (i & 63));
		__sync_fetch_and_add(&targets_unresolved, -1);
	}
	return bpf_map_lookup_elem(&targets, &tg);
}

/* The target t is a thread of, or NULL: the filter every program starts with. */
static __always_inline struct ss_target *target_of(struct task_struct *t)
{
	__u32 tg = t->tgid;
	struct ss_target *tt = maybe_target(tg) ? bpf_map_lookup_elem(&targets, &tg) : NULL;
	if (tt || !ns_ino || !targets_unresolved)
		return tt;
	return resolve_target(t, tg);
}

/* The target of the current task, whose bpf_get_current_pid_tgid() is `id`, or NULL;
 * *tid gets the current thread's id in the observer's namespace when it is a target's. */
static __always_inline struct ss_target *current_target_of(__u64 id, __u32 *tid)
{
	__u32 tg = (__u32)(id >> 32);
	struct ss_target *tt = maybe_target(tg) ? bpf_map_lookup_elem(&targets, &tg) : NULL;
	if (!ns_ino) {
		*tid = (__u32)id;
		return tt;
	}
	struct task_struct *t = bpf_get_current_task_btf();
	if (!tt && targets_unresolved)
		tt = resolve_target(t, tg);
	if (tt)
		*tid = task_vpid(t);
	return tt;
}

/* The target of the current task, or NULL (current_target_of). */
static __always_inline struct ss_target *current_target(__u32 *tid)
{
	return current_target_of(bpf_get_current_pid_tgid(), tid);
}

/* The current task's thread id in the observer's namespace (any task). */
static __always_inline __u32 current_vpid(void)
{
	if (!ns_ino)
		return (__u32)bpf_get_current_pid_tgid();
	return task_vpid(bpf_get_current_task_btf());
}

/* ---- per-target aggregates: key target slot * (entries of one target) + entry.
 * max_entries (one target's entries here) is multiplied by the session's target capacity
 * by userspace before load. */

/* Syscall nr -> time blocked off-CPU in that syscall (default mode). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SS_MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct ss_sc_stat);
} sc_block SEC(".maps") __weak;

/* Per target (key: slot): the syscall numbers counted in sc_block or sc_all (struct
 * ss_sc_seen). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ss_sc_seen);
} sc_seen SEC(".maps") __weak;

/* Notes that the target in `slot` has counts of syscall `nr` (< SS_MAX_SYSCALLS): a load
 * and a test once it is noted. */
static __always_inline void sc_note_seen(__u32 slot, __u32 nr)
{
	struct ss_sc_seen *s = bpf_map_lookup_elem(&sc_seen, &slot);
	if (!s)
		return;
	__u64 bit = 1ull << (nr & 63);
	__u64 *w = &s->bits[(nr >> 6) & (SS_MAX_SYSCALLS / 64 - 1)];
	if (!(*w & bit))
		__sync_fetch_and_or(w, bit);
}

/* (-S) The call in flight on this CPU and the calls completed (struct ss_sc_cpu). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ss_sc_cpu);
} sc_cpu SEC(".maps") __weak;

/* (-S) Moves this CPU's call state of `tid` into its entry: at the thread's switch-out
 * and at its exit, the only times it leaves the CPU. */
static __always_inline void sc_cpu_take(__u32 tid, struct ss_thread_state *st)
{
	__u32 zero = 0;
	struct ss_sc_cpu *c = bpf_map_lookup_elem(&sc_cpu, &zero);
	if (!c || c->tid != tid)
		return;
	if (c->enter_ns) {
		st->sc_nr = c->nr;
		st->sc_enter_ns = c->enter_ns;
	}
	st->sc_count += c->pending;
	c->tid = 0;
	c->pending = 0;
	c->enter_ns = 0;
}

/* Run-queue latency histogram of each target (all its threads), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SS_HIST_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} rq_hist SEC(".maps") __weak;

/* Go runtime offsets of each target (key: its slot), written by userspace whenever
 * calibration completes. */
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

/* The Go offsets of a target, or NULL when its Go context reads are off. */
static __always_inline struct ss_go_offsets *go_offsets(const struct ss_target *tt)
{
	__u32 slot = tt->slot;
	struct ss_go_offsets *o = bpf_map_lookup_elem(&go_cfg, &slot);
	return o && o->enabled ? o : NULL;
}

/* ---- ring-buffer records ---- */

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *d = bpf_map_lookup_elem(&drops, &zero);
	if (d)
		*d += 1;
}

/* Reserves a record of `size` bytes (a constant: sizeof the record's struct) and fills
 * its header; NULL, and the drop counted, when the ring is full. */
static __always_inline void *reserve_event(__u32 type, __u32 size, __u64 ts)
{
	struct ss_hdr *h = bpf_ringbuf_reserve(&events, size, 0);
	if (!h) {
		count_drop();
		return NULL;
	}
	h->type = type;
	h->size = size;
	h->ts = ts;
	return h;
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

/* A per-CPU token bucket: one take per `period_ns`, up to `burst` saved up. `buckets` is a
 * one-entry BPF_MAP_TYPE_PERCPU_ARRAY of struct ss_token_bucket (zeroed: starts full). */
struct ss_token_bucket {
	__u64 last_ns;   /* the last take or refusal */
	__u64 credit_ns; /* time saved up at last_ns, at most period_ns * burst */
};

static __always_inline bool take_token(void *buckets, __u64 now, __u64 period_ns, __u64 burst)
{
	__u32 k = 0;
	struct ss_token_bucket *b = bpf_map_lookup_elem(buckets, &k);
	if (!b)
		return true;
	__u64 cap = period_ns * burst;
	__u64 credit = now > b->last_ns ? b->credit_ns + (now - b->last_ns) : b->credit_ns;
	if (credit > cap)
		credit = cap;
	b->last_ns = now;
	if (credit < period_ns) {
		b->credit_ns = credit;
		return false;
	}
	b->credit_ns = credit - period_ns;
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

/* ---- the Go runtime's g and m, read from user memory ---- */

/* The g in the TLS of `task` (current, or just switched out on this CPU): the G it runs,
 * g0 or gsignal; 0 when unreadable. */
static __always_inline __u64 go_tls_g(const struct ss_go_offsets *o, struct task_struct *task)
{
	__u64 fsbase = task->thread.fsbase, g = 0;
	if (!fsbase || bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase + (__s64)o->tls_g)))
		return 0;
	return g;
}

/* The M of a g and the user G that M runs (m.curg): from any g of the M, its g0 (R14 in
 * runtime code on the system stack), gsignal or the user G itself. False when g.m is
 * unreadable; *curg is 0 when the M runs no user G or m.curg is unreadable. */
static __always_inline bool go_current_g(const struct ss_go_offsets *o, __u64 g, __u64 *m,
					 __u64 *curg)
{
	*m = 0;
	*curg = 0;
	if (!g || bpf_probe_read_user(m, sizeof(*m), (void *)(g + o->g_m)) || !*m)
		return false;
	if (bpf_probe_read_user(curg, sizeof(*curg), (void *)(*m + o->m_curg)))
		*curg = 0;
	return true;
}

/* *goid = gp.goid; non-zero when unreadable. */
static __always_inline long go_goid(const struct ss_go_offsets *o, __u64 gp, __u64 *goid)
{
	return bpf_probe_read_user(goid, sizeof(*goid), (void *)(gp + o->g_goid));
}

/* The goid of the user G the M of g runs, 0 when none or unreadable. */
static __always_inline __u64 go_current_goid(const struct ss_go_offsets *o, __u64 g)
{
	__u64 m, curg, goid = 0;
	if (go_current_g(o, g, &m, &curg) && curg && go_goid(o, curg, &goid))
		goid = 0;
	return goid;
}

/* The 8-byte field (8-aligned, off - m_win <= 248) or byte (off - m_win < 256) of m at
 * offset `off`, from the window `w` read at m_win (8-aligned). The masks are the bounds
 * and the alignment the verifier asks of a variable stack offset. */
#define M_WIN_U64(w, o, off) (*(__u64 *)((w) + (((off) - (o)->m_win) & 0xf8)))
#define M_WIN_U8(w, o, off) (*(__u8 *)((w) + (((off) - (o)->m_win) & 0xff)))

/* The fields of m that read_goctx wants; procid and isextra only from a window that holds
 * them (m_cache). */
struct go_mfields {
	__u64 curg, p, oldp, procid;
	__s64 id;
	__u8 incgo, isextra;
};

/* Reads them from m: in one read of SS_M_WINDOW bytes at m_win when set (every offset
 * within the masks above), else one read per field. False when m is unreadable (window) or
 * m.curg is (one by one: the other fields then keep their zero or -1). */
static __always_inline bool go_read_m(const struct ss_go_offsets *o, __u64 m, struct go_mfields *f)
{
	f->curg = f->p = f->oldp = f->procid = 0;
	f->id = -1;
	f->incgo = f->isextra = 0;
	if (o->m_win) {
		char w[SS_M_WINDOW];
		if (bpf_probe_read_user(w, sizeof(w), (void *)(m + o->m_win)))
			return false;
		f->curg = M_WIN_U64(w, o, o->m_curg);
		f->id = (__s64)M_WIN_U64(w, o, o->m_id);
		f->p = M_WIN_U64(w, o, o->m_p);
		if (o->m_oldp)
			f->oldp = M_WIN_U64(w, o, o->m_oldp);
		if (o->m_incgo)
			f->incgo = M_WIN_U8(w, o, o->m_incgo);
		if (o->m_cache) {
			f->procid = M_WIN_U64(w, o, o->m_procid);
			if (o->m_isextra)
				f->isextra = M_WIN_U8(w, o, o->m_isextra);
		}
		return true;
	}
	if (bpf_probe_read_user(&f->curg, sizeof(f->curg), (void *)(m + o->m_curg)))
		f->curg = 0;
	bpf_probe_read_user(&f->id, sizeof(f->id), (void *)(m + o->m_id));
	if (o->m_incgo && bpf_probe_read_user(&f->incgo, 1, (void *)(m + o->m_incgo)))
		f->incgo = 0;
	if (bpf_probe_read_user(&f->p, sizeof(f->p), (void *)(m + o->m_p)))
		f->p = 0;
	if (!f->p && o->m_oldp && bpf_probe_read_user(&f->oldp, sizeof(f->oldp), (void *)(m + o->m_oldp)))
		f->oldp = 0;
	return true;
}

/* The id of thread t in its own PID namespace: what gettid() returns to it, and what the
 * Go runtime keeps in m.procid. */
static __always_inline __u32 task_tid_own_ns(struct task_struct *t)
{
	struct pid *pid = t->thread_pid;
	if (!pid)
		return 0;
	__u32 level = pid->level, ino;
	if (!level)
		return t->pid;
	return upid_at(pid, level & (SS_MAX_PIDNS_LEVEL - 1), &ino);
}

/* The M of a thread's last Go context, the hint of read_goctx (0: none). */
static __always_inline __u64 m_of(const struct ss_thread_state *st)
{
	return st && (st->go.flags & SS_GO_VALID) ? st->go.m_addr : 0;
}

/* No Go context: nothing read (flags 0, ids -1). */
static __always_inline void goctx_none(struct ss_goctx *out)
{
	out->goid = 0;
	out->g_addr = 0;
	out->m_addr = 0;
	out->m_id = -1;
	out->p_id = -1;
	out->flags = 0;
}

/* Reads the Go context of `task` (which must be current or just switched out on this
 * CPU). `m_hint` is the thread's M found last time (0: none). A Go thread keeps its M
 * for life; the first user-memory read of a kernel entry is the dear one here (~0.2 us
 * on the measured VM, the next ones ~0.1 us each: docs/kernel-side.md), so the M is read
 * at a known address directly when allowed (m_cache) and still the thread's: its procid
 * is the thread's id and it is not an extra M. Known: from the thread's FS base in a
 * binary without cgo (m_fs), else the hint. Otherwise, from the TLS g: TLS g, g.m, the
 * M. Then curg.goid and p.id. Leaves `out` zeroed (flags 0) when disabled or
 * unreadable. */
static __always_inline void read_goctx(const struct ss_target *tt, struct task_struct *task,
				       __u64 m_hint, struct ss_goctx *out)
{
	struct ss_go_offsets *o = go_offsets(tt);

	goctx_none(out);
	if (!o)
		return;

	__u64 g = 0, m = 0;
	if (o->m_fs) {
		__u64 fsbase = task->thread.fsbase;
		m_hint = fsbase > o->m_fs ? fsbase - o->m_fs : 0;
	}
	struct go_mfields f;
	if (m_hint && o->m_cache && go_read_m(o, m_hint, &f) && f.procid &&
	    f.procid == task_tid_own_ns(task) && !f.isextra) {
		m = m_hint;
	} else {
		g = go_tls_g(o, task);
		if (!g || bpf_probe_read_user(&m, sizeof(m), (void *)(g + o->g_m)) || !m ||
		    !go_read_m(o, m, &f))
			return;
	}
	out->g_addr = g;
	out->m_addr = m;
	out->m_id = f.id;
	out->flags = SS_GO_VALID;
	if (f.curg)
		go_goid(o, f.curg, &out->goid);
	if (g && f.curg != g)
		out->flags |= SS_GO_ONG0;
	if (f.incgo)
		out->flags |= SS_GO_INCGO;
	__u64 p = f.p;
	if (!p && f.oldp) {
		p = f.oldp;
		out->flags |= SS_GO_OLDP;
	}
	if (p) {
		__s32 pid_ = -1;
		if (!bpf_probe_read_user(&pid_, sizeof(pid_), (void *)(p + o->p_id)))
			out->p_id = pid_;
	}
}

#endif
