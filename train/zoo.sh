#!/usr/bin/env bash
# Train the bundled zoo (PreActResNet-18 w16: standard, at, rn, rat, lerat) on this machine.
#
#   nohup bash train/zoo.sh > ~/.cache/ratzoo/zoo.log 2>&1 &
#
# Resumable: every run keeps its training state under ~/.cache/ratzoo/runs/<name>/ and
# rerunning this script continues where it stopped (finished checkpoints are skipped).
# The noise std of rn/rat/lerat comes from the grid search in train/grid.py (its result
# is written to checkpoints/results/sigma_grid.json and reused on reruns).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${RATZOO_CIFAR10:-../shared/data/cifar10}
# RATZOO_THREADS=1 when the machine is shared: two OpenMP threads fighting other processes
# for two cores measured 5-10x slower than one thread with a core of its own.
COMMON=(--data-dir "$DATA" --eval-n 500 --eval-eot 10 --resume --threads "${RATZOO_THREADS:-0}")

run() {
  local name=$1; shift
  if [ -f "checkpoints/$name/model.safetensors" ]; then echo "== $name: done, skipping"; return 0; fi
  echo "== $name: $(date -u +%FT%TZ)"
  "$PY" -m train --preset "$name" "${COMMON[@]}" "$@"
}

run standard || echo "!! standard failed (rerun this script to retry)"
run at || echo "!! at failed (rerun this script to retry)"
SIGMA=$("$PY" -m train.grid --data-dir "$DATA") || { echo "!! sigma grid search failed"; exit 1; }
echo "== chosen noise std: $SIGMA"
run rn --noise-sigma "$SIGMA" || echo "!! rn failed"
run rat --noise-sigma "$SIGMA" || echo "!! rat failed"
run lerat --noise-sigma "$SIGMA" || echo "!! lerat failed"
# a second pass picks up runs whose training finished but whose export failed
run standard; run at
run rn --noise-sigma "$SIGMA"; run rat --noise-sigma "$SIGMA"; run lerat --noise-sigma "$SIGMA"
echo "== zoo done: $(date -u +%FT%TZ)"
