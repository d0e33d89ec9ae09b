// capacity puts a Go program in the states the capacity questions of schedscope answer,
// and prints the ground truth of each (it knows what it did):
//
//	-mode cpu     -workers CPU-bound goroutines on -procs Ps. With more workers than Ps
//	              (and -procs below the CPUs) runnable goroutines wait for a P: each
//	              worker measures the longest gap between two of its own loop turns (the
//	              time it waited, runnable, for a P) and the process's CPU use per second.
//	              Run inside a cgroup with a CPU quota below -procs, the same program is
//	              throttled: its CPU use per second stays at the quota.
//	-mode burst   one producer goroutine creates -burst short goroutines at once every
//	              -pause: they pile up on its P's run queue (capacity 256) faster than
//	              they run. Prints the backlog (created, not yet run) at each burst's end.
//	-mode duty    every P busy -duty of the time: GOMAXPROCS goroutines spin together for
//	              -duty of a cycle, then all sleep for the rest; cycle lengths are drawn
//	              uniformly from 0.5 to 1.5 x -cycle (no fixed period for a sampler to
//	              alias with). Prints the share of the time with all of them spinning at
//	              once (measured: from the latest start to the earliest end of each cycle).
//	-mode parked  -conns loopback TCP connections, a goroutine blocked in Read on each
//	              end: tens of thousands of goroutines parked in the netpoller (IO wait),
//	              nothing else to do. Prints how many are parked.
package main

import (
	"flag"
	"math/rand"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	mode    = flag.String("mode", "cpu", "cpu | burst | duty | parked")
	procs   = flag.Int("procs", 0, "GOMAXPROCS (0 = leave as is)")
	workers = flag.Int("workers", 4, "(cpu) CPU-bound goroutines")
	burst   = flag.Int("burst", 20000, "(burst) goroutines created at once")
	pause   = flag.Duration("pause", 100*time.Millisecond, "(burst) time between bursts")
	work    = flag.Duration("work", 5*time.Microsecond, "(burst) CPU time of each goroutine")
	conns   = flag.Int("conns", 9500, "(parked) loopback connections (two parked goroutines each; fewer if RLIMIT_NOFILE is lower)")
	duty    = flag.Float64("duty", 0.3, "(duty) share of each cycle with every P busy")
	cycle   = flag.Duration("cycle", 20*time.Millisecond, "(duty) mean cycle length")
	every   = flag.Duration("every", time.Second, "report period")
)

func init() { wl.Flags(20*time.Second, "") }

// ---- cpu

var maxGapNs atomic.Int64 // longest wait between two loop turns of a worker, this period

func cpuWorker() {
	x := uint64(1)
	last := wl.MonoNs()
	for {
		for i := 0; i < 2000; i++ { // about 10 us of arithmetic
			x = x*6364136223846793005 + 1442695040888963407
		}
		wl.CPUIters.Add(1)
		now := wl.MonoNs()
		if gap := now - last; gap > maxGapNs.Load() {
			maxGapNs.Store(gap)
		}
		last = now
		if x == 42 {
			println(x)
		}
	}
}

// ---- burst

var (
	spawned, finished atomic.Int64
	maxBacklog        atomic.Int64
)

func short() {
	end := wl.MonoNs() + work.Nanoseconds()
	x := uint64(3)
	for wl.MonoNs() < end {
		x = x*6364136223846793005 + 1442695040888963407
	}
	if x == 42 {
		println(x)
	}
	finished.Add(1)
}

func producer() {
	for {
		for i := 0; i < *burst; i++ {
			go short()
		}
		spawned.Add(int64(*burst))
		if b := spawned.Load() - finished.Load(); b > maxBacklog.Load() {
			maxBacklog.Store(b)
		}
		time.Sleep(*pause)
	}
}

// ---- duty

var allBusyNs atomic.Int64 // time with every spinner spinning at once

func dutyLoop(n int) {
	type span struct{ start, end int64 }
	done := make(chan span, n)
	starts := make([]chan int64, n)
	for i := range starts {
		starts[i] = make(chan int64, 1)
		go func(c chan int64) {
			x := uint64(1)
			for deadline := range c {
				s := wl.MonoNs()
				for wl.MonoNs() < deadline {
					for j := 0; j < 100; j++ {
						x = x*6364136223846793005 + 1442695040888963407
					}
				}
				done <- span{s, wl.MonoNs()}
				if x == 42 {
					println(x)
				}
			}
		}(starts[i])
	}
	rng := rand.New(rand.NewSource(1))
	for {
		l := int64(float64(cycle.Nanoseconds()) * (0.5 + rng.Float64()))
		t0 := wl.MonoNs()
		for _, c := range starts {
			c <- t0 + int64(*duty*float64(l))
		}
		var latestStart, earliestEnd int64 = 0, 1 << 62
		for range starts {
			sp := <-done
			if sp.start > latestStart {
				latestStart = sp.start
			}
			if sp.end < earliestEnd {
				earliestEnd = sp.end
			}
		}
		if earliestEnd > latestStart {
			allBusyNs.Add(earliestEnd - latestStart)
		}
		if rest := t0 + l - wl.MonoNs(); rest > 0 {
			time.Sleep(time.Duration(rest))
		}
	}
}

// ---- parked

var parked atomic.Int64

var readers = make(chan net.Conn, 1024)

func reader() {
	c := <-readers
	var b [1]byte
	parked.Add(1)
	c.Read(b[:]) // nobody writes: parked in IO wait until the process exits
	parked.Add(-1)
}

// raiseNofile raises RLIMIT_NOFILE towards n and returns the limit in force.
func raiseNofile(n uint64) uint64 {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 1024
	}
	if r.Cur >= n {
		return r.Cur
	}
	want := syscall.Rlimit{Cur: n, Max: n}
	if r.Max > n {
		want.Max = r.Max
	}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil { // no CAP_SYS_RESOURCE: up to the hard limit
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r.Cur
}

var listener net.Listener

func acceptLoop() {
	for {
		c, err := listener.Accept()
		if err != nil {
			return
		}
		readers <- c
		go reader()
	}
}

func park() {
	if limit := raiseNofile(uint64(2**conns + 256)); uint64(2**conns+256) > limit {
		*conns = int(limit-256) / 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		wl.Fail("listen: %v", err)
	}
	listener = ln
	go acceptLoop()
	for i := 0; i < *conns; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			wl.Fail("dial %d: %v", i, err)
		}
		readers <- c
		go reader()
	}
	for parked.Load() < int64(2**conns) {
		time.Sleep(10 * time.Millisecond)
	}
}

func main() {
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	wl.Start("capacity", wl.Obj{"mode": *mode})
	gmp := runtime.GOMAXPROCS(0)
	switch *mode {
	case "cpu":
		for i := 0; i < *workers; i++ {
			go cpuWorker()
		}
		wl.Say("truth", wl.Obj{"mode": "cpu", "gomaxprocs": gmp, "ncpu": runtime.NumCPU(),
			"workers": *workers, "runnable_beyond_ps": *workers - gmp})
	case "burst":
		go producer()
		wl.Say("truth", wl.Obj{"mode": "burst", "gomaxprocs": gmp, "burst": *burst,
			"pause_ns": pause.Nanoseconds(), "work_ns": work.Nanoseconds(), "runq_capacity": 256})
	case "duty":
		go dutyLoop(gmp)
		wl.Say("truth", wl.Obj{"mode": "duty", "gomaxprocs": gmp, "duty": *duty,
			"cycle_ns": cycle.Nanoseconds()})
	case "parked":
		park()
		wl.Say("truth", wl.Obj{"mode": "parked", "gomaxprocs": gmp, "conns": *conns,
			"parked": parked.Load(), "goroutines": runtime.NumGoroutine()})
	default:
		wl.Fail("unknown -mode %q", *mode)
	}
	stop := wl.Deadline()
	lastCPU := wl.CPUTimeNs()
	lastT := wl.MonoNs()
	lastBusy := allBusyNs.Load()
	wl.Every(*every, stop, func() {
		cpu, t := wl.CPUTimeNs(), wl.MonoNs()
		dt := float64(t - lastT)
		o := wl.Obj{"goroutines": runtime.NumGoroutine(), "cpu_per_s": float64(cpu-lastCPU) / dt}
		lastCPU, lastT = cpu, t
		switch *mode {
		case "cpu":
			o["max_wait_ns"] = maxGapNs.Swap(0)
			o["iters"] = wl.CPUIters.Load()
		case "burst":
			o["max_backlog"] = maxBacklog.Swap(0)
			o["spawned"] = spawned.Load()
		case "duty":
			b := allBusyNs.Load()
			o["all_busy_share"] = float64(b-lastBusy) / dt
			lastBusy = b
		case "parked":
			o["parked"] = parked.Load()
		}
		wl.Say("tick", o)
	})
	wl.Done(wl.Obj{"mode": *mode, "gomaxprocs": gmp})
}
