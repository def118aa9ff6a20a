"""Training throughput (images/s) of each method with the trainer's own step.

    python benchmarks/bench_train.py [--width 16] [--steps 30] [--batch-size 128] [--threads 0] [--contiguous]

Runs ``--steps`` optimizer steps of every method (standard, at, rn, rat, lerat) on random
uint8 images with the trainer's augmentation, training attack (FGSM-RS) and update, after
2 warm-up steps, and prints images/second. Random data costs the same as CIFAR-10.
On a GPU it also uses bf16 autocast and channels_last, as the trainer does. ``--contiguous`` copies
the augmented batch to a contiguous layout first: the trainer keeps augment's channels-last view,
and running both says why.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from ratzoo.models import build_model
from train.config import PRESETS, TrainConfig
from train.loop import adversarial_examples, augment, seeded


def bench(method: str, args: argparse.Namespace, device: torch.device) -> float:
    preset = dict(PRESETS[method])
    cfg = TrainConfig(**{**preset, "width": args.width, "architecture": args.architecture})
    model = build_model(architecture=cfg.architecture, width=cfg.width, noise_kind=cfg.noise_kind,
                        noise_sigma=cfg.noise_sigma if cfg.noise_kind != "none" else 0.0).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    data = torch.randint(0, 256, (args.batch_size * 4, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (args.batch_size * 4,), device=device)
    g = seeded(0, 1, device=device)

    def step(i: int) -> None:
        j = (i % 4) * args.batch_size
        x = augment(data[j:j + args.batch_size], g).float().div_(255)
        if args.contiguous:
            x = x.contiguous()
        y = labels[j:j + args.batch_size]
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        if cfg.adversarial:
            x = adversarial_examples(model, x, y, cfg, g, autocast)
        with autocast:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(2):
        step(i)
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    if cuda:
        torch.cuda.synchronize()
    return args.steps * args.batch_size / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--architecture", default="preact_resnet18")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--contiguous", action="store_true", help="copy augment's channels-last batch to contiguous")
    p.add_argument("--methods", default="standard,at,rn,rat,lerat")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"{args.architecture} width {args.width}, batch {args.batch_size}, {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for method in args.methods.split(","):
        ips = bench(method, args, device)
        print(f"{method:9s} {ips:9.1f} images/s   one 49,000-image epoch: {49_000 / ips:7.1f} s")


if __name__ == "__main__":
    main()
