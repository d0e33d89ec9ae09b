package wl

import (
	"flag"
	"os"
	"runtime/trace"
)

// RuntimeTrace (-runtime-trace FILE) switches the workload's own runtime/trace on
// from "start" to "done": the in-process alternative that make bench compares
// schedscope with (docs/performance.md).
var RuntimeTrace = flag.String("runtime-trace", "", "write a runtime/trace of the run (start..done) to this file")

var traceFile *os.File

func startRuntimeTrace() {
	if *RuntimeTrace == "" {
		return
	}
	f, err := os.Create(*RuntimeTrace)
	if err != nil {
		Fail("runtime-trace: %v", err)
	}
	if err := trace.Start(f); err != nil {
		Fail("runtime-trace: %v", err)
	}
	traceFile = f
}

func stopRuntimeTrace() {
	if traceFile == nil {
		return
	}
	trace.Stop()
	traceFile.Close()
	traceFile = nil
}
