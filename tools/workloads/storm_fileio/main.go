// storm_fileio reproduces a syscall storm from blocking file I/O, which the
// netpoller cannot help with: every call goes through entersyscall, blocks
// in the kernel, sysmon hands the P to another M, and each blocked call
// pins one OS thread.
//
// -mode pipe (default): each worker does blocking read(2)s (syscall.Read on
// a blocking pipe fd, not the netpoller) of its own pipe; a feeder writes
// one byte to each pipe every -block, so each read blocks about -block.
// -mode fsync: each worker writes -size bytes to its own file in -dir and
// fsync(2)s it, in a loop (the filesystem serialises the fsyncs).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	mode    = flag.String("mode", "pipe", "pipe or fsync")
	workers = flag.Int("workers", 200, "goroutines doing blocking I/O")
	ramp    = flag.Duration("ramp", 2*time.Second, "start the workers evenly over this time")
	block   = flag.Duration("block", 300*time.Millisecond, "pipe mode: how long each read blocks")
	dir     = flag.String("dir", os.TempDir(), "fsync mode: where to create the files")
	size    = flag.Int("size", 4096, "fsync mode: bytes written before each fsync")
	every   = flag.Duration("every", 500*time.Millisecond, "report period")
)

func init() { wl.Flags(10*time.Second, "") }

var (
	stopping atomic.Bool
	calls    atomic.Int64
	inFlight atomic.Int64
	wg       sync.WaitGroup
	work     = make(chan int, 1) // hands each new worker its fd
)

// fileReader (pipe mode) reads its pipe one byte at a time, blocking.
func fileReader() {
	defer wg.Done()
	fd := <-work
	buf := make([]byte, 1)
	for !stopping.Load() {
		inFlight.Add(1)
		syscall.Read(fd, buf)
		inFlight.Add(-1)
		calls.Add(1)
	}
}

// fsyncer (fsync mode) appends to its file and fsyncs it.
func fsyncer() {
	defer wg.Done()
	fd := <-work
	buf := make([]byte, *size)
	for !stopping.Load() {
		syscall.Write(fd, buf)
		inFlight.Add(1)
		syscall.Fsync(fd)
		inFlight.Add(-1)
		calls.Add(1)
	}
}

func main() {
	wl.Start("storm_fileio", nil)
	var fn, sc string
	var nr int
	var writeFds []int // pipe mode: the feeder's ends
	var paths []string
	switch *mode {
	case "pipe":
		fn, sc, nr = "main.fileReader", "read", syscall.SYS_READ
	case "fsync":
		fn, sc, nr = "main.fsyncer", "fsync", syscall.SYS_FSYNC
	default:
		wl.Fail("unknown -mode %q", *mode)
	}
	wl.Say("storm", wl.Obj{"expect": "syscall_storm", "mode": *mode, "func": fn, "syscall": sc, "nr": nr,
		"workers": *workers, "ramp_ns": ramp.Nanoseconds(), "block_ns": block.Nanoseconds(), "threads": wl.Threads()})

	stop := wl.Deadline()
	sampled := make(chan struct{})
	runs := wl.ThreadRuns(2*time.Millisecond, sampled)
	maxThreads := 0
	var last int64
	report := func() {
		n := wl.Threads()
		if n > maxThreads {
			maxThreads = n
		}
		c := calls.Load()
		wl.Say("tick", wl.Obj{"threads": n, "calls": c - last, "in_flight": inFlight.Load(),
			"goroutines": runtime.NumGoroutine()})
		last = c
	}
	done := make(chan struct{})
	go wl.Every(*every, done, report)

	var mu sync.Mutex
	if *mode == "pipe" {
		// The feeder writes one byte to every started pipe each -block.
		go func() {
			for !stopping.Load() {
				time.Sleep(*block)
				mu.Lock()
				for _, w := range writeFds {
					syscall.Write(w, []byte{'x'})
				}
				mu.Unlock()
			}
		}()
	}
	gap := *ramp / time.Duration(*workers)
	for i := 0; i < *workers; i++ {
		wg.Add(1)
		if *mode == "pipe" {
			var p [2]int
			if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
				wl.Fail("pipe2: %v", err)
			}
			mu.Lock()
			writeFds = append(writeFds, p[1])
			mu.Unlock()
			go fileReader()
			work <- p[0]
		} else {
			path := filepath.Join(*dir, fmt.Sprintf("storm_fileio.%d.%d", os.Getpid(), i))
			fd, err := syscall.Open(path, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o600)
			if err != nil {
				wl.Fail("open %s: %v", path, err)
			}
			paths = append(paths, path)
			go fsyncer()
			work <- fd
		}
		time.Sleep(gap)
	}
	wl.Say("ramped", wl.Obj{"workers": *workers, "threads": wl.Threads()})
	<-stop
	stopping.Store(true)
	mu.Lock()
	for _, w := range writeFds { // wake every reader one last time
		syscall.Write(w, []byte{'x'})
	}
	mu.Unlock()
	wg.Wait()
	close(done)
	for _, p := range paths {
		os.Remove(p)
	}
	report()
	close(sampled)
	wl.Done(wl.Obj{"calls": calls.Load(), "workers": *workers, "max_threads": maxThreads, "threads": wl.Threads(),
		"thread_runs": runs()})
}
