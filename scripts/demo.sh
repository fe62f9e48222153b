#!/usr/bin/env bash
# The built-in demo: on the bundled public-domain corpus (data/tinyshakespeare.txt), train a byte-level BPE
# tokenizer, then a small MLA + DeepSeekMoE + MTP model (configs/demo-shakespeare.json) for about 10 minutes,
# then sample from it. Everything goes to runs/demo (or the folder given as $1).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/demo}
minutes=${DEMO_MINUTES:-10}
dseek=./build/dseek
if [ -e "$out/run" ]; then echo "removing the previous demo in $out"; rm -rf "$out/run" "$out/data" "$out/tokenizer"; fi
mkdir -p "$out"
run() { echo "+ $*"; "$@"; }
run $dseek tokenizer train --vocab-size 1024 --input data/tinyshakespeare.txt --out "$out/tokenizer"
run $dseek prepare --tokenizer "$out/tokenizer" --input data/tinyshakespeare.txt --out "$out/data" --val-fraction 0.05
run $dseek train --config configs/demo-shakespeare.json --data "$out/data" --out "$out/run" \
  --steps 1200 --batch-size 16 --seq-len 256 --lr 2e-3 --warmup 30 --schedule cosine --precision auto \
  --bias-gamma 0.01 --eval-every 100 --eval-batches 8 --log-every 25 --seed 1 --time-limit $((minutes * 60))
run $dseek generate --model "$out/run" --prompt "ROMEO:" --max-tokens 200 --temperature 0.8 --top-k 40 --seed 1 --ignore-eos
echo
echo "metrics: $out/run/metrics.jsonl  charts: $out/run/loss.svg $out/run/expert_load.svg"
