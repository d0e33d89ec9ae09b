// knows is the foundation end-to-end workload: it does an exactly known
// amount of thread creation and blocking syscalls and prints every fact it
// observed, so a test can compare schedscope's output with the truth.
//
// Phases, one after the other (each prints one line):
//
//	threads: -threads goroutines each LockOSThread and park (kept to the end)
//	sleeps:  one locked goroutine does -sleeps syscall.Nanosleep(-sleep-len)
//	calls:   one locked goroutine does -calls getppid(2) via syscall.Syscall
//	reads:   one locked goroutine does -reads blocking read(2)s on a pipe;
//	         a writer writes one byte -read-delay after each read began
//
// Every locked goroutine runs on a thread created during the work (see
// lockFresh) and stays alive, locked and parked, until the process exits.
// The summary line lists /proc/self/task before and after.
//
// Goroutines whose identity matters are started as `go f()` (no arguments),
// so their entry function (g.startpc) is f itself, not a compiler wrapper.
package main

import (
	"flag"
	"os"
	"runtime"
	"syscall"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	nThreads  = flag.Int("threads", 8, "locked goroutines (=> new OS threads) to create")
	nSleeps   = flag.Int("sleeps", 20, "number of nanosleep calls")
	sleepLen  = flag.Duration("sleep-len", 50*time.Millisecond, "length of each nanosleep")
	nCalls    = flag.Int("calls", 1000, "number of getppid calls")
	nReads    = flag.Int("reads", 5, "number of blocking pipe reads")
	readDelay = flag.Duration("read-delay", 100*time.Millisecond, "writer delay before each write")
)

func init() {
	wl.Flags(500*time.Millisecond, "linger this long after the work, all threads alive (0 = until killed)")
	// Keep the main goroutine on the main thread (M0) so that none of the
	// locked goroutines below can be scheduled onto it.
	runtime.LockOSThread()
}

// Identity of a locked goroutine.
type ident struct {
	Func string `json:"func"`
	Goid int64  `json:"goid"`
	Tid  int    `json:"tid"`
}

var (
	before  = map[int]bool{}      // tids that existed when the work began
	retry   = make(chan int)      // a goroutine landed on an old thread (tid)
	fresh   = make(chan bool)     // a goroutine landed on a new thread
	release = make(chan struct{}) // never closed: keeps threads to the end
	results = make(chan any)

	pipeR, pipeW int
	readReady    = make(chan int)
)

// lockFresh locks the calling goroutine to its thread and reports whether
// the thread is new. If not, the caller must return at once: a goroutine
// that exits while locked makes the runtime terminate its thread, and
// goFresh starts the goroutine again.
func lockFresh() (ident, bool) {
	runtime.LockOSThread()
	tid := wl.Tid()
	if before[tid] {
		retry <- tid
		return ident{}, false
	}
	fresh <- true
	pc, _, _, _ := runtime.Caller(1)
	return ident{runtime.FuncForPC(pc).Name(), wl.Goid(), tid}, true
}

// killed lists the pre-existing threads terminated that way.
var killed = []int{}

// goFresh starts f (which begins with lockFresh) until it lands on a new
// thread.
func goFresh(f func()) {
	for {
		go f()
		select {
		case tid := <-retry:
			killed = append(killed, tid)
		case <-fresh:
			return
		}
	}
}

func lockedThread() {
	id, ok := lockFresh()
	if !ok {
		return
	}
	results <- id
	<-release // parks: the locked M sleeps in futex
}

type sleepResult struct {
	ident
	DurNs []int64
}

func sleeper() {
	id, ok := lockFresh()
	if !ok {
		return
	}
	r := sleepResult{ident: id}
	ts := syscall.NsecToTimespec(sleepLen.Nanoseconds())
	for i := 0; i < *nSleeps; i++ {
		t0 := wl.MonoNs()
		syscall.Nanosleep(&ts, nil) // syscall.Syscall: entersyscall, blocks
		r.DurNs = append(r.DurNs, wl.MonoNs()-t0)
	}
	results <- r
	<-release
}

type callResult struct {
	ident
	StartNs, EndNs int64
}

func getppidCaller() {
	id, ok := lockFresh()
	if !ok {
		return
	}
	r := callResult{ident: id, StartNs: wl.MonoNs()}
	for i := 0; i < *nCalls; i++ {
		syscall.Syscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	r.EndNs = wl.MonoNs()
	results <- r
	<-release
}

type readResult struct {
	ident
	StartNs, DurNs []int64
}

// pipeReader does -reads blocking read(2)s of one byte on a blocking pipe
// (not the netpoller: syscall.Read goes through entersyscall). Before each
// read it tells the writer, so each read blocks for about -read-delay.
func pipeReader() {
	id, ok := lockFresh()
	if !ok {
		return
	}
	r := readResult{ident: id}
	buf := make([]byte, 1)
	for i := 0; i < *nReads; i++ {
		readReady <- i
		t0 := wl.MonoNs()
		if _, err := syscall.Read(pipeR, buf); err != nil {
			wl.Fail("read: %v", err)
		}
		r.StartNs = append(r.StartNs, t0)
		r.DurNs = append(r.DurNs, wl.MonoNs()-t0)
	}
	results <- r
	<-release
}

func pipeWriter() {
	for range readReady {
		time.Sleep(*readDelay)
		syscall.Write(pipeW, []byte{'x'})
	}
}

func main() {
	wl.Start("knows", nil)
	tidsBefore := wl.Tasks()
	for _, t := range tidsBefore {
		before[t] = true
	}
	var lockedTids []int

	// (a) threads
	t0 := wl.MonoNs()
	var ids []ident
	for i := 0; i < *nThreads; i++ {
		goFresh(lockedThread)
		id := (<-results).(ident)
		ids = append(ids, id)
		lockedTids = append(lockedTids, id.Tid)
	}
	wl.Say("threads", wl.Obj{"start_ns": t0, "end_ns": wl.MonoNs(), "count": len(ids), "locked": ids})

	// (b) sleeps
	t0 = wl.MonoNs()
	goFresh(sleeper)
	s := (<-results).(sleepResult)
	lockedTids = append(lockedTids, s.Tid)
	wl.Say("sleeps", wl.Obj{"start_ns": t0, "end_ns": wl.MonoNs(), "func": s.Func, "goid": s.Goid,
		"tid": s.Tid, "syscall": "nanosleep", "nr": syscall.SYS_NANOSLEEP, "count": len(s.DurNs),
		"len_ns": sleepLen.Nanoseconds(), "dur_ns": s.DurNs})

	// (b2) cheap syscalls
	goFresh(getppidCaller)
	c := (<-results).(callResult)
	lockedTids = append(lockedTids, c.Tid)
	wl.Say("calls", wl.Obj{"start_ns": c.StartNs, "end_ns": c.EndNs, "func": c.Func, "goid": c.Goid,
		"tid": c.Tid, "syscall": "getppid", "nr": syscall.SYS_GETPPID, "count": *nCalls})

	// (c) blocking pipe reads
	t0 = wl.MonoNs()
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		wl.Fail("pipe2: %v", err)
	}
	pipeR, pipeW = p[0], p[1]
	go pipeWriter()
	goFresh(pipeReader)
	r := (<-results).(readResult)
	close(readReady)
	lockedTids = append(lockedTids, r.Tid)
	wl.Say("reads", wl.Obj{"start_ns": t0, "end_ns": wl.MonoNs(), "func": r.Func, "goid": r.Goid,
		"tid": r.Tid, "syscall": "read", "nr": syscall.SYS_READ, "fd": pipeR, "count": len(r.DurNs),
		"delay_ns": readDelay.Nanoseconds(), "read_start_ns": r.StartNs, "dur_ns": r.DurNs})

	after := wl.Tasks()
	newTids := wl.Minus(after, tidsBefore)
	wl.Say("summary", wl.Obj{
		"pid":          os.Getpid(),
		"tids_before":  tidsBefore,
		"tids_after":   after,
		"new_tids":     newTids,
		"locked_tids":  lockedTids,
		"killed_tids":  killed,
		"unlocked_new": wl.Minus(newTids, lockedTids),
		"threads":      len(after),
	})

	if d := wl.RunFor(); d > 0 {
		time.Sleep(d)
	} else {
		select {}
	}
	wl.Done(wl.Obj{"new_threads": len(newTids), "locked": len(lockedTids), "killed": len(killed),
		"sleeps": len(s.DurNs), "calls": *nCalls, "reads": len(r.DurNs)})
}
