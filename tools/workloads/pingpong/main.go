// pingpong is the scheduler benchmark workload: -pairs pairs of goroutines
// (main.pinger / main.ponger) bounce a token over unbuffered channels as
// fast as they can. Every hand-off parks one goroutine and readies the
// other (gopark/goready, runnext), so the scheduler's hot paths run
// millions of times a second; no syscalls, no thread creation. Prints
// round trips per second.
package main

import (
	"flag"
	"runtime"
	"sync/atomic"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	pairs = flag.Int("pairs", 4, "goroutine pairs")
	procs = flag.Int("procs", 0, "GOMAXPROCS (0 = leave as is)")
	every = flag.Duration("every", time.Second, "report period")
	idle  = flag.Int("idle", 0, "extra goroutines (main.idler) parked on a channel for the whole run (goroutine-count scaling)")
)

func init() { wl.Flags(10*time.Second, "") }

var roundTrips atomic.Int64

// Each pair gets its channels through these (pinger/ponger take no
// arguments, so their goroutine entry functions are themselves).
var chans = make(chan [2]chan int) // unbuffered: each send reaches the goroutine just started

func pinger() {
	c := <-chans
	ping, pong := c[0], c[1]
	n := int64(0)
	for {
		ping <- 1
		<-pong
		if n++; n == 1000 {
			roundTrips.Add(n)
			n = 0
		}
	}
}

func ponger() {
	c := <-chans
	ping, pong := c[0], c[1]
	for {
		pong <- <-ping
	}
}

// idler parks until the process exits: it only makes the goroutine count large.
var idleGate = make(chan struct{})

func idler() { <-idleGate }

func main() {
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	// The idle goroutines exist before "ready", so an observer attaches to a process
	// that already has them and the measured window holds no creation.
	for i := 0; i < *idle; i++ {
		go idler()
	}
	wl.Start("pingpong", wl.Obj{"idle": *idle})
	for i := 0; i < *pairs; i++ {
		c := [2]chan int{make(chan int), make(chan int)}
		go pinger()
		chans <- c
		go ponger()
		chans <- c
	}
	wl.Say("running", wl.Obj{"pairs": *pairs, "funcs": []string{"main.pinger", "main.ponger"}})
	var last int64
	stop := wl.Deadline()
	wl.Every(*every, stop, func() {
		n := roundTrips.Load()
		wl.Say("tick", wl.Obj{"round_trips": n - last})
		last = n
	})
	wl.Done(wl.Obj{"round_trips": roundTrips.Load(), "pairs": *pairs})
}
