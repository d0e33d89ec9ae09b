// Package wl holds the helpers shared by the schedscope workloads: common
// flags, the JSON-lines reporter, and small facts about the current
// goroutine and thread (goid, tid, P id, CLOCK_MONOTONIC time).
//
// Every workload prints one JSON object per line on stdout. Each line has
// "ev" (the event name) and "t_ns" (CLOCK_MONOTONIC nanoseconds, the same
// clock as bpf_ktime_get_ns). The first line is "ready" (the observer may
// attach now), then "start" once -delay / -wait-stdin are satisfied, then
// workload-specific lines, and finally "done" with "done":true.
package wl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Obj is one JSON object; encoding/json writes its keys sorted.
type Obj = map[string]any

// Common flags every workload takes.
var (
	Duration  *time.Duration
	Delay     = flag.Duration("delay", 0, "wait this long after the ready line before starting")
	WaitStdin = flag.Bool("wait-stdin", false, "block until a line (or EOF) arrives on stdin before starting")
	Forever   = flag.Bool("forever", false, "ignore -duration: run until killed")
)

// Name is the workload name given to Start.
var Name string

var (
	sayMu    sync.Mutex
	startNs  int64
	startCPU int64
)

// Flags registers -duration with the workload's default. Call it from a
// package-level var or before flag.Parse.
func Flags(defaultDuration time.Duration, usage string) {
	if usage == "" {
		usage = "how long to run (0 = until killed)"
	}
	Duration = flag.Duration("duration", defaultDuration, usage)
}

// Say prints one JSON line: {"ev":ev,"t_ns":now,...kv}. Safe for concurrent
// use; each line is written with one write(2).
func Say(ev string, kv Obj) {
	b := Line(ev, kv)
	sayMu.Lock()
	os.Stdout.Write(b)
	sayMu.Unlock()
}

// WriteRaw writes a Line with a raw write(2) that does not go through the runtime's
// entersyscall/exitsyscall, and spins rather than parks on the output lock, so the
// goroutine keeps its P across it: ground truth about the current P (ProcID) stays true
// until the caller's next blocking call.
func WriteRaw(b []byte) {
	for !sayMu.TryLock() {
	}
	for len(b) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, 1, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e != 0 && e != syscall.EINTR && e != syscall.EAGAIN {
			break
		}
		if e == 0 {
			b = b[n:]
		}
	}
	sayMu.Unlock()
}

// Line is the JSON line Say prints.
func Line(ev string, kv Obj) []byte {
	o := Obj{}
	for k, v := range kv {
		o[k] = v
	}
	o["ev"] = ev
	if _, ok := o["t_ns"]; !ok {
		o["t_ns"] = MonoNs()
	}
	b, err := json.Marshal(o)
	if err != nil {
		b, _ = json.Marshal(Obj{"ev": "error", "error": err.Error(), "while": ev})
	}
	return append(b, '\n')
}

// Fail prints an error line and exits 1.
func Fail(format string, a ...any) {
	Say("error", Obj{"error": fmt.Sprintf(format, a...)})
	os.Exit(1)
}

// Start parses the flags, prints the "ready" line (pid, Go version,
// GOMAXPROCS, flags, extra facts), waits for -delay and -wait-stdin and
// prints "start". It returns the start time (CLOCK_MONOTONIC ns).
func Start(name string, extra Obj) int64 {
	if !flag.Parsed() {
		flag.Parse()
	}
	Name = name
	flags := Obj{}
	flag.VisitAll(func(f *flag.Flag) { flags[f.Name] = f.Value.String() })
	o := Obj{
		"workload":   name,
		"pid":        os.Getpid(),
		"go":         runtime.Version(),
		"gomaxprocs": runtime.GOMAXPROCS(0),
		"ncpu":       runtime.NumCPU(),
		"threads":    Threads(),
		"flags":      flags,
	}
	for k, v := range extra {
		o[k] = v
	}
	Say("ready", o)
	if *Delay > 0 {
		time.Sleep(*Delay)
	}
	if *WaitStdin {
		// os.Stdin is usually a blocking fd: this is one blocking read(2)
		// that ends when the test writes a line or closes the pipe.
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	startNs = MonoNs()
	startCPU = CPUTimeNs()
	Say("start", Obj{"t_ns": startNs})
	startRuntimeTrace()
	return startNs
}

// CPUTimeNs is the CPU time (user + system) the whole process has used so far, exited
// threads included (getrusage RUSAGE_SELF). The done line carries the run's share as
// "cpu_ns": make bench divides the work done by it.
func CPUTimeNs() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// RunFor is the run time asked for: 0 means until killed (-forever or
// -duration 0).
func RunFor() time.Duration {
	if *Forever || Duration == nil || *Duration <= 0 {
		return 0
	}
	return *Duration
}

// Deadline returns a channel that is closed when RunFor has elapsed since
// it was called (never, if RunFor is 0).
func Deadline() <-chan struct{} {
	ch := make(chan struct{})
	if d := RunFor(); d > 0 {
		time.AfterFunc(d, func() { close(ch) })
	}
	return ch
}

// Done prints the final {"ev":"done","done":true,...} line and exits 0.
func Done(totals Obj) {
	o := Obj{"done": true, "elapsed_ns": MonoNs() - startNs, "cpu_ns": CPUTimeNs() - startCPU}
	stopRuntimeTrace()
	for k, v := range totals {
		o[k] = v
	}
	Say("done", o)
	os.Exit(0)
}

// Goid returns the current goroutine id, parsed from runtime.Stack
// ("goroutine 123 [running]:").
func Goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseInt(string(b), 10, 64)
	return id
}

// Tid is the kernel thread id of the calling thread. It only means
// something while the goroutine is locked (runtime.LockOSThread) or
// blocked on its M.
func Tid() int { return syscall.Gettid() }

//go:linkname nanotime runtime.nanotime
func nanotime() int64

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// MonoNs is CLOCK_MONOTONIC in nanoseconds. It is the runtime's nanotime,
// which reads CLOCK_MONOTONIC through the vDSO, so it adds no syscall to
// what the observer sees. MonoNsSyscall is the same clock via a real
// clock_gettime(2) syscall, for cross-checking.
func MonoNs() int64 { return nanotime() }

// MonoNsSyscall reads CLOCK_MONOTONIC with a real clock_gettime syscall.
func MonoNsSyscall() int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// PinP pins the calling goroutine to its P (the runtime's procPin: the M's
// lock count goes up, so neither sysmon nor a signal can preempt it and move
// it to another P) and returns that P's id. Allocation and anything that can
// block must wait until UnpinP.
func PinP() int { return procPin() }

// UnpinP ends PinP.
func UnpinP() { procUnpin() }

// ProcID is the id of the P the calling goroutine runs on right now.
func ProcID() int {
	id := procPin()
	procUnpin()
	return id
}

// Threads is the "Threads:" count of /proc/self/status.
func Threads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Threads:") {
			n, _ := strconv.Atoi(strings.TrimSpace(l[len("Threads:"):]))
			return n
		}
	}
	return -1
}

// ThreadRuns samples Threads() every period until stop is closed. The returned function
// gives the runs of equal counts so far, each [first read's start, last read's end,
// threads] in CLOCK_MONOTONIC ns: what the thread count was at any moment, to within a
// period (the ground truth for an observer's count at its own timestamp).
func ThreadRuns(period time.Duration, stop <-chan struct{}) func() [][3]int64 {
	var mu sync.Mutex
	var runs [][3]int64
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			t0 := MonoNs()
			n := int64(Threads())
			t1 := MonoNs()
			mu.Lock()
			if k := len(runs); k > 0 && runs[k-1][2] == n {
				runs[k-1][1] = t1
			} else {
				runs = append(runs, [3]int64{t0, t1, n})
			}
			mu.Unlock()
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
	return func() [][3]int64 {
		mu.Lock()
		defer mu.Unlock()
		return append([][3]int64(nil), runs...)
	}
}

// Tasks lists the tids in /proc/self/task, sorted.
func Tasks() []int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil
	}
	var tids []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, n)
		}
	}
	sort.Ints(tids)
	return tids
}

// Minus returns the elements of a that are not in b (both sorted).
func Minus(a, b []int) []int {
	in := map[int]bool{}
	for _, x := range b {
		in[x] = true
	}
	out := []int{}
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// FuncName is the fully qualified name of the function that called it,
// e.g. "main.rawBlocker".
func FuncName() string {
	pc, _, _, ok := runtime.Caller(1)
	if !ok {
		return "?"
	}
	return runtime.FuncForPC(pc).Name()
}

// Percentiles returns the p50, p99 and max of d (sorted in place), in ns.
func Percentiles(d []int64) (p50, p99, max int64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)*50/100], d[(len(d)*99)/100], d[len(d)-1]
}
