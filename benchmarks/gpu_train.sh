#!/usr/bin/env bash
# Train on a GPU machine whenever one is at hand: pack the Getchu set from its tar there, go on from the
# committed portable checkpoint of the main line, train until a time limit, and bring back a portable
# checkpoint of where it got to. Beside benchmarks/gpu_check.sh, which only checks the CUDA path.
#
#   TAR=path/to/getchu_extra_data_64px.tar MINUTES=8 benchmarks/gpu_train.sh
#   DEVICE=cpu MINUTES=1 QUICK=1 TAR=... benchmarks/gpu_train.sh     # here, on a CPU: checks the script runs
#                                                (2,000 faces tagged, batch 8, a checkpoint every 2 steps)
#
# Settings (environment):
#   TAR      the Getchu tar (required); the labels beyond colour come from the shipped tagger, run there on
#            its CPUs (about 6 CPU-minutes), plus the hand-checked files in data/labels/ (the bundled model's
#            data was tagged by the tagger before the shipped one: the counts differ a little, docs/data.md)
#   CONFIG   the recipe (default configs/v5.json, the bundled model's); e.g. configs/v6-attention.json
#   INIT     the portable checkpoint to go on from (default portable/v5, the bundled model's)
#   MINUTES  training time (default 8); the run keeps a checkpoint every 200 steps, so at most that is lost
#   BATCH    batch size (default 256; the recipe's 32 is sized for a CPU)
#   SET      more config overrides, space-separated key=value, each passed as `--set` (e.g. SET="tag_boost=male=8",
#            the v6 leg's: CONFIG=configs/v6-attention.json INIT=portable/v6-male SET="tag_boost=male=8")
#   OUT      where the results go (default /tmp/gpu-train): portable/ (G_ema, D, config, vocab: `kyara train
#            CONFIG --init OUT/portable` goes on from it anywhere), metrics.jsonl and the log
#
# The data must reach the machine: the tar is 135 MB. Where the machine only gets a copy of the checkout of
# limited size, carry a folder holding the tar (or the packed set, as PACKED=folder instead of TAR).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
CONFIG=${CONFIG:-configs/v5.json}
INIT=${INIT:-portable/v5}
MINUTES=${MINUTES:-8}
BATCH=${BATCH:-256}
OUT=${OUT:-/tmp/gpu-train}
QUICK=${QUICK:-0}
CKPT_EVERY=200
if [ "$QUICK" = 1 ]; then BATCH=8; CKPT_EVERY=2; fi
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
WORK=$(mktemp -d /tmp/gpu-train-work.XXXXXX)
mkdir -p "$OUT"
LOG="$OUT/gpu_train.log"
: >"$LOG"
say() { echo "== $*" | tee -a "$LOG"; }

if [ -n "${PACKED:-}" ]; then
  DATA=$PACKED
elif [ -n "${TAR:-}" ] && [ -f "$TAR" ]; then
  say "tagging the faces of $TAR with the shipped tagger"
  mkdir -p "$WORK/images"
  tar -xf "$TAR" -C "$WORK/images"
  IMAGES=$(dirname "$(find "$WORK/images" -name '*.jpg' -print -quit)")
  [ "$QUICK" = 1 ] && find "$IMAGES" -name '*.jpg' | sort | tail -n +2001 | xargs -r rm
  "$PY" -m kyara data tag "$IMAGES" -o "$WORK/tags.csv" 2>&1 | tr '\r' '\n' | tail -2 | tee -a "$LOG"
  say "packing"
  LABELS=(--labels "$WORK/tags.csv")
  for f in data/labels/getchu_review_*.csv; do LABELS+=(--labels "$f"); done
  ATTRIBUTES=${ATTRIBUTES:-$(dirname "$TAR")/getchu_attributes.csv}   # the faces annotated by eye
  [ -f "$ATTRIBUTES" ] && LABELS+=(--labels "$ATTRIBUTES")
  "$PY" -m kyara data pack "$TAR" -o "$WORK/packed" --resolution 64 "${LABELS[@]}" \
    --min-faces 100 2>&1 | tr '\r' '\n' | tail -3 | tee -a "$LOG"
  DATA=$WORK/packed
else
  echo "gpu_train.sh: set TAR to the Getchu tar (or PACKED to a packed set folder)" >&2
  exit 2
fi

OVERRIDES=()
for kv in ${SET:-}; do OVERRIDES+=(--set "$kv"); done
say "training $CONFIG from $INIT for $MINUTES minutes on $DEVICE, batch $BATCH ${SET:+(--set $SET)}"
set +e
timeout --signal=INT "${MINUTES}m" "$PY" -m kyara train "$CONFIG" --data "$DATA" --run-dir "$WORK/run" \
  --init "$INIT" --device "$DEVICE" --set batch_size="$BATCH" --set ckpt_every="$CKPT_EVERY" --set sample_every=1000 \
  ${OVERRIDES[@]+"${OVERRIDES[@]}"} 2>&1 | tr '\r' '\n' | grep -v '^train: ' | tee -a "$LOG"
set -e
LAST=$(ls -d "$WORK"/run/checkpoints/step_* 2>/dev/null | sort | tail -1)
if [ -z "$LAST" ]; then
  say "no checkpoint was written (less than 200 steps?)"
  exit 1
fi
say "bringing back $LAST as a portable checkpoint"
rm -rf "$OUT/portable"
"$PY" -m kyara portable "$LAST" -o "$OUT/portable" | tee -a "$LOG"
cp "$WORK/run/metrics.jsonl" "$OUT/metrics.jsonl"
rm -rf "$WORK"
say "done: $OUT/portable (go on with: kyara train $CONFIG --init $OUT/portable ...)"
