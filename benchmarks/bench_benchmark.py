"""The benchmark's cost and strength: the cascade ensemble against the committed records of the
full one, against AutoAttack-rand, and the CPU layout it runs best in.

``python benchmarks/bench_benchmark.py strength [--entries rat_Linf,...] [--n 200] [--flags '--target-eot-samples 2']``
    Runs ``python -m ratzoo benchmark`` (today's ensemble, or a candidate given by ``--flags``;
    ``--resume --wait``, one thread) on test images ``0 .. n-1`` of every leaderboard entry, with the parts in
    ``$RATZOO_BENCHMARK_PARTS`` (point it at the zoo's, ``train/benchmark_zoo.sh``, and the two
    share their first parts), and pairs each image's verdict with the record committed at
    ``OLD_REV`` (APGD-T over 9 targets in one call, EOT-20): robust accuracy of both, images
    robust only under the new / only under the old, the same against the record committed now,
    whether APGD-CE's survivors agree bit for bit, and the image-draws. Start it once per core:
    the processes share the parts.
``python benchmarks/bench_benchmark.py peer [--n 100] [--group 20] [--steps 10]``
    torchattacks 3.5.1 ``AutoAttack(version='rand')`` (APGD-CE + APGD-DLR, EOT-20, at
    torchattacks' APGD default of 10 iterations, not AutoAttack's 100; a
    benchmark-only dependency: ``pip install --no-deps torchattacks==3.5.1 tqdm requests``) vs
    :func:`ratzoo.benchmarking.benchmark` on rat, Linf 8/255, interleaved in groups, one thread;
    both sides' examples judged by the 100-draw decision rule; seconds include the judging.
    ``--steps`` runs ratzoo's ensemble at that many iterations (10: the peer's);
    ``--peer-steps 100`` runs the peer's two APGDs at AutoAttack's own 100 iterations.
``python benchmarks/bench_benchmark.py layout [--n 40] [--part-size 10]``
    One benchmark (rat, Linf) run by the CLI as 1 process x 2 threads and as 2 processes x
    1 thread sharing the parts; prints the wall seconds of each (the CLI's CPU default follows).
``python benchmarks/bench_benchmark.py zoo``
    Each committed record against the one at ``OLD_REV``: robust accuracy, images robust only
    under today's / only under the old, seconds and image-draws, and the totals.
``python benchmarks/bench_benchmark.py pair A.json B.json``
    Two records of one entry paired image by image (a rerun with another seed is the control:
    how many images change their verdict when nothing but the seed does).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "checkpoints" / "results" / "benchmark"
OLD_REV = "eb5837c"  # the last commit whose records were measured by the full APGD-T (9 targets, EOT-20)
ENTRIES = [f"{m}_{t}" for t in ("Linf", "L2") for m in ("standard", "at", "rn", "rat", "lerat")]
CACHE = Path(os.environ.get("RATZOO_CACHE") or Path.home() / ".cache" / "ratzoo") / "bench_benchmark"


def old_record(entry: str) -> dict:
    out = subprocess.run(["git", "show", f"{OLD_REV}:checkpoints/results/benchmark/{entry}.json"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def cli(args: list[str], env: dict | None = None) -> None:
    subprocess.run([sys.executable, "-m", "ratzoo", "benchmark", *args, "--no-progress"], cwd=ROOT, check=True,
                   env={**os.environ, **(env or {})})


def committed_record(entry: str) -> dict | None:
    path = RECORDS / f"{entry}.json"
    return json.loads(path.read_text()) if path.exists() else None


def strength(entries: list[str], n: int, flags: list[str]) -> None:
    from ratzoo import compare

    CACHE.mkdir(parents=True, exist_ok=True)
    rows = []
    tag = "".join(f.strip("-").replace("-", "") for f in flags)
    for entry in entries:
        model, threat = entry.rsplit("_", 1)
        out = CACHE / f"{entry}_n{n}{f'_{tag}' if tag else ''}.{os.getpid()}.json"
        if not out.exists():
            cli(["--model", model, "--threat-model", threat, "--n", str(n), "--resume", "--wait", "--threads", "1",
                 "--procs", "1", *flags, "--out", str(out)])
        new, old, now = json.loads(out.read_text()), old_record(entry), committed_record(entry)
        rn, ro = new["robust_per_image"], old["robust_per_image"][:n]
        ce_n, ce_o = new["robust_after_apgd_ce_per_image"], old["robust_after_apgd_ce_per_image"][:n]
        c = compare(new, old)  # pairs the images both measured, by dataset index
        c_now = compare(new, now) if now else None
        vs_now = (c_now.only_a, c_now.only_b) if c_now else (None, None)
        rows.append({"entry": entry, "n": n, "old_robust": 100 * sum(ro) / n, "new_robust": 100 * sum(rn) / n,
                     "only_new": c.only_a, "only_old": c.only_b, "only_new_vs_now": vs_now[0],
                     "only_now": vs_now[1], "ce_differ": sum(a != b for a, b in zip(ce_n, ce_o)),
                     "new_draws": draws(new), "old_draws": round(draws(old) * n / old["n"]),
                     "now_draws": round(draws(now) * n / now["n"]) if now else None})
        r = rows[-1]
        print(f"{entry:<14} robust {OLD_REV} {r['old_robust']:5.1f} new {r['new_robust']:5.1f}  only-new "
              f"{r['only_new']} only-old {r['only_old']} | vs the committed record: only-new {r['only_new_vs_now']} "
              f"only-committed {r['only_now']} | APGD-CE survivors differing from {OLD_REV} {r['ce_differ']} | "
              f"image-draws new {r['new_draws'] / 1e6:.3f} M, {OLD_REV} {r['old_draws'] / 1e6:.3f} M, committed "
              f"{(r['now_draws'] or 0) / 1e6:.3f} M (this share of its record)", flush=True)
    if len(rows) > 1:
        print(f"total: only-new {sum(r['only_new'] for r in rows)}, only-old {sum(r['only_old'] for r in rows)}, "
              f"image-draws new {sum(r['new_draws'] for r in rows) / 1e6:.2f} M vs {OLD_REV} "
              f"{sum(r['old_draws'] for r in rows) / 1e6:.2f} M; worst entry: "
              f"{max(rows, key=lambda r: r['only_new'])['entry']} (max only-new {max(r['only_new'] for r in rows)}, "
              f"max new-old {max(r['new_robust'] - r['old_robust'] for r in rows):+.1f} points)")


def peer(n: int, group: int, decision: int, steps: int | None, peer_steps: int | None = None) -> None:
    import numpy as np

    try:
        import torchattacks
    except ImportError:
        sys.exit("torchattacks is needed for this benchmark only:\n"
                 "    pip install --no-deps torchattacks==3.5.1 tqdm requests")
    import ratzoo
    from ratzoo.benchmarking import benchmark
    from ratzoo.data import to_tensor
    from ratzoo.judge import STREAM_ADV, STREAM_CLEAN, decide, derive_seed

    torch.set_num_threads(1)
    xs, ys = ratzoo.load_cifar10("test")
    x, y = to_tensor(np.array(xs[:n])), torch.from_numpy(np.array(ys[:n])).long()
    model = ratzoo.load("rat").eval()
    t = {"ours": 0.0, "peer": 0.0}
    rob_o, rob_p, draws = [], [], 0
    for g, a in enumerate(range(0, n, group)):
        xg, yg = x[a: a + group], y[a: a + group]

        def ours() -> None:
            nonlocal draws
            t0 = time.perf_counter()
            rec = benchmark(model, xg, yg, threat_model="Linf", seed=g, decision_samples=decision,
                            **({"steps": steps} if steps else {}))
            t["ours"] += time.perf_counter() - t0
            rob_o.append(torch.tensor(rec.robust_per_image()))
            draws += rec.passes["image_draws"]

        def theirs() -> None:
            torch.manual_seed(g)
            t0 = time.perf_counter()
            aa = torchattacks.AutoAttack(model, norm="Linf", eps=8 / 255, version="rand", n_classes=10, seed=g)
            for apgd in aa._autoattack.attacks if peer_steps else ():
                apgd.steps = peer_steps  # APGD derives its checkpoints from .steps at each run
            adv = aa(xg, yg)
            clean = decide(model, xg, yg, samples=decision, seed=derive_seed(g, STREAM_CLEAN))
            judged = decide(model, adv, yg, samples=decision, seed=derive_seed(g, STREAM_ADV))
            t["peer"] += time.perf_counter() - t0
            rob_p.append(clean.correct & judged.correct)

        for side in ((ours, theirs) if g % 2 == 0 else (theirs, ours)):
            side()
        print(f"  group {g}: ratzoo {t['ours']:.0f} s, AutoAttack-rand {t['peer']:.0f} s so far", flush=True)
    ro, rp = torch.cat(rob_o), torch.cat(rob_p)
    print(f"rat Linf 8/255, first {n} test images, 1 thread, groups of {group} interleaved, 100-draw verdicts:\n"
          f"  ratzoo.benchmark{f' --steps {steps}' if steps else ''}        {t['ours']:7.1f} s  robust {100 * ro.float().mean():.1f} %  ({draws} image-draws)\n"
          f"  AutoAttack-rand (ta{f', {peer_steps} steps' if peer_steps else ''})    {t['peer']:7.1f} s  robust {100 * rp.float().mean():.1f} %\n"
          f"  robust only under ratzoo {int((ro & ~rp).sum())}, only under AutoAttack-rand {int((rp & ~ro).sum())}; "
          f"ratzoo/peer seconds {t['ours'] / t['peer']:.2f}")


def layout(n: int, part_size: int) -> None:
    common = ["--model", "rat", "--threat-model", "Linf", "--n", str(n), "--part-size", str(part_size)]
    res = {}
    for name, procs, threads in (("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1)):
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, "RATZOO_BENCHMARK_PARTS": d}
            t0 = time.perf_counter()
            ps = [subprocess.Popen([sys.executable, "-m", "ratzoo", "benchmark", *common, "--threads", str(threads),
                                    "--procs", "1", "--resume", "--wait", "--no-progress", "--out",
                                    f"{d}/rec{i}.json"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
                  for i in range(procs)]
            for p in ps:
                if p.wait():
                    sys.exit(f"the CLI failed ({name})")
            res[name] = time.perf_counter() - t0
            robust = json.loads(Path(f"{d}/rec0.json").read_text())["robust_accuracy"]
        print(f"{name:<24} {res[name]:6.1f} s wall (rat Linf, {n} images in parts of {part_size}; robust {robust:.3f})",
              flush=True)
    best = min(res, key=res.get)
    print(f"faster: {best} ({max(res.values()) / min(res.values()):.2f}x)")


def draws(rec: dict) -> int:
    return sum(a["image_draws"] for a in rec["per_attack"].values()) if isinstance(rec.get("per_attack"), dict) else 0


def zoo() -> None:
    """Per entry, the committed record against the one at OLD_REV: robust accuracy, the paired
    counts (robust only under today's / only under the old), seconds and image-draws."""
    from ratzoo import compare

    tot = {"new_s": 0.0, "old_s": 0.0, "new_d": 0, "old_d": 0}
    print(f"{'entry':<14} {'cascade_after':>13} {'robust old -> new':>18} {'only new/old':>12} "
          f"{'seconds old -> new':>20} {'image-draws old -> new':>24}")
    for e in ENTRIES:
        new, old = json.loads((RECORDS / f"{e}.json").read_text()), old_record(e)
        c = compare(new, old)
        tot["new_s"] += new["elapsed_s"]; tot["old_s"] += old["elapsed_s"]
        tot["new_d"] += draws(new); tot["old_d"] += draws(old)
        print(f"{e:<14} {str(new['params'].get('cascade_after')):>13} {100 * c.accuracy_b:8.1f} -> {100 * c.accuracy_a:5.1f}"
              f" {c.only_a:>6}/{c.only_b:<5} {old['elapsed_s']:9.0f} -> {new['elapsed_s']:7.0f}"
              f" {draws(old) / 1e6:10.2f}M -> {draws(new) / 1e6:6.2f}M")
    print(f"the 10 leaderboard entries: {tot['new_s'] / 3600:.2f} core-hours, {tot['new_d'] / 1e6:.1f}M image-draws "
          f"(records at {OLD_REV}: {tot['old_s'] / 3600:.2f}, {tot['old_d'] / 1e6:.1f}M)")


def pair(a: str, b: str) -> None:
    """Two records of one entry (e.g. a rerun with another seed, the control of the paired counts)."""
    from ratzoo import compare

    ra, rb = (json.loads(Path(x).read_text()) for x in (a, b))
    c = compare(ra, rb)
    print(f"{a}: robust {100 * c.accuracy_a:.1f} %, {ra['elapsed_s']:.0f} s, seed {ra['seed']}\n"
          f"{b}: robust {100 * c.accuracy_b:.1f} %, {rb['elapsed_s']:.0f} s, seed {rb['seed']}\n"
          f"paired on {c.n} images: robust only under the first {c.only_a}, only under the second {c.only_b} "
          f"(exact McNemar p = {c.p_value:.2g})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["strength", "peer", "layout", "zoo", "pair"])
    p.add_argument("records", nargs="*", help="pair: two record files")
    p.add_argument("--entries", default=",".join(ENTRIES))
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--group", type=int, default=20)
    p.add_argument("--part-size", type=int, default=10)
    p.add_argument("--decision", type=int, default=100)
    p.add_argument("--steps", type=int, default=None, help="strength, peer: ratzoo's iterations (torchattacks' "
                   "AutoAttack runs its APGD at its default of 10)")
    p.add_argument("--flags", default="", help="strength: more `python -m ratzoo benchmark` flags, a candidate ensemble "
                   "(e.g. '--target-eot-samples 2')")
    p.add_argument("--peer-steps", type=int, default=None, help="peer: the peer's APGD iterations (100: AutoAttack's)")
    a = p.parse_args(argv)
    if a.what == "strength":
        strength(a.entries.split(","), a.n or 200, [*(["--steps", str(a.steps)] if a.steps else []), *a.flags.split()])
    elif a.what == "peer":
        peer(a.n or 100, a.group, a.decision, a.steps, a.peer_steps)
    elif a.what == "layout":
        layout(a.n or 40, a.part_size)
    elif a.what == "pair":
        if len(a.records) != 2:
            p.error("pair takes two record files")
        pair(*a.records)
    else:
        zoo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
