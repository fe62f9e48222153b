#!/usr/bin/env bash
# The main job on its built-in default: initialise a small DeepSeek-V3-style model and generate from it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/demo-model}
./build/dseek init --config configs/tiny.json --out "$out" --seed 1
./build/dseek generate --model "$out" --prompt-ids 0,5,17,42 --max-tokens 32 --temperature 0.8 --top-k 40 --seed 1
