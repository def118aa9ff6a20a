"""How many APGD-T targets the benchmark needs: ratzoo.benchmark with 1, 3 and 9 targets
against AutoAttack's standard version (torchattacks 3.5.1) on the same images.

``python benchmarks/bench_targets.py [--model at] [--n 100] [--targets 1,3,9] [--autoattack]``

With the same seed, the APGD-CE stage is identical for every target count and APGD-T tries
the targets in the same order, so the robust sets are nested (more targets can only break
more images); the script checks that and prints, per target count, robust accuracy, the images
broken by the extra targets and the cost. ``--autoattack`` adds torchattacks'
``AutoAttack(norm='Linf', eps=8/255, version='standard')`` (APGD-CE, APGD-T with 9 targets,
FAB-T, Square with 5000 queries), judged by ratzoo's decision rule, with the paired counts.
Needs ``pip install --no-deps torchattacks==3.5.1 tqdm requests`` for ``--autoattack`` only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

import ratzoo
from ratzoo.data import to_tensor
from ratzoo.judge import decide


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="at")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--targets", default="1,3,9")
    p.add_argument("--threat-model", default="Linf", choices=["Linf", "L2"])
    p.add_argument("--autoattack", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    xs, ys = ratzoo.load_cifar10("test", root=args.data_dir)
    x = to_tensor(np.array(xs[: args.n]))
    y = torch.from_numpy(np.array(ys[: args.n])).long()
    model = ratzoo.load(args.model).eval()
    print(f"{args.model}, {args.threat_model}, first {len(x)} CIFAR-10 (JPEG copy) test images, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    robust_sets = {}
    for k in map(int, args.targets.split(",")):
        t0 = time.perf_counter()
        rec = ratzoo.benchmark(model, x, y, args.threat_model, n_target_classes=k, model_name=args.model)
        robust_sets[k] = rec.per_image["robust"]
        print(json.dumps({"targets": k, "robust": round(100 * rec.robust_accuracy, 1),
                          "after_apgd_ce": round(100 * rec.extra["robust_accuracy_after"]["apgd-ce"], 1),
                          "image_draws": rec.passes["image_draws"], "seconds": round(time.perf_counter() - t0, 1)}),
              flush=True)
    ks = sorted(robust_sets)
    for a, b in zip(ks, ks[1:]):
        nested = all(rb <= ra for ra, rb in zip(robust_sets[a], robust_sets[b]))
        extra = sum(ra and not rb for ra, rb in zip(robust_sets[a], robust_sets[b]))
        print(f"targets {a} -> {b}: {extra} more images broken; nested: {nested}", flush=True)
    if args.autoattack:
        import torchattacks

        t0 = time.perf_counter()
        # torchattacks' FAB views input gradients as contiguous: give it a contiguous-format copy
        import copy

        aa_model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
        aa = torchattacks.AutoAttack(aa_model, norm=args.threat_model, eps=8 / 255 if args.threat_model == "Linf" else 0.5,
                                     version="standard", n_classes=10, seed=0)
        adv = aa(x.contiguous(), y)
        secs = time.perf_counter() - t0
        clean = decide(model, x, y, samples=100, seed=0)
        robust_aa = (clean.correct & decide(model, adv, y, samples=100, seed=1).correct).tolist()
        best = robust_sets[ks[-1]]
        print(json.dumps({"autoattack_standard_robust": round(100 * sum(robust_aa) / len(x), 1), "seconds": round(secs, 1),
                          f"only_ratzoo_{ks[-1]}_targets_broke": sum(a and not b for a, b in zip(robust_aa, best)),
                          "only_autoattack_broke": sum(b and not a for a, b in zip(robust_aa, best))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
