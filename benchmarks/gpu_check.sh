#!/usr/bin/env bash
# The prepared GPU check: rat, Linf 8/255, test images 0-999 on CUDA with today's ensemble, in
# one command of under 10 minutes; prints images/s and the robust accuracy next to the committed
# CPU record's (checkpoints/results/benchmark/rat_Linf.json), and whether both ran one ensemble.
#
#   RATZOO_CIFAR10=<folder with plain_text/test-*.parquet> bash benchmarks/gpu_check.sh
#
# Writes the CUDA record to $OUT (the device tool's folder) or a temporary folder. N overrides
# the number of images, PY the interpreter (the device image's python3 holds torch); DEVICE=cpu
# N=20 rehearses the script on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
N=${N:-1000}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-$(mktemp -d)}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
scratch=$(mktemp -d)  # parts and the decoded dataset stay out of $OUT, which travels back
export RATZOO_BENCHMARK_PARTS=$scratch/parts RATZOO_CACHE=$scratch/cache
: "${RATZOO_CIFAR10:?set RATZOO_CIFAR10 to a CIFAR-10 folder in the Hub layout (plain_text/test-*.parquet)}"
[ "$DEVICE" = cpu ] || $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this check is for a GPU'
print('device:', torch.cuda.get_device_name(), '| torch', torch.__version__)"
timeout 560 $PY -m ratzoo benchmark --model rat --threat-model Linf --n "$N" --device "$DEVICE" --no-progress \
  --out "$OUT/rat_Linf_$DEVICE.json"
$PY - "$OUT/rat_Linf_$DEVICE.json" checkpoints/results/benchmark/rat_Linf.json <<'EOF'
import json, sys
from ratzoo.benchmarking import ensemble_params
gpu, cpu = (json.load(open(p)) for p in sys.argv[1:])
same = all(gpu["params"].get(k) == cpu["params"].get(k) for k in ensemble_params())
for name, r in (("this run", gpu), ("CPU record", cpu)):
    print(f"{name:<11} n={r['n']:<5} {r['n'] / r['elapsed_s']:8.2f} images/s ({r['elapsed_s']:.0f} s)  "
          f"clean {100 * r['clean_accuracy']:.1f} %  robust {100 * r['robust_accuracy']:.1f} % "
          f"(95 % CI {100 * r['robust_accuracy_ci95'][0]:.1f}-{100 * r['robust_accuracy_ci95'][1]:.1f})  "
          f"device {r['device']}")
print("same ensemble:", same, "" if same else "(the CPU record predates today's ensemble: compare with care)")
EOF
