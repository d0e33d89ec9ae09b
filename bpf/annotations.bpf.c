// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* annotations.bpf.c — the opt-in (--annotations) runtime/trace observer.
 *
 * One program, ss_annot, attached by userspace as a plain entry uprobe (never a
 * uretprobe: docs/go-runtime.md, "Why uretprobes break Go") to runtime/trace.userTaskCreate, userTaskEnd,
 * userRegion and userLog, with the function's SS_ANNOT_* kind as the BPF cookie. The
 * library calls them whether tracing is on or not. The probe sits just past each
 * function's stack-check prologue, so a call that grows the stack (and re-enters the
 * function from runtime.morestack) is seen once. Register ABI (amd64): integer
 * arguments in AX, BX, CX, DI, SI; a string is (pointer, length); R14 = g.
 *
 * Every hit costs the target a uprobe trap, hence opt-in; the hits are counted per CPU
 * and per target in `annot_hits` so userspace can show the cost and enforce its ceiling.
 * The uprobes are attached per process; the target filter and the Go offsets are the
 * target's (docs/kernel-side.md). */
#include "common.bpf.h"
#include "annotations.h"

/* Per-CPU uprobe hits: key target slot * SS_ANNOT_KINDS + SS_ANNOT_* (sized by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SS_ANNOT_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} annot_hits SEC(".maps") __weak;

static __always_inline void read_str(char *dst, __u32 cap, __u64 ptr, __u64 len)
{
	__u32 n = len > cap ? cap : (__u32)len;
	if (ptr && n)
		bpf_probe_read_user(dst, n, (void *)ptr);
}

SEC("uprobe")
int ss_annot(struct pt_regs *ctx)
{
	__u32 tid = 0;
	struct ss_target *tt = current_target(&tid);
	if (!tt)
		return 0;
	__u32 kind = (__u32)bpf_get_attach_cookie(ctx);
	if (kind == 0 || kind >= SS_ANNOT_KINDS)
		return 0;
	__u32 k = tt->slot * SS_ANNOT_KINDS + kind;
	__u64 *h = bpf_map_lookup_elem(&annot_hits, &k);
	if (h)
		*h += 1;
	__u64 ts = bpf_ktime_get_ns();
	struct ss_annot *e = reserve_event(SS_EV_ANNOT, sizeof(*e), ts);
	if (!e)
		return 0;
	/* reserve_event filled the header: clear the rest */
	__builtin_memset((char *)e + sizeof(e->h), 0, sizeof(*e) - sizeof(e->h));
	e->tid = tid;
	e->kind = (__u8)kind;
	e->p_id = -1;
	e->id = ctx->ax;
	if (kind == SS_ANNOT_TASK_CREATE) {
		e->arg = ctx->bx;
		e->len1 = (__u32)ctx->di;
		read_str(e->s1, SS_ANNOT_S1, ctx->cx, ctx->di);
	} else if (kind == SS_ANNOT_REGION) {
		e->arg = ctx->bx;
		e->len1 = (__u32)ctx->di;
		read_str(e->s1, SS_ANNOT_S1, ctx->cx, ctx->di);
	} else if (kind == SS_ANNOT_LOG) {
		e->len1 = (__u32)ctx->cx;
		read_str(e->s1, SS_ANNOT_S1, ctx->bx, ctx->cx);
		e->len2 = (__u32)ctx->si;
		read_str(e->s2, SS_ANNOT_S2, ctx->di, ctx->si);
	}
	struct ss_go_offsets *o = go_offsets(tt);
	__u64 g = ctx->r14, m = 0, p = 0;
	if (o && g) {
		if (!bpf_probe_read_user(&e->goid, sizeof(e->goid), (void *)(g + o->g_goid)))
			e->flags |= SS_ANNOT_GOID;
		__s32 pid_ = -1;
		if (!bpf_probe_read_user(&m, sizeof(m), (void *)(g + o->g_m)) && m &&
		    !bpf_probe_read_user(&p, sizeof(p), (void *)(m + o->m_p)) && p &&
		    !bpf_probe_read_user(&pid_, sizeof(pid_), (void *)(p + o->p_id))) {
			e->p_id = pid_;
			e->flags |= SS_ANNOT_P;
		}
	}
	submit(e);
	return 0;
}
