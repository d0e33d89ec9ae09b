// threadlimit brings a process close to the Go runtime's thread limit: it lowers
// the limit with debug.SetMaxThreads(-max) (sched.maxmcount, which an observer
// reads from memory), then starts -threads goroutines that each lock their own
// thread and park on a channel (the Ms sleep in futex: idle, not blocked in a
// syscall on behalf of a goroutine). They are started over -ramp and stay until
// the run ends.
package main

import (
	"flag"
	"runtime"
	"runtime/debug"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	maxThreads = flag.Int("max", 100, "the runtime's thread limit (debug.SetMaxThreads)")
	threads    = flag.Int("threads", 85, "goroutines each locked to its own thread, parked")
	ramp       = flag.Duration("ramp", time.Second, "start them evenly over this time")
	every      = flag.Duration("every", 500*time.Millisecond, "report period")
)

func init() { wl.Flags(6*time.Second, "how long to hold the threads after the ramp") }

// parkedThread is each thread's entry function (`go parkedThread()`).
func parkedThread(started chan<- int, release <-chan struct{}) {
	runtime.LockOSThread()
	started <- wl.Tid()
	<-release
}

func main() {
	wl.Start("threadlimit", nil)
	prev := debug.SetMaxThreads(*maxThreads)
	release := make(chan struct{})
	started := make(chan int)
	done := make(chan struct{})
	go wl.Every(*every, done, func() { wl.Say("tick", wl.Obj{"threads": wl.Threads()}) })
	gap := *ramp / time.Duration(*threads)
	tids := make([]int, 0, *threads)
	for i := 0; i < *threads; i++ {
		go parkedThread(started, release)
		tids = append(tids, <-started)
		time.Sleep(gap)
	}
	wl.Say("held", wl.Obj{"func": "main.parkedThread", "locked": len(tids), "max_threads": *maxThreads,
		"previous_max": prev, "threads": wl.Threads()})
	<-wl.Deadline()
	close(release)
	close(done)
	wl.Done(wl.Obj{"locked": len(tids), "max_threads": *maxThreads, "threads": wl.Threads()})
}
