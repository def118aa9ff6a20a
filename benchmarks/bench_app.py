"""The demo's latency: one PGD-20 attack with 10 EOT draws on one image, through app.logic.

``python benchmarks/bench_app.py [--threads N] [--repeats R] [--width W]``

Exactly what pressing **Attack** runs (``app.logic.attack_image``, i.e. ``ratzoo.run_attack``) on a PreActResNet-18 of
width 16 with layer-1 noise (random weights: the cost does not depend on them), on a
gallery image, without the optional certificate. *attack* is the attack alone (20
forward/backward passes of 10 draws); *press-to-result* adds the two EOT predictions of
the success rule (100 fresh draws each on the clean and the adversarial image). Times are
the median and best of ``--repeats`` runs after one warm-up. The load average is printed
because the CPU may be shared (e.g. with a training job): read the numbers with it. The
process CPU time is printed too: with ``--threads 1`` it is what the run costs on an idle
core, whatever else the machine is doing (with more threads, OpenMP's spin-waiting on a
busy machine inflates it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ratzoo  # noqa: E402
from app import logic  # noqa: E402

TARGET_S = 1.0  # the budget for one PGD-20 / EOT-10 attack


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0 = the app's setting: 1 per worker)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--eot", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(args.threads or 1)
    torch.manual_seed(0)
    model = ratzoo.build_model(width=args.width, noise_kind="fixed", noise_sigma=0.5).eval()
    loaded = logic.LoadedModel(f"preact_resnet18-w{args.width}", model, ratzoo.is_randomized(model))
    image = logic.gallery_image(0)
    spec = logic.validate_spec("pgd-linf", 8, args.steps, args.eot, 0)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"PreActResNet-18 width {args.width} (layer-1 noise, random weights), {spec.describe()}, one 32x32 image")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    logic.attack_image(loaded, image, spec)  # warm-up
    attack, total, cpu = [], [], []
    for _ in range(args.repeats):
        c0 = time.process_time()
        out = logic.attack_image(loaded, image, spec).outcome
        cpu.append(time.process_time() - c0)
        attack.append(out.attack_s)
        total.append(out.elapsed_s)
    assert bool(out.within_budget().all()), "the attack left its budget"
    print(f"{'':>16} {'median (s)':>11} {'best (s)':>9}")
    print(f"{'attack':>16} {statistics.median(attack):>11.3f} {min(attack):>9.3f}   wall clock")
    print(f"{'press-to-result':>16} {statistics.median(total):>11.3f} {min(total):>9.3f}   wall clock")
    print(f"{'press-to-result':>16} {statistics.median(cpu):>11.3f} {min(cpu):>9.3f}   process CPU time")
    verdict = "under" if statistics.median(attack) < TARGET_S else "OVER"
    print(f"median attack time is {verdict} the {TARGET_S:.0f} s target ({args.repeats} runs)")


if __name__ == "__main__":
    main()
