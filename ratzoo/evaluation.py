"""Honest robustness evaluation: attack, then judge with fresh noise draws.

:func:`evaluate` turns :func:`ratzoo.run_attack` (the one code path that attacks and judges,
:mod:`ratzoo.judge`) into a JSON record with confidence intervals and per-image outcomes; its
command line, ``python -m ratzoo evaluate``, is :mod:`ratzoo.commands.evaluate`.

**Decision rule** (the one used everywhere in ratzoo, :func:`ratzoo.judge.decide`). An example counts as robust when

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

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .attacks.base import EOT_SAMPLES
from .progress import StepBar
from .judge import (DECISION_RULE, DEFAULT_DECISION_SAMPLES, DEFAULT_EOT, STREAM_ADV, STREAM_ATTACK,  # noqa: F401 (re-exported)
                    STREAM_CLEAN, AttackOutcome, canonical_attack, derive_seed, run_attack)
from .identity import model_config, model_description
from .record import Record, versions
from .randomness import Randomness
from .stats import Z95, wilson_interval  # noqa: F401 (re-exported)

DEFAULT_ATTACK = "pgd-linf"
DEFAULT_THRESHOLDS = (0.25, 0.5, 1.0)


# --------------------------------------------------------------------------- statistics


def _norm_stats(norms: torch.Tensor) -> dict[str, Any]:
    """Statistics of the attacked images' norms (``inf`` = no example found).

    ``found_fraction`` is over all of ``norms``, so pass the attacked images' norms
    including the ``inf`` ones; the quantiles are over the finite ones."""
    finite = norms[torch.isfinite(norms)].double().cpu().numpy()
    out: dict[str, Any] = {"found_fraction": float(len(finite) / max(len(norms), 1))}
    if len(finite):
        q = np.quantile(finite, [0.1, 0.25, 0.5, 0.75, 0.9])
        out.update(mean=float(finite.mean()), median=float(q[2]), q10=float(q[0]), q25=float(q[1]),
                   q75=float(q[3]), q90=float(q[4]), min=float(finite.min()), max=float(finite.max()))
    return out


# --------------------------------------------------------------------------- evaluate


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack: str = DEFAULT_ATTACK,
    *,
    seed: int = 0,
    eps: float | str | None = None,
    steps: int | None = None,
    eot_samples: int = EOT_SAMPLES,
    decision_samples: int = DEFAULT_DECISION_SAMPLES,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    progress: bool | Callable[[int, int], None] = False,
    model_name: str | None = None,
    randomness: str | Randomness | None = None,
    **attack_kwargs: Any,
) -> dict[str, Any]:
    """Attack ``images`` and measure accuracy under ratzoo's decision rule.

    Args:
        model: the classifier (randomized or not, ratzoo's or any ``nn.Module``), in the
            mode the caller wants (normally ``eval()``); the evaluator never changes its mode.
        images: ``(N, 3, H, W)`` float in [0, 1].
        labels: ``(N,)`` integer labels.
        attack: ``"none"`` (clean accuracy) or a name from :data:`ratzoo.attacks.ATTACKS`.
        seed: the one seed; the attack's draws and the two decision passes get
            independent streams derived from it.
        eps: the budget (number or ``"8/255"``); ``None``: the attack's default.
        steps: attack iterations; ``None``: the attack's default.
        eot_samples: draws per attack step (1 for a deterministic model).
        decision_samples: fresh draws of the decision rule (default 100).
        thresholds: L2 thresholds at which C&W accuracy is reported.
        progress: ``True`` for a progress bar on stderr, or a ``progress(done, total)``
            callback over attack steps.
        model_name: how to name the model in the record.
        randomness: override the detected randomness (:mod:`ratzoo.randomness`).
        **attack_kwargs: any other argument of the attack class (``step_size``,
            ``restarts``, ``search_steps``, ...).

    Returns:
        A JSON-ready record: ``model``, ``attack``, ``params`` (every attack argument),
        ``randomness`` (kind, source, seedable), ``n``, ``seed``, ``clean_accuracy`` (+
        ``_ci95``), ``robust_accuracy`` (+ ``_ci95``), ``single_draw_accuracy``,
        ``clean_single_draw_accuracy``, ``eot_samples`` / ``effective_eot_samples``,
        ``decision_samples``, ``decision_rule``, ``ci_method``, ``passes``, ``early_stop``,
        ``elapsed_s``, ``versions``; per image ``clean_correct_per_image``,
        ``robust_per_image``, ``linf_per_image``, ``l2_per_image``; for C&W also
        ``norms`` (statistics), ``norms_per_image``, ``fooled_per_image`` (the decision
        rule was fooled) and ``accuracy_at`` (per threshold, with CIs). For
        ``attack="none"``, ``robust_accuracy`` is the clean accuracy.

    >>> rec = evaluate(model, x, y, attack="pgd-linf", eps=8/255, steps=20, eot_samples=20)
    >>> rec["robust_accuracy"], rec["robust_accuracy_ci95"]
    """
    t0 = time.perf_counter()
    name = canonical_attack(attack)
    if model.training:
        warnings.warn(
            "evaluate() got a model in train() mode (batch norm uses batch statistics); "
            "call model.eval() first unless that is what you want", stacklevel=2)
    device = images.device
    labels = labels.to(device).long()
    n = int(images.shape[0])
    bar = StepBar("attack") if progress is True else None
    cb = bar.update if bar is not None else (progress if callable(progress) else None)
    out = run_attack(model, images, labels, name, seed=seed, eps=eps, steps=steps, eot_samples=eot_samples,
                     decision_samples=decision_samples, randomness=randomness, progress=cb, **attack_kwargs)
    if bar is not None and name != "none":
        bar.close()
    return outcome_record(out, model_name or model_description(model), n=n, seed=seed, eot_samples=eot_samples,
                          thresholds=thresholds, extra={"model_config": model_config(model)},
                          elapsed_s=time.perf_counter() - t0, device=str(device)).to_json()


def outcome_record(out: AttackOutcome, model_name: str, *, n: int, seed: int | None, eot_samples: int,
                   thresholds: Sequence[float] = DEFAULT_THRESHOLDS, extra: dict[str, Any] | None = None,
                   elapsed_s: float | None = None, device: str | None = None) -> Record:
    """The :class:`~ratzoo.record.Record` of one :func:`ratzoo.run_attack` outcome."""
    name, rnd = out.attack, out.randomness
    clean_correct, robust = out.clean.correct, out.robust
    k_clean, k_rob = int(clean_correct.sum()), int(robust.sum())
    attacked = name != "none"
    per_image: dict[str, list[Any]] = {"clean_correct": clean_correct.tolist()}
    extra = dict(extra or {})
    if attacked:
        per_image.update(robust=robust.tolist(), linf=[round(v, 6) for v in out.linf.tolist()],
                         l2=[round(v, 6) for v in out.l2.tolist()])
        if out.stopped_early is not None:
            extra["early_stop"] = {"resolve_margin": out.params.get("resolve_margin"),
                                   "stopped": int(out.stopped_early.sum()), "retried": int(out.retried.sum())}
    if name.startswith("cw"):
        norms = out.attack_norms
        broken_any = out.fooled  # decision rule fooled by the found example
        # over the attacked (clean-correct) images, the ones C&W found nothing for included
        extra["norms"] = _norm_stats(norms[clean_correct])
        per_image["norms"] = [None if not math.isfinite(v) else round(v, 6) for v in norms.tolist()]
        per_image["fooled"] = broken_any.tolist()
        extra["accuracy_at"] = accuracy_at_thresholds(clean_correct, broken_any, norms, thresholds)
    eps = out.params.get("eps")
    return Record(
        model=model_name, attack=name, n=n, seed=seed,
        randomized=rnd.randomized, randomness=rnd.to_dict(), params=out.params,
        threat_model=out.params.get("norm") if eps is not None else None, eps=eps,
        eot_samples=eot_samples if attacked else None,
        effective_eot_samples=out.eot_samples if attacked else None,
        decision_samples=out.clean.samples, decision_rule=DECISION_RULE, ci_method="wilson",
        clean_accuracy=k_clean / n if n else float("nan"),
        clean_accuracy_ci95=list(wilson_interval(k_clean, n)),
        robust_accuracy=k_rob / n if n else float("nan"),
        robust_accuracy_ci95=list(wilson_interval(k_rob, n)),
        clean_single_draw_accuracy=float(out.clean.single.mean()) if n else float("nan"),
        single_draw_accuracy=float((out.adv.single * clean_correct).mean()) if n else float("nan"),
        per_image=per_image, passes=dataclasses.asdict(out.stats) if attacked else None,
        elapsed_s=round(elapsed_s if elapsed_s is not None else out.elapsed_s, 3), device=device,
        versions=versions(), extra=extra,
    )


def accuracy_at_thresholds(clean_correct: torch.Tensor, fooled: torch.Tensor, norms: torch.Tensor,
                           thresholds: Sequence[float]) -> dict[str, Any]:
    """A minimal-norm attack's accuracy at each L2 threshold, with its 95% Wilson interval: an
    image counts when it is classified correctly and the attack did not fool the decision
    within the threshold (fooled with a norm <= t; ``inf`` norms where nothing was found).
    This is a record's ``accuracy_at``; per-image lists (bool, bool, float) give it back."""
    n = len(clean_correct)
    out = {}
    for t in thresholds:
        k = int((clean_correct & ~(fooled & (norms <= t))).sum())
        out[f"{t:g}"] = {"accuracy": k / n if n else float("nan"), "ci95": list(wilson_interval(k, n))}
    return out


# Keys that must agree between the parts of one measurement (everything but the images
# and the seed); ``params`` is compared without its derived ``seed``.
_MERGE_SAME = ("model", "model_config", "randomized", "randomness", "attack", "eot_samples",
               "effective_eot_samples", "decision_samples", "decision_rule", "ci_method")


def merge_records(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One record from records of the same measurement on disjoint sets of images.

    This is how a long measurement is split into parts that can each be run (and
    re-run after a kill) on their own: ``python -m train.experiments --shard 200``
    measures images ``[0, 200)``, ``[200, 400)``, ... as separate :func:`evaluate` calls
    (each with its own seed) and merges them here. Counts, confidence intervals, single-draw
    accuracies, C&W norm statistics and accuracies at thresholds are recomputed over all
    images, so the merged record reads exactly like one :func:`evaluate` record of
    ``sum(n)`` images; ``parts`` lists each part's ``n``, ``seed`` and ``elapsed_s``, and
    ``seed``/``params["seed"]`` are ``None`` (there is no single seed).

    Raises:
        ValueError: no parts, parts of different measurements (model, attack, attack
            arguments, EOT or decision settings differ), or C&W parts without the
            per-image fields (records written before ratzoo recorded
            ``clean_correct_per_image``: re-measure them).
    """
    parts = list(parts)
    if not parts:
        raise ValueError("merge_records() needs at least one record")
    _check_same_measurement(parts)
    rec = _merged_accuracies(parts)
    rec.update(_merged_per_image(parts))
    if "norms_per_image" in parts[0]:
        rec.update(_merged_norms(parts, rec))
    rec.update(_merged_counters(parts))
    rec.update(_merged_provenance(parts))
    return rec


def _without_seed(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` less its ``seed``, which is derived from each part's own seed."""
    return {k: v for k, v in params.items() if k != "seed"}


def _check_same_measurement(parts: list[dict[str, Any]]) -> None:
    """Raise ``ValueError`` naming the keys of :data:`_MERGE_SAME` (and ``params``) in which a
    part differs from part 0."""
    first = parts[0]
    for i, r in enumerate(parts[1:], 1):
        diff = [k for k in _MERGE_SAME if r.get(k) != first.get(k)]
        if _without_seed(r.get("params", {})) != _without_seed(first.get("params", {})):
            diff.append("params")
        if diff:
            raise ValueError(f"part {i} is not the same measurement as part 0: {', '.join(diff)} differ; "
                             "merge only parts measured by one command")


def _count(r: dict[str, Any], key: str) -> int:
    """How many of the part's images the accuracy ``r[key]`` counts."""
    return round(float(r[key]) * int(r["n"]))


def _weighted_mean(parts: list[dict[str, Any]], key: str, n: int) -> float:
    """The mean of the parts' ``key``, each weighted by its number of images (``n`` in all;
    nan for none)."""
    return sum(float(r[key]) * int(r["n"]) for r in parts) / n if n else float("nan")


def _merged_accuracies(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The merged record's head: part 0's model, attack and settings, ``params`` without a
    seed, the number of images and the accuracies (with their intervals) over all parts."""
    first = parts[0]
    n = sum(int(r["n"]) for r in parts)
    k_clean = sum(_count(r, "clean_accuracy") for r in parts)
    k_rob = sum(_count(r, "robust_accuracy") for r in parts)
    rec: dict[str, Any] = {k: first[k] for k in ("model", "model_config", "randomized", "attack") if k in first}
    rec["params"] = {**first.get("params", {}), "seed": None} if "seed" in first.get("params", {}) else dict(first.get("params", {}))
    rec.update(
        n=n,
        seed=None,
        **{k: first.get(k) for k in ("eot_samples", "effective_eot_samples", "decision_samples",
                                     "decision_rule", "ci_method")},
        clean_accuracy=k_clean / n if n else float("nan"),
        clean_accuracy_ci95=list(wilson_interval(k_clean, n)),
        robust_accuracy=k_rob / n if n else float("nan"),
        robust_accuracy_ci95=list(wilson_interval(k_rob, n)),
        clean_single_draw_accuracy=_weighted_mean(parts, "clean_single_draw_accuracy", n),
        single_draw_accuracy=_weighted_mean(parts, "single_draw_accuracy", n),
    )
    return rec


def _merged_per_image(parts: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Each of part 0's per-image lists that every part has, the parts' lists end to end."""
    return {key: [v for r in parts for v in r[key]]
            for key in [k for k in parts[0] if k.endswith("_per_image")] if all(key in r for r in parts)}


def _merged_norms(parts: list[dict[str, Any]], rec: dict[str, Any]) -> dict[str, Any]:
    """A minimal-norm attack's ``norms`` statistics and ``accuracy_at`` (at part 0's
    thresholds), recomputed from the merged per-image lists of ``rec``.

    Raises:
        ValueError: a part lacks the per-image lists (written by an older ratzoo).
    """
    missing = [i for i, r in enumerate(parts)
               if not all(k in r for k in ("norms_per_image", "clean_correct_per_image", "fooled_per_image"))]
    if missing:
        raise ValueError(f"parts {missing} lack norms_per_image / clean_correct_per_image / fooled_per_image "
                         "(written by an older ratzoo): re-measure them")
    norms = torch.tensor([float("inf") if v is None else float(v) for v in rec["norms_per_image"]])
    clean = torch.tensor([bool(v) for v in rec["clean_correct_per_image"]])
    fooled = torch.tensor([bool(v) for v in rec["fooled_per_image"]])
    thresholds = [float(t) for t in parts[0].get("accuracy_at", {})]
    return {"norms": _norm_stats(norms[clean]), "accuracy_at": accuracy_at_thresholds(clean, fooled, norms, thresholds)}


def _merged_counters(parts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``passes`` and ``early_stop``, where every part has them: each of part 0's fields
    over all parts (:func:`_merged_counter`)."""
    return {key: {k: _merged_counter(parts, key, k) for k in parts[0][key]}
            for key in ("passes", "early_stop") if all(isinstance(r.get(key), dict) for r in parts)}


def _merged_counter(parts: list[dict[str, Any]], key: str, k: str) -> Any:
    """Field ``k`` of the parts' ``key``: the largest ``max_pass``, the sum of any other
    number, else (a flag, a text, a field some part lacks) part 0's value."""
    if all(isinstance(r[key].get(k), (int, float)) and not isinstance(r[key].get(k), bool) for r in parts):
        return (max if k == "max_pass" else sum)(r[key][k] for r in parts)
    return parts[0][key].get(k)


def _merged_provenance(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Part 0's randomness, device and versions, the total time, and each part's ``n``,
    ``seed``, ``elapsed_s`` (and ``offset``, when it has one)."""
    first = parts[0]
    out: dict[str, Any] = {}
    if "randomness" in first:
        out["randomness"] = first["randomness"]
    out["elapsed_s"] = round(sum(float(r.get("elapsed_s") or 0.0) for r in parts), 3)
    out["device"] = first.get("device")
    out["versions"] = first.get("versions")
    out["parts"] = [{"n": int(r["n"]), "seed": r.get("seed"), "elapsed_s": r.get("elapsed_s"),
                     **({"offset": r["offset"]} if "offset" in r else {})} for r in parts]
    return out


if __name__ == "__main__":  # `python -m ratzoo.evaluation`: the library; the command is ratzoo.commands.evaluate
    raise SystemExit("run it as: python -m ratzoo evaluate ARGS (see python -m ratzoo evaluate --help)")
