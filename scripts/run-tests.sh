#!/usr/bin/env bash
# Runs the test tiers: unit (no root) · bpf (root, real kernel) · e2e (root, real Go workloads).
# Usage: run-tests.sh BUILD_DIR [unit|bpf|e2e|fuzz ...]   (default: all tiers)
#        run-tests.sh BUILD_DIR --summary TIER...           (the summary lines of tiers run
#        before, as `make test` prints them after ctest; exit 1 if one failed or is missing)
# fuzz: every libFuzzer target of BUILD_DIR-fuzz (make fuzz-build) for FUZZ_SMOKE_SECONDS
# (default 5) each: a smoke run that any crash fails; `make fuzz` is the long run.
#
# Each tier ends with one summary line (tests/testsummary.py):
#   === unit: 178 tests: 178 passed, 0 failed, 0 skipped: PASS
# followed by every skip with its reason; the lines of all tiers are repeated at the end.
#
# Strict mode (STRICT=1, or CI=true): a skip that tests/skip-allowlist.txt does not list is
# a failure, and so is a root tier that cannot run because the runner is not root.
# Otherwise the root tiers are skipped outside root with a visible line.
set -uo pipefail
build=${1:-build}
shift || true
summary_only=0
if [[ ${1:-} == --summary ]]; then
  summary_only=1
  shift
fi
tiers=("$@")
((${#tiers[@]})) || tiers=(unit bpf e2e fuzz)
root=$([[ $(id -u) -eq 0 ]] && echo 1 || echo 0)
fail=0
export SCHEDSCOPE_BUILD=$(cd "$build" && pwd)
export SCHEDSCOPE_SRC=$(cd "$(dirname "$0")/.." && pwd)
if [[ ${CI:-} == true || ${STRICT:-0} != 0 ]]; then
  export STRICT=1
else
  export STRICT=0
fi
results=$SCHEDSCOPE_BUILD/test-results
mkdir -p "$results"
summaries=()

gtest_tier() {  # gtest_tier NAME BINARY
  local name=$1 bin=$2 t0=$SECONDS rc
  echo "=== $name"
  rm -f "$results/$name.xml" "$results/$name.summary"
  "$bin" --gtest_brief=1 --gtest_output="xml:$results/$name.xml"
  rc=$?
  GTEST_EXIT=$rc python3 "$SCHEDSCOPE_SRC/tests/testsummary.py" gtest "$name" "$results/$name.xml" \
    "$results/$name.summary" || fail=1
  echo "    ($name: $((SECONDS - t0))s)"
  summaries+=("$results/$name.summary")
}

not_root() {  # not_root NAME
  local line
  if ((STRICT)); then
    line="=== $1: FAIL: needs root and the runner is not root (strict mode: sudo make test)"
    fail=1
  else
    line="=== $1: SKIPPED: needs root (sudo make test)"
  fi
  echo "$line"
  echo "$line" >"$results/$1.summary"
  summaries+=("$results/$1.summary")
}

fuzz_tier() {  # every fuzz target a few seconds; its summary line like the others'
  local dir=${build}-fuzz secs=${FUZZ_SMOKE_SECONDS:-5} t0=$SECONDS n failed line
  echo "=== fuzz"
  n=$(find "$dir" -maxdepth 1 -name 'fuzz_*' -type f -perm -u+x 2>/dev/null | wc -l)
  if ((n == 0)); then
    if ((STRICT)); then
      line="=== fuzz: FAIL: no fuzz targets in $dir (make fuzz-build)"
      fail=1
    else
      line="=== fuzz: SKIPPED: no fuzz targets in $dir (make fuzz-build)"
    fi
  else
    bash "$SCHEDSCOPE_SRC/scripts/run-fuzz.sh" "$dir" "$secs" | tee "$results/fuzz.log"
    failed=$(grep -c ': FAILED (crash input' "$results/fuzz.log")
    line="=== fuzz: $n targets x ${secs}s: $((n - failed)) passed, $failed failed, 0 skipped"
    if ((failed)); then
      line+=": FAIL"
      fail=1
    else
      line+=": PASS"
    fi
  fi
  echo "$line"
  echo "    (fuzz: $((SECONDS - t0))s)"
  echo "$line" >"$results/fuzz.summary"
  summaries+=("$results/fuzz.summary")
}

if ((summary_only)); then
  for tier in "${tiers[@]}"; do summaries+=("$results/$tier.summary"); done
  tiers=()
fi

for tier in "${tiers[@]}"; do
  case $tier in
    unit) gtest_tier unit "$build/unit_tests" ;;
    bpf)
      if ((root)); then gtest_tier bpf "$build/bpf_tests"; else not_root bpf; fi
      ;;
    e2e)
      if ((root)); then
        echo "=== e2e"
        rm -f "$results/e2e.summary"
        python3 -W ignore::ResourceWarning "$SCHEDSCOPE_SRC/tests/run_e2e.py" "$results/e2e.summary" || fail=1
        summaries+=("$results/e2e.summary")
      else
        not_root e2e
      fi
      ;;
    fuzz) fuzz_tier ;;
    *) echo "unknown tier $tier" >&2; exit 2 ;;
  esac
done

echo
echo "=== summary$( ((STRICT)) && echo " (strict: skips outside tests/skip-allowlist.txt fail)")"
for s in "${summaries[@]}"; do
  if [[ -s $s ]]; then
    cat "$s"
    # a tier's first line is its verdict: PASS, or FAIL/SKIPPED (strict mode makes skips FAIL)
    head -n1 "$s" | grep -q ': FAIL' && fail=1
  else
    echo "=== $(basename "$s" .summary): no summary (crashed?)"
    fail=1
  fi
done
exit $fail
