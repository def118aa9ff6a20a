"""Seconds per certified image: PreActResNet-18 (width 16), noise after the first layer.

``python benchmarks/bench_certify.py [--draws 100000] [--chunk-sizes 1000] [--threads N]``

Times :func:`ratzoo.certify` (n0 = 100 selection draws + n estimation draws per image,
batched through the model ``--chunk-size`` images at a time) on random-weight models:
the cost does not depend on the weights. The first layer's Lipschitz bound is computed
once per model (timed separately), as the CLI does. With ``--draws`` below 100,000 the time
per image at n = 100,000 is *extrapolated* linearly from the measured draws per second
(the statistics cost ~0.1 s per image and do not grow with n) and marked as such. The
time is the best of ``--repeats`` runs (after a short warm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from ratzoo import build_model
from ratzoo.certification import certify
from ratzoo.lipschitz import feature_lipschitz

FULL_N = 100_000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--draws", type=int, default=FULL_N, help="estimation draws per image, Cohen et al.'s n "
                   "(default 100000)")
    p.add_argument("--draws0", type=int, default=100, help="selection draws per image, Cohen et al.'s n0 (default 100)")
    p.add_argument("--images", type=int, default=1, help="images certified per batch size (default 1)")
    p.add_argument("--chunk-sizes", default="500", help="comma-separated images per forward pass to compare")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--sigma", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--repeats", type=int, default=1, help="time each batch size this many times, keep the best")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default="", help="also write the results to this JSON file")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(width=args.width, noise_kind="fixed", noise_sigma=args.sigma).to(device).eval()
    x = torch.rand(args.images, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(f"PreActResNet-18 width {args.width}, layer-1 noise sigma {args.sigma}, n0 {args.draws0}, n {args.draws}, "
          f"{args.images} image(s), torch {torch.__version__}, {where}")
    t0 = time.perf_counter()
    lip = feature_lipschitz(model)
    t_lip = time.perf_counter() - t0
    print(f"Lipschitz bound {lip.value:.4f} (power iteration {lip.power_iteration:.4f}, "
          f"{lip.iterations} its): {t_lip:.2f} s once per model")
    certify(model, x[:1], n0=10, n=200, seed=0, lipschitz=lip.value)  # warm-up
    rows = []
    label = "s/image at n=100k" + ("" if args.draws == FULL_N else " (EXTRAPOLATED)")
    print(f"{'batch':>6} {'s/image':>9} {'draws/s':>9} {label:>34}")
    for bs in (int(b) for b in args.chunk_sizes.split(",")):
        times = []
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            certify(model, x, n0=args.draws0, n=args.draws, seed=0, chunk_size=bs, lipschitz=lip.value)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        per_image = min(times) / args.images
        rate = (args.draws0 + args.draws) / per_image
        full = per_image if args.draws == FULL_N else (args.draws0 + FULL_N) / rate
        rows.append({"batch_size": bs, "seconds_per_image": per_image, "draws_per_second": rate,
                     "seconds_per_image_at_100k": full, "extrapolated": args.draws != FULL_N})
        print(f"{bs:>6} {per_image:>9.2f} {rate:>9.0f} {full:>34.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": where, "torch": torch.__version__, "n": args.draws, "n0": args.draws0,
                       "images": args.images, "width": args.width, "repeats": args.repeats, "lipschitz_seconds": t_lip, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
