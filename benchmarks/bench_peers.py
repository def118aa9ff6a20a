"""ratzoo's attacks side by side with torchattacks 3.5.1, on the same model and images.

``python benchmarks/bench_peers.py [--model rat] [--n 200] [--threads 1] [--pairs pgd,apgd,foreign]``

torchattacks is a benchmark-only dependency (not in ratzoo's requirements)::

    pip install --no-deps torchattacks==3.5.1 tqdm requests

Pairs, run back to back in one process on the first ``--n`` CIFAR-10 test images
(``$RATZOO_CIFAR10`` or ``--data-dir``):

- ``pgd``: ratzoo PGD-Linf 8/255, 20 steps, step 2/255, EOT-20 vs torchattacks
  ``EOTPGD(eps=8/255, alpha=2/255, steps=20, eot_iter=20)``;
- ``apgd``: ratzoo APGD-CE, 100 iterations, EOT-20 vs torchattacks
  ``APGD(eps=8/255, steps=100, eot_iter=20, loss='ce')``;
- ``foreign``: the ``pgd`` pair on two small randomized wrappers around the bundled
  ``standard`` model that are not built from ratzoo's noise: per-sample input noise and
  per-call input noise (one draw for the whole batch). It also counts the distinct draws one
  EOT step of each side really averaged.

The two sides run interleaved, in groups of ``--group`` images (which side goes first
alternates), so that load from other processes falls on both alike. Seconds are wall time;
``image_draws`` (forward + input-gradient passes times images, the attack's work) do not
depend on the machine's load. ratzoo's ``total`` is one :func:`ratzoo.run_attack` call: the clean
decision (100 draws), the attack on the clean-correct images, the adversarial decision and
the confirm-or-continue re-attack; its ``attack`` column is the attack alone. The peer's
``attack`` is its attack alone; its ``total`` adds the two decisions a user needs to get a
number it can trust (same function, same seeds). Both sides' adversarial images are judged
by ratzoo's decision rule (100 fresh draws, :func:`ratzoo.judge.decide`); ``only_ours`` /
``only_peer`` count images robust under one side's examples but not the other's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch
from torch import nn

import ratzoo
from ratzoo.judge import STREAM_ADV, STREAM_CLEAN, decide, derive_seed


class InputNoise(nn.Module):
    """Per-sample input noise around a classifier: ``base(x + sigma * randn_like(x))``."""

    def __init__(self, base: nn.Module, sigma: float = 0.1) -> None:
        super().__init__()
        self.base, self.sigma = base, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x + self.sigma * torch.randn_like(x))


class SharedInputNoise(InputNoise):
    """Per-call input noise: one noise tensor for the whole batch (batch size 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x + self.sigma * torch.randn(1, *x.shape[1:], device=x.device, dtype=x.dtype))


class DrawCounter(nn.Module):
    """Records the first image's logits of every call, to count distinct draws."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.first = model, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        self.first.extend(out.detach()[: max(1, x.shape[0])].round(decimals=4).tolist())
        return out


def distinct_draws_per_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, side: str, k: int) -> int:
    """Distinct outputs for image 0 in one EOT gradient step of ``side``."""
    import torchattacks

    counter = DrawCounter(model).eval()
    x1, y1 = x[:1], y[:1]
    if side == "ratzoo":
        ratzoo.attacks.PGD(counter, eps=8 / 255, steps=1, eot_samples=k, seed=0, early_stop=False).run(
            x1, y1, estimate_success=False)
        rows = counter.first[-k:]  # the probe's calls come first; the step's k draws of image 0 last
    else:
        torchattacks.EOTPGD(counter, eps=8 / 255, alpha=2 / 255, steps=1, eot_iter=k)(x1, y1)
        rows = counter.first[-k:]
    return len({tuple(r) for r in rows})


def judge(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adv: torch.Tensor, seed: int, samples: int
          ) -> torch.Tensor:
    clean = decide(model, x, y, samples=samples, seed=derive_seed(seed, STREAM_CLEAN))
    return clean.correct & decide(model, adv, y, samples=samples, seed=derive_seed(seed, STREAM_ADV)).correct


def _peer(name: str, model: nn.Module, eot: int):
    import torchattacks

    if name == "pgd":
        return torchattacks.EOTPGD(model, eps=8 / 255, alpha=2 / 255, steps=20, eot_iter=eot)
    return torchattacks.APGD(model, norm="Linf", eps=8 / 255, steps=100, eot_iter=eot, loss="ce", seed=0)


def pair(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> dict:
    """One pair, interleaved: the images in groups of ``--group``, each group attacked by both
    sides back to back (alternating which goes first), so that load from other processes on
    the machine falls on both sides alike."""
    ours = dict(attack="pgd-linf", eps=8 / 255, steps=20, step_size=2 / 255) if name == "pgd" else dict(
        attack="apgd-ce", eps=8 / 255, steps=100)
    t = {"ours_total": 0.0, "ours_attack": 0.0, "peer_total": 0.0, "peer_attack": 0.0}
    robust_ours, robust_peer = [], []
    draws, stopped, retried = 0, 0, 0
    randomness = None
    for g, a in enumerate(range(0, len(x), args.group)):
        xg, yg = x[a: a + args.group], y[a: a + args.group]
        seed = g  # the same seed for both sides' decisions of this group

        def run_ours() -> None:
            nonlocal draws, stopped, retried, randomness
            t0 = time.perf_counter()
            out = ratzoo.run_attack(model, xg, yg, **ours, eot_samples=args.eot, seed=seed,
                                    decision_samples=args.decision)
            t["ours_total"] += time.perf_counter() - t0
            t["ours_attack"] += out.attack_s
            robust_ours.append(out.robust)
            draws += out.stats.image_draws
            stopped += int(out.stopped_early.sum()) if out.stopped_early is not None else 0
            retried += int(out.retried.sum()) if out.retried is not None else 0
            randomness = out.randomness.kind

        def run_peer() -> None:
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            adv = _peer(name, model, args.eot)(xg, yg)
            t1 = time.perf_counter()
            robust_peer.append(judge(model, xg, yg, adv, seed, args.decision))
            t["peer_attack"] += t1 - t0
            t["peer_total"] += time.perf_counter() - t0

        for side in ((run_ours, run_peer) if g % 2 == 0 else (run_peer, run_ours)):
            side()
    ro, rp = torch.cat(robust_ours), torch.cat(robust_peer)
    n = len(x)
    steps = 20 if name == "pgd" else 101
    return {
        "pair": name, "randomness": randomness, "n": n,
        "ours_total_s": round(t["ours_total"], 1), "ours_attack_s": round(t["ours_attack"], 1),
        "peer_total_s": round(t["peer_total"], 1), "peer_attack_s": round(t["peer_attack"], 1),
        "speedup_total": round(t["peer_total"] / t["ours_total"], 2),
        "speedup_attack": round(t["peer_attack"] / t["ours_attack"], 2),
        "ours_img_per_s": round(n / t["ours_total"], 2), "peer_img_per_s": round(n / t["peer_total"], 2),
        "ours_robust": round(float(ro.float().mean()) * 100, 1), "peer_robust": round(float(rp.float().mean()) * 100, 1),
        "only_ours": int((ro & ~rp).sum()), "only_peer": int((rp & ~ro).sum()),
        "ours_image_draws": draws, "peer_image_draws": n * (args.eot if randomness != "deterministic" else 1) * steps,
        "ours_stopped_early": stopped, "ours_retried": retried,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="rat", help="zoo name or checkpoint folder (default rat)")
    p.add_argument("--n", type=int, default=200, help="first N test images (default 200)")
    p.add_argument("--eot", type=int, default=20, help="EOT draws per step (default 20)")
    p.add_argument("--decision", type=int, default=100, help="decision draws (default 100)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--group", type=int, default=50, help="images per interleaved group (default 50)")
    p.add_argument("--pairs", default="pgd,apgd,foreign", help="comma list of pgd, apgd, foreign")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 folder (default $RATZOO_CIFAR10)")
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    try:
        import torchattacks
    except ImportError:
        print("torchattacks is needed for this benchmark only:\n"
              "    pip install --no-deps torchattacks==3.5.1 tqdm requests", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    from ratzoo.data import to_tensor
    import numpy as np

    xs, ys = ratzoo.load_cifar10("test", root=args.data_dir)
    x = to_tensor(np.array(xs[: args.n]))
    y = torch.from_numpy(np.array(ys[: args.n])).long()
    print(f"ratzoo {ratzoo.__version__} vs torchattacks {torchattacks.__version__}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs ({platform.machine()}); "
          f"first {len(x)} CIFAR-10 (JPEG copy) test images; EOT-{args.eot}, decision {args.decision} draws",
          flush=True)
    rows = []
    pairs = args.pairs.split(",")
    models: list[tuple[str, nn.Module]] = []
    if "pgd" in pairs or "apgd" in pairs:
        models.append((args.model, ratzoo.load(args.model).eval()))
    for label, m in models:
        for name in ("pgd", "apgd"):
            if name in pairs:
                rows.append({"model": label, **pair(name, m, x, y, args)})
                print(json.dumps(rows[-1]), flush=True)
    if "foreign" in pairs:
        base = ratzoo.load("standard").eval()
        for label, m in (("standard+input-noise(per-sample)", InputNoise(base).eval()),
                         ("standard+input-noise(per-call)", SharedInputNoise(base).eval())):
            row = {"model": label, **pair("pgd", m, x, y, args),
                   "distinct_draws_ours": distinct_draws_per_step(m, x, y, "ratzoo", args.eot),
                   "distinct_draws_peer": distinct_draws_per_step(m, x, y, "torchattacks", args.eot)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = ["model", "pair", "randomness", "ours_total_s", "peer_total_s", "speedup_total", "ours_attack_s",
            "peer_attack_s", "speedup_attack", "ours_image_draws", "peer_image_draws", "ours_robust", "peer_robust",
            "only_ours", "only_peer"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
