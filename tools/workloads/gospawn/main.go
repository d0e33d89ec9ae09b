// gospawn creates a known number of goroutines with a known start function, for the
// --goroutines test: after "start" it spawns -n goroutines of main.spawned in -bursts
// bursts (-gap apart). They are started as `go spawned()` with no arguments, so their
// g.startpc is main.spawned itself. Each sleeps -sleep and exits. Prints
// {"ev":"spawned","count":N,"func":"main.spawned"} once all have exited.
//
// With -churn it instead spawns and joins short goroutines (main.churned) as fast as it
// can until -duration, printing {"ev":"tick","spawned":K} every -every: the throughput
// benchmark of docs/goroutines.md.
package main

import (
	"flag"
	"sync"
	"sync/atomic"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	n      = flag.Int("n", 1000, "goroutines to spawn")
	bursts = flag.Int("bursts", 4, "spawn them in this many bursts")
	gap    = flag.Duration("gap", 200*time.Millisecond, "pause between bursts")
	sleep  = flag.Duration("sleep", 20*time.Millisecond, "each goroutine sleeps this long")
	churn  = flag.Bool("churn", false, "benchmark: spawn and join goroutines as fast as possible")
	batch  = flag.Int("batch", 64, "(-churn) goroutines per join")
	every  = flag.Duration("every", time.Second, "(-churn) report period")
	hold   = flag.Duration("hold", 0, "stay this long after the spawned line before exiting")
)

func init() { wl.Flags(10*time.Second, "(-churn) how long to run") }

var wg sync.WaitGroup

//go:noinline
func spawned() {
	time.Sleep(*sleep)
	wg.Done()
}

var churnWG sync.WaitGroup
var spawnedN atomic.Int64

//go:noinline
func churned() {
	churnWG.Done()
}

func runChurn() {
	stop := wl.Deadline()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				close(done)
				return
			default:
			}
			churnWG.Add(*batch)
			for i := 0; i < *batch; i++ {
				go churned()
			}
			churnWG.Wait()
			spawnedN.Add(int64(*batch))
		}
	}()
	var last int64
	wl.Every(*every, done, func() {
		v := spawnedN.Load()
		wl.Say("tick", wl.Obj{"spawned": v - last})
		last = v
	})
	wl.Done(wl.Obj{"spawned": spawnedN.Load()})
}

func main() {
	flag.Parse()
	wl.Start("gospawn", wl.Obj{"func": "main.spawned"})
	if *churn {
		runChurn()
		return
	}
	if *bursts < 1 {
		*bursts = 1
	}
	left := *n
	for b := 0; b < *bursts; b++ {
		k := left / (*bursts - b)
		wg.Add(k)
		for i := 0; i < k; i++ {
			go spawned()
		}
		left -= k
		if b+1 < *bursts {
			time.Sleep(*gap)
		}
	}
	wg.Wait()
	wl.Say("spawned", wl.Obj{"count": *n, "func": "main.spawned"})
	time.Sleep(*hold)
	wl.Done(wl.Obj{"count": *n})
}
