"""EOT prediction, batched vs looped: PreActResNet-18 (width 16), batch 64, K = 1, 10, 100.

``python benchmarks/bench_eot.py [--threads N] [--repeats R]``

*batched* is :func:`ratzoo.predict_proba`: the K noise draws of the batch go through the
model as one batch (K * 64 images, chunked at 4096). *looped* is what it replaces: a
Python loop of K forward passes of 64 images, averaging the softmax. Both use the same
seeded generator, so they compute the same numbers (checked). Times are the best of
``--repeats`` runs after a warm-up: wall-clock, and the process's CPU time (the steadier
measure when other jobs share the machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from ratzoo import build_model, noise_control, predict_proba


@torch.no_grad()
def looped(model: torch.nn.Module, x: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(x.shape[0], 10)
    with noise_control(model, generator=gen):
        for _ in range(samples):
            total += model(x).softmax(-1)
    return total / samples


def batched(model: torch.nn.Module, x: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    return predict_proba(model, x, samples=samples, seed=seed).probs


def best_time(fn, repeats: int) -> tuple[float, float]:
    """Best wall-clock and best process CPU time (all threads) over ``repeats`` runs. On a
    machine shared with other jobs the CPU time is the steadier of the two."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=int, default=16)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(width=args.width, noise_kind="fixed", noise_sigma=0.5).eval()
    x = torch.rand(args.batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    print(f"PreActResNet-18 width {args.width}, batch {args.batch}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(f"{'K':>4} {'looped s':>9} {'batched s':>10} {'speed-up':>9} {'looped cpu-s':>13} "
          f"{'batched cpu-s':>14} {'cpu speed-up':>13}  same result")
    batched(model, x, 2, 0), looped(model, x, 2, 0)  # warm-up
    for k in (1, 10, 100):
        same = torch.allclose(looped(model, x, k, 0), batched(model, x, k, 0), atol=1e-5)
        loop_wall, loop_cpu = best_time(lambda: looped(model, x, k, 0), args.repeats)
        batch_wall, batch_cpu = best_time(lambda: batched(model, x, k, 0), args.repeats)
        print(f"{k:>4} {loop_wall:>9.3f} {batch_wall:>10.3f} {loop_wall / batch_wall:>8.2f}x "
              f"{loop_cpu:>13.3f} {batch_cpu:>14.3f} {loop_cpu / batch_cpu:>12.2f}x  {same}", flush=True)


if __name__ == "__main__":
    main()
