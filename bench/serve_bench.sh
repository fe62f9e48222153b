#!/usr/bin/env bash
# Serving benchmark for `dseek serve`: throughput and latency under concurrent streaming load, against the
# single-stream `dseek generate` as anchor.
#
#   bench/serve_bench.sh MODEL_DIR [LEVELS=1,4,16,64] [DURATION=20] [MAX_TOKENS=64]
#
# 1. Starts `dseek serve --model MODEL_DIR --port 0 --threads 2 --parallel 64 --max-queue 256` and waits (up to
#    120 s) for its 'listening on http://127.0.0.1:PORT/v1' line.
# 2. Runs bench/serve_load.mjs against it: for each level, that many concurrent streaming /v1/completions users
#    (ignore_eos, exactly MAX_TOKENS tokens, temperature 0.8, a different seed per request) for DURATION seconds.
#    It reports per level: requests, errors, aggregate generated tokens/s, p50/p95 time to first token (TTFT),
#    p50/p95 time per output token (TPOT), per-stream tokens/s (1000 / p50 TPOT), engine steps and mean batch
#    (generated tokens per engine step, from /metrics).
# 3. Stops the server with SIGTERM and waits for it to exit.
# 4. Anchor: runs `dseek generate` (same prompt, MAX_TOKENS, --ignore-eos, temperature 0.8, 2 threads) three times
#    and takes the median of its "generation: N tokens, X tokens/s" figure. Prints
#      - server 1-stream per-stream tokens/s / generate tokens/s (the HTTP + engine overhead on a single stream;
#        the server's figure excludes the first token, generate's is its whole decode phase),
#      - 16-stream aggregate tokens/s / 1-stream aggregate tokens/s (what continuous batching buys),
#    and the aggregate of every level relative to the 1-stream level.
#
# Environment: DSEEK = the dseek binary (default build/dseek next to this script's bench/);
# SERVE_BENCH_JSON = also append serve_load's per-level JSON lines to this file; NODE = node binary.
# The machine should be otherwise idle: with 2 threads the server and the load generator share the cores.
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit $(( $# < 1 ? 2 : 0 ))
fi

MODEL_DIR=$1
LEVELS=${2:-1,4,16,64}
DURATION=${3:-20}
MAX_TOKENS=${4:-64}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
DSEEK=${DSEEK:-$ROOT/build/dseek}
NODE=${NODE:-node}
# Same text as serve_load.mjs's default prompt; passed explicitly to both so they cannot drift apart.
PROMPT='The old lighthouse keeper climbed the narrow stairs every evening at dusk, lit the great lamp, and watched the ships pass safely through the dark water while he wrote long letters to his daughter about the storms and the sea.'

[[ -x "$DSEEK" ]] || { echo "serve_bench: $DSEEK is not executable (set DSEEK)" >&2; exit 2; }
[[ -d "$MODEL_DIR" ]] || { echo "serve_bench: $MODEL_DIR is not a directory" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/serve_bench.XXXXXX")
SERVER_PID=""

stop_server() {  # SIGTERM, wait up to $1 s, then SIGKILL; sets SERVER_RC
  local limit=$1 i
  SERVER_RC=""
  [[ -n "$SERVER_PID" ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for ((i = 0; i < limit * 10; i++)); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "serve_bench: server $SERVER_PID still running after ${limit} s, sending SIGKILL" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
  fi
  SERVER_RC=0
  wait "$SERVER_PID" 2>/dev/null || SERVER_RC=$?
  SERVER_PID=""
}

cleanup() {
  local rc=$?
  stop_server 10 || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. start the server -------------------------------------------------------------------------------------
echo "== dseek serve --model $MODEL_DIR (levels $LEVELS, ${DURATION} s per level, max_tokens $MAX_TOKENS)"
"$DSEEK" serve --model "$MODEL_DIR" --port 0 --threads 2 --parallel 64 --max-queue 256 \
  >"$TMP/serve.out" 2>"$TMP/serve.err" &
SERVER_PID=$!

LINE=""
for ((i = 0; i < 1200; i++)); do
  LINE=$(grep -m1 'listening on http://' "$TMP/serve.out" || true)
  [[ -n "$LINE" ]] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "serve_bench: the server exited before listening; its output:" >&2
    cat "$TMP/serve.out" "$TMP/serve.err" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$LINE" ]]; then
  echo "serve_bench: no 'listening' line after 120 s; server output so far:" >&2
  cat "$TMP/serve.out" "$TMP/serve.err" >&2
  exit 1
fi
echo "$LINE"
BASE=$(sed -n 's|.*listening on \(http://[^/ ]*\).*|\1|p' <<<"$LINE")
[[ -n "$BASE" ]] || { echo "serve_bench: cannot parse the address from: $LINE" >&2; exit 1; }

# --- 2. load -------------------------------------------------------------------------------------------------
LOAD_RC=0
"$NODE" "$HERE/serve_load.mjs" --base "$BASE" --levels "$LEVELS" --duration "$DURATION" \
  --max-tokens "$MAX_TOKENS" --prompt "$PROMPT" --warmup 1 --json "$TMP/levels.jsonl" || LOAD_RC=$?
if [[ -n "${SERVE_BENCH_JSON:-}" && -f "$TMP/levels.jsonl" ]]; then
  cat "$TMP/levels.jsonl" >>"$SERVE_BENCH_JSON"
fi

# --- 3. stop the server --------------------------------------------------------------------------------------
T0=$(date +%s.%N)
stop_server 60
T1=$(date +%s.%N)
echo "server stopped (SIGTERM): exit code $SERVER_RC after $(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}') s"
if grep -qiE 'error|fatal|abort' "$TMP/serve.err"; then
  echo "server stderr mentions errors:" >&2
  grep -iE 'error|fatal|abort' "$TMP/serve.err" | head -20 >&2
fi

# --- 4. single-stream anchor: dseek generate x3 --------------------------------------------------------------
echo
echo "== anchor: dseek generate --max-tokens $MAX_TOKENS --ignore-eos --temperature 0.8 --threads 2 (x3)"
GEN=()
for run in 1 2 3; do
  "$DSEEK" generate --model "$MODEL_DIR" --prompt "$PROMPT" --max-tokens "$MAX_TOKENS" --ignore-eos \
    --temperature 0.8 --threads 2 >/dev/null 2>"$TMP/gen.err"
  STAT=$(grep -m1 'generation: ' "$TMP/gen.err" || true)
  TPS=$(sed -n 's/.*generation: \([0-9]*\) tokens, \([0-9.]*\) tokens\/s.*/\2/p' <<<"$STAT")
  if [[ -z "$TPS" ]]; then
    echo "serve_bench: no 'generation: N tokens, X tokens/s' in generate's stderr:" >&2
    cat "$TMP/gen.err" >&2
    exit 1
  fi
  echo "run $run: $STAT"
  GEN+=("$TPS")
done
GEN_MEDIAN=$(printf '%s\n' "${GEN[@]}" | sort -g | sed -n 2p)

# --- summary -------------------------------------------------------------------------------------------------
echo
echo "== summary"
"$NODE" - "$TMP/levels.jsonl" "$GEN_MEDIAN" <<'EOF'
const fs = require('fs');
const [file, genStr] = process.argv.slice(2);
const gen = Number(genStr);
const rows = fs.existsSync(file)
  ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
const at = (c) => rows.find((r) => r.concurrency === c);
const f = (v, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
const ratio = (a, b) => (a && b ? a / b : null);
const one = at(1);
const sixteen = at(16);
console.log(`dseek generate, single stream (median of 3): ${f(gen)} tokens/s`);
console.log(`server 1-stream per-stream tokens/s: ${f(one?.per_stream_tokens_per_s)}` +
  `  -> ratio to generate: ${f(ratio(one?.per_stream_tokens_per_s, gen), 3)}`);
console.log(`server 16-stream aggregate / 1-stream aggregate: ` +
  `${f(sixteen?.tokens_per_s)} / ${f(one?.tokens_per_s)} = ${f(ratio(sixteen?.tokens_per_s, one?.tokens_per_s), 2)}` +
  (sixteen ? '' : ' (no 16-stream level in this run)'));
if (one) {
  console.log('aggregate relative to 1 stream: ' +
    rows.map((r) => `${r.concurrency}: ${f(ratio(r.tokens_per_s, one.tokens_per_s), 2)}x`).join(', '));
}
EOF

if [[ $LOAD_RC -ne 0 ]]; then
  echo "serve_bench: serve_load.mjs exited with $LOAD_RC (errors above)" >&2
  exit "$LOAD_RC"
fi
if [[ "$SERVER_RC" != "0" ]]; then
  echo "serve_bench: the server exited with $SERVER_RC after SIGTERM" >&2
  exit 1
fi
