#!/usr/bin/env bash
# Runs the test tiers: unit (no root) · bpf (root, real kernel) · e2e (root, real Go workloads).
# Usage: run-tests.sh BUILD_DIR [unit|bpf|e2e ...]   (default: all tiers)
# Outside root the root tiers are skipped with a visible message; CI runs as root, where
# nothing may be skipped.
set -uo pipefail
build=${1:-build}
shift || true
tiers=("$@")
((${#tiers[@]})) || tiers=(unit bpf e2e)
root=$([[ $(id -u) -eq 0 ]] && echo 1 || echo 0)
fail=0
export SCHEDSCOPE_BUILD=$(cd "$build" && pwd)
export SCHEDSCOPE_SRC=$(cd "$(dirname "$0")/.." && pwd)

run() {
  local name=$1
  shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then
    echo "=== $name: PASS ($((SECONDS - t0))s)"
  else
    echo "=== $name: FAIL ($((SECONDS - t0))s)"
    fail=1
  fi
}

for tier in "${tiers[@]}"; do
  case $tier in
    unit) run "unit tests" "$build/unit_tests" --gtest_brief=1 ;;
    bpf)
      if ((root)); then
        run "bpf tests (root)" "$build/bpf_tests" --gtest_brief=1
      else
        echo "=== bpf tests: SKIPPED — they need root (sudo make test)"
      fi
      ;;
    e2e)
      if ((root)); then
        run "e2e tests (root)" python3 -W ignore::ResourceWarning -m unittest discover -s "$SCHEDSCOPE_SRC/tests/e2e" -p 'test_*.py' -v
      else
        echo "=== e2e tests: SKIPPED — they need root (sudo make test)"
      fi
      ;;
    *) echo "unknown tier $tier" >&2; exit 2 ;;
  esac
done
exit $fail
