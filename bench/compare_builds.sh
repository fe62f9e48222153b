#!/usr/bin/env bash
# Paired, alternating runs of two builds' benchmarks on bench-small (the host is shared: alternate so that a slow
# phase hits both): bench_inference (prefill 512 and decode at 512 context, F32 and BF16 weights) and bench_train
# (one optimizer step, F32 and BF16 products). Prints one line per run and benchmark with tokens/s.
#   bench/compare_builds.sh OLD_BUILD_DIR NEW_BUILD_DIR [PAIRS=3] [THREADS=2]
set -euo pipefail
old=$1 new=$2 pairs=${3:-3} threads=${4:-2}
run() {  # run LABEL BUILD
  local label=$1 b=$2
  for bench in bench_inference bench_train; do
    "$b/$bench" --threads "$threads" --benchmark_format=csv 2>/dev/null |
      awk -F, -v l="$label" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "\"tokens_per_s\"" || $i == "tokens_per_s") c = i; next }
                             c { gsub(/"/, "", $1); printf "%s %-22s %10.1f tokens/s\n", l, $1, $c }'
  done
}
for i in $(seq "$pairs"); do
  run "old#$i" "$old"
  run "new#$i" "$new"
done
