// httpserver is the HTTP benchmark workload: a net/http server on -addr
// answering every request with a small body (-body bytes). A load
// generator drives it from outside; the handler counts requests and the
// workload prints requests per second. It prints {"ev":"listening"} once
// the socket is bound.
package main

import (
	"bytes"
	"flag"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	addr  = flag.String("addr", "127.0.0.1:18080", "listen address")
	body  = flag.Int("body", 64, "response body size, bytes")
	every = flag.Duration("every", time.Second, "report period")
)

func init() { wl.Flags(0, "how long to serve (0 = until killed)") }

var requests atomic.Int64

func main() {
	wl.Start("httpserver", nil)
	payload := append(bytes.Repeat([]byte("x"), *body-1), '\n')
	if *body < 1 {
		payload = nil
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		wl.Fail("listen %s: %v", *addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.Write(payload)
	})
	go http.Serve(ln, mux)
	wl.Say("listening", wl.Obj{"addr": ln.Addr().String(), "body": len(payload)})
	var last int64
	stop := wl.Deadline()
	wl.Every(*every, stop, func() {
		n := requests.Load()
		wl.Say("tick", wl.Obj{"requests": n - last, "goroutines": runtime.NumGoroutine(), "threads": wl.Threads()})
		last = n
	})
	wl.Done(wl.Obj{"requests": requests.Load()})
}
