"""Sanity checks of a robustness number (Carlini et al. 2019, "On evaluating adversarial
robustness", arXiv:1902.06705, Sec. 5), for ``python -m ratzoo evaluate --sanity
--check-convergence`` (and its sweeps) and ``python -m ratzoo benchmark --sanity``.

- **Large budget**: with a budget covering the whole image cube, robust accuracy must fall to
  at most :data:`LARGE_BUDGET_MAX_ACCURACY` (else: gradient masking or a broken attack).
- **Doubling** steps or EOT draws: the number must not move (else: not converged, or a
  stronger attack did worse).
- **Monotone** (a sweep over eps or EOT draws): robust accuracy must not rise with the budget.

**The one rule** (:func:`shift`): a measurement has moved from its reference when it lies more
than the reference's 95 % interval half-width away, and a check fails when it moved the way its
hypothesis forbids. A doubled attack is the same threat attacked harder, so a converged number
moves neither way, while a larger budget contains the smaller one, so it may lower the number by
any amount but must not raise it. One rule one-sided everywhere would pass an attack that has not
converged, and one two-sided everywhere would flag every sweep that works.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from .attacks import ALIASES, ATTACKS, attack_arguments
from .benchmarking import DEFAULT_LATE_TARGET_EOT, DEFAULT_TARGET_EOT, benchmark
from .evaluation import evaluate
from .judge import DEFAULT_DECISION_SAMPLES
from .record import Record

LARGE_BUDGET_MAX_ACCURACY = 0.05
"""The most robust accuracy an attack with the whole image cube as its budget may leave."""


def half_width(ci95: Sequence[float]) -> float:
    """Half the width of a 95 % interval ``[lo, hi]``: how far a measurement moves by noise alone."""
    lo, hi = ci95
    return (hi - lo) / 2


def shift(value: float, reference: float, reference_ci95: Sequence[float]) -> Literal["within", "lower", "higher"]:
    """Where robust accuracy ``value`` lies from ``reference``: ``"within"`` its 95 % interval
    half-width (inclusive), else ``"lower"`` or ``"higher"`` (the module docstring's one rule)."""
    delta = value - reference
    if abs(delta) <= half_width(reference_ci95):
        return "within"
    return "lower" if delta < 0 else "higher"


def large_budget_eps(norm: str, images: torch.Tensor) -> float:
    """A budget that contains the whole image cube: 1.0 (Linf) or sqrt(C*H*W) (L2)."""
    return float(math.sqrt(images[0].numel())) if norm == "L2" else 1.0


# --------------------------------------------------------------------------- evaluate's checks


def check_monotone(points: Sequence[dict[str, Any]], key: str = "eps") -> dict[str, Any]:
    """Robust accuracy must not increase with the budget (within noise).

    Points are sorted by ``params[key]``; a violation is a point :func:`shift`-ed ``"higher"``
    than the smaller-budget point before it.
    """
    pts = sorted(points, key=lambda r: r["params"].get(key) or 0.0)
    bad = []
    for a, b in zip(pts, pts[1:]):
        if shift(b["robust_accuracy"], a["robust_accuracy"], a["robust_accuracy_ci95"]) == "higher":
            bad.append({f"{key}_small": a["params"].get(key), f"{key}_large": b["params"].get(key),
                        "accuracy_small": a["robust_accuracy"], "accuracy_large": b["robust_accuracy"]})
    msg = ("robust accuracy is non-increasing in " + key + " (within the 95% CI)") if not bad else (
        f"robust accuracy INCREASES with {key} beyond the 95% CI at {len(bad)} point(s): a larger budget "
        "contains every smaller one, so the attack is not finding the worst case (weak or "
        "noisy attack, gradient masking, or a too small step size); strengthen it")
    return {"check": f"monotone_in_{key}", "passed": not bad, "violations": bad, "message": msg}


def check_large_budget(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, attack: str = "pgd-linf", *,
    seed: int = 0, max_accuracy: float = LARGE_BUDGET_MAX_ACCURACY, **kwargs: Any,
) -> dict[str, Any]:
    """With a budget covering the whole image cube, accuracy must fall to ~0.

    Runs ``attack`` with eps = 1.0 (Linf) or sqrt(d) (L2) (C&W: unbounded, as is) and
    flags gradient masking when robust accuracy stays above ``max_accuracy``.
    """
    name = ALIASES.get(attack, attack)
    kw = dict(kwargs)
    kw.pop("eps", None)
    if name != "cw-l2":
        kw["eps"] = large_budget_eps(kw.get("norm") or ATTACKS[name].norm, images)
        if name in ("pgd-linf", "pgd-l2", "fgsm", "fgm"):
            kw.pop("step_size", None)  # default: a fixed fraction of eps
    rec = evaluate(model, images, labels, attack=name, seed=seed, **kw)
    ok = rec["robust_accuracy"] <= max_accuracy
    msg = (f"with eps={kw.get('eps', 'unbounded')} robust accuracy is {rec['robust_accuracy']:.3f} "
           f"<= {max_accuracy}") if ok else (
        f"with eps={kw.get('eps', 'unbounded')} (the whole image cube) robust accuracy is still "
        f"{rec['robust_accuracy']:.3f} > {max_accuracy}: the attack cannot even win when anything is "
        "allowed, a classic sign of gradient masking or a broken attack; do not trust its numbers")
    return {"check": "large_budget", "passed": ok, "eps": kw.get("eps"), "robust_accuracy": rec["robust_accuracy"],
            "robust_accuracy_ci95": rec["robust_accuracy_ci95"], "message": msg}


_STATUS = {"within": "converged", "lower": "not_converged", "higher": "suspicious_increase"}


def check_convergence(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, base: dict[str, Any], *,
    double: Sequence[str] = ("steps", "eot_samples"), **kwargs: Any,
) -> dict[str, Any]:
    """Re-run the attack of record ``base`` with ``steps`` and/or ``eot_samples`` doubled.

    Not converged: doubling lowers robust accuracy by more than the base CI half-width
    (the reported number is an overestimate). Suspicious: doubling *raises* it by more
    than that (a stronger attack should not do worse).
    """
    half = half_width(base["robust_accuracy_ci95"])
    p = base["params"]
    decision_samples = kwargs.pop("decision_samples", None) or (
        base["decision_samples"] if base.get("randomized") else DEFAULT_DECISION_SAMPLES)
    results = []
    for what in double:
        kw = dict(kwargs)
        if what == "steps":
            if "steps" not in p:
                continue
            kw["steps"] = 2 * p["steps"]
            kw.setdefault("eot_samples", base.get("eot_samples") or 1)
        elif what == "eot_samples":
            if not base.get("randomized"):
                continue  # a deterministic model has one draw whatever eot_samples says
            kw["eot_samples"] = 2 * (base.get("eot_samples") or 1)
            kw.setdefault("steps", p.get("steps"))
        else:
            raise ValueError(f"can double 'steps' or 'eot_samples', not {what!r}")
        accepted = attack_arguments(base["attack"])
        for k in ("eps", "step_size", "restarts", "search_steps", "initial_const", "kappa", "norm", "lr",
                  "random_start", "rho", "momentum", "eot_output"):
            if k in p and k in accepted and k not in kw and p[k] is not None:
                kw[k] = p[k]
        rec = evaluate(model, images, labels, attack=base["attack"], seed=base["seed"],
                       decision_samples=decision_samples, **kw)
        delta = rec["robust_accuracy"] - base["robust_accuracy"]
        status = _STATUS[shift(rec["robust_accuracy"], base["robust_accuracy"], base["robust_accuracy_ci95"])]
        results.append({"doubled": what, "value": kw.get(what), "robust_accuracy": rec["robust_accuracy"],
                        "delta": delta, "status": status})
    bad = [r for r in results if r["status"] != "converged"]
    if not bad:
        msg = f"doubling {', '.join(r['doubled'] for r in results) or 'nothing'} changed robust accuracy by at most the 95% CI half-width ({half:.3f})"
    else:
        parts = []
        for r in bad:
            if r["status"] == "not_converged":
                parts.append(f"doubling {r['doubled']} to {r['value']} LOWERED robust accuracy by {-r['delta']:.3f} "
                             f"(> {half:.3f}): the attack has not converged, use more {r['doubled']}")
            else:
                parts.append(f"doubling {r['doubled']} to {r['value']} RAISED robust accuracy by {r['delta']:.3f} "
                             f"(> {half:.3f}): a stronger attack should not do worse; suspect noisy gradients or a bug")
        msg = "; ".join(parts)
    return {"check": "convergence", "passed": not bad, "runs": results, "ci_half_width": half, "message": msg}


# --------------------------------------------------------------------------- the benchmark's checks


def benchmark_checks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rec: Record,
                     base_part: dict[str, Any] | None = None, **kw: Any) -> list[dict[str, Any]]:
    """The large-budget and doubling checks of a :func:`ratzoo.benchmark` record on (up to 100
    of) its images: with a budget that covers the whole image cube accuracy falls to ~0;
    doubling iterations or draws moves robust accuracy by at most the base's 95 % interval
    half-width. ``base_part``: the record's own measurement of exactly these images (its first
    part), reused instead of measured again. ``kw``: :func:`ratzoo.benchmark`'s arguments."""
    out = []
    big = large_budget_eps(kw["threat_model"], x)
    r = benchmark(model, x, y, **{**kw, "eps": big, "n_target_classes": 1})
    ok = r.robust_accuracy <= LARGE_BUDGET_MAX_ACCURACY
    out.append({"check": "large_budget", "passed": ok, "eps": big,
                "robust_accuracy": r.robust_accuracy,
                "message": f"with eps={big:g} (the whole cube) robust accuracy is {r.robust_accuracy:.3f}"
                           + ("" if ok else ": the attacks cannot win even when anything is "
                              "allowed, a sign of gradient masking; do not trust the number")})
    base = benchmark(model, x, y, **kw, part_size=len(x), parts={0: base_part} if base_part is not None else None)
    half = half_width(base.robust_accuracy_ci95)
    for what in ("steps", "eot_samples"):
        if what == "eot_samples" and not base.randomized:
            continue
        doubled = {what: 2 * kw[what]}
        if what == "eot_samples":  # both phases' draws, or the check would leave APGD-T's as they were
            doubled["target_eot_samples"] = 2 * kw.get("target_eot_samples", DEFAULT_TARGET_EOT)
            doubled["late_target_eot_samples"] = 2 * kw.get("late_target_eot_samples", DEFAULT_LATE_TARGET_EOT)
        r = benchmark(model, x, y, **{**kw, **doubled})
        delta = r.robust_accuracy - base.robust_accuracy
        ok = shift(r.robust_accuracy, base.robust_accuracy, base.robust_accuracy_ci95) == "within"
        out.append({"check": f"double_{what}", "passed": ok, "delta": delta, "ci_half_width": half,
                    "message": f"doubling {what} moved robust accuracy by {delta:+.3f} "
                               f"({'within' if ok else 'BEYOND'} the 95% half-width {half:.3f})"})
    return out
