#!/usr/bin/env bash
# Measure the zoo (python -m train.experiments, then python -m train.report) as each bundled
# checkpoint appears; runs beside train/zoo.sh on the other core.
#
#   nohup bash train/eval_zoo.sh > ~/.cache/ratzoo/eval.log 2>&1 &
#   STAGES=table MODELS="rn rat" nohup bash train/eval_zoo.sh > ~/.cache/ratzoo/eval.log 2>&1 &  # a part
#
# Resumable: finished measurements are records in checkpoints/results/records/ and are not
# measured again; records of more than $SHARD (200) images are measured in parts that survive
# a kill (python -m train.experiments --shard).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${RATZOO_CIFAR10:-../shared/data/cifar10}
for name in ${MODELS:-standard at rn rat lerat}; do
  while [ ! -f "checkpoints/$name/model.safetensors" ]; do sleep 60; done
  echo "== $name: $(date -u +%FT%TZ)"
  "$PY" -m train.experiments --models "$name" --data-dir "$DATA" --threads "${RATZOO_THREADS:-1}" \
    --stages "${STAGES:-table,table2,fig3,fig4}" --shard "${SHARD:-200}" \
    || echo "!! experiments failed for $name"
  "$PY" -m train.report || true
done
echo "== eval done: $(date -u +%FT%TZ)"
