/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The GC observation's state shared by its uprobes (gc.bpf.c) and its sampler
 * (gc_sampler.bpf.h, run by the scheduler programs of sched.bpf.c). */
#ifndef SCHEDSCOPE_GC_COMMON_BPF_H
#define SCHEDSCOPE_GC_COMMON_BPF_H

#include "common.bpf.h"

/* The sampler's offsets of each target (key: its slot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized by userspace before load */
	__type(key, __u32);
	__type(value, struct ss_gc_cfg);
} gc_cfg SEC(".maps") __weak;

/* The sampler's gate, per target (key: its slot): 0 closed, 1 open from a stop-the-world
 * that starts a mark phase to gcMarkTermination, SS_GC_GATE_ALWAYS set by userspace when
 * a phase cannot be followed (its uprobes are missing). The uprobes move it only between
 * 0 and 1, with compare-and-swap; `gc_gates_open` counts the targets whose gate is open,
 * so that the sampler tests one word before anything else. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized by userspace before load */
	__type(key, __u32);
	__type(value, __u64); /* 64 bits: compare-and-swap on 32 needs -mcpu=v3 */
} gc_gate SEC(".maps") __weak;

/* Defined in gc.bpf.c. The count of targets whose gate is open, and the sampler's period
 * (0: no sampler), set by userspace at the first attach of the GC programs. */
extern __u64 gc_gates_open;
extern __u64 gc_sample_period_ns;

#endif
