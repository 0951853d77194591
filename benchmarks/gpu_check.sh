#!/usr/bin/env bash
# The one prepared run for a GPU machine (issue 11 item 5: the CUDA path has never run on a GPU).
#
#   benchmarks/gpu_check.sh            # on the GPU machine, from the repository root: about 8 minutes
#   DEVICE=cpu QUICK=1 benchmarks/gpu_check.sh   # here, on a CPU: checks that the script itself runs
#                                                (tiny sizes, no tests)
#
# It needs only what such a machine already has (python3 with torch, numpy, safetensors, tqdm, pytest,
# pillow, opencv, onnx): no data (the benchmarks draw random faces, the run trains on a packed set of random
# faces made here) and no network. Each stage prints `name: value unit` lines and keeps going when one
# fails, so one run reports everything; the log and the run's figures go to $OUT (or /tmp/gpu-check).
#
# Stages:
# 1. the machine: torch, CUDA and the GPU's name;
# 2. the tests of the training loop, on their own device choice (cuda when present): trainer, recipe, slim;
# 3. benchmarks/train_step.py: images/s of the main-line recipe (configs/v5.json) at batch 32, 256 and
#    1024, bf16 autocast (the config's amp) and fused Adam as the trainer sets them on CUDA;
# 4. a short real run of `kyara train` at batch 256 with torch.compile of G, a checkpoint, then --resume
#    for a few steps more (the resume path on CUDA), and torchrun with one process.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
LOG="$OUT/gpu_check.log"
: >"$LOG"
stage() { echo "== $1" | tee -a "$LOG"; }
run() { "$@" 2>&1 | tee -a "$LOG"; echo "exit: ${PIPESTATUS[0]}" | tee -a "$LOG"; }

if [ "$QUICK" = 1 ]; then BATCHES="8 16"; STEPS=2; RUN_STEPS=4; RUN_BATCH=8; else
  BATCHES="32 256 1024"; STEPS=20; RUN_STEPS=1500; RUN_BATCH=256; fi

stage "machine"
run "$PY" -c "import torch; print('torch:', torch.__version__); print('cuda:', torch.cuda.is_available()); \
print('gpu:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"

if [ "$QUICK" != 1 ]; then   # CI runs them on a CPU anyway; a check of the script needs no second run
  stage "tests (training loop)"
  run "$PY" -m pytest -q -x -p no:cacheprovider tests/test_trainer.py tests/test_recipe.py tests/test_slim.py
fi

stage "train step, configs/v5.json"
for batch in $BATCHES; do
  run "$PY" benchmarks/train_step.py --config configs/v5.json --device "$DEVICE" --batch "$batch" \
      --steps "$STEPS" --rounds 2 --warmup 2
done

stage "kyara train: compile, checkpoint, resume, torchrun"
DATA="$OUT/random-packed"
RUN_DIR="$OUT/run"
rm -rf "$DATA" "$RUN_DIR" "$RUN_DIR-torchrun"
run "$PY" -c "from pathlib import Path; from benchmarks.train_step import random_packed; \
random_packed(Path('$DATA'), 64, n=2048)"
COMMON=(configs/v5.json --data "$DATA" --device "$DEVICE" --set batch_size="$RUN_BATCH"
        --set ckpt_every="$RUN_STEPS" --set sample_every="$RUN_STEPS" --set log_every=50)
SECONDS=0
run "$PY" -m kyara train "${COMMON[@]}" --run-dir "$RUN_DIR" --steps "$RUN_STEPS" --set compile=true
echo "run seconds: $SECONDS (steps $RUN_STEPS, batch $RUN_BATCH, compile included)" | tee -a "$LOG"
run "$PY" -m kyara train "${COMMON[@]}" --run-dir "$RUN_DIR" --steps $((RUN_STEPS + 4)) --resume
ls "$RUN_DIR/checkpoints" | tee -a "$LOG"
if command -v torchrun >/dev/null; then
  run torchrun --standalone --nproc_per_node 1 -m kyara train "${COMMON[@]}" --run-dir "$RUN_DIR-torchrun" --steps 4
fi
cp "$RUN_DIR/metrics.jsonl" "$OUT/run-metrics.jsonl" 2>/dev/null
rm -rf "$DATA" "$RUN_DIR" "$RUN_DIR-torchrun"   # only the log and the figures come back
echo "== done; exits above, log in $LOG" | tee -a "$LOG"
