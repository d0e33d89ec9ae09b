// schedlat puts goroutines in the run queue for a known while, for the goroutine
// scheduling-latency view. -hogs goroutines spin without ever blocking, so they give
// their P up only when sysmon preempts them (about every 10 ms); -wakers goroutines
// sleep -period in a loop and, each time they wake, wait runnable behind the hogs before
// they run again. With -hogs 0 it is the healthy control: the wakers find an idle P.
//
// Ground truth is the runtime's own /sched/latencies:seconds (runtime/metrics), read
// when the load starts and again once it has stopped and the program is quiet: the
// "final" line carries the histogram's new samples by bucket, its total, and the p50 /
// p99 bucket bounds as the runtime reports them. Each waker also measures how late it
// woke (a physical check on the magnitude). The program then stays quiet until killed
// or until stdin closes, so an observer can read the same histogram after it.
package main

import (
	"bufio"
	"flag"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	hogs    = flag.Int("hogs", 4, "goroutines that spin without blocking (0 = healthy control)")
	wakers  = flag.Int("wakers", 8, "goroutines that sleep -period in a loop")
	period  = flag.Duration("period", time.Millisecond, "the wakers' sleep")
	quiet   = flag.Duration("quiet", 300*time.Millisecond, "pause after the load before the final read")
	stayFor = flag.Duration("stay", 0, "after the final line, stay this long (0 = until killed or stdin EOF)")
)

func init() { wl.Flags(3*time.Second, "how long the load runs") }

const metric = "/sched/latencies:seconds"

func read() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: metric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		wl.Fail("%s not supported by %s", metric, runtime.Version())
	}
	h := s[0].Value.Float64Histogram()
	return &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...),
		Buckets: append([]float64(nil), h.Buckets...)}
}

func ns(sec float64) any {
	if math.IsInf(sec, 0) {
		return nil
	}
	return int64(math.Round(sec * 1e9))
}

func main() {
	flag.Parse()
	wl.Start("schedlat", wl.Obj{"hogs": *hogs, "wakers": *wakers, "period_ns": period.Nanoseconds()})
	before := read()
	var total0 uint64
	for _, c := range before.Counts {
		total0 += c
	}
	wl.Say("load", wl.Obj{"runtime_samples_before": total0})

	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < *hogs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(1)
			for !stop.Load() {
				for j := 0; j < 1000; j++ {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			if x == 42 {
				println(x)
			}
		}()
	}
	var lateMu sync.Mutex
	var late []int64
	for i := 0; i < *wakers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int64
			for !stop.Load() {
				t0 := wl.MonoNs()
				time.Sleep(*period)
				mine = append(mine, wl.MonoNs()-t0-period.Nanoseconds())
			}
			lateMu.Lock()
			late = append(late, mine...)
			lateMu.Unlock()
		}()
	}
	<-wl.Deadline()
	stop.Store(true)
	wg.Wait()
	time.Sleep(*quiet)

	after := read()
	var buckets []wl.Obj
	var total uint64
	for i, c := range after.Counts {
		d := c - before.Counts[i]
		if d == 0 {
			continue
		}
		total += d
		buckets = append(buckets, wl.Obj{"ge_ns": ns(after.Buckets[i]), "lt_ns": ns(after.Buckets[i+1]), "count": d})
	}
	// The bucket holding the q-quantile of the new samples, as the runtime bounds it.
	bucketOf := func(q float64) wl.Obj {
		rank := q * float64(total)
		var cum float64
		for i, c := range after.Counts {
			d := float64(c - before.Counts[i])
			if d > 0 && cum+d >= rank {
				return wl.Obj{"ge_ns": ns(after.Buckets[i]), "lt_ns": ns(after.Buckets[i+1])}
			}
			cum += d
		}
		return nil
	}
	p50, p99, max := wl.Percentiles(late)
	wl.Say("final", wl.Obj{
		"go": runtime.Version(), "runtime_samples": total, "buckets": buckets,
		"p50_bucket": bucketOf(0.50), "p99_bucket": bucketOf(0.99),
		"wakeups": len(late), "late_p50_ns": p50, "late_p99_ns": p99, "late_max_ns": max,
	})
	if *stayFor > 0 {
		time.Sleep(*stayFor)
	} else {
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	wl.Done(wl.Obj{"runtime_samples": total})
}
