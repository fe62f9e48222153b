#!/usr/bin/env bash
# The low-precision demonstration of docs/low-precision.md: the demo model (configs/demo-shakespeare.json) trained
# with the same seed, data and steps in BF16 products, FP8 with fine-grained (1x128 / 128x128) scales, FP8 with
# power-of-two scales, FP8 with one scale per tensor, FP16 with and without loss scaling; then the charts and a
# summary table (final train/validation loss, relative to BF16, operand underflow, peak memory, tokens/s).
# Usage: scripts/precision-demo.sh [OUT] (default runs/precision); STEPS=1200 by default; ONLY="bf16 fp8" to run a
# subset; THREADS=N per run (default: all cores); SUMMARY_ONLY=1 redraws the charts and the table of the runs in OUT;
# BASE=f32 compares with that run instead of the first.
# Takes about 1.5 hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/precision}
steps=${STEPS:-1200}
dseek=./build/dseek
mkdir -p "$out"
if [ ! -e "$out/data/meta.json" ]; then
  $dseek tokenizer train --vocab-size 1024 --input data/tinyshakespeare.txt --out "$out/tokenizer"
  $dseek prepare --tokenizer "$out/tokenizer" --input data/tinyshakespeare.txt --out "$out/data" --val-fraction 0.05
fi
declare -A flags=(
  [f32]="--precision f32"
  [bf16]="--precision bf16"
  [fp8]="--precision fp8"
  [fp8-pow2]="--precision fp8 --fp8-pow2-scales true"
  [fp8-tensor]="--precision fp8 --fp8-scales tensor"
  [fp16]="--precision fp16"
  [fp16-no-scaling]="--precision fp16 --loss-scale 0"
)
runs=${ONLY:-"bf16 fp8 fp8-pow2 fp8-tensor fp16 fp16-no-scaling"}
for r in $runs; do
  [ -n "${SUMMARY_ONLY:-}" ] && break
  if [ -e "$out/$r/final" ]; then echo "$out/$r: done"; continue; fi
  rm -rf "${out:?}/$r"
  echo "+ $r: ${flags[$r]}"
  $dseek train --config configs/demo-shakespeare.json --data "$out/data" --out "$out/$r" ${flags[$r]} \
    --steps "$steps" --batch-size 16 --seq-len 256 --lr 2e-3 --warmup 30 --schedule cosine --bias-gamma 0.01 \
    --eval-every 100 --eval-batches 8 --log-every 100 --seed 1 --save-minutes 0 ${THREADS:+--threads $THREADS}
done
plot_runs=()
for r in $runs; do plot_runs+=(--run "$r=$out/$r"); done
$dseek plot "${plot_runs[@]}" --key loss --out "$out/loss.svg" --title "Training loss by precision (demo model)"
$dseek plot "${plot_runs[@]}" --key val_loss --out "$out/val_loss.svg" --title "Validation loss by precision"
lowp_runs=()
for r in $runs; do grep -q '"grad_underflow"' "$out/$r/metrics.jsonl" && lowp_runs+=(--run "$r=$out/$r"); done
[ ${#lowp_runs[@]} -gt 0 ] && $dseek plot "${lowp_runs[@]}" --key grad_underflow --out "$out/grad_underflow.svg" \
  --title "Linear output gradients rounded to zero (share of values)"
# summary at the last validated step every run reached (a run stopped early is compared at that step): train loss
# averaged over the 50 steps up to it (one step is noisy) and the validation loss there
last=$(for r in $runs; do grep '"val_loss"' "$out/$r/metrics.jsonl" | grep -o '"step":[0-9]*' | tail -1 | cut -d: -f2; done | sort -n | head -1)
{
  echo "compared at step $last"
  base=${BASE:-$(echo $runs | cut -d' ' -f1)}
  printf "| run | train loss (steps %d-%d) | vs $base | val loss | vs $base | grad underflow | act underflow | peak RSS MiB | optimizer MiB | tokens/s |\n" $((last - 49)) "$last"
  printf "|---|---|---|---|---|---|---|---|---|---|\n"
  for r in $base $runs; do
    m="$out/$r/metrics.jsonl"
    upto=$(awk -v s="$last" '{ if (match($0, /"step":[0-9]+/)) { n = substr($0, RSTART + 7, RLENGTH - 7) + 0; if (n <= s) print } }' "$m")
    t=$(echo "$upto" | grep '"loss"' | tail -50 | sed 's/.*"loss":\([^,}]*\).*/\1/' | awk '{s+=$1} END {printf "%.4f", s/NR}')
    v=$(echo "$upto" | grep '"val_loss"' | tail -1 | sed 's/.*"val_loss":\([^,}]*\).*/\1/' | awk '{printf "%.4f", $1}')
    gu=$(echo "$upto" | grep '"loss"' | sed -n 's/.*"grad_underflow":\([^,}]*\).*/\1/p' | awk '{s+=$1} END {if (NR) printf "%.2e", s/NR; else printf "-"}')
    au=$(echo "$upto" | grep '"loss"' | sed -n 's/.*"act_underflow":\([^,}]*\).*/\1/p' | awk '{s+=$1} END {if (NR) printf "%.2e", s/NR; else printf "-"}')
    rss=$(grep '"peak_rss_mib"' "$m" | tail -1 | sed 's/.*"peak_rss_mib":\([^,}]*\).*/\1/' | awk '{printf "%.0f", $1}')
    tps=$(grep '"tokens_per_s"' "$m" | sed 's/.*"tokens_per_s":\([^,}]*\).*/\1/' | sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int(NR/2)+1]}')
    opt=$( (du -m --apparent-size "$out/$r/latest/optimizer.safetensors" 2>/dev/null || echo "-") | cut -f1)
    if [ "$r" = "$base" ] && [ -z "${base_t:-}" ]; then base_t=$t; base_v=$v; continue; fi
    rt=$(awk -v a="$t" -v b="$base_t" 'BEGIN {printf "%+.2f%%", 100 * (a - b) / b}')
    rv=$(awk -v a="$v" -v b="$base_v" 'BEGIN {printf "%+.2f%%", 100 * (a - b) / b}')
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$r" "$t" "$rt" "$v" "$rv" "$gu" "$au" "$rss" "$opt" "$tps"
  done
} | tee "$out/summary.md"
echo "charts: $out/loss.svg $out/val_loss.svg $out/grad_underflow.svg"
