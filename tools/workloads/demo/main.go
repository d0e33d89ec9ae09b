// demo is the workload behind `make demo`. A small healthy "service"
// (ping-pong bursts, short sleeps, some allocation) runs all the time, and
// the program cycles through phases of -phase each:
//
//	healthy -> stuck_p -> storm -> healthy -> stuck_p -> ...
//
// stuck_p: main.rawBlocker blocks in syscall.RawSyscall(read) of a timerfd
// for the whole phase; its P stays _Prunning, unretaken (as stuckp_raw).
// GC is off during this phase (a stop-the-world would wait for that P).
// storm: -storm-workers goroutines (main.cgoLookup) make blocking cgo calls
// (slow_resolve: poll(2) with a 200-500ms timeout) as storm_cgo, started
// over -ramp, so threads climb into the hundreds. The workers are locked to
// their threads and exit locked, so the runtime terminates those threads
// when the phase ends.
//
// Each phase change prints {"ev":"phase",...} with its ground truth.
package main

/*
#include <poll.h>

static int slow_resolve(int fd, int timeout_ms) {
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, timeout_ms);
}
*/
import "C"

import (
	"flag"
	"math/rand"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"schedscope/workloads/internal/wl"
)

var (
	phase        = flag.Duration("phase", 10*time.Second, "length of each phase")
	stormWorkers = flag.Int("storm-workers", 200, "goroutines making blocking cgo calls in the storm phase")
	ramp         = flag.Duration("ramp", 2*time.Second, "storm ramp-up")
	procs        = flag.Int("procs", 0, "GOMAXPROCS (0 = leave as is)")
)

func init() {
	wl.Flags(0, "total run time (0 = until killed)")
	runtime.LockOSThread() // main goroutine only on the main thread
}

// ---- the healthy service, always running ----

var roundTrips, sleeps atomic.Int64

func pingPong() {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	for {
		for i := 0; i < 100; i++ {
			ping <- i
			<-pong
		}
		roundTrips.Add(100)
		time.Sleep(2 * time.Millisecond)
	}
}

var sink [][]byte

func sleeperAllocator() {
	r := rand.New(rand.NewSource(int64(wl.Goid())))
	for {
		time.Sleep(time.Duration(1+r.Intn(5)) * time.Millisecond)
		sink = append(sink, make([]byte, 4<<10))
		if len(sink) > 64 {
			sink = sink[1:]
		}
		sleeps.Add(1)
	}
}

// ---- stuck_p ----

var stuck = make(chan wl.Obj, 1)

// rawBlocker blocks its P for d (see stuckp_raw).
func rawBlocker() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fd, err := wl.TimerFD(*phase)
	if err != nil {
		wl.Fail("timerfd: %v", err)
	}
	defer syscall.Close(fd)
	stuck <- wl.Obj{"expect": "stuck_p", "func": wl.FuncName(), "goid": wl.Goid(), "tid": wl.Tid(),
		"p": wl.ProcID(), "syscall": "read", "nr": syscall.SYS_READ, "fd": fd, "fd_kind": "timerfd",
		"raw": true, "start_ns": wl.MonoNs()}
	var buf [8]byte
	for {
		_, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), 8)
		if e != syscall.EINTR {
			break
		}
	}
	stuck <- nil
}

// ---- storm ----

var (
	pollFd   int
	stopping atomic.Bool
	calls    atomic.Int64
	wg       sync.WaitGroup
)

// cgoLookup is each storm worker. It stays locked to its thread and exits
// locked, so the runtime terminates the thread when the storm ends.
func cgoLookup() {
	defer wg.Done()
	runtime.LockOSThread()
	r := rand.New(rand.NewSource(int64(wl.Goid())))
	for !stopping.Load() {
		C.slow_resolve(C.int(pollFd), C.int(200+r.Intn(301)))
		calls.Add(1)
	}
}

func main() {
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	wl.Start("demo", nil)
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		wl.Fail("pipe2: %v", err)
	}
	pollFd = p[0]
	go pingPong()
	for i := 0; i < 4; i++ {
		go sleeperAllocator()
	}
	var lastRT, lastSl int64
	go wl.Every(time.Second, nil, func() {
		rt, sl := roundTrips.Load(), sleeps.Load()
		wl.Say("tick", wl.Obj{"round_trips": rt - lastRT, "sleeps": sl - lastSl, "threads": wl.Threads(),
			"goroutines": runtime.NumGoroutine()})
		lastRT, lastSl = rt, sl
	})
	end := wl.Deadline()
	phases := []string{"healthy", "stuck_p", "storm"}
	for n := 0; ; n++ {
		name := phases[n%len(phases)]
		o := wl.Obj{"phase": name, "n": n, "start_ns": wl.MonoNs(), "len_ns": phase.Nanoseconds(), "threads": wl.Threads()}
		var phaseEnd <-chan time.Time
		switch name {
		case "healthy":
			o["expect"] = "healthy"
			phaseEnd = time.After(*phase)
		case "stuck_p":
			// The kernel ends the block after -phase; no timer needed.
			gcOld := debug.SetGCPercent(-1)
			go rawBlocker()
			for k, v := range <-stuck {
				o[k] = v
			}
			wl.Say("phase", o)
			select {
			case <-stuck:
			case <-end:
				wl.Done(wl.Obj{"phases": n + 1})
			}
			debug.SetGCPercent(gcOld)
			continue
		case "storm":
			o["expect"], o["func"], o["cfunc"], o["syscall"], o["nr"] = "syscall_storm", "main.cgoLookup", "slow_resolve", "poll", syscall.SYS_POLL
			o["workers"], o["ramp_ns"] = *stormWorkers, ramp.Nanoseconds()
			phaseEnd = time.After(*phase)
			stopping.Store(false)
			go func() {
				for i := 0; i < *stormWorkers && !stopping.Load(); i++ {
					wg.Add(1)
					go cgoLookup()
					time.Sleep(*ramp / time.Duration(*stormWorkers))
				}
			}()
		}
		wl.Say("phase", o)
		select {
		case <-phaseEnd:
		case <-end:
			wl.Done(wl.Obj{"phases": n + 1, "storm_calls": calls.Load()})
		}
		if name == "storm" {
			stopping.Store(true)
			wg.Wait()
		}
	}
}
