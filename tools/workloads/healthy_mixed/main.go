// healthy_mixed is a healthy program doing a bit of everything at a
// moderate rate: channel ping-pong, short time.Sleeps (1-5ms),
// allocation-driven GC, small file I/O in -dir (write + read back, no fsync)
// and request/response over loopback TCP (a local server and clients).
// Syscalls are short, no P is lost, threads stay few: no condition should
// look like a stuck P or a syscall storm.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	pairs    = flag.Int("pairs", 2, "ping-pong pairs (bursts of 100 round trips, then 1ms sleep)")
	sleepers = flag.Int("sleepers", 8, "goroutines looping on time.Sleep(1-5ms)")
	allocMB  = flag.Int("alloc-mb", 20, "garbage allocated per second, MB")
	fileIO   = flag.Duration("file-every", 20*time.Millisecond, "period of the 16KB file write+read")
	dir      = flag.String("dir", os.TempDir(), "where the file goes")
	conns    = flag.Int("conns", 4, "loopback TCP clients (one request every 5ms each)")
	every    = flag.Duration("every", time.Second, "report period")
)

func init() { wl.Flags(10*time.Second, "") }

var roundTrips, sleeps, allocs, fileOps, requests atomic.Int64

func pingPong() {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	for {
		for i := 0; i < 100; i++ {
			ping <- i
			<-pong
		}
		roundTrips.Add(100)
		time.Sleep(time.Millisecond)
	}
}

func sleeper() {
	r := rand.New(rand.NewSource(int64(wl.Goid())))
	for {
		time.Sleep(time.Duration(1+r.Intn(5)) * time.Millisecond)
		sleeps.Add(1)
	}
}

var sink [][]byte

// allocator allocates -alloc-mb per second in 64KB and small pieces, keeping
// only the last few: garbage for the GC.
func allocator() {
	const chunk = 64 << 10
	perTick := *allocMB << 20 / chunk / 100 // 100 ticks a second
	for {
		for i := 0; i < perTick; i++ {
			b := make([]byte, chunk)
			small := make([]*[64]byte, 16)
			for j := range small {
				small[j] = new([64]byte)
			}
			sink = append(sink, b)
			if len(sink) > 16 {
				sink = sink[1:]
			}
			allocs.Add(1)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileWorker(path string) {
	data := make([]byte, 16<<10)
	for {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			wl.Fail("write %s: %v", path, err)
		}
		if _, err := os.ReadFile(path); err != nil {
			wl.Fail("read %s: %v", path, err)
		}
		fileOps.Add(1)
		time.Sleep(*fileIO)
	}
}

func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadBytes('\n')
				if err != nil {
					c.Close()
					return
				}
				c.Write(line)
			}
		}()
	}
}

func tcpClient(addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		wl.Fail("dial: %v", err)
	}
	r := bufio.NewReader(c)
	msg := []byte(fmt.Sprintf("%063d\n", 0))
	for {
		c.Write(msg)
		if _, err := r.ReadBytes('\n'); err != nil {
			wl.Fail("tcp read: %v", err)
		}
		requests.Add(1)
		time.Sleep(5 * time.Millisecond)
	}
}

func main() {
	wl.Start("healthy_mixed", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		wl.Fail("listen: %v", err)
	}
	path := filepath.Join(*dir, fmt.Sprintf("healthy_mixed.%d", os.Getpid()))
	defer os.Remove(path)
	go echoServer(ln)
	for i := 0; i < *pairs; i++ {
		go pingPong()
	}
	for i := 0; i < *sleepers; i++ {
		go sleeper()
	}
	go allocator()
	go fileWorker(path)
	for i := 0; i < *conns; i++ {
		go tcpClient(ln.Addr().String())
	}
	wl.Say("running", wl.Obj{"expect": "healthy", "addr": ln.Addr().String(), "file": path,
		"pairs": *pairs, "sleepers": *sleepers, "alloc_mb": *allocMB, "conns": *conns})

	gcs := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	var last [6]int64
	stop := wl.Deadline()
	wl.Every(*every, stop, func() {
		metrics.Read(gcs)
		now := [6]int64{roundTrips.Load(), sleeps.Load(), allocs.Load(), fileOps.Load(), requests.Load(),
			int64(gcs[0].Value.Uint64())}
		wl.Say("tick", wl.Obj{"round_trips": now[0] - last[0], "sleeps": now[1] - last[1],
			"allocs_64k": now[2] - last[2], "file_ops": now[3] - last[3], "tcp_requests": now[4] - last[4],
			"gcs": now[5] - last[5], "threads": wl.Threads(), "goroutines": runtime.NumGoroutine()})
		last = now
	})
	os.Remove(path)
	wl.Done(wl.Obj{"round_trips": roundTrips.Load(), "sleeps": sleeps.Load(), "allocs_64k": allocs.Load(),
		"file_ops": fileOps.Load(), "tcp_requests": requests.Load(), "gcs": last[5], "threads": wl.Threads()})
}
