"""Entry point: validate -> train (resumable) -> evaluate -> write checkpoint -> push."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from .config import PRESETS, TrainConfig, command_line, config_from_args, default_state_dir
from .state import StateError, load_state

REPO_ROOT = Path(__file__).resolve().parent.parent


def final_evaluation(model, cfg: TrainConfig) -> dict[str, Any]:
    """Clean accuracy and PGD-20 (Linf 8/255, L2 0.5) robust accuracy, with EOT for noisy
    models, on the first ``cfg.eval_n`` test images, by ratzoo's evaluator."""
    import ratzoo
    from ratzoo.data import to_tensor
    from ratzoo.evaluation import evaluate
    from ratzoo import is_randomized

    xs, ys = ratzoo.load_cifar10("test", root=cfg.data_dir or None)
    x = to_tensor(xs[: cfg.eval_n])
    y = torch.from_numpy(ys[: cfg.eval_n].copy())
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    eot = cfg.eval_eot_samples if is_randomized(model) else 1
    metrics = []
    specs = [
        ("clean accuracy", "accuracy", dict(attack="none")),
        (f"PGD-20 Linf 8/255{f' (EOT-{eot})' if eot > 1 else ''}", "robust_accuracy",
         dict(attack="pgd-linf", eps=8 / 255, steps=20, eot_samples=eot)),
        (f"PGD-20 L2 0.5{f' (EOT-{eot})' if eot > 1 else ''}", "robust_accuracy",
         dict(attack="pgd-l2", eps=0.5, steps=20, eot_samples=eot)),
    ]
    for name, typ, kw in specs:
        rec = evaluate(model, x, y, seed=cfg.seed, **kw)
        metrics.append({"name": name, "type": typ, "value": rec["robust_accuracy"], "n": rec["n"],
                        "ci95": rec["robust_accuracy_ci95"], "single_draw": rec.get("single_draw_accuracy"),
                        "record": rec})
        print(f"{name}: {100 * rec['robust_accuracy']:.2f}%", file=sys.stderr)
    from ratzoo.data import describe_source

    return {"dataset": describe_source(cfg.data_dir or None),
            "dataset_id": "uoft-cs/cifar10", "split": "test", "metrics": metrics}


def export(result: dict[str, Any], cfg: TrainConfig) -> Path:
    from ratzoo.checkpoint import save_checkpoint
    from ratzoo.record import versions

    model = result["model"].eval()
    results = final_evaluation(model, cfg) if cfg.eval_n else {}
    last = result["history"][-1] if result["history"] else {}
    training = {
        "method": cfg.method,
        "command": result["command"],
        "config": dataclasses.asdict(cfg),
        "epochs_completed": last.get("epoch"),
        "final_epoch_log": last,
        "stopped_early": result["stopped"],
        # torch and python only: the keys every committed checkpoint's config.json has
        "software": {k: v for k, v in versions().items() if k in ("torch", "python")},
        "device": str(result["device"]),
    }
    out = Path(cfg.out) if cfg.out else REPO_ROOT / "checkpoints" / cfg.run_name()
    # Written whole into a staging folder, then renamed: a kill mid-export never leaves a
    # folder whose weights lack their config (`zoo.sh` treats existing weights as done).
    staging = out.parent / f".{out.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    save_checkpoint(model, staging, name=cfg.run_name(), training=training, results=results)
    if out.exists():
        old = out.parent / f".{out.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)
    print(f"wrote {out}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    cfg, args = config_from_args(argv)
    if args.list_presets:
        for name, p in PRESETS.items():
            print(f"{name}: {json.dumps(p)}")
        return 0
    from ratzoo.data import ENV_DIR, DatasetError, _resolve

    try:
        cfg.validate()
        if cfg.data_dir or os.environ.get(ENV_DIR):
            for split in ("train", "test") if cfg.eval_n else ("train",):
                _resolve(split, cfg.data_dir or None)  # a local copy: check its files are there
        state_path = default_state_dir(cfg) / "state.pt"
        if cfg.resume and state_path.is_file():
            load_state(state_path, cfg)  # refuse a mismatched state before any work
    except (ValueError, StateError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .loop import train

    try:
        result = train(cfg, command_line(argv))
    except DatasetError as e:  # e.g. a malformed parquet file, found while decoding it
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not result["dist"].main:
        return 0
    out = export(result, cfg)
    if cfg.push_to_hub:
        from ratzoo.hub import HubError, push_to_hub

        try:
            url = push_to_hub(out, cfg.push_to_hub)
            print(f"pushed to {url}", file=sys.stderr)
        except HubError as e:
            print(f"error: {e}", file=sys.stderr)
            return 4
    return 0
