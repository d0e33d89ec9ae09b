package wl

import (
	"sync/atomic"
	"time"
)

// Counters of the background "healthy" work (see Healthy).
var (
	CPUIters  atomic.Int64
	PingPongs atomic.Int64
)

// Healthy starts background work that shows the rest of the program is
// alive: cpu CPU-bound goroutines (wl.CPUWorker) and pairs ping-pong pairs
// over unbuffered channels, counted in CPUIters and PingPongs. Its loops
// allocate nothing.
func Healthy(cpu, pairs int) {
	for i := 0; i < cpu; i++ {
		go CPUWorker()
	}
	for i := 0; i < pairs; i++ {
		ping, pong := make(chan int), make(chan int)
		go pinger(ping, pong)
		go ponger(ping, pong)
	}
}

// CPUWorker spins on integer arithmetic, counting chunks of work. Each
// chunk is a call to spin, which is neither inlined nor a leaf (it calls
// fold), so its prologue checks the stack guard: a cooperative preemption
// point. Without one, with GODEBUG=asyncpreemptoff=1 the loop could never
// be stopped and the next stop-the-world would hang the program.
func CPUWorker() {
	x := uint64(1)
	for {
		x = spin(x)
		CPUIters.Add(1)
	}
}

//go:noinline
func spin(x uint64) uint64 {
	for i := 0; i < 100000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return fold(x)
}

//go:noinline
func fold(x uint64) uint64 { return x ^ x>>29 }

func pinger(ping, pong chan int) {
	for {
		ping <- 1
		<-pong
		PingPongs.Add(1)
	}
}

func ponger(ping, pong chan int) {
	for {
		<-ping
		pong <- 1
	}
}

// Every calls f every period until stop is closed.
func Every(period time.Duration, stop <-chan struct{}, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f()
		case <-stop:
			return
		}
	}
}
