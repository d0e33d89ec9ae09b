// healthy_cpu is a healthy CPU-bound program: GOMAXPROCS + -extra goroutines
// spin on arithmetic. Every P stays busy, goroutines are preempted by sysmon
// (SIGURG every 10ms) and rotate through the run queues; nothing blocks in
// the kernel and no threads are created after start-up. Neither a stuck P
// nor a storm.
package main

import (
	"flag"
	"runtime"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	procs = flag.Int("procs", 0, "GOMAXPROCS (0 = leave as is)")
	extra = flag.Int("extra", 2, "CPU goroutines beyond GOMAXPROCS")
	every = flag.Duration("every", time.Second, "report period")
)

func init() { wl.Flags(10*time.Second, "") }

func main() {
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	wl.Start("healthy_cpu", nil)
	n := runtime.GOMAXPROCS(0) + *extra
	wl.Healthy(n, 0)
	wl.Say("workers", wl.Obj{"expect": "healthy", "func": "schedscope/workloads/internal/wl.CPUWorker", "count": n})
	var last int64
	stop := wl.Deadline()
	wl.Every(*every, stop, func() {
		c := wl.CPUIters.Load()
		wl.Say("tick", wl.Obj{"cpu_iters": c - last, "threads": wl.Threads(), "goroutines": runtime.NumGoroutine()})
		last = c
	})
	wl.Done(wl.Obj{"cpu_iters": wl.CPUIters.Load(), "workers": n, "threads": wl.Threads()})
}
