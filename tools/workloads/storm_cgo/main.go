// storm_cgo reproduces the syscall storm of the DNS story: many
// goroutines each make a blocking cgo call, like getaddrinfo through the
// system resolver waiting for an answer. Every call is entersyscall; sysmon
// retakes the P and hands it to another M, so each blocked call pins one OS
// thread and the thread count climbs into the hundreds.
//
// The C function slow_resolve waits in poll(2) on a pipe nobody writes to
// (as the resolver waits on its UDP socket), with a timeout of
// -min-ms..-max-ms. Workers are started over -ramp.
package main

/*
#include <poll.h>

// slow_resolve stands in for a blocking resolver call: it waits up to
// timeout_ms for fd to become readable, which never happens.
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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	workers = flag.Int("workers", 200, "goroutines making blocking cgo calls")
	ramp    = flag.Duration("ramp", 2*time.Second, "start the workers evenly over this time")
	minMs   = flag.Int("min-ms", 200, "shortest call (poll timeout, ms)")
	maxMs   = flag.Int("max-ms", 500, "longest call (poll timeout, ms)")
	every   = flag.Duration("every", 500*time.Millisecond, "report period")
)

func init() { wl.Flags(10*time.Second, "") }

var (
	pollFd   int
	stopping atomic.Bool
	calls    atomic.Int64
	inFlight atomic.Int64
	wg       sync.WaitGroup
)

// cgoLookup is each worker's entry function (`go cgoLookup()`): it calls
// the C resolver stand-in in a loop until the run ends.
func cgoLookup() {
	defer wg.Done()
	r := rand.New(rand.NewSource(int64(wl.Goid())))
	for !stopping.Load() {
		ms := *minMs + r.Intn(*maxMs-*minMs+1)
		inFlight.Add(1)
		C.slow_resolve(C.int(pollFd), C.int(ms))
		inFlight.Add(-1)
		calls.Add(1)
	}
}

func main() {
	wl.Start("storm_cgo", nil)
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		wl.Fail("pipe2: %v", err)
	}
	pollFd = p[0]
	wl.Say("storm", wl.Obj{
		"expect": "syscall_storm", "func": "main.cgoLookup", "cfunc": "slow_resolve", "syscall": "poll",
		"nr": syscall.SYS_POLL, "fd": pollFd, "workers": *workers, "ramp_ns": ramp.Nanoseconds(),
		"min_ms": *minMs, "max_ms": *maxMs, "threads": wl.Threads(),
	})

	stop := wl.Deadline()
	sampled := make(chan struct{})
	runs := wl.ThreadRuns(2*time.Millisecond, sampled)
	maxThreads := 0
	var last int64
	report := func() {
		n := wl.Threads()
		if n > maxThreads {
			maxThreads = n
		}
		c := calls.Load()
		wl.Say("tick", wl.Obj{"threads": n, "calls": c - last, "in_flight": inFlight.Load(),
			"goroutines": runtime.NumGoroutine()})
		last = c
	}
	done := make(chan struct{})
	go wl.Every(*every, done, report)

	gap := *ramp / time.Duration(*workers)
	for i := 0; i < *workers; i++ {
		wg.Add(1)
		go cgoLookup()
		time.Sleep(gap)
	}
	wl.Say("ramped", wl.Obj{"workers": *workers, "threads": wl.Threads()})
	<-stop
	stopping.Store(true)
	wg.Wait()
	close(done)
	report()
	close(sampled)
	wl.Done(wl.Obj{"calls": calls.Load(), "workers": *workers, "max_threads": maxThreads, "threads": wl.Threads(),
		"thread_runs": runs()})
}
