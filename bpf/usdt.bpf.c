// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* usdt.bpf.c — USDT probes of the target: `--usdt PROVIDER:NAME` and the probes
 * of the runtime adapters (HotSpot, CPython).
 *
 * One program, attached by userspace once per probe with bpf_program__attach_usdt(); the
 * BPF cookie is the probe's index in userspace's probe table. libbpf decodes the argument
 * specs of .note.stapsdt and bumps a probe's semaphore (ref_ctr_offset) while attached.
 *
 * Every hit of the target is counted per (thread, probe) in `usdt_counts`; probes whose
 * `usdt_cfg` entry has SS_USDT_EMIT also ship one SS_EV_USDT record with the arguments
 * (and a string read from a user pointer with SS_USDT_STR). */
#include "common.bpf.h"
/* usdt.bpf.h includes <linux/errno.h>; its <asm/errno.h> (an arch directory not on the
 * BPF target's include path) is bpf/asm/errno.h. */
#include <bpf/usdt.bpf.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SS_USDT_MAX_PROBES);
	__type(key, __u32);
	__type(value, struct ss_usdt_cfg);
} usdt_cfg SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SS_MAX_THREADS);
	__type(key, struct ss_usdt_key);
	__type(value, __u64);
} usdt_counts SEC(".maps") __weak;

SEC("usdt")
int ss_usdt(struct pt_regs *ctx)
{
	__u32 tid = 0;
	if (!current_target(&tid))
		return 0;
	__u32 idx = (__u32)bpf_usdt_cookie(ctx);
	if (idx >= SS_USDT_MAX_PROBES)
		return 0;
	struct ss_usdt_key key = { .tid = tid, .probe = idx };
	__u64 *cnt = bpf_map_lookup_elem(&usdt_counts, &key);
	if (cnt) {
		__sync_fetch_and_add(cnt, 1);
	} else {
		__u64 one = 1;
		if (bpf_map_update_elem(&usdt_counts, &key, &one, BPF_NOEXIST) != 0) {
			cnt = bpf_map_lookup_elem(&usdt_counts, &key);
			if (cnt)
				__sync_fetch_and_add(cnt, 1);
		}
	}
	struct ss_usdt_cfg *cfg = bpf_map_lookup_elem(&usdt_cfg, &idx);
	if (!cfg || !(cfg->flags & SS_USDT_EMIT))
		return 0;
	struct ss_usdt_hit *e = reserve_event(SS_EV_USDT, sizeof(*e), bpf_ktime_get_ns());
	if (!e)
		return 0;
	e->tid = tid;
	e->probe = idx;
	int n = bpf_usdt_arg_cnt(ctx);
	e->nargs = n < 0 ? 0 : (__u32)n;
	e->str_len = 0;
	e->str[0] = 0;
#pragma unroll
	for (int i = 0; i < SS_USDT_MAX_ARGS; i++) {
		long v = 0;
		if (i < n && bpf_usdt_arg(ctx, i, &v) != 0)
			v = 0;
		e->args[i] = (__u64)v;
	}
	if (cfg->flags & SS_USDT_STR) {
		__u32 a = cfg->str_arg & (SS_USDT_MAX_ARGS - 1);
		long r = bpf_probe_read_user_str(e->str, sizeof(e->str), (const void *)e->args[a]);
		e->str_len = r > 0 ? (__u32)r : 0;
	}
	submit(e);
	return 0;
}
