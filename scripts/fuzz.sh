#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ with clang (build-fuzz/), builds their seed corpora from the reference
# files (scripts/fuzz_corpus.js) and runs each for SECONDS_PER_HARNESS (default 20). Prints the executions of
# each harness; exits non-zero on any finding (crash, sanitizer report, leak, timeout, out-of-memory), whose
# reproducer is kept under build-fuzz/findings/.
#   scripts/fuzz.sh [SECONDS_PER_HARNESS]    (FUZZ_ONLY=fuzz_config to run one harness; FUZZ_JOBS=2 to parallelise)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_HARNESS="${1:-20}"
BUILD=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDSEEK_FUZZ=ON \
  -DDSEEK_BUILD_TESTS=OFF -DDSEEK_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" --target dseek_fuzzers -j "${FUZZ_BUILD_JOBS:-2}"

# Seeds are rebuilt every run; what the fuzzers add goes to a separate folder that persists between runs.
rm -rf "$BUILD/seeds"
node scripts/fuzz_corpus.js "$BUILD/seeds"
mkdir -p "$BUILD/findings" "$BUILD/logs"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Executions a harness's log reports: its final stats, or with FUZZ_JOBS (no final stats in the parent) the last
# "#N: cov: ..." progress line, which counts the finished jobs' runs.
count_executions() {
  local n
  n=$(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$1" | grep -oE '[0-9]+$' | tail -1 || true)
  [ -n "$n" ] || n=$(grep -aoE '^#[0-9]+: cov' "$1" | grep -oE '[0-9]+' | tail -1 || true)
  echo "${n:-0}"
}

status=0
total=0
for exe in "$BUILD"/fuzz/fuzz_*; do
  [ -x "$exe" ] || continue
  name=$(basename "$exe")
  if [ -n "${FUZZ_ONLY:-}" ] && [ "$name" != "$FUZZ_ONLY" ]; then continue; fi
  corpus="$BUILD/corpus/$name"
  mkdir -p "$corpus" "$BUILD/findings/$name"
  log="$BUILD/logs/$name.log"
  rc=0
  "$exe" "$corpus" "$BUILD/seeds/$name" -max_total_time="$SECONDS_PER_HARNESS" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=4096 -max_len=65536 -artifact_prefix="$BUILD/findings/$name/" \
    ${FUZZ_JOBS:+-fork=$FUZZ_JOBS} >"$log" 2>&1 || rc=$?
  execs=$(count_executions "$log")
  total=$((total + execs))
  if [ "$rc" != 0 ]; then
    status=1
    echo "$name: FINDING after $execs executions (exit $rc); log $log, reproducer in $BUILD/findings/$name/"
    grep -E 'ERROR: |runtime error|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/  /'
  else
    printf '%s: %s executions, no findings\n' "$name" "$execs"
  fi
done
echo "total: $total executions"
exit $status
