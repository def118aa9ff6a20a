#!/usr/bin/env bash
# Train the bundled zoo (PreActResNet-18 w16: standard, at, rn, rat, lerat) on this machine.
#
#   nohup bash train/zoo.sh > ~/.cache/ratzoo/zoo.log 2>&1 &
#   MODELS="rat" RATZOO_THREADS=1 nohup bash train/zoo.sh > ~/.cache/ratzoo/zoo-rat.log 2>&1 &   # a subset
#
# Resumable: every run keeps its training state under ~/.cache/ratzoo/runs/<name>/ and
# rerunning this script continues where it stopped (finished checkpoints are skipped).
# The noise std of rn/rat/lerat comes from the grid search in train/grid.py (its result
# is written to checkpoints/results/sigma_grid.json and reused on reruns). Two copies
# may run side by side on disjoint MODELS once that grid result exists.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${RATZOO_CIFAR10:-../shared/data/cifar10}
MODELS=${MODELS:-standard at rn rat lerat}
# RATZOO_THREADS=1 when the machine is shared: two OpenMP threads fighting other processes
# for two cores measured 5-10x slower than one thread with a core of its own.
COMMON=(--data-dir "$DATA" --eval-n 500 --eval-eot-samples 10 --resume --threads "${RATZOO_THREADS:-0}")

run() {
  local name=$1; shift
  if [ -f "checkpoints/$name/model.safetensors" ]; then echo "== $name: done, skipping"; return 0; fi
  echo "== $name: $(date -u +%FT%TZ)"
  "$PY" -m train --preset "$name" "${COMMON[@]}" "$@"
}

SIGMA=""
for pass in 1 2; do  # the second pass picks up runs whose training finished but whose export failed
  for name in $MODELS; do
    case $name in
      rn|rat|lerat)
        if [ -z "$SIGMA" ]; then
          SIGMA=$("$PY" -m train.grid --data-dir "$DATA") || { echo "!! sigma grid search failed"; exit 1; }
          echo "== chosen noise std: $SIGMA"
        fi
        run "$name" --noise-sigma "$SIGMA" || echo "!! $name failed (pass $pass)";;
      *) run "$name" || echo "!! $name failed (pass $pass)";;
    esac
  done
done
echo "== zoo done: $(date -u +%FT%TZ)"
