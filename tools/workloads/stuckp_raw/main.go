// stuckp_raw reproduces a stuck P, way 1: a goroutine blocks in the kernel
// through syscall.RawSyscall, which skips entersyscall. The runtime still
// thinks the goroutine is running Go code: its P stays _Prunning with a
// frozen schedtick, sysmon cannot retake it (it only retakes _Psyscall Ps)
// and cannot preempt it (the SIGURG it sends every ~10ms lands in the
// kernel, and the read is restarted: SA_RESTART). The program runs on
// GOMAXPROCS-1 Ps meanwhile.
//
// The blocking call is read(2) of a timerfd armed for -hold: the kernel ends
// it, so no Go code has to run to end the hold. GC is off during the hold.
//
// -annotate: the blocker runs inside a runtime/trace task named
// "stuckRequest span=<16 hex>" and the regions handle > rawRead, and its
// "stuck" line gives the task's id and name and the region path, so that a
// test can check that the stuck-P alert names them (--annotations).
package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/trace"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"schedscope/workloads/internal/wl"
)

var (
	hold  = flag.Duration("hold", 20*time.Second, "how long the raw read blocks")
	procs = flag.Int("procs", 2, "GOMAXPROCS")
	cpu   = flag.Int("cpu", 1, "CPU-bound healthy goroutines")
	pairs = flag.Int("pairs", 1, "ping-pong healthy goroutine pairs")
	annot = flag.Bool("annotate", false, "block inside a runtime/trace task and regions handle > rawRead")
)

// taskID is the runtime/trace id of a task (the first field of trace.Task).
func taskID(t *trace.Task) uint64 { return *(*uint64)(unsafe.Pointer(t)) }

func init() {
	wl.Flags(0, "total run time (default: -hold + 2s; with -forever: until killed)")
	// Keep the main goroutine on the main thread so the blocker never runs
	// there: the stuck M is an ordinary worker thread.
	runtime.LockOSThread()
}

// stuck is published by rawBlocker just before it blocks.
var (
	stuck       atomic.Pointer[wl.Obj]
	blockerDone = make(chan struct{})
)

// rawBlocker is the stuck goroutine. It is started as `go rawBlocker()`, so
// its entry function (g.startpc) is main.rawBlocker.
func rawBlocker() {
	runtime.LockOSThread() // not needed for the effect; pins the tid
	fd, err := wl.TimerFD(*hold)
	if err != nil {
		wl.Fail("timerfd: %v", err)
	}
	start := wl.MonoNs()
	info := wl.Obj{
		"expect": "stuck_p", "func": wl.FuncName(), "goid": wl.Goid(), "tid": wl.Tid(),
		"syscall": "read", "nr": syscall.SYS_READ, "fd": fd, "fd_kind": "timerfd", "raw": true,
		"start_ns": start, "hold_ns": hold.Nanoseconds(),
	}
	if !*annot {
		blockRaw(fd, info)
	} else {
		name := fmt.Sprintf("stuckRequest span=%016x", uint64(start)*0x9e3779b97f4a7c15)
		ctx, task := trace.NewTask(context.Background(), name)
		info["task_id"], info["task_name"], info["regions"] = taskID(task), name, "handle/rawRead"
		trace.WithRegion(ctx, "handle", func() {
			trace.WithRegion(ctx, "rawRead", func() { blockRaw(fd, info) })
		})
		task.End()
	}
	end := wl.MonoNs()
	syscall.Close(fd)
	wl.Say("stuck_end", wl.Obj{"goid": info["goid"], "tid": info["tid"], "start_ns": start, "end_ns": end, "dur_ns": end - start})
	runtime.UnlockOSThread() // exiting while locked would terminate the thread
	close(blockerDone)
}

// blockRaw prints the "stuck" line and blocks in the raw read of fd until the
// timer fires.
func blockRaw(fd int, info wl.Obj) {
	var buf [8]byte
	// The P this goroutine holds when the raw read starts. Building the line
	// allocates (a GC assist can park us and resume us on another P), so build
	// it first, then pin the goroutine to its P and keep it pinned through the
	// raw read: unpinned, an asynchronous preemption (sysmon preempts a
	// goroutine running for 10 ms, which a loaded machine reaches) between
	// the print and the read would move it to another P and make the printed P
	// wrong. Print with a raw write, which keeps the P (a normal write goes
	// through entersyscall/exitsyscall and may come back on another P). Print
	// here, not from main: with -procs 1 main cannot run again until the hold
	// ends.
	var line []byte
	for {
		p := wl.ProcID()
		info["p"] = p
		line = wl.Line("stuck", info)
		if wl.PinP() == p {
			break
		}
		wl.UnpinP()
	}
	wl.WriteRaw(line)
	stuck.Store(&info)
	for {
		_, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), 8)
		if e != syscall.EINTR {
			break
		}
	}
	wl.UnpinP()
}

func main() {
	flag.Parse() // early: GOMAXPROCS and -duration are needed before wl.Start
	runtime.GOMAXPROCS(*procs)
	if *wl.Duration == 0 {
		*wl.Duration = *hold + 2*time.Second
	}
	wl.Start("stuckp_raw", nil)
	// No GC during the hold: its stop-the-world would wait for the stuck P
	// forever and freeze every other goroutine until the hold ends.
	gcOld := debug.SetGCPercent(-1)
	go rawBlocker()
	// Wait (without timers) until the blocker is about to block, then start
	// the healthy work and the timers: goroutines queued on the stuck P's
	// run queue, and timers on its heap, would be stranded until the hold
	// ends (only an idle P steals, and the CPU worker keeps the others busy).
	for stuck.Load() == nil {
		runtime.Gosched()
	}
	wl.Healthy(*cpu, *pairs)

	stop := wl.Deadline()
	var lastCPU, lastPP int64
	go wl.Every(time.Second, nil, func() {
		c, p := wl.CPUIters.Load(), wl.PingPongs.Load()
		wl.Say("tick", wl.Obj{"cpu_iters": c - lastCPU, "pingpongs": p - lastPP, "threads": wl.Threads(),
			"goroutines": runtime.NumGoroutine()})
		lastCPU, lastPP = c, p
	})
	<-blockerDone
	debug.SetGCPercent(gcOld)
	<-stop
	wl.Done(wl.Obj{"cpu_iters": wl.CPUIters.Load(), "pingpongs": wl.PingPongs.Load(), "hold_ns": hold.Nanoseconds()})
}
