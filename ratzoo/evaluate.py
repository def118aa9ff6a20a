"""Honest robustness evaluation: attack, then judge with fresh noise draws.

**Decision rule** (the one used everywhere in ratzoo). An example counts as robust when

1. the EOT prediction on the clean image is the true label, and
2. the EOT prediction on the adversarial image is the true label,

where the EOT prediction is the argmax of the mean softmax over ``decision_samples``
(default 100) *fresh* noise draws, seeded independently of the attack's own draws
(the attack sees ``eot_samples`` draws per step from another seed). For a deterministic
model the EOT prediction is the plain prediction. Requiring (1) makes robust accuracy
never exceed clean accuracy. The record also reports the *single-draw* accuracy: the
expected accuracy of one noise draw, estimated as the mean over the decision draws of
the fraction that predict the true label (again requiring (1) for the adversarial one).

**Confidence intervals** are 95% Wilson score intervals for a binomial proportion
(closed form, good coverage at small n and near 0 or 1).

**C&W** is unbounded: it returns, per image, the smallest-L2 adversarial example it
found (norm ``inf`` when it found none). Accuracy at an L2 threshold ``t`` counts an
example as robust unless the found example has norm <= t *and* is misclassified by the
decision rule (so a C&W success that only fooled the attacker's noisy estimate does not
count) or the clean image is already misclassified.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .attacks import ALIASES, ATTACKS, make_attack, parse_budget
from .eot import predict_proba
from .noise import is_randomized

DEFAULT_DECISION_SAMPLES = 100
DEFAULT_THRESHOLDS = (0.25, 0.5, 1.0)
Z95 = 1.959963984540054
DECISION_RULE = (
    "robust = EOT prediction (argmax of mean softmax over decision_samples fresh noise draws, "
    "seeded independently of the attack) is the true label on both the clean and the adversarial image"
)


# --------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (default 95%). ``(0, 1)`` if n = 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if successes <= 0 else max(0.0, center - half)
    hi = 1.0 if successes >= n else min(1.0, center + half)
    return (lo, hi)


def derive_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for ``stream`` (attack, decision, ...) from ``seed``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stream]).generate_state(2, np.uint64)[0] >> 1)


STREAM_ATTACK, STREAM_CLEAN, STREAM_ADV = 1, 2, 3


def _norm_stats(norms: torch.Tensor) -> dict[str, Any]:
    finite = norms[torch.isfinite(norms)].double().cpu().numpy()
    out: dict[str, Any] = {"found_fraction": float(len(finite) / max(len(norms), 1))}
    if len(finite):
        q = np.quantile(finite, [0.1, 0.25, 0.5, 0.75, 0.9])
        out.update(mean=float(finite.mean()), median=float(q[2]), q10=float(q[0]), q25=float(q[1]),
                   q75=float(q[3]), q90=float(q[4]), min=float(finite.min()), max=float(finite.max()))
    return out


def _versions() -> dict[str, str]:
    from . import __version__

    return {"ratzoo": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


# --------------------------------------------------------------------------- evaluate


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack: str = "pgd-linf",
    *,
    seed: int = 0,
    eps: float | str | None = None,
    steps: int | None = None,
    eot_samples: int = 1,
    decision_samples: int = DEFAULT_DECISION_SAMPLES,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    progress: bool | Callable[[int, int], None] = False,
    model_name: str | None = None,
    **attack_kwargs: Any,
) -> dict[str, Any]:
    """Attack ``images`` and measure accuracy under ratzoo's decision rule.

    Args:
        model: the classifier (randomized or not), in the mode the caller wants
            (normally ``eval()``); the evaluator never changes its mode.
        images: ``(N, 3, H, W)`` float in [0, 1].
        labels: ``(N,)`` integer labels.
        attack: ``"none"`` (clean accuracy) or a name from :data:`ratzoo.attacks.ATTACKS`.
        seed: the one seed; the attack's draws and the two decision passes get
            independent streams derived from it.
        eps: the budget (number or ``"8/255"``); ``None``: the attack's default.
        steps: attack iterations; ``None``: the attack's default.
        eot_samples: noise draws per attack step (1 for a deterministic model).
        decision_samples: fresh draws of the decision rule (default 100).
        thresholds: L2 thresholds at which C&W accuracy is reported.
        progress: ``True`` for a progress bar on stderr, or a ``progress(done, total)``
            callback over attack steps.
        model_name: how to name the model in the record.
        **attack_kwargs: any other argument of the attack class (``step_size``,
            ``restarts``, ``search_steps``, ...).

    Returns:
        A JSON-ready record: ``model``, ``attack``, ``params`` (every attack argument),
        ``n``, ``seed``, ``clean_accuracy`` (+ ``_ci95``), ``robust_accuracy`` (+
        ``_ci95``), ``single_draw_accuracy``, ``clean_single_draw_accuracy``,
        ``decision_samples``, ``decision_rule``, ``ci_method``, ``elapsed_s``,
        ``versions``; for C&W also ``norms`` (statistics), ``norms_per_image`` and
        ``accuracy_at`` (per threshold, with CIs). For ``attack="none"``,
        ``robust_accuracy`` is the clean accuracy.

    >>> rec = evaluate(model, x, y, attack="pgd-linf", eps=8/255, steps=20, eot_samples=20)
    >>> rec["robust_accuracy"], rec["robust_accuracy_ci95"]
    """
    t0 = time.perf_counter()
    if not isinstance(decision_samples, int) or isinstance(decision_samples, bool) or decision_samples < 1:
        raise ValueError(f"decision_samples must be a positive integer, got {decision_samples!r}")
    name = str(attack).lower()
    name = ALIASES.get(name, name)
    if name != "none" and name not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; known: none, {', '.join(ATTACKS)}")
    if model.training:
        warnings.warn(
            "evaluate() got a model in train() mode (batch norm uses batch statistics); "
            "call model.eval() first unless that is what you want", stacklevel=2)
    device = images.device
    labels = labels.to(device).long()
    n = int(images.shape[0])
    randomized = is_randomized(model)

    def judge(x: torch.Tensor, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator(device=device).manual_seed(derive_seed(seed, stream))
        out = predict_proba(model, x, samples=decision_samples, generator=gen)
        correct = out.label == labels
        single = out.votes.gather(1, labels[:, None]).squeeze(1).double() / out.samples
        return correct, single

    clean_correct, clean_single = judge(images, STREAM_CLEAN)
    rec: dict[str, Any] = {
        "model": model_name or _model_description(model),
        "model_config": _model_config(model),
        "randomized": randomized,
        "attack": name,
    }
    bar = _Bar(sys.stderr) if progress is True else None
    cb = bar.update if bar is not None else (progress if callable(progress) else None)
    result = None
    if name == "none":
        rec["params"] = {}
        adv_correct, adv_single = clean_correct, clean_single
    else:
        atk = make_attack(name, model, eps=eps, steps=steps, eot_samples=eot_samples,
                          seed=derive_seed(seed, STREAM_ATTACK), progress=cb, **attack_kwargs)
        rec["params"] = atk.params()
        result = atk.run(images, labels, estimate_success=False)
        if bar is not None:
            bar.close()
        adv_correct, adv_single = judge(result.adv_images, STREAM_ADV)
    robust = clean_correct & adv_correct
    k_clean, k_rob = int(clean_correct.sum()), int(robust.sum())
    rec.update(
        n=n,
        seed=seed,
        eot_samples=eot_samples if name != "none" else None,
        effective_eot_samples=(eot_samples if randomized else 1) if name != "none" else None,
        decision_samples=decision_samples if randomized else 1,
        decision_rule=DECISION_RULE,
        ci_method="wilson",
        clean_accuracy=k_clean / n if n else float("nan"),
        clean_accuracy_ci95=list(wilson_interval(k_clean, n)),
        robust_accuracy=k_rob / n if n else float("nan"),
        robust_accuracy_ci95=list(wilson_interval(k_rob, n)),
        clean_single_draw_accuracy=float(clean_single.mean()) if n else float("nan"),
        single_draw_accuracy=float((adv_single * clean_correct).mean()) if n else float("nan"),
    )
    if result is not None and name.startswith("cw"):
        norms = result.norms.to(device)
        broken_any = clean_correct & ~adv_correct  # decision rule fooled by the found example
        rec["norms"] = _norm_stats(norms[clean_correct & torch.isfinite(norms)])
        rec["norms_per_image"] = [None if not math.isfinite(v) else round(v, 6) for v in norms.tolist()]
        acc_at = {}
        for t in thresholds:
            broken = broken_any & (norms <= t)
            k = int((clean_correct & ~broken).sum())
            acc_at[f"{t:g}"] = {"accuracy": k / n if n else float("nan"), "ci95": list(wilson_interval(k, n))}
        rec["accuracy_at"] = acc_at
    rec["elapsed_s"] = round(time.perf_counter() - t0, 3)
    rec["device"] = str(device)
    rec["versions"] = _versions()
    return rec


def _model_config(model: nn.Module) -> dict[str, Any] | None:
    cfg = getattr(model, "config", None)
    return cfg.to_dict() if hasattr(cfg, "to_dict") else None


def _model_description(model: nn.Module) -> str:
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "architecture"):
        return f"{cfg.architecture}(width={cfg.width}, noise={cfg.noise_kind}:{cfg.noise_sigma})"
    return type(model).__name__


class _Bar:
    """A dependency-free progress bar on a stream (redrawn in place)."""

    def __init__(self, stream: Any, width: int = 30, label: str = "attack") -> None:
        self.stream, self.width, self.label = stream, width, label
        self.t0 = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        frac = done / max(total, 1)
        fill = int(self.width * frac)
        el = now - self.t0
        eta = el / frac - el if frac > 0 else float("nan")
        self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (self.width - fill)}] {done}/{total} "
                          f"{el:6.1f}s elapsed, eta {eta:6.1f}s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
