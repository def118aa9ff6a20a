"""Where APGD-T's passes break images: every target rank, judged on its own, on the images
APGD-CE left robust in the committed leaderboard records.

``python benchmarks/bench_cascade.py --entries rat_Linf,at_L2 [--eot 5] [--n 200] [--analyse]``

For each entry ``MODEL_THREAT`` the committed record ``checkpoints/results/benchmark/`` names the
images of ``0 .. n-1`` still robust after APGD-CE (the benchmark's first attack reproduces bit for
bit under the same seed, so these are the images any targeted phase meets). On them it runs
untargeted APGD-DLR (rank 0) and APGD-T towards each wrong class alone (ranks 1..9, most likely
first), 100 iterations and ``--eot`` draws per step, and judges every example by the 100-draw
decision rule, keeping per image and rank whether it was broken and the rule's margin
(mean probability of the true class minus the largest other). The results are saved after each
rank under ``$RATZOO_CACHE/bench_cascade/`` (a killed run resumes). ``--analyse`` then replays
candidate cascades on these outcomes (ranks ``1..k`` always, further ranks while the image's
smallest margin so far is at most ``tau``) and prints, per entry and overall, the images each
candidate breaks against the committed ensemble (APGD-T over 9 targets, EOT-20) and its cost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import ratzoo
from ratzoo.data import to_tensor
from ratzoo.judge import decide, derive_seed, run_attack

RECORDS = Path(__file__).resolve().parents[1] / "checkpoints" / "results" / "benchmark"
RANKS = list(range(10))  # 0: untargeted APGD-DLR; r >= 1: APGD-T towards the r-th most likely wrong class


def margins(probs: torch.Tensor, y: torch.Tensor) -> list[float]:
    p_y = probs.gather(1, y[:, None]).squeeze(1)
    other = probs.scatter(1, y[:, None], float("-inf")).amax(1)
    return [round(v, 5) for v in (p_y - other).tolist()]


def measure(entry: str, eot: int, n: int, out_dir: Path) -> dict:
    model_name, threat = entry.rsplit("_", 1)
    rec = json.loads((RECORDS / f"{entry}.json").read_text())
    after_ce = rec["robust_after_apgd_ce_per_image"][:n]
    final = rec["robust_per_image"][:n]
    idx = [i for i, r in enumerate(after_ce) if r]
    path = out_dir / f"{entry}_eot{eot}_n{n}.json"
    state = json.loads(path.read_text()) if path.exists() else {
        "entry": entry, "eot": eot, "idx": idx, "old_robust": [final[i] for i in idx], "ranks": {}}
    if len(state["ranks"]) == len(RANKS):
        return state
    xs, ys = ratzoo.load_cifar10("test")
    x = to_tensor(np.array(xs[:n]))[idx]
    y = torch.from_numpy(np.array(ys[:n])).long()[idx]
    model = ratzoo.load(model_name).eval()
    eps = rec["eps"]
    clean = decide(model, x, y, seed=derive_seed(0, 7))
    state["clean_correct"] = clean.correct.tolist()
    for r in RANKS:
        if str(r) in state["ranks"]:
            continue
        t0 = time.perf_counter()
        kw = dict(attack="apgd-dlr") if r == 0 else dict(attack="apgd-t", n_target_classes=1, target_rank=r)
        out = run_attack(model, x, y, seed=derive_seed(0, 100 + r), eps=eps, steps=100, eot_samples=eot,
                         norm=threat, clean=clean, **kw)
        state["ranks"][str(r)] = {"broken": out.fooled.tolist(), "margin": margins(out.adv.probs, y),
                                  "image_draws": out.stats.image_draws,
                                  "seconds": round(time.perf_counter() - t0, 1)}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)
        print(f"{entry} rank {r}: broken {sum(out.fooled.tolist())} of {len(idx)}, "
              f"{out.stats.image_draws} image-draws, {time.perf_counter() - t0:.0f} s", flush=True)
    return state


def replay(state: dict, ranks: list[int], k: int, tau: float) -> tuple[list[bool], int]:
    """Which images a cascade breaks (in ``state['idx']`` order) and its image-draws."""
    n = len(state["idx"])
    broken = [False] * n
    low = [float("inf")] * n
    draws = 0
    per_image = {r: state["ranks"][str(r)]["image_draws"] / max(1, n) for r in ranks}
    for pos, r in enumerate(ranks):
        rr = state["ranks"][str(r)]
        for i in range(n):
            if broken[i] or not state["clean_correct"][i] or (pos >= k and low[i] > tau):
                continue
            draws += per_image[r]
            broken[i] = rr["broken"][i]
            low[i] = min(low[i], rr["margin"][i])
    return broken, int(draws)


def analyse(states: list[dict]) -> None:
    cands = [("old: 9 targets", list(range(1, 10)), 9, 1.0)]
    for first in ([1], [0, 1]):
        for k in (1, 2, 3):
            for tau in (0.1, 0.2, 0.3, 0.5, 1.0):
                ranks = first[:-1] + list(range(1, 10))
                cands.append((f"{'dlr+' if first[0] == 0 else ''}k={k} tau={tau}", ranks, k + len(first) - 1, tau))
    print(f"{'candidate':<22} " + " ".join(f"{s['entry']:>14}" for s in states) + "   only-old  only-new  draws")
    for name, ranks, k, tau in cands:
        cells, only_old, only_new, total = [], 0, 0, 0
        for s in states:
            broken, draws = replay(s, ranks, k, tau)
            oo = sum(1 for b, o in zip(broken, s["old_robust"]) if b and o)  # robust only under the old
            on = sum(1 for b, o in zip(broken, s["old_robust"]) if not b and not o)  # robust only under the new
            cells.append(f"{sum(broken):>3}b {on:>2}/{oo:<2} {draws / 1e3:>4.0f}k")
            only_old += oo
            only_new += on
            total += draws
        print(f"{name:<22} " + " ".join(f"{c:>14}" for c in cells) + f"   {only_old:>8}  {only_new:>8}  {total / 1e6:.2f}M")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", default="rat_Linf")
    p.add_argument("--eot", type=int, default=5)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--analyse", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out_dir = Path(os.environ.get("RATZOO_CACHE") or Path.home() / ".cache" / "ratzoo") / "bench_cascade"
    out_dir.mkdir(parents=True, exist_ok=True)
    states = []
    for entry in args.entries.split(","):
        path = out_dir / f"{entry}_eot{args.eot}_n{args.n}.json"
        if args.analyse:
            if path.exists():
                states.append(json.loads(path.read_text()))
        else:
            states.append(measure(entry, args.eot, args.n, out_dir))
    if args.analyse:
        analyse([s for s in states if len(s["ranks"]) == len(RANKS)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
