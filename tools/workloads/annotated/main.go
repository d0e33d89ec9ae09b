// annotated runs a known number of runtime/trace tasks, regions and logs, for the
// --annotations tests: the request lifecycle of a traced service.
//
// -requests tasks "handleRequest span=<16 hex digits>" (the task named after an
// OpenTelemetry-like span id), run by -workers goroutines, each:
//
//	handleRequest span=...              (task; trace.Log stage/received at its start)
//	  parse            spin -parse      (WithRegion, on the request goroutine)
//	    validate       spin -validate   (WithRegion nested in parse: path parse/validate)
//	  fanout                            (WithRegion)
//	    shard x3       sleep -shard*(i+1) on three new goroutines (WithRegion each);
//	                   every -slow-every'th request, shard 0 sleeps -slow instead
//	  encode           spin -encode     (WithRegion)
//	  flush            StartRegion/End  (a no-op when tracing is off)
//	                   trace.Logf stage "shards=3" (a no-op when tracing is off)
//	                   trace.Log stage/done, or decision/slow for a slow request
//
// and -health tasks "healthCheck" with one region "check" (spin -check) and one log
// health/ok. It also runs -bg background-task regions "tick" (context.Background()).
//
// Ground truth: one {"ev":"task"} line per task as it ends (id, type, name, goid,
// ns, body_ns, regions [{name, path, goid, ns, body_ns}], logs [{category, message}]), then "done" with
// the totals: tasks per type, regions per path (tracing off: the ones the runtime is
// called for; with -runtime-trace: also flush), logs per category/message.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"runtime/trace"
	"sort"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"schedscope/workloads/internal/wl"
)

var (
	requests  = flag.Int("requests", 60, "handleRequest tasks")
	health    = flag.Int("health", 40, "healthCheck tasks")
	bg        = flag.Int("bg", 20, "background-task regions \"tick\"")
	workers   = flag.Int("workers", 2, "goroutines running the requests")
	parseD    = flag.Duration("parse", 2*time.Millisecond, "parse region: CPU spin")
	validateD = flag.Duration("validate", time.Millisecond, "parse/validate region: CPU spin")
	shardD    = flag.Duration("shard", 3*time.Millisecond, "shard i sleeps (i+1) times this")
	encodeD   = flag.Duration("encode", time.Millisecond, "encode region: CPU spin")
	checkD    = flag.Duration("check", time.Millisecond, "healthCheck's check region: CPU spin")
	slowEvery = flag.Int("slow-every", 10, "every Nth request is slow (0: none)")
	slowD     = flag.Duration("slow", 40*time.Millisecond, "a slow request's shard 0 sleeps this long")
	gap       = flag.Duration("gap", 2*time.Millisecond, "pause between two tasks of one worker")
	seed      = flag.Int64("seed", 1, "seed of the span ids")
	sysSleep  = flag.Duration("sys-sleep", 0, "a slow request also sleeps this long in one nanosleep(2) inside region \"io\" on its own goroutine (which stays on its thread: schedscope sees that goroutine off-CPU in the syscall); 0: no io region")
	hold      = flag.Duration("hold", 0, "stay this long after the last task before exiting")
	loop      = flag.Int("loop", 0, "cost benchmark: this many empty trace.WithRegion calls (2 annotation calls each) on one goroutine, then a {\"ev\":\"loop\"} line with the ns per WithRegion")
	paced     = flag.Int("paced", 0, "cost benchmark: this many empty trace.WithRegion calls per second (in bursts every ms) for -paced-for, then a {\"ev\":\"paced\"} line with the calls made and the process's CPU time over that span")
	pacedFor  = flag.Duration("paced-for", 2*time.Second, "how long -paced runs")
	edge      = flag.Int("edge", 0, "regions \"edge\" begun at the stack's edge: one on each of this many new goroutines, each after a recursion of a different depth, so that some of the annotation calls are the ones that grow the stack")
)

func init() { wl.Flags(0, "unused: the workload ends when its tasks are done") }

func spin(d time.Duration) {
	end := wl.MonoNs() + d.Nanoseconds()
	for wl.MonoNs() < end {
	}
}

// taskID is the runtime/trace id of a task (the first field of trace.Task).
func taskID(t *trace.Task) uint64 { return *(*uint64)(unsafe.Pointer(t)) }

// A region's truth: ns around trace.WithRegion (the calls into the runtime included),
// body_ns inside it (its function alone). An observer timing from the begin call to the
// end call sees a duration between the two.
type region struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Goid   int64  `json:"goid"`
	Ns     int64  `json:"ns"`
	BodyNs int64  `json:"body_ns"`
	Start  int64  `json:"start_ns"`
}

type logEntry struct {
	Category string `json:"category"`
	Message  string `json:"message"`
}

type taskTruth struct {
	mu      sync.Mutex
	regions []region
	logs    []logEntry
	sysNs   int64 // -sys-sleep: the nanosleep(2) call as timed around it
}

func (t *taskTruth) add(r region) { t.mu.Lock(); t.regions = append(t.regions, r); t.mu.Unlock() }
func (t *taskTruth) log(c, m string) {
	t.mu.Lock()
	t.logs = append(t.logs, logEntry{c, m})
	t.mu.Unlock()
}

var (
	totMu      sync.Mutex
	regionsN   = map[string]int{} // path -> count (seen by the runtime)
	logsN      = map[string]int{} // "category/message" -> count (seen by the runtime)
	tasksN     = map[string]int{} // type -> count
	invisibleN = map[string]int{} // what only a traced run passes to the runtime
)

func count(m map[string]int, k string) { totMu.Lock(); m[k]++; totMu.Unlock() }

// withRegion is trace.WithRegion with the truth recorded.
func withRegion(ctx context.Context, tt *taskTruth, name, path string, fn func()) {
	var b0, b1 int64
	t0 := wl.MonoNs()
	trace.WithRegion(ctx, name, func() {
		b0 = wl.MonoNs()
		fn()
		b1 = wl.MonoNs()
	})
	t1 := wl.MonoNs()
	count(regionsN, path)
	if tt != nil {
		tt.add(region{name, path, wl.Goid(), t1 - t0, b1 - b0, t0})
	}
}

func logRT(ctx context.Context, tt *taskTruth, c, m string) {
	trace.Log(ctx, c, m)
	count(logsN, c+"/"+m)
	tt.log(c, m)
}

// burn uses about 64 bytes of stack per level, then runs a region and a log on the
// stack that is left: over many depths, some of those calls land where the runtime
// function's prologue finds the stack too small, grows it and re-enters the function.
//
//go:noinline
func burn(n int, pad [4]uint64) uint64 {
	if n > 0 {
		pad[n%4] += uint64(n)
		return burn(n-1, pad) + pad[0]
	}
	withRegion(context.Background(), nil, "edge", "edge", func() {})
	trace.Log(context.Background(), "edge", "log")
	count(logsN, "edge/log")
	return pad[1]
}

func handleRequest(n int, spanID uint64) {
	t0 := wl.MonoNs()
	name := fmt.Sprintf("handleRequest span=%016x", spanID)
	ctx, task := trace.NewTask(context.Background(), name)
	b0 := wl.MonoNs()
	tt := &taskTruth{}
	logRT(ctx, tt, "stage", "received")
	slow := *slowEvery > 0 && n%*slowEvery == *slowEvery-1
	withRegion(ctx, tt, "parse", "parse", func() {
		spin(*parseD)
		withRegion(ctx, tt, "validate", "parse/validate", func() { spin(*validateD) })
	})
	withRegion(ctx, tt, "fanout", "fanout", func() {
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				d := *shardD * time.Duration(i+1)
				if slow && i == 0 {
					d = *slowD
				}
				withRegion(ctx, tt, "shard", "shard", func() { time.Sleep(d) })
			}(i)
		}
		wg.Wait()
	})
	withRegion(ctx, tt, "encode", "encode", func() { spin(*encodeD) })
	if slow && *sysSleep > 0 {
		withRegion(ctx, tt, "io", "io", func() {
			ts := syscall.NsecToTimespec(int64(*sysSleep))
			s0 := wl.MonoNs()
			syscall.Nanosleep(&ts, nil)
			tt.mu.Lock()
			tt.sysNs = wl.MonoNs() - s0
			tt.mu.Unlock()
		})
	}
	r := trace.StartRegion(ctx, "flush")
	r.End()
	trace.Logf(ctx, "stage", "shards=%d", 3)
	if trace.IsEnabled() {
		count(invisibleN, "region flush")
		count(invisibleN, "log stage/shards=3")
	}
	if slow {
		logRT(ctx, tt, "decision", "slow")
	} else {
		logRT(ctx, tt, "stage", "done")
	}
	id := taskID(task)
	b1 := wl.MonoNs()
	task.End()
	t1 := wl.MonoNs()
	count(tasksN, "handleRequest")
	report(id, "handleRequest", name, t1-t0, b1-b0, tt)
}

func healthCheck() {
	t0 := wl.MonoNs()
	ctx, task := trace.NewTask(context.Background(), "healthCheck")
	b0 := wl.MonoNs()
	tt := &taskTruth{}
	withRegion(ctx, tt, "check", "check", func() { spin(*checkD) })
	logRT(ctx, tt, "health", "ok")
	id := taskID(task)
	b1 := wl.MonoNs()
	task.End()
	t1 := wl.MonoNs()
	count(tasksN, "healthCheck")
	report(id, "healthCheck", "healthCheck", t1-t0, b1-b0, tt)
}

// report prints a task's truth: ns around NewTask..End, body_ns between them.
func report(id uint64, typ, name string, ns, bodyNs int64, tt *taskTruth) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	sort.Slice(tt.regions, func(i, j int) bool { return tt.regions[i].Start < tt.regions[j].Start })
	wl.Say("task", wl.Obj{"id": id, "type": typ, "name": name, "goid": wl.Goid(), "ns": ns, "body_ns": bodyNs,
		"regions": tt.regions, "logs": tt.logs, "slow": len(tt.logs) > 0 && tt.logs[len(tt.logs)-1].Category == "decision",
		"sys_sleep_ns": tt.sysNs})
}

func main() {
	flag.Parse()
	wl.Start("annotated", wl.Obj{"requests": *requests, "health": *health, "bg": *bg})
	rng := rand.New(rand.NewSource(*seed))
	jobs := make(chan func(), 16)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j()
				time.Sleep(*gap)
			}
		}()
	}
	for i := 0; i < *requests || i < *health; i++ {
		if i < *requests {
			n, id := i, rng.Uint64()
			jobs <- func() { handleRequest(n, id) }
		}
		if i < *health {
			jobs <- healthCheck
		}
	}
	close(jobs)
	for i := 0; i < *bg; i++ {
		withRegion(context.Background(), nil, "tick", "tick", func() { spin(200 * time.Microsecond) })
	}
	wg.Wait()
	if *loop > 0 {
		ctx := context.Background()
		empty := func() {}
		t0 := wl.MonoNs()
		for i := 0; i < *loop; i++ {
			trace.WithRegion(ctx, "loop", empty)
		}
		t1 := wl.MonoNs()
		wl.Say("loop", wl.Obj{"calls": *loop, "ns_per_region": float64(t1-t0) / float64(*loop),
			"tracing": trace.IsEnabled()})
	}
	if *paced > 0 {
		ctx := context.Background()
		empty := func() {}
		per := *paced / 1000
		if per < 1 {
			per = 1
		}
		c0, t0 := wl.CPUTimeNs(), wl.MonoNs()
		calls := 0
		tick := time.NewTicker(time.Millisecond)
		for wl.MonoNs()-t0 < int64(*pacedFor) {
			<-tick.C
			for i := 0; i < per; i++ {
				trace.WithRegion(ctx, "paced", empty)
			}
			calls += per
		}
		tick.Stop()
		wl.Say("paced", wl.Obj{"calls": calls, "elapsed_ns": wl.MonoNs() - t0, "cpu_ns": wl.CPUTimeNs() - c0,
			"tracing": trace.IsEnabled()})
	}
	for i := 0; i < *edge; i++ {
		done := make(chan struct{})
		go func(d int) {
			burn(d, [4]uint64{})
			close(done)
		}(i % 160)
		<-done
	}
	if *hold > 0 {
		time.Sleep(*hold)
	}
	wl.Done(wl.Obj{"tasks": tasksN, "regions": regionsN, "logs": logsN,
		"traced_only": invisibleN, "tracing": *wl.RuntimeTrace != ""})
}
