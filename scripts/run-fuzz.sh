#!/usr/bin/env bash
# Runs every libFuzzer target for a while (default 60 s each) on a fresh corpus dir.
# Usage: run-fuzz.sh BUILD_FUZZ_DIR [SECONDS]
set -euo pipefail
dir=$1
secs=${2:-${FUZZ_SECONDS:-60}}
fail=0
for f in "$dir"/fuzz_*; do
  [[ -x $f ]] || continue
  name=$(basename "$f")
  corpus="$dir/corpus/$name"
  mkdir -p "$corpus"
  echo "=== $name for ${secs}s"
  if ! "$f" -max_total_time="$secs" -print_final_stats=1 "$corpus" 2>&1 | tail -5; then
    echo "=== $name: FAILED"
    fail=1
  fi
done
exit $fail
