// stwloop stops the world in a loop without garbage: -callers goroutines call
// runtime.ReadMemStats back to back (what a metrics exporter polling MemStats too often
// does), while -workers goroutines serve CPU-bound "requests" and measure how long each
// took. Every ReadMemStats is a stop-the-world (reason "read mem stats" on Go 1.21+), so
// the requests stall with no allocation, no mark assist and a small heap: the GC is not
// the cause, the caller is. -callers 0 is the control (the same requests, no STW loop).
// -gc: the callers call runtime.GC() instead, two stops a call (sweep and mark
// termination), the second on the runtime's background mark worker.
package main

import (
	"flag"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	callers = flag.Int("callers", 1, "goroutines calling runtime.ReadMemStats in a loop (0 = control)")
	workers = flag.Int("workers", 2, "goroutines serving CPU-bound requests")
	reqUs   = flag.Int("req-us", 200, "CPU work per request, microseconds")
	every   = flag.Duration("every", time.Second, "report period")
	forceGC = flag.Bool("gc", false, "the callers call runtime.GC() instead of runtime.ReadMemStats")
)

func init() { wl.Flags(10*time.Second, "") }

var (
	stws     atomic.Int64
	requests atomic.Int64
	latMu    sync.Mutex
	lat      []int64
)

func spin(d time.Duration) {
	end := wl.MonoNs() + d.Nanoseconds()
	x := uint64(1)
	for wl.MonoNs() < end {
		for i := 0; i < 100; i++ {
			x = x*6364136223846793005 + 1
		}
	}
	if x == 7 {
		println(x)
	}
}

func main() {
	flag.Parse()
	wl.Start("stwloop", wl.Obj{"callers": *callers, "workers": *workers, "gc": *forceGC})
	var stop atomic.Bool
	var callersDone sync.WaitGroup
	for i := 0; i < *callers; i++ {
		callersDone.Add(1)
		go func() {
			defer callersDone.Done()
			var m runtime.MemStats
			for !stop.Load() {
				if *forceGC {
					runtime.GC()
				} else {
					runtime.ReadMemStats(&m)
				}
				stws.Add(1)
			}
		}()
	}
	for i := 0; i < *workers; i++ {
		go func() {
			var mine []int64
			for {
				t0 := wl.MonoNs()
				spin(time.Duration(*reqUs) * time.Microsecond)
				mine = append(mine, wl.MonoNs()-t0)
				requests.Add(1)
				if len(mine) >= 16 {
					latMu.Lock()
					lat = append(lat, mine...)
					latMu.Unlock()
					mine = mine[:0]
				}
			}
		}()
	}
	var all []int64
	var lastStw, lastReq int64
	wl.Every(*every, wl.Deadline(), func() {
		latMu.Lock()
		cur := lat
		lat = nil
		latMu.Unlock()
		all = append(all, cur...)
		p50, p99, max := wl.Percentiles(cur)
		s, r := stws.Load(), requests.Load()
		wl.Say("tick", wl.Obj{"stws": s - lastStw, "requests": r - lastReq, "p50_ns": p50, "p99_ns": p99, "max_ns": max})
		lastStw, lastReq = s, r
	})
	// The callers stop before the count is printed: it is then every pause there was.
	stop.Store(true)
	callersDone.Wait()
	p50, p99, max := wl.Percentiles(all)
	wl.Done(wl.Obj{"stws": stws.Load(), "requests": requests.Load(), "p50_ns": p50, "p99_ns": p99, "max_ns": max})
}
