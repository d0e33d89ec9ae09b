#!/usr/bin/env bash
# Runs every libFuzzer target (build-fuzz/fuzz_*) for a while, each on its own corpus dir
# (kept between runs), with tests/fuzz/<target>.dict when there is one. Crash inputs go
# to BUILD_FUZZ_DIR/crashes/. Exits non-zero when a target found a crash.
# Usage: run-fuzz.sh BUILD_FUZZ_DIR [SECONDS_PER_TARGET]
#   SECONDS_PER_TARGET: the argument, else $FUZZ_SECONDS, else 60 (a few seconds each is a
#   smoke run, e.g. FUZZ_SECONDS=5 inside a test run).
#   FUZZ_TARGETS="fuzz_a fuzz_b": only these targets.
set -euo pipefail
dir=$1
secs=${2:-${FUZZ_SECONDS:-60}}
src=$(cd "$(dirname "$0")/.." && pwd)
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs == 0)); then
  echo "run-fuzz.sh: seconds per target must be a positive integer, got '$secs'" >&2
  exit 2
fi
mkdir -p "$dir/crashes"
fail=0
ran=0
for f in "$dir"/fuzz_*; do
  [[ -x $f && -f $f ]] || continue
  name=$(basename "$f")
  if [[ -n ${FUZZ_TARGETS:-} && " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  corpus="$dir/corpus/$name"
  mkdir -p "$corpus"
  args=(-max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$dir/crashes/$name-")
  [[ -f $src/tests/fuzz/$name.dict ]] && args+=(-dict="$src/tests/fuzz/$name.dict")
  echo "=== $name for ${secs}s"
  ran=$((ran + 1))
  if ! "$f" "${args[@]}" "$corpus" >"$dir/$name.log" 2>&1; then
    tail -30 "$dir/$name.log"
    echo "=== $name: FAILED (crash input in $dir/crashes/, log $dir/$name.log)"
    fail=1
  else
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$dir/$name.log" || tail -3 "$dir/$name.log"
  fi
done
if ((ran == 0)); then
  echo "run-fuzz.sh: no fuzz targets in $dir" >&2
  exit 2
fi
echo "=== $ran targets x ${secs}s: $([[ $fail == 0 ]] && echo "0 crashes" || echo "CRASHES, see above")"
exit $fail
