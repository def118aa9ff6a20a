"""Does dropping resolved images cost robust-accuracy points? Early stopping vs full runs.

``python benchmarks/bench_resolve.py [--models standard,at,rn,rat,lerat] [--attack pgd-linf] [--n 200]
[--out rows.jsonl]``

For each model, the same attack on the same first ``--n`` CIFAR-10 test images with the same
seed, twice through :func:`ratzoo.run_attack`: with early stopping (PGD / APGD drop an image
once their EOT estimate is fooled by ``resolve_margin``, then confirm-or-continue re-attacks
the ones the decision rule does not confirm) and without (every image attacked every step).
Prints robust accuracy of both, the paired counts (robust under one run only), the
image-draws each spent and seconds. With ``--out`` each model's row is appended to a JSON-lines
file and models already there are skipped, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import ratzoo
from ratzoo.attacks.base import RESOLVE_MARGIN, parse_budget
from ratzoo.data import to_tensor


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="standard,at,rn,rat,lerat")
    p.add_argument("--attack", default="pgd-linf", help="pgd-linf, pgd-l2, apgd-ce or apgd-dlr")
    p.add_argument("--eps", default=None, help="budget (default: the attack's)")
    p.add_argument("--steps", type=int, default=None, help="iterations (default: the attack's)")
    p.add_argument("--eot", type=int, default=20)
    p.add_argument("--resolve-margin", default=None, help="default: ratzoo.attacks.base.RESOLVE_MARGIN")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="append JSON lines here; models already in it are skipped")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    xs, ys = ratzoo.load_cifar10("test", root=args.data_dir)
    x = to_tensor(np.array(xs[: args.n]))
    y = torch.from_numpy(np.array(ys[: args.n])).long()
    done = set()
    if args.out and Path(args.out).exists():
        done = {(r["model"], r["attack"], r.get("resolve_margin")) for r in map(json.loads, Path(args.out).read_text().splitlines())}
    kw = dict(eps=args.eps, steps=args.steps, eot_samples=args.eot, seed=0)
    if args.resolve_margin is not None:
        kw["resolve_margin"] = args.resolve_margin
    print(f"{args.attack}, EOT-{args.eot}, first {len(x)} CIFAR-10 (JPEG copy) test images, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    margin = parse_budget(args.resolve_margin, "--resolve-margin") if args.resolve_margin else RESOLVE_MARGIN
    for name in args.models.split(","):
        if (name, args.attack, margin) in done:
            print(f"{name}: already in {args.out}, skipped", flush=True)
            continue
        model = ratzoo.load(name).eval()
        t0 = time.perf_counter()
        fast = ratzoo.run_attack(model, x, y, args.attack, **kw)
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = ratzoo.run_attack(model, x, y, args.attack, early_stop=False, **kw)
        t_full = time.perf_counter() - t0
        row = {
            "model": name, "attack": args.attack, "n": len(x), "eot": args.eot,
            "resolve_margin": fast.params.get("resolve_margin"), "randomness": fast.randomness.kind,
            "robust_fast": round(float(fast.robust.float().mean()) * 100, 1),
            "robust_full": round(float(full.robust.float().mean()) * 100, 1),
            "only_fast_robust": int((fast.robust & ~full.robust).sum()),
            "only_full_robust": int((full.robust & ~fast.robust).sum()),
            "stopped_early": int(fast.stopped_early.sum()), "retried": int(fast.retried.sum()),
            "image_draws_fast": fast.stats.image_draws, "image_draws_full": full.stats.image_draws,
            "seconds_fast": round(t_fast, 1), "seconds_full": round(t_full, 1),
            "attack_seconds_fast": round(fast.attack_s, 1), "attack_seconds_full": round(full.attack_s, 1),
        }
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
