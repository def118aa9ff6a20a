"""An adaptive attack on an inference-only defense: BPDA through its base (Athalye et al., ICML
2018, "Obfuscated gradients give a false sense of security", Sec. 4.1).

``python benchmarks/bench_adaptive.py sap_at [--threat-model Linf] [--n 500] [--against at] [--every]
[--attack bpda|eot] [--draws K]``

A defense that wraps a base model (SAP, random resize-pad: ``enabled`` switches it off) may
score well because its gradients are noisy or vanish, not because it is robust. ``--attack
bpda`` runs the leaderboard's ensemble (:func:`ratzoo.benchmark`, same seed, budget and
iterations) against a model whose forward is the defense's (each EOT draw a fresh defense draw,
so the attack's losses and early stops see the real model) and whose backward is the base's
(the defense treated as the identity on the backward pass: BPDA). ``--attack eot --draws K``
runs it on the defense itself with K draws per step for every attack (the leaderboard: 20 for
APGD-CE, 5 and 2 for the targets). Every example is judged by the defense's own 100-draw
decision rule, so any image a check breaks is a real break.

A check only ever breaks more images, so it attacks the images robust in the committed
leaderboard record, lost by the ``--against`` entry's record (``--every``: all of them) and not
broken by an earlier committed check of the entry: those decide the paired test. It prints how
many it breaks, the worst case of all the checks per image and its exact McNemar test against
``--against``. The record lands in
``checkpoints/results/benchmark/checks/<entry>_<threat>_<attack>[K][_only_<against>].json``
(its ``dataset_indices`` name the images); parts of 10 images are kept in
``$RATZOO_CACHE/bench_adaptive/`` so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

import ratzoo
from ratzoo.data import cache_dir, to_tensor
from ratzoo.stats import mcnemar_exact
from train.leaderboard import broken_by_checks

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "checkpoints" / "results" / "benchmark"


class BPDA(nn.Module):
    """``defense``'s output forward, ``defense.base``'s gradient backward.

    ``out = d + (b - b.detach())``: the value is the defense draw ``d``, the gradient that of the
    base's logits ``b``; without gradient (the decision rule, the engine's probes) the base is
    not run at all.
    """

    def __init__(self, defense: nn.Module) -> None:
        super().__init__()
        if not hasattr(defense, "enabled") or not hasattr(defense, "base"):
            raise TypeError(f"{type(defense).__name__} has no `enabled` switch and `base`: BPDA needs both")
        self.defense = defense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return self.defense(x)
        with torch.no_grad():
            d = self.defense(x)
        self.defense.enabled = False
        try:
            b = self.defense(x)
        finally:
            self.defense.enabled = True
        return d + (b - b.detach())


def run(entry: str, threat: str, n: int, against: str, every: bool, attack: str, draws: int | None) -> None:
    leader = ratzoo.Record.load(RECORDS / f"{entry}_{threat}.json")
    lead = leader.robust_per_image()[:n]
    other = ratzoo.Record.load(RECORDS / f"{against}_{threat}.json").robust_per_image()[:n]
    earlier = broken_by_checks(entry, threat)
    # a check only ever breaks images, so on the images robust only with the defense it decides the paired test
    chosen = [i for i in range(n) if lead[i] and (every or not other[i]) and i not in earlier]
    model = ratzoo.load(entry).eval()
    xs, ys = ratzoo.load_cifar10("test")
    x, y = to_tensor(np.array(xs[chosen])), torch.as_tensor(ys[chosen])
    p = leader.params
    same = {k: p[k] for k in ("steps", "eot_samples", "n_target_classes", "target_eot_samples", "late_target_eot_samples",
                              "cascade_after", "cascade_margin", "refine_margin", "decision_samples", "precision")}
    if draws:
        same.update(eot_samples=draws, target_eot_samples=draws, late_target_eot_samples=draws)
    name = f"{attack}{draws or ''}{'' if every else '_only_' + against}"
    store = cache_dir() / "bench_adaptive" / f"{entry}_{threat}_{name}_n{n}"
    store.mkdir(parents=True, exist_ok=True)
    parts = {int(f.stem.split("_")[1]): json.loads(f.read_text()) for f in store.glob("part_*.json")}

    def keep(j: int, part: dict) -> None:
        (store / f"part_{j}.json.tmp").write_text(json.dumps(part))
        os.replace(store / f"part_{j}.json.tmp", store / f"part_{j}.json")
        print(f"part {j} done", flush=True)

    target = BPDA(model) if attack == "bpda" else model
    rec = ratzoo.benchmark(target, x, y, threat, seed=leader.seed, part_size=10, parts=parts, on_part=keep,
                           model_name=f"{entry} ({'BPDA through its base' if attack == 'bpda' else 'EOT'}, "
                                      f"{same['eot_samples']} draws)", **same)
    rec.extra["dataset_indices"] = chosen  # the images attacked (the record's offset does not apply)
    rec.extra["command"] = (f"python benchmarks/bench_adaptive.py {entry} --threat-model {threat} --n {n} --against "
                            f"{against} --attack {attack}" + (f" --draws {draws}" if draws else "") + (" --every" if every else ""))
    out = RECORDS / "checks" / f"{entry}_{threat}_{name}.json"
    rec.save(out)
    now = {i for i, r in zip(chosen, rec.robust_per_image()) if not r}
    worst = [lead[i] and i not in earlier and i not in now for i in range(n)]
    only_a = sum(w and not o for w, o in zip(worst, other))
    only_b = sum(o and not w for w, o in zip(worst, other))
    print(f"{entry} {threat}, first {n} images: {sum(lead)} robust under the leaderboard's ensemble, {len(earlier)} "
          f"broken by earlier checks; {len(chosen)} attacked ({'every one left' if every else 'those ' + against + ' loses'}), "
          f"{len(now)} broken, {rec.elapsed_s:.0f} s -> {out.relative_to(ROOT)}")
    print(f"worst case of all: {100 * np.mean(worst):.1f} %{'' if every else ' (an upper bound: only some images attacked)'}"
          f"; vs {against} {100 * np.mean(other):.1f} %: {only_a} robust only with the defense, {only_b} only without, "
          f"exact McNemar p = {mcnemar_exact(only_a, only_b):.2g}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("entry", help="a wrapper entry of the zoo (sap_at, rp_at, ...)")
    ap.add_argument("--threat-model", default="Linf", choices=["Linf", "L2"])
    ap.add_argument("--n", type=int, default=500, help="the first n test images (at most the record's)")
    ap.add_argument("--against", default="at", help="the entry the worst case is paired with")
    ap.add_argument("--every", action="store_true",
                    help="attack every image robust under the leaderboard, not only those --against loses")
    ap.add_argument("--attack", default="bpda", choices=["bpda", "eot"],
                    help="bpda: the base's gradients; eot: the defense's own, with --draws")
    ap.add_argument("--draws", type=int, help="EOT draws per step of every attack (default: the record's)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    run(a.entry, a.threat_model, a.n, a.against, a.every, a.attack, a.draws)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
