"""Memory layout and pass size on this machine: images per second of one forward pass and of
one forward + input-gradient pass (what every attack step costs), for the default
(contiguous) layout and channels_last, at several images per pass.

``python benchmarks/bench_layout.py [--model rat] [--threads 1] [--sizes 32,64,128,256,512]``

This is what set two defaults: :func:`ratzoo.load` returns channels_last models, and
:data:`ratzoo.eot.CPU_CHUNK` (images per pass on CPU). The noise is on and seeded, as in an
EOT attack. Times are the best of ``--repeats`` after a warm-up; both layouts' logits are
compared (they should agree to ~1e-6).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

import ratzoo


def rate(model: torch.nn.Module, size: int, grad: bool, repeats: int) -> float:
    x = torch.rand(size, 3, 32, 32, generator=torch.Generator().manual_seed(size))
    best = float("inf")
    for i in range(repeats + 1):  # the first run is a warm-up
        xi = x.clone().requires_grad_(grad)
        t0 = time.perf_counter()
        with ratzoo.noise_control(model, seed=i), torch.set_grad_enabled(grad):
            out = model(xi)
            if grad:
                torch.autograd.grad(out.logsumexp(1).sum(), xi)
        if i:
            best = min(best, time.perf_counter() - t0)
    return size / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="rat", help="zoo name or checkpoint folder")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--sizes", default="32,64,128,256,512", help="images per pass")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cl = ratzoo.load(args.model)  # channels_last, as load() returns it
    plain = ratzoo.load(args.model).to(memory_format=torch.contiguous_format)
    for m in (cl, plain):
        m.requires_grad_(False)
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), ratzoo.noise_control(cl, seed=0):
        a = cl(x)
    with torch.no_grad(), ratzoo.noise_control(plain, seed=0):
        b = plain(x)
    print(f"{args.model}, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}); logits max |diff| between layouts "
          f"{(a - b).abs().max().item():.1e}")
    print(f"{'images/pass':>11} {'fwd contig':>11} {'fwd CL':>8} {'fwd+grad contig':>16} {'fwd+grad CL':>12}  (images/s)")
    for size in map(int, args.sizes.split(",")):
        r = [rate(m, size, g, args.repeats) for g in (False, True) for m in (plain, cl)]
        print(f"{size:>11} {r[0]:>11.0f} {r[1]:>8.0f} {r[2]:>16.0f} {r[3]:>12.0f}", flush=True)


if __name__ == "__main__":
    main()
