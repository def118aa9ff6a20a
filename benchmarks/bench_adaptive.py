"""An adaptive attack on an inference-only defense: BPDA through its base (Athalye et al., ICML
2018, "Obfuscated gradients give a false sense of security", Sec. 4.1).

``python benchmarks/bench_adaptive.py sap_at [--threat-model Linf] [--n N] [--against at] [--every]
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
leaderboard record (every image it measured), lost by the ``--against`` entry's record
(``--every``: lost or not) and not broken by an earlier committed check of the entry: those
decide the paired test. It prints how
many it breaks, then the leaderboard page's line (:func:`train.leaderboard.checks_text`): the
worst case of all the checks per image and its exact McNemar test. The record lands in
``checkpoints/results/benchmark/checks/<entry>_<threat>_<attack>[K][_only_<against>].json``
(its ``dataset_indices`` name the images); parts of 10 images are kept in
``$RATZOO_CACHE/bench_adaptive/<key of the check and its images>`` so a killed run resumes, and
a second copy of the same command started beside it (one per core) shares them through their
locks (:meth:`ratzoo.parts.Parts.claim`, as ``python -m ratzoo benchmark``'s processes do).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

import ratzoo
from ratzoo import zoo
from ratzoo.data import cache_dir, to_tensor
from ratzoo.parts import Parts, folder_key
from train import leaderboard

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "checkpoints" / "results" / "benchmark"
PART_SIZE = 10  # a check attacks tens of images, each costing minutes: small parts lose little to a kill


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


def run(entry: str, threat: str, against: str, every: bool, attack: str, draws: int | None,
        n: int | None = None) -> None:
    (lb,) = [e for e in leaderboard.entries() if e.name == entry and e.threat_model == threat]
    leader = ratzoo.Record.load(ROOT / lb.record)
    p = leader.params
    keys = ("steps", "eot_samples", "n_target_classes", "target_eot_samples", "late_target_eot_samples",
            "cascade_after", "cascade_margin", "refine_margin", "decision_samples", "precision")
    if missing := [k for k in keys if k not in p]:
        raise SystemExit(f"{lb.record} was measured by an older ensemble (no {', '.join(missing)}): re-measure it with "
                         f"`MODELS={entry} THREATS={threat} bash train/benchmark_zoo.sh` before checking it")
    same = {k: p[k] for k in keys}
    if draws:
        same.update(eot_samples=draws, target_eot_samples=draws, late_target_eot_samples=draws)
    other = ratzoo.Record.load(RECORDS / f"{against}_{threat}.json")
    earlier = leaderboard.broken_by_checks(entry, threat)
    # a check only ever breaks images, so on the images robust only with the defense it decides the paired test
    lost = dict(zip(other.image_indices, (not r for r in other.robust_per_image())))
    chosen = [i for i, r in zip(leader.image_indices, leader.robust_per_image())
              if r and (every or lost[i]) and i not in earlier and (n is None or i < n)]
    model = ratzoo.load(entry).eval()
    xs, ys = ratzoo.load_cifar10("test")
    x, y = to_tensor(np.array(xs[chosen])), torch.as_tensor(ys[chosen])
    name = f"{attack}{draws or ''}{'' if every else '_only_' + against}"
    # keyed by the images too: a newly committed check changes them, and parts of other images must not merge
    key = folder_key([entry, threat, attack, same, chosen, leader.seed])
    store = Parts(cache_dir() / "bench_adaptive" / key, len(chosen), PART_SIZE)

    def keep(j: int, part: dict) -> None:
        store.save(j, part)
        print(f"part {j} done", flush=True)

    target = BPDA(model) if attack == "bpda" else model
    common = dict(seed=leader.seed, part_size=PART_SIZE, on_part=keep, **same,
                  model_name=f"{entry} ({'BPDA through its base' if attack == 'bpda' else 'EOT'}, "
                             f"{same['eot_samples']} draws)")
    for j, _, _ in store.unclaimed():  # the parts lock: a second copy of this command shares them (one per core)
        ratzoo.benchmark(target, x, y, threat, only_parts=[j], **common)
    if len(parts := store.finished()) < len(store.ranges):
        print("the other parts are being measured by another copy of this command: the one that finishes last "
              "writes the record (or rerun this command once they are done)")
        return
    rec = ratzoo.benchmark(target, x, y, threat, parts=parts, **common)
    rec.extra["dataset_indices"] = chosen  # the images attacked (the record's offset does not apply)
    rec.extra["command"] = (f"python benchmarks/bench_adaptive.py {entry} --threat-model {threat} "
                            + (f"--n {n} " if n else "") + f"--against {against} "
                            f"--attack {attack}" + (f" --draws {draws}" if draws else "") + (" --every" if every else ""))
    out = RECORDS / "checks" / f"{entry}_{threat}_{name}.json"
    rec.save(out)
    print(f"{entry} {threat}: {len(chosen)} images attacked, {sum(not r for r in rec.robust_per_image())} broken, "
          f"{rec.elapsed_s:.0f} s -> {out.relative_to(ROOT)}")
    print(leaderboard.checks_text(lb, leaderboard.entries(), zoo.entries(), against))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("entry", help="a wrapper entry of the zoo (sap_at, rp_at, ...)")
    ap.add_argument("--threat-model", default="Linf", choices=["Linf", "L2"])
    ap.add_argument("--n", type=int, help="only the first n test images (default: every image of the record)")
    ap.add_argument("--against", default="at", help="the entry the worst case is paired with")
    ap.add_argument("--every", action="store_true",
                    help="attack every image robust under the leaderboard, not only those --against loses")
    ap.add_argument("--attack", default="bpda", choices=["bpda", "eot"],
                    help="bpda: the base's gradients; eot: the defense's own, with --draws")
    ap.add_argument("--draws", type=int, help="EOT draws per step of every attack (default: the record's)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    run(a.entry, a.threat_model, a.against, a.every, a.attack, a.draws, a.n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
