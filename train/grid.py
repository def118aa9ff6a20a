"""Grid search of the noise std for the zoo's randomized models (as the paper did).

``python -m train.grid --data-dir ../shared/data/cifar10`` trains a short RAT run
(``--grid-epochs`` epochs of the ``rat`` preset) for each candidate sigma, evaluates it on
the trainer's held-out *training* images (never the test set) and picks the sigma with
the best trade-off: the mean of clean accuracy, EOT-PGD-10 Linf 8/255 accuracy and
EOT-PGD-10 L2 0.5 accuracy (EOT-8 attacks, EOT-100 decisions). Prints only the chosen
sigma on stdout; the full table goes to ``checkpoints/results/sigma_grid.json``.
Resumable: finished candidates are reused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.grid", description=__doc__.split("\n\n")[0])
    p.add_argument("--sigmas", default="0.25,0.5,1.0", help="candidate noise stds, comma-separated")
    p.add_argument("--grid-epochs", type=int, default=3, help="epochs of each short RAT run")
    p.add_argument("--data-dir", default="", help="CIFAR-10 folder (default $RATZOO_CIFAR10 or the Hub)")
    p.add_argument("--n", type=int, default=500, help="held-out training images to evaluate on")
    p.add_argument("--out", default=str(REPO_ROOT / "checkpoints" / "results" / "sigma_grid.json"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    out = Path(args.out)
    if out.is_file():
        done = json.loads(out.read_text())
        if sorted(done.get("sigmas", [])) == sorted(sigmas) and done.get("grid_epochs") == args.grid_epochs:
            print(done["chosen_sigma"])
            return 0

    import ratzoo
    from ratzoo.data import describe_source, to_tensor
    from ratzoo.evaluation import evaluate

    from .config import PRESETS, TrainConfig, default_state_dir

    xs, ys = ratzoo.load_cifar10("train", root=args.data_dir or None)
    val = TrainConfig().val_size
    x = to_tensor(xs[len(xs) - val:][: args.n])
    y = torch.from_numpy(ys[len(ys) - val:][: args.n].copy())
    rows = []
    t0 = time.time()
    for sigma in sigmas:
        name = f"grid-rat-sigma{sigma:g}"
        folder = default_state_dir(TrainConfig(name=name)).parent / name / "checkpoint"
        cmd = [sys.executable, "-m", "train", "--preset", "rat", "--noise-sigma", str(sigma),
               "--epochs", str(args.grid_epochs), "--name", name, "--out", str(folder),
               "--eval-n", "0", "--resume", "--seed", str(args.seed)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        if not (folder / "model.safetensors").is_file():
            print(f"== grid: {' '.join(cmd)}", file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, stdout=sys.stderr)
        model = ratzoo.load(folder)
        row = {"sigma": sigma, "checkpoint_state": str(folder)}
        for key, kw in (("clean", dict(attack="none")),
                        ("pgd10_linf_8_255_eot8", dict(attack="pgd-linf", eps=8 / 255, steps=10, eot_samples=8)),
                        ("pgd10_l2_0.5_eot8", dict(attack="pgd-l2", eps=0.5, steps=10, eot_samples=8))):
            rec = evaluate(model, x, y, seed=args.seed, **kw)
            row[key] = rec["robust_accuracy"]
        row["score"] = (row["clean"] + row["pgd10_linf_8_255_eot8"] + row["pgd10_l2_0.5_eot8"]) / 3
        print(f"== grid: {json.dumps(row)}", file=sys.stderr, flush=True)
        rows.append(row)
    best = max(rows, key=lambda r: r["score"])
    result = {
        "description": "noise-std grid search for the zoo's rn/rat/lerat (python -m train.grid)",
        "command": "python -m train.grid " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": f"last {val} {describe_source(args.data_dir or None)} training images held out by the trainer; "
                f"first {args.n} used",
        "selection": "max of mean(clean, EOT-PGD-10 Linf 8/255, EOT-PGD-10 L2 0.5) accuracies",
        "grid_epochs": args.grid_epochs,
        "base_preset": PRESETS["rat"],
        "sigmas": sigmas,
        "rows": rows,
        "chosen_sigma": best["sigma"],
        "elapsed_seconds": round(time.time() - t0, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(best["sigma"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
