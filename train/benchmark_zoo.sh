#!/usr/bin/env bash
# The leaderboard's measurements: every zoo model under both threat models, n=1000, with
# `python -m ratzoo benchmark` in resumable parts of 100 images. Start it once: the CLI runs one
# process per core sharing each run through the part locks (the faster layout), and a killed run
# resumes where it stopped:
#
#   nohup bash train/benchmark_zoo.sh > ~/.cache/ratzoo/bench_zoo.log 2>&1 &
#
# MODELS / THREATS / N override the lists, PROCS the processes (default one per core); finished records land in checkpoints/results/benchmark/
# and their entries in checkpoints/results/leaderboard.json.
#
# The noisy models take several core-hours each, more than one working session, and neither the
# checkout's untracked files nor ~/.cache outlive a session here. So the finished parts (each a
# real 100-image measurement) are kept in the repository, under checkpoints/results/benchmark/parts/
# (RATZOO_BENCHMARK_PARTS, parts only: the dataset cache stays in RATZOO_CACHE), and committed as they finish: a new clone resumes where the last commit stopped.
# Once a record is written, its parts are redundant (the record holds every per-image outcome).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODELS=${MODELS:-$($PY -c "from ratzoo import zoo; print(' '.join(zoo.names()))")}
THREATS=${THREATS:-"Linf L2"}
N=${N:-1000}
export RATZOO_CIFAR10=${RATZOO_CIFAR10:-$(realpath ../shared/data/cifar10)}
export RATZOO_BENCHMARK_PARTS=${RATZOO_BENCHMARK_PARTS:-$PWD/checkpoints/results/benchmark/parts/benchmark}
mkdir -p checkpoints/results/benchmark
for threat in $THREATS; do
  for model in $MODELS; do
    out=checkpoints/results/benchmark/${model}_${threat}.json
    # a record of today's ensemble is done; one of an older ensemble is measured again
    [ -f "$out" ] && $PY -c "import json, sys; from ratzoo.benchmarking import ensemble_params as e
p = json.load(open(sys.argv[1]))['params']; sys.exit(any(p.get(k) != v for k, v in e().items()))" "$out" && continue
    $PY -m ratzoo benchmark --model "$model" --threat-model "$threat" --n "$N" --resume ${PROCS:+--procs "$PROCS"} \
      --no-progress --out "$out" --leaderboard checkpoints/results/leaderboard.json
    # the README's leaderboard, zoo table and paired claims, and the cards, follow the new record
    [ -f "$out" ] && $PY -m train.report --no-plots
  done
done
