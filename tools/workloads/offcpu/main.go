// offcpu puts threads off-CPU for each reason the kernel tells apart, one phase
// after the other, on threads that do nothing else, and measures each from the
// inside:
//
//   - preempted: -spinners threads spin in C (a cgo call: no Go preemption, no
//     Go scheduling) pinned to one CPU (-cpu) with sched_setaffinity, so they
//     take turns on it. Each spinner reads CLOCK_MONOTONIC in a loop; a gap of
//     at least -gap between two reads is time it did not run (descheduled),
//     which is run-queue wait for a thread that never blocks.
//   - disk: one thread does -reads O_DIRECT preads of 4 KiB at random aligned
//     offsets of a -file-mb file in -dir (a real block device: O_DIRECT skips
//     the page cache, so each read waits for the device, uninterruptibly).
//   - fsync: one thread does -fsyncs times a 4 KiB write and fsync(2) of a file
//     in -dir (waits for the journal commit, uninterruptibly).
//
// Each phase runs on a goroutine locked to its thread that exits while locked,
// so the runtime ends that thread: no thread serves two phases. The files are
// created (and their data fsynced) before the ready line, so an observer that
// attaches after it sees no disk wait but the measured ones.
package main

/*
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
	int64_t start_ns, end_ns, cpu_ns;
	int64_t gaps, gap_ns, gap_max_ns;
	int64_t *gap_list;
	int64_t cap;
} spin_out;

static int64_t ts_ns(clockid_t c) {
	struct timespec t;
	clock_gettime(c, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

// spin_watch spins for dur_ns of wall time, reading CLOCK_MONOTONIC (vDSO: no
// syscall) in a loop. Two reads at least thresh_ns apart mean the thread did not
// run in between: each such gap is recorded.
static void spin_watch(int64_t dur_ns, int64_t thresh_ns, spin_out *o) {
	int64_t c0 = ts_ns(CLOCK_THREAD_CPUTIME_ID);
	int64_t start = ts_ns(CLOCK_MONOTONIC), prev = start, end = start + dur_ns;
	o->start_ns = start;
	for (;;) {
		int64_t now = ts_ns(CLOCK_MONOTONIC);
		int64_t d = now - prev;
		if (d >= thresh_ns) {
			if (o->gaps < o->cap)
				o->gap_list[o->gaps] = d;
			o->gaps++;
			o->gap_ns += d;
			if (d > o->gap_max_ns)
				o->gap_max_ns = d;
		}
		prev = now;
		if (now >= end)
			break;
	}
	o->end_ns = prev;
	o->cpu_ns = ts_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
}
*/
import "C"

import (
	"flag"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"schedscope/workloads/internal/wl"
)

var (
	spinners = flag.Int("spinners", 3, "threads spinning on one CPU (0: no preempted phase)")
	cpu      = flag.Int("cpu", 0, "the CPU the spinners are pinned to (-1: not pinned)")
	spinFor  = flag.Duration("spin", 3*time.Second, "how long the spinners spin")
	gap      = flag.Duration("gap", 50*time.Microsecond, "a gap this long between two clock reads counts as descheduled")
	reads    = flag.Int("reads", 0, "O_DIRECT 4 KiB reads (0: no disk phase)")
	fsyncs   = flag.Int("fsyncs", 0, "4 KiB write + fsync rounds (0: no fsync phase)")
	dir      = flag.String("dir", "", "directory of the files (a real block device; default: next to the executable)")
	fileMB   = flag.Int("file-mb", 16, "size of the file the O_DIRECT reads read")
)

func init() { wl.Flags(0, "unused: the phases set the length") }

const gapCap = 1 << 16

// pin binds the calling thread to one CPU.
func pin(c int) error {
	var mask [16]uint64
	mask[c/64] |= 1 << (uint(c) % 64)
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(mask),
		uintptr(unsafe.Pointer(&mask[0])))
	if e != 0 {
		return e
	}
	return nil
}

func pct(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

// pinnedSpinner is each spinner's entry function (`go pinnedSpinner()`).
func pinnedSpinner(ready *sync.WaitGroup, gate chan struct{}, out chan wl.Obj) {
	runtime.LockOSThread() // exits locked: the runtime ends the thread
	tid := wl.Tid()
	if *cpu >= 0 {
		if err := pin(*cpu); err != nil {
			wl.Fail("sched_setaffinity(cpu %d): %v", *cpu, err)
		}
	}
	ready.Done()
	<-gate
	o := (*C.spin_out)(C.calloc(1, C.sizeof_spin_out))
	o.gap_list = (*C.int64_t)(C.calloc(gapCap, 8))
	o.cap = gapCap
	C.spin_watch(C.int64_t(spinFor.Nanoseconds()), C.int64_t(gap.Nanoseconds()), o)
	n := int(o.gaps)
	if n > gapCap {
		n = gapCap
	}
	gaps := make([]int64, n)
	copy(gaps, unsafe.Slice((*int64)(unsafe.Pointer(o.gap_list)), n))
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	out <- wl.Obj{
		"func": "main.pinnedSpinner", "tid": tid, "cpu": *cpu, "start_ns": int64(o.start_ns),
		"end_ns": int64(o.end_ns), "wall_ns": int64(o.end_ns - o.start_ns), "oncpu_ns": int64(o.cpu_ns),
		"gaps": int64(o.gaps), "gap_ns": int64(o.gap_ns), "gap_max_ns": int64(o.gap_max_ns),
		"gap_p25_ns": pct(gaps, 0.25), "gap_p50_ns": pct(gaps, 0.5), "gap_p75_ns": pct(gaps, 0.75),
		"gap_p90_ns": pct(gaps, 0.9), "gap_min_ns": pct(gaps, 0),
		"gap_threshold_ns": gap.Nanoseconds(),
		// Every gap, sorted (a few hundred over a few seconds): a reader can take any
		// quantile, not only the four above.
		"gap_list_ns": gaps,
	}
}

func spinPhase() {
	var ready sync.WaitGroup
	gate := make(chan struct{})
	out := make(chan wl.Obj, *spinners)
	ready.Add(*spinners)
	for i := 0; i < *spinners; i++ {
		go pinnedSpinner(&ready, gate, out)
	}
	ready.Wait()
	close(gate)
	var all []wl.Obj
	for i := 0; i < *spinners; i++ {
		all = append(all, <-out)
	}
	sort.Slice(all, func(i, j int) bool { return all[i]["tid"].(int) < all[j]["tid"].(int) })
	for _, s := range all {
		wl.Say("spinner", s)
	}
}

// alignedBuf is a 4 KiB buffer aligned for O_DIRECT.
func alignedBuf() []byte {
	b := make([]byte, 8192)
	off := 4096 - int(uintptr(unsafe.Pointer(&b[0]))&4095)
	return b[off : off+4096]
}

// directReader is the disk phase's entry function (`go directReader()`).
func directReader(path string, out chan wl.Obj) {
	runtime.LockOSThread()
	tid := wl.Tid()
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECT|syscall.O_CLOEXEC, 0)
	if err != nil {
		wl.Fail("open O_DIRECT %s: %v", path, err)
	}
	buf := alignedBuf()
	r := rand.New(rand.NewSource(1))
	blocks := int64(*fileMB) << 20 / 4096
	durs := make([]int64, 0, *reads)
	start := wl.MonoNs()
	for i := 0; i < *reads; i++ {
		off := r.Int63n(blocks) * 4096
		t0 := wl.MonoNs()
		if n, err := syscall.Pread(fd, buf, off); err != nil || n != 4096 {
			wl.Fail("pread O_DIRECT: %d %v", n, err)
		}
		durs = append(durs, wl.MonoNs()-t0)
	}
	end := wl.MonoNs()
	syscall.Close(fd)
	out <- phaseLine("main.directReader", tid, "pread64", syscall.SYS_PREAD64, start, end, durs)
}

// fsyncWriter is the fsync phase's entry function (`go fsyncWriter()`).
func fsyncWriter(path string, out chan wl.Obj) {
	runtime.LockOSThread()
	tid := wl.Tid()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		wl.Fail("open %s: %v", path, err)
	}
	fd := int(f.Fd())
	buf := make([]byte, 4096)
	durs := make([]int64, 0, *fsyncs)
	start := wl.MonoNs()
	for i := 0; i < *fsyncs; i++ {
		buf[0] = byte(i)
		t0 := wl.MonoNs()
		if _, err := syscall.Pwrite(fd, buf, int64(i%256)*4096); err != nil {
			wl.Fail("pwrite: %v", err)
		}
		if err := syscall.Fsync(fd); err != nil {
			wl.Fail("fsync: %v", err)
		}
		durs = append(durs, wl.MonoNs()-t0)
	}
	end := wl.MonoNs()
	f.Close()
	out <- phaseLine("main.fsyncWriter", tid, "fsync", syscall.SYS_FSYNC, start, end, durs)
}

func phaseLine(fn string, tid int, sc string, nr int, start, end int64, durs []int64) wl.Obj {
	var total, max int64
	for _, d := range durs {
		total += d
		if d > max {
			max = d
		}
	}
	return wl.Obj{"func": fn, "tid": tid, "syscall": sc, "nr": nr, "count": len(durs), "start_ns": start,
		"end_ns": end, "total_ns": total, "max_ns": max}
}

func main() {
	if !flag.Parsed() {
		flag.Parse()
	}
	d := *dir
	if d == "" {
		exe, err := os.Executable()
		if err != nil {
			wl.Fail("executable: %v", err)
		}
		d = filepath.Dir(exe)
	}
	tmp, err := os.MkdirTemp(d, "offcpu-")
	if err != nil {
		wl.Fail("mkdir in %s: %v", d, err)
	}
	defer os.RemoveAll(tmp)
	readPath := filepath.Join(tmp, "direct")
	if *reads > 0 {
		f, err := os.Create(readPath)
		if err != nil {
			wl.Fail("create: %v", err)
		}
		chunk := make([]byte, 1<<20)
		rand.New(rand.NewSource(2)).Read(chunk)
		for i := 0; i < *fileMB; i++ {
			if _, err := f.Write(chunk); err != nil {
				wl.Fail("write: %v", err)
			}
		}
		if err := f.Sync(); err != nil {
			wl.Fail("fsync: %v", err)
		}
		f.Close()
	}
	wl.Start("offcpu", wl.Obj{"dir": tmp})
	if *spinners > 0 {
		spinPhase()
	}
	out := make(chan wl.Obj, 1)
	if *reads > 0 {
		go directReader(readPath, out)
		wl.Say("disk", <-out)
	}
	if *fsyncs > 0 {
		go fsyncWriter(filepath.Join(tmp, "fsync"), out)
		wl.Say("fsync", <-out)
	}
	os.RemoveAll(tmp)
	wl.Done(wl.Obj{"spinners": *spinners, "reads": *reads, "fsyncs": *fsyncs})
}
