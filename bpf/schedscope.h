/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * schedscope.h — the one ABI shared by the BPF programs and the C++ userspace.
 *
 * Rules: fixed-width types only (no int/long/bool/enum in records), every record
 * starts with a struct ss_hdr whose `type` is one of SS_EV_*, sizes and offsets are
 * pinned by static_asserts in userspace/probe/abi.cpp. Recordings carry these
 * records verbatim, so any change to an existing struct bumps SS_ABI_VERSION (a new event
 * type with a new struct does not: see docs/recording-format.md, Compatibility).
 */
#ifndef SCHEDSCOPE_ABI_H
#define SCHEDSCOPE_ABI_H

#ifdef __cplusplus
#include <cstdint>
typedef std::uint8_t ss_u8;
typedef std::uint16_t ss_u16;
typedef std::uint32_t ss_u32;
typedef std::int32_t ss_s32;
typedef std::uint64_t ss_u64;
typedef std::int64_t ss_s64;
#else
typedef __u8 ss_u8;
typedef __u16 ss_u16;
typedef __u32 ss_u32;
typedef __s32 ss_s32;
typedef __u64 ss_u64;
typedef __s64 ss_s64;
#endif

#define SS_ABI_VERSION 2

/* Per-thread state: slots (a power of two; a thread's slot is its kernel tid modulo the
 * count, docs/kernel-side.md), and a hash map for the seeded and overflow entries. */
#define SS_THREAD_SLOTS 32768
#define SS_MAX_THREADS 16384   /* the hash map's capacity */
#define SS_MAX_SYSCALLS 512    /* syscall numbers tracked (x86_64 uses < 460) */
#define SS_HIST_BUCKETS 32     /* log2 histogram: bucket i holds [2^i, 2^(i+1)) ns; 0 holds 0..1 */
#define SS_MAX_STACK 24        /* user frames captured at thread creation */
#define SS_COMM_LEN 16

/* Event tags: the first field of every ring-buffer record. */
#define SS_EV_THREAD_NEW 1     /* struct ss_thread_new */
/* The budget of a creation's details (its creator's stack and goroutine), per CPU: this many
 * at once, then this many a second (sched.bpf.c: stack_burst, stack_rate). */
#define SS_DETAIL_BURST 32
#define SS_DETAIL_RATE 40
/* ss_thread_new.flags: over that budget, no stack taken, the creator's Go context not read
 * (go.flags 0) */
#define SS_TN_DETAIL_SKIPPED 0x1
#define SS_EV_THREAD_EXIT 2    /* struct ss_thread_exit */
#define SS_EV_OFFCPU 3         /* struct ss_offcpu: an off-CPU interval longer than cfg.offcpu_min_ns */
#define SS_EV_SYSCALL_SLOW 4   /* struct ss_syscall_slow: (-S) a syscall longer than cfg.slow_syscall_ns */
#define SS_EV_GO_CREATE 5      /* struct ss_go_create: (--goroutines) newproc1 returned a new G */
#define SS_EV_GO_EXIT 6        /* struct ss_go_exit: (--goroutines) gdestroy/goexit0 entry */

/* Slots of the per-CPU `go_hits` array (--goroutines uprobe hits), per target: key
 * target slot * SS_GOHIT_SLOTS + slot. */
#define SS_GOHIT_CREATE 0
#define SS_GOHIT_EXIT 1
#define SS_GOHIT_SLOTS 2

/* Why a thread left the CPU (from prev_state at sched_switch). */
#define SS_OFF_PREEMPTED 0     /* still runnable: preempted or yielded; waits in the run queue */
#define SS_OFF_SLEEP 1         /* TASK_INTERRUPTIBLE: waiting for an event (futex, epoll, read, ...) */
#define SS_OFF_DISK 2          /* TASK_UNINTERRUPTIBLE: D state (I/O, page fault, mutex) */
#define SS_OFF_OTHER 3         /* stopped, traced, ... */
#define SS_OFF_REASONS 4

/* Thread state as kept in struct ss_thread_state.state. */
#define SS_TS_ONCPU 0
#define SS_TS_OFFCPU 1

#define SS_NO_SYSCALL (-1)
/* On-CPU time between a signal's wakeup and the restarted call that still continues the
 * block (run-queue time is not counted). Go's own handler takes microseconds, but on a
 * loaded machine the woken thread can be preempted slice after slice in the kernel before
 * the restart: 1.6-3.2 ms of on-CPU time were measured in such episodes, so 2 ms cut
 * a stuck raw read into pieces that never reached the stuck-P threshold. */
#define SS_BLOCK_MERGE_NS 20000000ull

/* Go context resolved from the thread's TLS g (all zero when unknown). */
struct ss_goctx {
	ss_u64 goid;      /* goid of m.curg (the user goroutine); 0 if the M runs no user G */
	ss_u64 g_addr;    /* the g found in TLS (may be g0/gsignal); 0 when the thread's M was
	                   * read again at its known address (read_goctx), the TLS unread */
	ss_u64 m_addr;    /* the thread's M (g.m) */
	ss_s64 m_id;      /* m.id, -1 unknown */
	ss_s32 p_id;      /* id of m.p, else of m.oldp when flags has SS_GO_OLDP; -1 none */
	ss_u32 flags;     /* SS_GO_* */
};

#define SS_GO_VALID 0x1      /* g and m were read */
/* 0x2 is not used: older recordings may carry it (it compared m.procid with the host tid,
 * which differs in a PID namespace); nothing reads it. */
#define SS_GO_OLDP 0x4       /* P came from m.oldp (P detached for a syscall) */
#define SS_GO_ONG0 0x8       /* TLS g is not m.curg (scheduler, g0 or signal context); only
                              * where the TLS g was read (g_addr != 0) */
#define SS_GO_INCGO 0x10     /* m.incgo */

/* The set of observed processes (the kernel-side filter). Value of the `targets` hash
 * map, whose key is the tgid as the kernel sees it (initial PID namespace), and of
 * `targets_ns`, whose key is the tgid in the observer's PID namespace (see
 * docs/kernel-side.md). Not part of any record. */
struct ss_target {
	ss_u32 slot;      /* the target's entries in the per-target maps (< their capacity) */
	ss_u32 tgid;      /* tgid in the observer's PID namespace, as userspace names it */
	ss_u32 flags;     /* SS_TGT_*: what is observed of this target beyond the default */
};

/* ss_target.flags */
#define SS_TGT_ALL_SYSCALLS 1u /* syscalls.bpf.c counts and times every syscall of it (-S) */

struct ss_hdr {
	ss_u32 type;      /* SS_EV_* */
	ss_u32 size;      /* bytes of the whole record */
	ss_u64 ts;        /* CLOCK_MONOTONIC ns (bpf_ktime_get_ns) */
};

/* Who holds a per-thread state slot: the `thread_ids` array, beside the states in
 * `thread_slots`, both indexed by the kernel tid modulo the slot count. Not part of any
 * record. */
struct ss_thread_slot_id {
	ss_u64 id;  /* kernel tgid << 32 | kernel tid; 0: free */
	ss_u32 tid; /* the thread's id in the observer's PID namespace; 0 until set */
	ss_u32 pad;
};

/* Per-thread state, in a slot of `thread_slots` or else in the `threads` hash map (key:
 * tid), read by userspace each interval. */
struct ss_thread_state {
	ss_u64 last_switch_ns;          /* time of the last switch in or out */
	ss_u64 wakeup_ns;               /* last sched_wakeup while off-CPU, 0 if none pending */
	ss_u64 oncpu_ns;                /* total time on CPU */
	ss_u64 offcpu_ns[SS_OFF_REASONS];
	ss_u64 offcpu_count[SS_OFF_REASONS];
	ss_u64 rq_ns;                   /* total run-queue wait (wakeup/preempt -> on CPU) */
	ss_u64 rq_count;
	ss_u32 rq_hist[SS_HIST_BUCKETS];
	ss_u64 sc_enter_ns;             /* (-S) start of the in-flight syscall, 0 if none */
	ss_u64 sc_count;                /* (-S) syscalls completed */
	ss_s32 sc_nr;                   /* (-S) in-flight syscall nr, SS_NO_SYSCALL */
	ss_s32 block_nr;                /* syscall the thread is/was blocked in at switch-out, SS_NO_SYSCALL */
	ss_u64 block_args[3];           /* its first three arguments */
	ss_u32 state;                   /* SS_TS_* */
	ss_u32 off_reason;              /* SS_OFF_* of the current off-CPU interval */
	ss_u32 tgid;
	ss_u32 created_by;              /* creating tid when seen by task_newtask, else 0 */
	ss_u64 block_since_ns;          /* start of the current block in block_nr; a block that
	                                 * resumes after a short on-CPU blip in the same call (a
	                                 * signal restarting it: Go's SIGURG preemption) continues */
	ss_u64 last_block_end_ns;       /* switch-in that ended the previous block */
	ss_u64 last_block_arg0;
	ss_s32 last_block_nr;           /* syscall of the previous block, SS_NO_SYSCALL */
	ss_u32 signal_wake;             /* a signal was pending at the wakeup of this off-CPU
	                                 * interval: a blocked call restarts after the handler */
	ss_u64 block_ip;                /* user IP and frame pointer at the switch-out into the */
	ss_u64 block_bp;                /* block: userspace walks the blocked G's stack from them */
	struct ss_goctx go;             /* Go context at the last switch-out */
	char comm[SS_COMM_LEN];
};

/* (-S) The call in flight on a CPU and the calls completed there, per CPU (`sc_cpu`, one
 * entry): sys_enter and sys_exit keep a call here, not in the thread's entry, so a call
 * that does not block costs no lookup of the thread. The thread's switch-out and exit move
 * it into the entry (sc_nr, sc_enter_ns, sc_count); userspace adds what is still here to
 * the entries it reads. */
struct ss_sc_cpu {
	ss_u64 enter_ns; /* start of the call in flight, 0 if none */
	ss_u64 pending;	 /* calls `tid` completed since its entry last took them */
	ss_u32 tid;	 /* the thread on this CPU these are of, 0 for none */
	ss_s32 nr;	 /* the call in flight */
	ss_u32 ktid;	 /* the call's thread as the kernel numbers it (its sys_exit's check) */
	ss_u32 slot;	 /* the call's target slot (where its sys_exit counts it) */
};

/* Per-syscall aggregate, in the per-CPU arrays `sc_block` (default mode: off-CPU
 * intervals spent blocked in the syscall) and `sc_all` (-S: every call), per target:
 * key target slot * SS_MAX_SYSCALLS + syscall nr. */
struct ss_sc_stat {
	ss_u64 count;
	ss_u64 total_ns;
	ss_u64 max_ns;
	ss_u32 hist[SS_HIST_BUCKETS];
};

/* The syscall numbers whose entries of a target's sc_block or sc_all were ever counted:
 * one bit each (the `sc_seen` map, key: the target's slot), set before the first count.
 * Userspace reads only those entries: a target blocks in a handful of calls of
 * SS_MAX_SYSCALLS. */
struct ss_sc_seen {
	ss_u64 bits[SS_MAX_SYSCALLS / 64];
};

struct ss_thread_new {
	struct ss_hdr h;
	ss_u32 tid;            /* new thread */
	ss_u32 parent_tid;     /* creating thread */
	ss_u64 clone_flags;
	struct ss_goctx go;    /* creator's Go context (flags 0: unread, SS_TN_DETAIL_SKIPPED) */
	ss_u32 nframes;        /* valid entries in stack */
	ss_u32 flags;          /* SS_TN_* */
	ss_u64 stack[SS_MAX_STACK]; /* creator's user stack (frame pointers), innermost first */
	char comm[SS_COMM_LEN];
};

struct ss_thread_exit {
	struct ss_hdr h;
	ss_u32 tid;
	ss_u32 is_leader;      /* tid == tgid */
	struct ss_thread_state final; /* totals of the thread at exit */
};

struct ss_offcpu {
	struct ss_hdr h;       /* ts = end of the interval (switch-in) */
	ss_u64 start_ns;
	ss_u64 rq_ns;          /* part of the interval spent runnable (after wakeup) */
	ss_u32 tid;
	ss_u32 reason;         /* SS_OFF_* */
	ss_s32 syscall_nr;     /* SS_NO_SYSCALL if not in a syscall */
	ss_u32 pad;
	ss_u64 args[3];
	struct ss_goctx go;    /* Go context at switch-out */
};

struct ss_syscall_slow {
	struct ss_hdr h;       /* ts = exit */
	ss_u64 start_ns;
	ss_u32 tid;
	ss_s32 nr;
	ss_s64 ret;
	struct ss_goctx go;    /* Go context at sys_exit */
};

/* Go runtime offsets, written by userspace into the `go_cfg` array map (key: the
 * target's slot) before or after load (calibration may fill them later). enabled == 0 turns the
 * Go context reads off. */
struct ss_go_offsets {
	ss_u32 enabled;
	ss_s32 tls_g;          /* g is at fsbase + tls_g (usually -8) */
	ss_u32 g_m;
	ss_u32 g_goid;
	ss_u32 m_procid;
	ss_u32 m_curg;
	ss_u32 m_p;
	ss_u32 m_oldp;
	ss_u32 m_id;
	ss_u32 m_incgo;
	ss_u32 p_id;
	ss_u32 g_startpc;      /* (--goroutines) 0: unknown */
	/* The fields of m that read_goctx wants (curg, p, oldp, id, incgo) lie within
	 * SS_M_WINDOW bytes from m_win (88 bytes apart in Go 1.17-1.26): one read of the window
	 * instead of five. m_win 0: read them one by one. */
	ss_u32 m_win;
	ss_u32 m_isextra;      /* 0: unknown (before Go 1.20) */
	/* 1: the window also holds m.procid, and m.isextra unless the binary has no cgo. A
	 * Go thread keeps its M for life, so read_goctx reads the M at the address found last
	 * time, with no TLS g and no g.m, when that M's procid is still the thread's id and it
	 * is not an extra M (a cgo callback's, which moves between C threads). */
	ss_u32 m_cache;
	/* With m_cache, in a binary without cgo: a thread's M is at fsbase - m_fs
	 * (runtime.clone and m0's set-up set FS = &m.tls + 8), found with no read of the
	 * target's memory; checked as a known M is (its procid). 0: not so. */
	ss_u32 m_fs;
};
#define SS_M_WINDOW 256        /* bytes of m read at once (8-byte fields at most 248 in, bytes 255) */

/* (--goroutines) a goroutine was created: uprobe at a RET of runtime.newproc1, which runs
 * on the creating M's g0 (R14); RAX = newg. */
struct ss_go_create {
	struct ss_hdr h;
	ss_u32 tid;            /* creating thread */
	ss_u32 flags;          /* SS_GOC_* */
	ss_u64 goid;           /* newg.goid (written before newproc1 returns, 1.17-1.26) */
	ss_u64 startpc;        /* newg.startpc (runtime address), 0 unknown */
	ss_u64 creator_goid;   /* goid of g0.m.curg, the G that ran `go f()`; 0 unknown */
};

#define SS_GOC_CREATOR 0x1     /* creator_goid was read */
#define SS_GOC_STARTPC 0x2     /* startpc was read */

/* (--goroutines) a goroutine exited: uprobe at the entry of runtime.gdestroy (1.22+) or
 * runtime.goexit0 (<=1.21), both on g0 with RAX = gp. */
struct ss_go_exit {
	struct ss_hdr h;
	ss_u32 tid;
	ss_u32 pad;
	ss_u64 goid;
};

/* ---- USDT: event types 20..29.
 * Probes attached with libbpf's USDT support; the BPF cookie of each attachment is the
 * probe's index in userspace's probe table (< SS_USDT_MAX_PROBES). */
#define SS_EV_USDT 20          /* struct ss_usdt_hit: one hit of a probe whose cfg has SS_USDT_EMIT */
#define SS_EV_USDT_COUNT 21    /* struct ss_usdt_count: (userspace) a thread's hit count, read from `usdt_counts` */
#define SS_EV_USDT_PROBE 22    /* struct ss_usdt_probe: (userspace) a probe table entry, when attached */

#define SS_USDT_MAX_PROBES 64
#define SS_USDT_MAX_ARGS 8
#define SS_USDT_STR_LEN 64

/* ss_usdt_cfg.flags */
#define SS_USDT_EMIT 0x1       /* ship an SS_EV_USDT record per hit (arguments) */
#define SS_USDT_STR 0x2        /* read a string from the user pointer in arg str_arg */

/* Roles a runtime adapter gives a probe (ss_usdt_probe.role). */
#define SS_USDT_ROLE_GENERIC 0      /* --usdt: counted, arguments carried */
#define SS_USDT_ROLE_THREAD_START 1 /* args: name ptr, name len, runtime thread id, native tid, daemon */
#define SS_USDT_ROLE_THREAD_STOP 2
#define SS_USDT_ROLE_PAUSE_BEGIN 3  /* a stop-the-world period of kind ss_usdt_probe.pause begins ... */
#define SS_USDT_ROLE_PAUSE_END 4    /* ... and ends (paired on the same thread) */

/* ss_usdt_probe.pause */
#define SS_PAUSE_NONE 0
#define SS_PAUSE_SAFEPOINT 1   /* HotSpot safepoint (all Java threads stopped) */
#define SS_PAUSE_GC 2          /* a GC pause (HotSpot gc__begin/end, CPython gc__start/done) */

/* Per-probe configuration, `usdt_cfg` array map (key: probe index). */
struct ss_usdt_cfg {
	ss_u32 flags;          /* SS_USDT_* */
	ss_u32 str_arg;        /* with SS_USDT_STR: the argument holding the string pointer */
};

/* Key of the `usdt_counts` hash map: hits per thread and probe. */
struct ss_usdt_key {
	ss_u32 tid;
	ss_u32 probe;
};

struct ss_usdt_hit {
	struct ss_hdr h;
	ss_u32 tid;
	ss_u32 probe;          /* index in the probe table */
	ss_u32 nargs;          /* arguments the probe has (args[] holds the first SS_USDT_MAX_ARGS) */
	ss_u32 str_len;        /* bytes of str read (0: none) */
	ss_u64 args[SS_USDT_MAX_ARGS]; /* as libbpf decodes them (sign-extended per the arg spec) */
	char str[SS_USDT_STR_LEN];     /* with SS_USDT_STR: NUL-terminated */
};

struct ss_usdt_count {
	struct ss_hdr h;       /* ts = snapshot time */
	ss_u32 tid;
	ss_u32 probe;
	ss_u64 count;          /* hits since attach */
};

struct ss_usdt_probe {
	struct ss_hdr h;
	ss_u32 probe;          /* index */
	ss_u32 role;           /* SS_USDT_ROLE_* */
	ss_u32 pause;          /* SS_PAUSE_* */
	ss_u32 locations;      /* attach points (a probe may be inlined at several places) */
	char runtime[16];      /* "hotspot", "cpython", "" (generic) */
	char provider[32];
	char name[64];
	char file[128];        /* the ELF it is in (truncated at the start if longer) */
};

/* ---- GC and netpoller observation (event types 10..19 reserved here) ----
 *
 * Entry uprobes on rare runtime functions (gc.bpf.c) and a per-CPU perf_event sampler
 * that classifies what the target's M on that CPU is doing for the GC. */
#define SS_EV_GC 10            /* struct ss_gc_event: STW stop/start, mark termination */
#define SS_EV_GC_SAMPLE 11     /* struct ss_gc_sample: a sampler tick that found GC work */
#define SS_EV_GC_STACK 12      /* struct ss_gc_stack: the user stack that stopped the world */

#define SS_GC_STW_STOP 1       /* entry of runtime.stopTheWorldWithSema; arg = stwReason (1.21+) */
#define SS_GC_STW_START 2      /* entry of runtime.startTheWorldWithSema */
#define SS_GC_MARKTERM 3       /* entry of runtime.gcMarkTermination (once per cycle; the
                                * user-stack prologue may fire it twice, userspace dedups) */

#define SS_GCS_WORKER 1        /* the P runs a background mark worker (p.gcMarkWorkerMode != 0) */
#define SS_GCS_ASSIST 2        /* m.curg is in a mark assist (_Gwaiting, GC assist marking) */
#define SS_GCS_IDLE_WORKER 3   /* an idle-priority mark worker (gcMarkWorkerIdleMode): it runs
                                * only on a P with nothing else to do, so it takes no time
                                * from the program (not counted against MMU) */

struct ss_gc_event {
	struct ss_hdr h;
	ss_u32 tid;
	ss_u32 what;           /* SS_GC_* */
	ss_u64 arg;            /* SS_GC_STW_STOP: RAX at entry (the stwReason on 1.21+) */
	ss_u64 goid;           /* goid of m.curg, 0 when none/unknown */
};

/* The user stack at the entry of stopTheWorldWithSema, sampled (at most
 * SS_GC_STACK_BUDGET per CPU per 100 ms). It runs on g0 under systemstack, which keeps
 * the caller's frame pointer in BP, so the frame-pointer walk continues from the g0
 * frames into the goroutine that asked to stop the world (ReadMemStats, runtime.GC, ...). */
#define SS_GC_STACK_MAX 16
#define SS_GC_STACK_BUDGET 8
struct ss_gc_stack {
	struct ss_hdr h;
	ss_u32 tid;
	ss_u32 nframes;
	ss_u64 reason;         /* RAX at entry (the stwReason on 1.21+) */
	ss_u64 pcs[SS_GC_STACK_MAX]; /* innermost first */
};

struct ss_gc_sample {
	struct ss_hdr h;       /* ts = the sampler tick */
	ss_u32 tid;
	ss_u32 kind;           /* SS_GCS_* */
	ss_u64 goid;           /* the assisting G (m.curg), or the worker G */
	ss_s32 p_id;           /* -1 unknown */
	ss_u32 cpu;
};

/* Offsets the GC sampler needs beyond ss_go_offsets; in the `gc_cfg` array map (key: the
 * target's slot). */
struct ss_gc_cfg {
	ss_u32 enabled;
	ss_u32 g_atomicstatus;
	ss_u32 g_waitreason;       /* u8 field */
	ss_u32 p_gcmarkworkermode; /* 0: unknown (workers not classified) */
	ss_u32 wr_assist;          /* waitReasonGCAssistMarking */
	ss_u32 mark_stw_reason;    /* the stwReason (low byte of RAX) of the stop that starts a
				      mark phase, SS_GC_ANY_STW when it cannot be told */
};

#define SS_GC_ANY_STW 0xffffffffu
/* stwGCMarkTerm: the mark termination's stop, known whenever mark_stw_reason is (the enum's
 * 0..2 are the same in every release that has one) */
#define SS_GC_STW_MARKTERM 1
#define SS_GC_GATE_ALWAYS 2 /* gc_gate: the sampler reads the target at every tick */

/* A CPU's entry of the GC sampler's `gc_timers` map (bpf/gc_sampler.bpf.h); userspace reads
 * the counts, the kernel keeps the timer (opaque to userspace, zero in what it reads). */
#ifdef __cplusplus
struct ss_bpf_timer {
	ss_u64 opaque[2];
};
#else
#define ss_bpf_timer bpf_timer
#endif
struct ss_gc_timer {
	struct ss_bpf_timer timer;
	ss_u64 ticks;  /* the timer's callbacks on this CPU that found a gate open */
	ss_u64 arms;   /* the times a scheduler program started it */
	ss_u64 run_ns; /* all its callbacks' run time (BPF statistics do not count it) */
	ss_u32 armed;  /* a tick is pending */
	ss_u32 ready;  /* the timer is made and has its callback */
};

/* ---- Capacity: event type 30..39.
 * Made by userspace once per interval (never by BPF): the counts of the P sampler, a
 * thread of schedscope that reads every P's status and run queue from the target's
 * memory about 1000 times a second, and the quota and throttling of the target's cgroup. */
#define SS_EV_CAP_SAMPLE 30    /* struct ss_cap_sample */

#define SS_CAP_PROCS 129       /* procs[k]: samples with k Ps _Prunning; the last is "k >= 128" */
#define SS_CAP_RUNQ 258        /* runq[n]: samples whose longest run queue held n (0..256, +1
                                * runnext); the last is ">= 257" */

/* Counts since attach. */
struct ss_cap_counts {
	ss_u64 ticks;              /* samples taken (P statuses read) */
	ss_u64 procs[SS_CAP_PROCS];
	ss_u64 runq[SS_CAP_RUNQ];
};

/* ss_cap_sample.flags */
#define SS_CAPF_SAMPLER 0x1    /* counts.ticks/procs are valid (the P sampler runs) */
#define SS_CAPF_RUNQ 0x2       /* counts.runq is valid (run-queue offsets known) */
#define SS_CAPF_CGROUP 0x4     /* the target's CPU cgroup was read */
#define SS_CAPF_QUOTA 0x8      /* it (or an ancestor) has a CPU quota: quota_us/cfs_period_us */
#define SS_CAPF_CGROUP_V2 0x10 /* cgroup v2 (cpu.max) rather than v1 (cpu.cfs_quota_us) */
#define SS_CAPF_READS 0x20     /* reads is valid (older recordings: 0, not counted) */

/* All counters are since attach (P sampler) or since the cgroup's creation (cpu.stat). */
struct ss_cap_sample {
	struct ss_hdr h;           /* ts = snapshot time */
	ss_u32 flags;              /* SS_CAPF_* */
	ss_u32 period_us;          /* P sampler period */
	ss_u32 cpus;               /* CPUs the target may run on (its affinity) */
	ss_u32 reads;              /* (SS_CAPF_READS) P sampler reads since attach, mod 2^32
	                            * (counts.ticks is sample slots: a read stands for >= 1) */
	ss_u64 quota_us;           /* (SS_CAPF_QUOTA) CPU time per period allowed */
	ss_u64 cfs_period_us;      /* (SS_CAPF_QUOTA) the period */
	ss_u64 nr_periods;         /* (SS_CAPF_CGROUP) cpu.stat of the cgroup with the quota */
	ss_u64 nr_throttled;
	ss_u64 throttled_ns;
	char cgroup[128];          /* its path in the hierarchy (the end, if longer) */
	struct ss_cap_counts counts;
};

/* exec.bpf.c (the node agent only: SessionConfig::exec_events): a process of the
 * observer's PID namespace called execve successfully. The agent looks at it at once
 * instead of at its next /proc scan; never routed to a target's model nor recorded. */
#define SS_EV_EXEC 50          /* struct ss_exec */

struct ss_exec {
	struct ss_hdr hdr;
	ss_u32 pid;                /* the process (its tgid) in the observer's PID namespace */
	ss_u32 pad;
};

#endif /* SCHEDSCOPE_ABI_H */
