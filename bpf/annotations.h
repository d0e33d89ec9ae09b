/* annotations.h — the --annotations ABI: runtime/trace tasks, regions and logs seen by
 * entry uprobes on the runtime functions the library always calls (docs/annotations.md).
 * Shared by bpf/annotations.bpf.c and userspace; record types next to schedscope.h's. */
#ifndef SCHEDSCOPE_ANNOTATIONS_H
#define SCHEDSCOPE_ANNOTATIONS_H

#include "schedscope.h"

/* Event types 40..49 (schedscope.h gives 30..39 to capacity). */
#define SS_EV_ANNOT 40        /* struct ss_annot: one call of a runtime/trace annotation function */
#define SS_EV_ANNOT_STATE 41  /* struct ss_annot_state: (userspace) probe state and hit count */

/* Which function was hit: the BPF cookie of the uprobe link. */
#define SS_ANNOT_TASK_CREATE 1 /* runtime/trace.userTaskCreate(id, parentID uint64, taskType string) */
#define SS_ANNOT_TASK_END 2    /* runtime/trace.userTaskEnd(id uint64) */
#define SS_ANNOT_REGION 3      /* runtime/trace.userRegion(id, mode uint64, name string): mode 0 begin, 1 end */
#define SS_ANNOT_LOG 4         /* runtime/trace.userLog(id uint64, category, message string) */
#define SS_ANNOT_KINDS 5       /* slots of the per-CPU hit counter (slot 0: unused) */

#define SS_ANNOT_S1 64         /* bytes kept of the task type / region name / log category */
#define SS_ANNOT_S2 128        /* bytes kept of the log message */

#define SS_ANNOT_GOID 0x1      /* goid was read (R14 = g) */
#define SS_ANNOT_P 0x2         /* p_id was read (g.m.p.id) */

struct ss_annot {
	struct ss_hdr h;
	ss_u32 tid;
	ss_u8 kind;            /* SS_ANNOT_* */
	ss_u8 flags;           /* SS_ANNOT_GOID | SS_ANNOT_P */
	ss_u16 pad;
	ss_s32 p_id;           /* P of the calling goroutine, -1 unknown */
	ss_u32 len1;           /* full length of s1's string */
	ss_u32 len2;           /* full length of s2's string */
	ss_u32 pad2;
	ss_u64 goid;           /* calling goroutine */
	ss_u64 id;             /* task id (0: the background task) */
	ss_u64 arg;            /* TASK_CREATE: parent id; REGION: mode */
	char s1[SS_ANNOT_S1];  /* NUL-padded, not terminated when len1 >= SS_ANNOT_S1 */
	char s2[SS_ANNOT_S2];
};

#define SS_ANNOT_STATE_OFF 0       /* not attached (note says why) */
#define SS_ANNOT_STATE_ON 1        /* uprobes attached */
#define SS_ANNOT_STATE_CEILING 2   /* detached: the hit rate went over the ceiling */
#define SS_ANNOT_STATE_PAUSED 3    /* detached for the off part of the duty cycle */

struct ss_annot_state {
	struct ss_hdr h;
	ss_u32 state;          /* SS_ANNOT_STATE_* */
	ss_u32 nprobes;        /* uprobes attached now */
	ss_u64 hits;           /* uprobe hits of the target since the first attach */
	ss_u64 on_ns;          /* time the uprobes have been attached, since the first attach */
	char note[200];        /* NUL-terminated */
};

#endif /* SCHEDSCOPE_ANNOTATIONS_H */
