// threads is the thread benchmark workload:
//
//   - -threads N steady threads: N goroutines (main.steadyThread) each
//     locked to its own thread, looping on syscall.Nanosleep(-sleep), so N
//     threads sit blocked in a syscall most of the time.
//   - -churn R threads/s of churn: goroutines (main.churnThread) that lock
//     their thread and exit still locked, which makes the runtime terminate
//     that thread (mexit); the runtime creates new threads (newm) as it
//     needs them, so threads are created and destroyed at about R/s.
//
// Each second it prints the threads destroyed (churn goroutines that exited
// locked, exact), the threads created (destroyed + change of the thread
// count, from /proc/self/status) and the thread count.
package main

import (
	"flag"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	steady = flag.Int("threads", 100, "steady locked threads blocking in nanosleep (10..1000)")
	sleep  = flag.Duration("sleep", 100*time.Millisecond, "nanosleep length of the steady threads")
	churn  = flag.Int("churn", 100, "threads created and destroyed per second (0 = none)")
	every  = flag.Duration("every", time.Second, "report period")
	// -churn-max replaces the fixed -churn rate by "as fast as the machine allows", with
	// -churn-inflight threads being created or torn down at any time: the churn
	// throughput (threads/s) is then the benchmark's figure of merit.
	churnMax      = flag.Bool("churn-max", false, "churn threads as fast as possible (ignores -churn)")
	churnInflight = flag.Int("churn-inflight", 4, "(-churn-max) churn goroutines in flight")
)

func init() {
	wl.Flags(10*time.Second, "")
	// The main goroutine owns the main thread: a churn goroutine exiting
	// locked on the main thread would wedge it instead of ending it.
	runtime.LockOSThread()
}

var destroyed, sleeps atomic.Int64

func steadyThread() {
	runtime.LockOSThread()
	ts := syscall.NsecToTimespec(sleep.Nanoseconds())
	for {
		syscall.Nanosleep(&ts, nil)
		sleeps.Add(1)
	}
}

// churnThread exits while locked: its thread is terminated.
func churnThread() {
	runtime.LockOSThread()
	destroyed.Add(1)
}

func main() {
	wl.Start("threads", nil)
	t0 := wl.Threads()
	for i := 0; i < *steady; i++ {
		go steadyThread()
	}
	wl.Say("steady", wl.Obj{"func": "main.steadyThread", "count": *steady, "syscall": "nanosleep",
		"sleep_ns": sleep.Nanoseconds(), "churn_func": "main.churnThread", "churn_per_s": *churn,
		"threads_before": t0})

	if *churnMax {
		slots := make(chan struct{}, *churnInflight)
		go func() {
			for {
				slots <- struct{}{}
				go func() {
					churnThread()
					<-slots
				}()
			}
		}()
	} else if *churn > 0 {
		go func() {
			// Spawn in batches every 10ms; carry the fraction over.
			acc := 0.0
			for range time.Tick(10 * time.Millisecond) {
				acc += float64(*churn) / 100
				for ; acc >= 1; acc-- {
					go churnThread()
				}
			}
		}()
	}
	lastThreads, lastDestroyed, lastSleeps := wl.Threads(), int64(0), int64(0)
	var created int64
	stop := wl.Deadline()
	wl.Every(*every, stop, func() {
		n, d, s := wl.Threads(), destroyed.Load(), sleeps.Load()
		c := (d - lastDestroyed) + int64(n-lastThreads)
		created += c
		wl.Say("tick", wl.Obj{"threads": n, "destroyed": d - lastDestroyed, "created": c, "sleeps": s - lastSleeps})
		lastThreads, lastDestroyed, lastSleeps = n, d, s
	})
	wl.Done(wl.Obj{"destroyed": destroyed.Load(), "created": created, "threads": wl.Threads(),
		"steady": *steady, "sleeps": sleeps.Load()})
}
