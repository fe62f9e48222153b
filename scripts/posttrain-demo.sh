#!/usr/bin/env bash
# Post-training demonstration (docs/posttrain.md): a small MLA + DeepSeekMoE model trained from scratch on the
# built-in tasks, then improved by GRPO, then distilled into a smaller dense student.
#   1. tokenizer (512 tokens) on task text; random init of configs/arith-small.json
#   2. arithmetic: SFT cold start -> eval -> GRPO -> eval
#   3. countdown:  SFT cold start -> eval -> GRPO -> eval
#   4. distillation: the GRPO arithmetic model teaches configs/arith-student.json (rejection-sampled) -> eval
#   5. the same teacher distilled into a Qwen2-architecture student, configs/arith-student-qwen2.json (GQA, q/k/v
#      biases, tied embeddings), as DeepSeek-R1 was distilled into Qwen and Llama -> eval
# STAGES (default "arith countdown distill distill-qwen2") picks stages; a stage's prerequisites run as needed.
# Every stage writes into $OUT (default runs/posttrain) and is skipped when its result is already there, so the
# script can be stopped and started again. Held-out accuracies go to $OUT/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/posttrain}
root=$PWD
dseek=${DSEEK:-$root/build/dseek}  # DSEEK: another binary (e.g. a copy, so rebuilding does not change a running demo)
eval_n=${EVAL_N:-512}
mkdir -p "$out"
cd "$out"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a stages.log; }
run() { echo "+ $*"; "$@"; }
timed() {  # timed NAME CMD...: runs CMD, logs its wall-clock time
  local name=$1; shift
  local t0=$(date +%s.%N)
  run "$@"
  log "$name took $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.0f') s"
}
accuracy() {  # accuracy NAME MODEL TASK [task flags]: held-out accuracy to results.txt
  local name=$1 model=$2 task=$3; shift 3
  local line
  if grep -q "^$name $task " results.txt 2>/dev/null; then return 0; fi
  line=$($dseek eval --model "$model" --task "$task" --n "$eval_n" --max-tokens 96 "$@" | tail -1)
  echo "$name $task $line" | tee -a results.txt
}
stages=" ${STAGES:-arith countdown distill distill-qwen2} "
want() { [[ $stages == *" $1 "* ]]; }
arith=(--ops +- --min-digits 1 --max-digits 3)
countdown=(--numbers 3)

# 1. data, tokenizer and the untrained model
if [ ! -f init/model.safetensors ]; then
  run $dseek task export --task arithmetic "${arith[@]}" --format chat --n 20000 --out arith-sft.jsonl
  run $dseek task export --task countdown "${countdown[@]}" --format chat --n 20000 --out countdown-sft.jsonl
  run $dseek task export --task arithmetic "${arith[@]}" --format text --n 20000 --out arith.txt
  run $dseek task export --task countdown "${countdown[@]}" --format text --n 20000 --out countdown.txt
  run $dseek tokenizer train --vocab-size 512 --input arith.txt countdown.txt --out tokenizer
  run $dseek init --config $root/configs/arith-small.json --tokenizer tokenizer --out init --seed 1
fi

sft() {  # sft DATA OUT STEPS
  [ -e "$2/latest" ] && return 0
  timed "sft $2" $dseek sft --model init --data "$1" --out "$2" --steps "$3" --batch-size 16 --seq-len 128 \
    --lr 2e-3 --warmup 20 --schedule constant --save-every 500 --log-every 100 --seed 1
}
grpo() {  # grpo MODEL TASK OUT STEPS LR [task flags]
  local model=$1 task=$2 o=$3 steps=$4 lr=$5; shift 5
  [ -e "$o/latest" ] && return 0
  timed "grpo $o" $dseek grpo --model "$model" --task "$task" "$@" --out "$o" --steps "$steps" \
    --group-size 8 --prompts-per-step 16 --max-new-tokens 96 --lr "$lr" --beta 0.04 \
    --eval-every 50 --eval-n 256 --log-every 10 --seed 1
}

# 2. arithmetic (also the teacher of the distillation stages)
sft arith-sft.jsonl arith-sft "${ARITH_SFT_STEPS:-3000}"
accuracy sft arith-sft arithmetic "${arith[@]}"
grpo arith-sft arithmetic arith-grpo "${ARITH_GRPO_STEPS:-600}" 3e-4 "${arith[@]}"
accuracy grpo arith-grpo arithmetic "${arith[@]}"

# 3. countdown
if want countdown; then
  sft countdown-sft.jsonl countdown-sft "${COUNTDOWN_SFT_STEPS:-3000}"
  accuracy sft countdown-sft countdown "${countdown[@]}"
  grpo countdown-sft countdown countdown-grpo "${COUNTDOWN_GRPO_STEPS:-400}" 1e-4 "${countdown[@]}"
  accuracy grpo countdown-grpo countdown "${countdown[@]}"
fi

# 4. distillation of the GRPO arithmetic model into a 3-layer dense student (1.3 M parameters, teacher 2.9 M):
#    rejection-sampled teacher completions, plus the KL to the teacher's top-8 next-token distribution
distill() {  # distill STUDENT_CONFIG OUT
  [ -e "$2/student/latest" ] && return 0
  timed "distill $2" $dseek distill --teacher arith-grpo --student "$1" --task arithmetic \
    "${arith[@]}" --out "$2" --n-prompts 40000 --samples-per-prompt 1 --teacher-temperature 0.7 --top-k 8 --distill-weight 1 \
    --steps "${DISTILL_STEPS:-8500}" --batch-size 16 --seq-len 128 --lr 2e-3 --warmup 20 --schedule constant \
    --log-every 100 --seed 1
}
accuracy teacher arith-grpo arithmetic "${arith[@]}"
if want distill; then
  distill $root/configs/arith-student.json distill
  accuracy student distill/student arithmetic "${arith[@]}"
fi

# 5. distillation into the Qwen2-architecture student (1.3 M parameters: 3 layers, hidden 192, 4 query / 2 KV heads)
if want distill-qwen2; then
  distill $root/configs/arith-student-qwen2.json distill-qwen2
  accuracy student-qwen2 distill-qwen2/student arithmetic "${arith[@]}"
fi
log "done; held-out accuracies in $out/results.txt"
