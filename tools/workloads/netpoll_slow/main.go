// netpoll_slow reproduces "netpoller saturation" as it is commonly described:
// the scheduler is fine, the network is the bottleneck. A front server on
// loopback forwards every request to a backend over loopback; the backend
// answers each request only after -backend-delay. -clients goroutines keep
// one request in flight each. Throughput is clients/backend-delay; the Ps
// are mostly idle, run queues empty, and almost every goroutine is parked
// in IO wait (net.(*conn).Read via the netpoller): each client, each front
// handler (waiting on the client or on the backend) and each backend
// handler (the reply is written from a timer, so the handler goes straight
// back to reading).
package main

import (
	"bufio"
	"flag"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"schedscope/workloads/internal/wl"
)

var (
	clients      = flag.Int("clients", 500, "client goroutines, one connection and one request in flight each")
	backendDelay = flag.Duration("backend-delay", 50*time.Millisecond, "backend response time")
	think        = flag.Duration("think", 0, "client pause between requests")
	every        = flag.Duration("every", time.Second, "report period")
)

func init() { wl.Flags(10*time.Second, "") }

var requests, latSum atomic.Int64

func listen() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		wl.Fail("listen: %v", err)
	}
	return ln
}

func serve(ln net.Listener, handler func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go handler(c)
	}
}

// backendConn answers each request line after -backend-delay. The reply is
// written by a timer so the handler is back in Read (IO wait) at once.
func backendConn(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			c.Close()
			return
		}
		time.AfterFunc(*backendDelay, func() { c.Write(line) })
	}
}

var backendAddr string

// frontConn forwards each client request to its own backend connection
// and relays the answer.
func frontConn(c net.Conn) {
	b, err := net.Dial("tcp", backendAddr)
	if err != nil {
		wl.Fail("dial backend: %v", err)
	}
	cr, br := bufio.NewReader(c), bufio.NewReader(b)
	for {
		line, err := cr.ReadBytes('\n')
		if err != nil {
			break
		}
		b.Write(line)
		resp, err := br.ReadBytes('\n')
		if err != nil {
			break
		}
		c.Write(resp)
	}
	c.Close()
	b.Close()
}

func client(addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		wl.Fail("dial front: %v", err)
	}
	r := bufio.NewReader(c)
	req := []byte("GET /slow\n")
	for {
		t0 := wl.MonoNs()
		if _, err := c.Write(req); err != nil {
			wl.Fail("client write: %v", err)
		}
		if _, err := r.ReadBytes('\n'); err != nil {
			wl.Fail("client read: %v", err)
		}
		latSum.Add(wl.MonoNs() - t0)
		requests.Add(1)
		if *think > 0 {
			time.Sleep(*think)
		}
	}
}

func main() {
	wl.Start("netpoll_slow", nil)
	bl, fl := listen(), listen()
	backendAddr = bl.Addr().String()
	go serve(bl, backendConn)
	go serve(fl, frontConn)
	for i := 0; i < *clients; i++ {
		go client(fl.Addr().String())
	}
	wl.Say("running", wl.Obj{"expect": "netpoll_saturation", "front": fl.Addr().String(), "backend": backendAddr,
		"clients": *clients, "backend_delay_ns": backendDelay.Nanoseconds(),
		"max_rps":       float64(*clients) / (backendDelay.Seconds() + think.Seconds()),
		"io_wait_funcs": []string{"main.client", "main.frontConn", "main.backendConn"}})
	var lastReq, lastLat int64
	stop := wl.Deadline()
	wl.Every(*every, stop, func() {
		req, l := requests.Load(), latSum.Load()
		o := wl.Obj{"requests": req - lastReq, "goroutines": runtime.NumGoroutine(), "threads": wl.Threads()}
		if req > lastReq {
			o["mean_latency_ns"] = (l - lastLat) / (req - lastReq)
		}
		wl.Say("tick", o)
		lastReq, lastLat = req, l
	})
	wl.Done(wl.Obj{"requests": requests.Load(), "clients": *clients})
}
