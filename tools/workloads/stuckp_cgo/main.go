// stuckp_cgo is the commonly told "stuck P" story, way 2: a cgo call blocked in the
// kernel for -hold (a native library stuck in read(2)). Contrary to that
// story, Go does not lose the P: cgocall runs entersyscall, the P goes to
// _Psyscall, and sysmon retakes it (handoffp) within about 20us-20ms, as it
// would for any syscall. So this is a *blocked M* (the goroutine is
// _Gsyscall, its M is in the kernel, the P works elsewhere), not a stuck P:
// "expect":"blocked_m".
//
// The C function reads a timerfd armed for -hold, so the kernel ends it.
package main

/*
#include <stdint.h>
#include <unistd.h>

// cgo_block_read is the "native library" call: one read(2) that blocks
// until the timerfd fires.
static long cgo_block_read(int fd) {
	uint64_t expirations;
	return (long)read(fd, &expirations, sizeof expirations);
}
*/
import "C"

import (
	"flag"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	hold  = flag.Duration("hold", 20*time.Second, "how long the cgo read blocks")
	procs = flag.Int("procs", 2, "GOMAXPROCS")
	cpu   = flag.Int("cpu", 1, "CPU-bound healthy goroutines")
	pairs = flag.Int("pairs", 1, "ping-pong healthy goroutine pairs")
)

func init() {
	wl.Flags(0, "total run time (default: -hold + 2s; with -forever: until killed)")
	runtime.LockOSThread() // keep the main goroutine (and only it) on the main thread
}

var (
	blocked     atomic.Pointer[wl.Obj]
	blockerDone = make(chan struct{})
)

// cgoBlocker is started as `go cgoBlocker()`: g.startpc is main.cgoBlocker.
func cgoBlocker() {
	runtime.LockOSThread() // pins the tid
	fd, err := wl.TimerFD(*hold)
	if err != nil {
		wl.Fail("timerfd: %v", err)
	}
	start := wl.MonoNs()
	info := wl.Obj{
		"expect": "blocked_m", "func": wl.FuncName(), "cfunc": "cgo_block_read", "goid": wl.Goid(),
		"tid": wl.Tid(), "p": wl.ProcID(), "syscall": "read", "nr": syscall.SYS_READ, "fd": fd,
		"fd_kind": "timerfd", "cgo": true, "start_ns": start, "hold_ns": hold.Nanoseconds(),
	}
	blocked.Store(&info)
	C.cgo_block_read(C.int(fd))
	end := wl.MonoNs()
	syscall.Close(fd)
	wl.Say("blocked_end", wl.Obj{"goid": info["goid"], "tid": info["tid"], "p_after": wl.ProcID(),
		"start_ns": start, "end_ns": end, "dur_ns": end - start})
	runtime.UnlockOSThread()
	close(blockerDone)
}

func main() {
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	if *wl.Duration == 0 {
		*wl.Duration = *hold + 2*time.Second
	}
	wl.Start("stuckp_cgo", nil)
	go cgoBlocker()
	for blocked.Load() == nil {
		runtime.Gosched()
	}
	wl.Say("blocked", *blocked.Load())
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
	<-stop
	wl.Done(wl.Obj{"cpu_iters": wl.CPUIters.Load(), "pingpongs": wl.PingPongs.Load(), "hold_ns": hold.Nanoseconds()})
}
