#!/usr/bin/env bash
# make demo: the live view on the bundled demo workload, which cycles every 10 s through
#   healthy -> stuck P (main.rawBlocker in a raw read) -> syscall storm (200 blocking cgo
#   calls, threads into the hundreds) -> healthy -> ...
# On a terminal it runs `schedscope top -p PID` (q quits); without one (CI logs) it prints
# the batch form for 40 s, one full cycle and a bit.
# Usage: demo.sh BUILD_DIR   (env: DEMO_PHASE=10s, DEMO_DURATION=40s for the batch form)
set -euo pipefail
build=${1:-build}
phase=${DEMO_PHASE:-10s}
duration=${DEMO_DURATION:-40s}

if [[ $(id -u) -ne 0 ]]; then
  echo "make demo needs root: sudo make demo" >&2
  exit 1
fi
schedscope=$build/schedscope
demo=$build/workloads/demo
for f in "$schedscope" "$demo"; do
  if [[ ! -x $f ]]; then
    echo "demo: $f is missing (make build workloads)" >&2
    exit 1
  fi
done

log=$(mktemp /tmp/schedscope-demo.XXXXXX)
wpid=
cleanup() {
  if [[ -n $wpid ]] && kill -0 "$wpid" 2>/dev/null; then
    kill "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# GOMAXPROCS 2: the stuck P leaves one P for the service (keep it at 2 or more).
"$demo" -phase "$phase" -procs 2 -duration 0 >"$log" 2>&1 &
wpid=$!
for _ in $(seq 100); do
  grep -q '"ev":"ready"' "$log" && break
  kill -0 "$wpid" 2>/dev/null || { cat "$log" >&2; echo "demo: the workload failed" >&2; exit 1; }
  sleep 0.1
done
pid=$(grep -o '"pid":[0-9]*' "$log" | head -1 | cut -d: -f2)
if [[ -z $pid ]]; then
  echo "demo: the workload did not start" >&2
  exit 1
fi

echo "demo workload: pid $pid; phases of $phase: healthy -> stuck P -> syscall storm -> healthy ..."
if [[ -t 0 && -t 1 ]]; then
  echo "starting the live view (q quits, ? shows the keys)"
  sleep 1
  "$schedscope" top -p "$pid"
else
  echo "no terminal: the batch form for $duration (sudo make demo on a terminal for the live view)"
  "$schedscope" top --batch -p "$pid" -i 1s -d "$duration"
fi
