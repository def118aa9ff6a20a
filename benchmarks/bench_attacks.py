"""EOT-PGD, batched draws vs a Python loop over draws: PreActResNet-18 (width 16), CPU.

``python benchmarks/bench_attacks.py [--n 256] [--steps 20] [--eot 20] [--threads N]``
(quick check: ``--n 8 --steps 2 --eot 4``).

Both run :class:`ratzoo.attacks.PGD` (Linf 8/255, step 2/255) on a randomized model
(noise sigma 0.5) with the same seed; they differ only in how the EOT output of a step
is computed:

- *batched* (ratzoo): the ``K`` draws of a sub-batch go through the model as one batch
  (:func:`ratzoo.eot.forward_draws`), then one backward;
- *looped*: ``K`` forward passes of the sub-batch in a Python loop, then one backward
  through all of them.

The objective (log mean softmax), the noise draws (same generator, same order) and the
image sub-batches (``chunk_size // K`` images) are the same, so the adversarial images
must agree (checked and printed). Speed is reported as images per second, each variant
timed once after a small warm-up (the full run is long; use ``--repeats`` for more).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import torch
import torch.nn.functional as F

from ratzoo import build_model
from ratzoo.attacks import PGD


class LoopedPGD(PGD):
    """PGD whose EOT output is computed by a Python loop over draws (the baseline)."""

    def eot_logits(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([F.log_softmax(self.model(x).float(), dim=-1) for _ in range(self._k)])
        return logp[0] if self._k == 1 else torch.logsumexp(logp, dim=0) - math.log(self._k)


def run(cls: type[PGD], model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace
        ) -> tuple[float, torch.Tensor]:
    attack = cls(model, eps=8 / 255, steps=args.steps, eot_samples=args.eot, seed=0, chunk_size=args.chunk_size or None)
    t0 = time.perf_counter()
    adv = attack.run(x, y, estimate_success=False).adv_images
    return time.perf_counter() - t0, adv


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=256, help="images (default 256)")
    p.add_argument("--steps", type=int, default=20, help="PGD steps (default 20)")
    p.add_argument("--eot", type=int, default=20, help="noise draws per step (default 20)")
    p.add_argument("--width", type=int, default=16, help="PreActResNet-18 width (default 16)")
    p.add_argument("--chunk-size", type=int, default=0,
                   help="images x draws per pass (default: the attacks' own, ratzoo.eot.CPU_CHUNK on CPU, 2048 on GPU)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs of each variant; the best is kept")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(width=args.width, noise_kind="fixed", noise_sigma=0.5).eval()  # random weights
    g = torch.Generator().manual_seed(1)
    x = torch.rand(args.n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (args.n,), generator=g)
    from ratzoo.attacks.base import DEFAULT_ATTACK_CHUNK
    from ratzoo.eot import default_chunk

    chunk = args.chunk_size or default_chunk(x.device, DEFAULT_ATTACK_CHUNK)
    print(f"EOT-PGD Linf 8/255: {args.steps} steps, {args.eot} draws, {args.n} images, PreActResNet-18 width "
          f"{args.width}, chunk {chunk} (sub-batches of {max(1, chunk // args.eot)} images)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()})")
    warm = x[: min(4, args.n)], y[: min(4, args.n)]
    results = {}
    for name, cls in (("batched", PGD), ("looped", LoopedPGD)):
        run(cls, model, *warm, argparse.Namespace(**{**vars(args), "steps": 1}))
        best, adv = min((run(cls, model, x, y, args) for _ in range(args.repeats)), key=lambda r: r[0])
        results[name] = (best, adv)
        print(f"{name:>8}: {best:9.2f} s  {args.n / best:9.2f} images/s")
    same = torch.allclose(results["batched"][1], results["looped"][1], atol=1e-6)
    print(f"speed-up batched vs looped: {results['looped'][0] / results['batched'][0]:.2f}x; same adversarial images: {same}")


if __name__ == "__main__":
    main()
