#!/usr/bin/env bash
# make bench: the overhead benchmark (docs/performance.md). Runs at normal priority.
#   scripts/bench.sh [BUILD_DIR] [--smoke] [bench.py options...]
set -euo pipefail
build=${1:-build}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
[[ -x $build/schedscope && -x $build/ss-floor ]] || { echo "bench: build first (make build)" >&2; exit 2; }
exec python3 "$here/bench.py" --build "$build" "$@"
