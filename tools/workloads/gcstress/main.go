// gcstress is an allocation-heavy "service" for the GC-stall detector: a
// large live heap of small pointerful objects (-live-mb) that every GC
// cycle must mark, and -workers request loops that allocate -req-kb of
// garbage per request and replace part of the live heap. Mark assist and
// the GC's STW phases steal time from the requests; each second the
// workload prints the request latency p50/p99/max and the GC cycles and
// pauses seen through runtime/metrics (no ReadMemStats: it stops the world).
package main

import (
	"flag"
	"math"
	"math/rand"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	liveMB  = flag.Int("live-mb", 256, "live heap to keep, MB")
	workers = flag.Int("workers", 0, "request loops (0 = 2*GOMAXPROCS)")
	reqKB   = flag.Int("req-kb", 256, "garbage allocated per request, KB")
	churn   = flag.Int("churn", 64, "live objects replaced per request")
	think   = flag.Duration("think", 0, "pause between a worker's requests")
	every   = flag.Duration("every", time.Second, "report period")
)

func init() { wl.Flags(20*time.Second, "") }

// obj is a 256-byte heap object with 4 pointers: the GC must follow them.
type obj struct {
	next [4]*obj
	pad  [224]byte
}

// The live heap: half "static" objects linked to each other, never
// replaced, and half "dynamic" slots whose objects point only into the
// static half. Requests replace dynamic objects; nothing else points to
// them, so the old ones die and the live heap stays at -live-mb.
var (
	static   []*obj
	dynamic  []*obj
	requests atomic.Int64
	latMu    sync.Mutex
	lat      []int64
)

// handle is one request: allocate a tree of garbage, touch it, and swap
// some live objects for new ones.
func handle(r *rand.Rand) {
	n := *reqKB << 10 / 256
	var head *obj
	for i := 0; i < n; i++ {
		o := &obj{}
		o.next[0] = head
		o.pad[i%224] = byte(i)
		head = o
	}
	sum := 0
	for o := head; o != nil; o = o.next[0] {
		sum += int(o.pad[0])
	}
	for i := 0; i < *churn; i++ {
		o := &obj{}
		o.next[0], o.next[1] = static[r.Intn(len(static))], static[r.Intn(len(static))]
		dynamic[r.Intn(len(dynamic))] = o // racy by design: pointer stores only
	}
	if sum == -1 {
		println(sum)
	}
}

func worker() {
	r := rand.New(rand.NewSource(wl.Goid()))
	var mine []int64
	for {
		t0 := wl.MonoNs()
		handle(r)
		mine = append(mine, wl.MonoNs()-t0)
		requests.Add(1)
		if len(mine) >= 16 {
			latMu.Lock()
			lat = append(lat, mine...)
			latMu.Unlock()
			mine = mine[:0]
		}
		if *think > 0 {
			time.Sleep(*think)
		}
	}
}

// pauseMax returns the upper bound of the highest bucket of h that grew
// since the counts prev, and the number of new samples.
func pauseMax(h *metrics.Float64Histogram, prev []uint64) (maxNs int64, count uint64) {
	for i := range h.Counts {
		d := h.Counts[i] - prev[i]
		if d > 0 {
			count += d
			ub := h.Buckets[i+1]
			if math.IsInf(ub, 1) {
				ub = h.Buckets[i]
			}
			maxNs = int64(ub * 1e9)
		}
	}
	return
}

func main() {
	flag.Parse()
	if *workers == 0 {
		*workers = 2 * runtime.GOMAXPROCS(0)
	}
	wl.Start("gcstress", nil)
	t0 := wl.MonoNs()
	n := *liveMB << 20 / 256
	static = make([]*obj, n/2)
	for i := range static {
		o := &obj{}
		if i > 0 {
			o.next[0], o.next[1] = static[i-1], static[rand.Intn(i)]
		}
		static[i] = o
	}
	dynamic = make([]*obj, n-n/2)
	for i := range dynamic {
		o := &obj{}
		o.next[0] = static[rand.Intn(len(static))]
		dynamic[i] = o
	}
	wl.Say("live", wl.Obj{"live_objects": n, "live_mb": *liveMB, "build_ns": wl.MonoNs() - t0,
		"workers": *workers, "req_kb": *reqKB, "expect": "gc_stall"})
	for i := 0; i < *workers; i++ {
		go worker()
	}

	samples := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/gc/pauses:seconds"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	metrics.Read(samples)
	lastGC := samples[0].Value.Uint64()
	firstGC := lastGC
	// metrics.Read reuses the histogram's memory: keep a copy of the counts.
	lastPauses := append([]uint64(nil), samples[1].Value.Float64Histogram().Counts...)
	var lastReq int64
	var all []int64
	stop := wl.Deadline()
	wl.Every(*every, stop, func() {
		latMu.Lock()
		cur := lat
		lat = nil
		latMu.Unlock()
		all = append(all, cur...)
		p50, p99, max := wl.Percentiles(cur)
		metrics.Read(samples)
		gc := samples[0].Value.Uint64()
		ph := samples[1].Value.Float64Histogram()
		pmax, pcount := pauseMax(ph, lastPauses)
		req := requests.Load()
		wl.Say("tick", wl.Obj{"requests": req - lastReq, "p50_ns": p50, "p99_ns": p99, "max_ns": max,
			"gc_cycles": gc - lastGC, "gc_pauses": pcount, "gc_pause_max_ns": pmax,
			"heap_goal_bytes": samples[2].Value.Uint64(), "heap_objects_bytes": samples[3].Value.Uint64()})
		lastGC, lastPauses, lastReq = gc, append(lastPauses[:0], ph.Counts...), req
	})
	p50, p99, max := wl.Percentiles(all)
	metrics.Read(samples)
	var pausesTotal uint64
	for _, c := range samples[1].Value.Float64Histogram().Counts {
		pausesTotal += c
	}
	wl.Done(wl.Obj{"requests": requests.Load(), "p50_ns": p50, "p99_ns": p99, "max_ns": max,
		"gc_cycles": lastGC - firstGC, "live_mb": *liveMB,
		// every GC cycle since the process started (an observer attached at "ready" saw them all)
		"gc_cycles_total": samples[0].Value.Uint64(),
		// every GC stop-the-world pause since the process started (/gc/pauses: two a cycle)
		"gc_pauses_total": pausesTotal})
}
