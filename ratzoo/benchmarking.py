"""``ratzoo.benchmarking``: one trustworthy robustness number for any classifier, randomized or not.

RobustBench admits only deterministic models, and AutoAttack's version for randomized
defenses judges its final answer on a single forward pass. This benchmark applies **the same
ensemble to every model**, so a randomized and a deterministic model are compared under equal
attacks:

1. APGD-CE (100 iterations, EOT over ``eot_samples`` draws per step, 20 by default), then
2. APGD-T, targeted APGD-DLR towards one wrong class at a time, most likely first
   (``n_target_classes``, 9 as AutoAttack; 100 iterations each, ``target_eot_samples`` draws
   per step for the likeliest target, 5 by default, and ``late_target_eot_samples``, 2, for the
   others), on the images still robust: every such image gets the first
   ``cascade_after`` targets (by default all), and a further target only while the smallest
   decision margin APGD-T reached on it is at most ``cascade_margin`` (a cascade, off by
   default: ``DEFAULT_CASCADE_AFTER`` says why). Images still robust within ``refine_margin``
   of the boundary then get the first target once more at ``eot_samples`` draws (the boundary is where fewer draws per step lose images).
   Each target's example is judged on its own, and the record keeps per image the rank that
   broke it, the targets it got, whether it was refined and the margin after each attack.

A deterministic model is attacked with one pass per step. After each attack every image is judged by the
decision rule (:func:`ratzoo.judge.decide`: argmax of the mean softmax over 100 fresh draws),
and an image counts as broken when any attack's example fooled the decision rule: **the
worst case per image**. The result is a :class:`~ratzoo.record.Record` with 95 % intervals,
per-image outcomes (clean correct, robust after each attack, the norm of the breaking
example), the single-draw accuracy (what one call of the model gives a user), the cost
(model passes, seconds) and the software versions.

**Parts.** The images are measured in parts of ``part_size`` images, each seeded by a seed
derived from the one ``seed`` and the part's index; a record therefore does not depend on
how many processes measured it, nor on a kill and resume in between (:func:`benchmark`'s
``parts``, ``on_part`` and ``only_parts``). The command line, ``python -m ratzoo benchmark``
(:mod:`ratzoo.commands.benchmark`), keeps each finished part on disk (:mod:`ratzoo.parts`) and
shares the parts between processes and torchrun ranks.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .attacks.apgd import canonical_norm
from .attacks.base import PRECISIONS, RESOLVE_MARGIN, PassStats, check_inputs, parse_budget
from .judge import DECISION_RULE, DEFAULT_DECISION_SAMPLES, DEFAULT_EOT, Decision, derive_seed, run_attack
from .parts import part_ranges
from .randomness import Randomness, randomness_of
from .identity import model_config
from .record import Record, versions
from .stats import wilson_interval

ENSEMBLE = ("apgd-ce", "apgd-t")
"""The attacks, in order; each runs on the images every earlier one left robust."""
THREAT_MODELS = {"Linf": 8 / 255, "L2": 0.5}
"""Threat model -> default budget (RobustBench's CIFAR-10 budgets)."""
DEFAULT_STEPS = 100
DEFAULT_TARGETS = 9
"""Targets of APGD-T: all nine wrong classes, as AutoAttack's standard version, because some
images fall only to the 4th-9th most likely classes (``benchmarks/bench_targets.py``)."""
DEFAULT_TARGET_EOT = 5
DEFAULT_LATE_TARGET_EOT = 2
"""The likeliest target breaks most of what APGD-T breaks on the noisy models, the others a few
images each: they get fewer draws per step (``benchmarks/bench_benchmark.py strength``)."""
DEFAULT_CASCADE_AFTER = DEFAULT_TARGETS
DEFAULT_CASCADE_MARGIN = 0.2
DEFAULT_REFINE_MARGIN = 0.1
"""APGD-T at EOT-5 (EOT-2 after the likeliest) per step on every target rank, each judged on its
own, and the images left within 0.1 of the boundary the first target again at the full EOT. Every robust image gets every
target: stopping after the first by the decision margin (``--cascade-after 1``) left images robust
that later ranks break, at any margin (``benchmarks/bench_benchmark.py strength`` against the
committed records of the full APGD-T)."""
PART_SIZE = 100
STREAM_PART = 1000  # part j is seeded with derive_seed(seed, STREAM_PART + j)
STREAM_TARGET = 10  # APGD-T's target rank r is seeded with derive_seed(part seed, STREAM_TARGET + r)
STREAM_REFINE = 30
REFINE = "apgd-t-refine"  # per_attack's name for the first target again at full draws, near the boundary


def _key(name: str) -> str:
    return name.replace("-", "_")


def _bench_part(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, threat_model: str, eps: float, seed: int,
    steps: int, eot_samples: int, n_target_classes: int, target_eot_samples: int, late_target_eot_samples: int,
    cascade_after: int, cascade_margin: float, refine_margin: float, decision_samples: int, rnd: Randomness,
    precision: str, progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """The ensemble on one part: per-image outcomes and costs (no aggregate numbers).

    APGD-CE runs on every clean-correct image; APGD-T then runs one target rank at a time, each
    rank's example judged by the decision rule on its own, on the images still robust whose rank
    is at most ``cascade_after`` or whose smallest margin so far is at most ``cascade_margin``;
    the images still robust with a margin at most ``refine_margin`` get the first target again
    at ``eot_samples`` draws per step."""
    n = len(x)
    stats = PassStats()
    robust = torch.ones(n, dtype=torch.bool)
    breaking_norm: list[float | None] = [None] * n
    broken_by: list[str | None] = [None] * n
    target_rank: list[int | None] = [None] * n
    targets_tried = [0] * n
    refined = [False] * n
    margin_after: dict[str, list[float | None]] = {name: [None] * n for name in ENSEMBLE}
    low = torch.full((n,), float("inf"), dtype=torch.float64)  # smallest margin APGD-T reached so far
    worst_single = torch.ones(n, dtype=torch.float64)
    after: dict[str, list[bool]] = {}
    per_attack: dict[str, dict[str, Any]] = {
        name: {"image_draws": 0, "calls": 0, "elapsed_s": 0.0, "stopped_early": 0, "retried": 0}
        for name in (*ENSEMBLE, REFINE)}
    used: str | None = None  # the precision the attacks resolved ("auto" -> "bf16" or "fp32")
    clean: Decision | None = None
    common: dict[str, Any] = dict(eps=eps, steps=steps, norm=threat_model, precision=precision, randomness=rnd,
                                  decision_samples=decision_samples, progress=progress)

    def attack(name: str, idx: torch.Tensor, stream: int, rank: int | None, label: str | None = None,
               **kw: Any) -> None:
        nonlocal clean, used
        t0 = time.perf_counter()
        out = run_attack(model, x[idx], y[idx], name, seed=derive_seed(seed, stream),
                         clean=None if clean is None else clean.select(idx), **common, **kw)
        used = out.params.get("precision", used)
        if clean is None:
            clean = out.clean
            robust[:] &= clean.correct.cpu()
        norms = (out.linf if threat_model == "Linf" else out.l2).cpu().tolist()
        broke = out.fooled.cpu()
        m = out.adv.margin(y[idx]).double().cpu()
        for pos, j in enumerate(idx.tolist()):
            if not robust[j]:
                continue
            if rank is not None:
                low[j] = min(float(low[j]), float(m[pos]))
            prev = margin_after[name][j]
            margin_after[name][j] = round(float(m[pos]) if prev is None else min(prev, float(m[pos])), 5)
            if rank is not None and label is None:
                targets_tried[j] = rank
            if label is not None:
                refined[j] = True
            if broke[pos]:
                breaking_norm[j] = round(norms[pos], 6)
                broken_by[j] = name
                target_rank[j] = rank
        worst_single[idx] = torch.minimum(worst_single[idx], out.adv.single.double().cpu())
        robust[idx] &= ~broke
        stats.merge(out.stats)
        cost = per_attack[label or name]
        for k, v in (("image_draws", out.stats.image_draws), ("calls", out.stats.calls),
                     ("elapsed_s", time.perf_counter() - t0),
                     ("stopped_early", int(out.stopped_early.sum()) if out.stopped_early is not None else 0),
                     ("retried", int(out.retried.sum()) if out.retried is not None else 0)):
            cost[k] = round(cost[k] + v, 3)

    attack("apgd-ce", torch.arange(n), 1, None, eot_samples=eot_samples)
    after["robust_after_apgd_ce"] = robust.tolist()
    for r in range(1, n_target_classes + 1):
        idx = (robust & ((r <= cascade_after) | (low <= cascade_margin))).nonzero().squeeze(1)
        if len(idx):
            attack("apgd-t", idx, STREAM_TARGET + r, r, n_target_classes=1, target_rank=r,
                   eot_samples=target_eot_samples if r == 1 else late_target_eot_samples)
    idx = (robust & (low <= refine_margin)).nonzero().squeeze(1)
    if len(idx):
        attack("apgd-t", idx, STREAM_REFINE, 1, label=REFINE, eot_samples=eot_samples, n_target_classes=1,
               target_rank=1)
    after["robust_after_apgd_t"] = robust.tolist()
    assert clean is not None
    clean_correct = clean.correct.cpu()
    return {
        "n": n,
        "clean_correct": clean_correct.tolist(),
        "robust": robust.tolist(),
        **after,
        "breaking_norm": breaking_norm,
        "broken_by": broken_by,
        "target_rank": target_rank,
        "targets_tried": targets_tried,
        "refined": refined,
        **{f"margin_after_{_key(name)}": v for name, v in margin_after.items()},
        "clean_single": [round(v, 6) for v in clean.single.double().cpu().tolist()],
        "single": [round(v, 6) for v in (worst_single * clean_correct).tolist()],
        "passes": dataclasses.asdict(stats),
        "per_attack": per_attack,
        "precision": used,
    }


def _merge(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"passes": dataclasses.asdict(PassStats()), "per_attack": {}}
    for part in parts:
        for k, v in part.items():
            if isinstance(v, list):
                out.setdefault(k, []).extend(v)
        for k, v in part["passes"].items():
            out["passes"][k] = max(out["passes"][k], v) if k == "max_pass" else out["passes"][k] + v
        for name, costs in part["per_attack"].items():
            agg = out["per_attack"].setdefault(name, {})
            for k, v in costs.items():
                agg[k] = round(agg.get(k, 0) + v, 3)
        out["elapsed_s"] = round(out.get("elapsed_s", 0.0) + part.get("elapsed_s", 0.0), 3)
    return out


def _precision_of(parts: Sequence[dict[str, Any]], asked: str) -> str:
    """The precision the parts' attacks used ("bf16" / "fp32"; both joined by "+" if they
    differ, e.g. parts resumed on another machine); ``asked`` for parts that did not record it."""
    return "+".join(sorted({p.get("precision") or asked for p in parts})) or asked


def ensemble_params(*, steps: int = DEFAULT_STEPS, eot_samples: int = DEFAULT_EOT,
                    n_target_classes: int = DEFAULT_TARGETS, target_eot_samples: int = DEFAULT_TARGET_EOT,
                    late_target_eot_samples: int = DEFAULT_LATE_TARGET_EOT,
                    cascade_after: int = DEFAULT_CASCADE_AFTER, cascade_margin: float = DEFAULT_CASCADE_MARGIN,
                    refine_margin: float = DEFAULT_REFINE_MARGIN,
                    decision_samples: int = DEFAULT_DECISION_SAMPLES) -> dict[str, Any]:
    """What defines the ensemble, as a record's ``params`` holds it: two records were measured
    by the same attacks when these agree (``ensemble_params()``: today's defaults)."""
    return {"ensemble": list(ENSEMBLE), "steps": steps, "eot_samples": eot_samples,
            "n_target_classes": n_target_classes, "target_eot_samples": target_eot_samples,
            "late_target_eot_samples": late_target_eot_samples, "cascade_after": cascade_after,
            "cascade_margin": cascade_margin, "refine_margin": refine_margin,
            "targets_judged": "each rank on its own", "decision_samples": decision_samples}


def describe_ensemble(params: dict[str, Any]) -> str:
    """One sentence saying which attacks a record's (or leaderboard entry's) ``params`` ran;
    records from before the cascade (no ``cascade_margin``) ran APGD-T over all targets."""
    steps, eot, k = params.get("steps"), params.get("eot_samples"), params.get("n_target_classes")
    head = f"APGD-CE, {steps} iterations with gradients averaged over {eot} draws (EOT) on randomized models, then "
    if params.get("cascade_margin") is None:
        return head + f"APGD-T towards each of the {k} most likely wrong classes, {steps} iterations at {eot} draws each"
    refine = (f"; an image still robust within {params['refine_margin']} of the boundary gets the first target "
              f"again at {eot} draws" if params.get("refine_margin") else "")
    ca = params["cascade_after"]
    late = params.get("late_target_eot_samples", params["target_eot_samples"])
    draws = (f"{params['target_eot_samples']} draws" if late == params["target_eot_samples"] else
             f"{params['target_eot_samples']} draws for the likeliest, {late} for the others,")
    if ca >= k:
        return head + (f"APGD-T at {draws} towards each of the {k} most likely wrong "
                       f"classes, one at a time, for every image still robust{refine}")
    first = "likeliest" if ca == 1 else f"first {ca}"
    return head + (f"APGD-T at {draws} towards the most likely wrong classes one at a "
                   f"time: the {first} for every image still robust, each next one (up to "
                   f"{k}) only while the image's decision margin stays at most {params['cascade_margin']}{refine}")


def benchmark(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    threat_model: str = "Linf",
    eps: float | str | None = None,
    *,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    eot_samples: int = DEFAULT_EOT,
    n_target_classes: int = DEFAULT_TARGETS,
    target_eot_samples: int = DEFAULT_TARGET_EOT,
    late_target_eot_samples: int = DEFAULT_LATE_TARGET_EOT,
    cascade_after: int = DEFAULT_CASCADE_AFTER,
    cascade_margin: float = DEFAULT_CASCADE_MARGIN,
    refine_margin: float = DEFAULT_REFINE_MARGIN,
    decision_samples: int = DEFAULT_DECISION_SAMPLES,
    randomness: str | Randomness | None = None,
    precision: str = "auto",
    model_name: str | None = None,
    offset: int = 0,
    part_size: int = PART_SIZE,
    parts: dict[int, dict[str, Any]] | None = None,
    on_part: Callable[[int, dict[str, Any]], None] | None = None,
    only_parts: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Record:
    """Benchmark ``model`` on ``images`` with the ensemble (module docstring).

    Args:
        model: any classifier taking images in [0, 1] (randomized or not), in eval mode.
        images: ``(N, 3, H, W)`` float in [0, 1]; labels: ``(N,)`` integers.
        threat_model: ``"Linf"`` or ``"L2"``.
        eps: the budget (default 8/255 for Linf, 0.5 for L2).
        seed: the one seed; each part gets its own, derived from it.
        steps: APGD iterations per attack (and per target).
        eot_samples: draws per step on a randomized model (1 on a deterministic one).
        n_target_classes: APGD-T's targets.
        target_eot_samples: draws per step of APGD-T's likeliest target on a randomized model.
        late_target_eot_samples: draws per step of APGD-T's other targets.
        cascade_after: target ranks every image still robust gets; a later rank runs only on
            the images whose smallest decision margin so far is at most ``cascade_margin``
            (``cascade_after=n_target_classes``: every target for every image).
        cascade_margin: see ``cascade_after``; the margin is the decision rule's mean
            probability of the true class minus the largest other (in (0, 1] while robust).
        refine_margin: the images still robust after the cascade whose smallest APGD-T margin
            is at most this get the first target once more at ``eot_samples`` draws per step
            (0: never).
        decision_samples: fresh draws of the decision rule.
        randomness: override the detected randomness (:mod:`ratzoo.randomness`).
        precision: the attacks' own passes (:class:`~ratzoo.attacks.base.Attack`'s
            ``precision``: ``"auto"`` takes bf16 where the device runs it natively); the record
            states the precision used. Verdicts are always the decision rule's, in float32.
        model_name: how the record names the model.
        offset: dataset index of the first image (recorded, for paired comparisons).
        part_size: images per part.
        parts: already measured parts (index -> part), reused as they are (resume).
        on_part: called with ``(index, part)`` after each part is measured (to save it).
        only_parts: measure only these parts (a rank's share); the record then covers them only.
        progress: ``progress(done, total)`` over attack steps, per attack.

    Returns:
        The :class:`~ratzoo.record.Record` (``attack="benchmark"``).
    """
    threat_model = canonical_norm(threat_model)
    if threat_model not in THREAT_MODELS:
        raise ValueError(f"threat_model must be one of {', '.join(THREAT_MODELS)}, got {threat_model!r}")
    eps_f = THREAT_MODELS[threat_model] if eps is None else parse_budget(eps, "eps")
    for nm, v in (("cascade_margin", cascade_margin), ("refine_margin", refine_margin)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"{nm} must be in [0, 1] (a difference of probabilities), got {v!r}")
    for nm, v in (("steps", steps), ("eot_samples", eot_samples), ("n_target_classes", n_target_classes),
                  ("target_eot_samples", target_eot_samples), ("late_target_eot_samples", late_target_eot_samples),
                  ("cascade_after", cascade_after),
                  ("decision_samples", decision_samples), ("part_size", part_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{nm} must be a positive integer, got {v!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    check_inputs(images, labels)
    t0 = time.perf_counter()
    labels = labels.to(images.device).long()
    rnd = randomness_of(model, images, randomness)
    if len(images):  # APGD-T's targets are wrong classes: check them before any attack runs
        with torch.no_grad():
            classes = model(images[:1]).shape[-1]
        if n_target_classes > classes - 1:
            raise ValueError(f"n_target_classes (--targets) must be at most {classes - 1}: the model has {classes} "
                             f"classes, so {classes - 1} wrong ones to target; got {n_target_classes}")
    done = dict(parts or {})
    todo = part_ranges(len(images), part_size)
    if only_parts is not None:
        todo = [p for p in todo if p[0] in set(only_parts)]
    for j, a, b in todo:
        if j in done:
            continue
        tp = time.perf_counter()
        part = _bench_part(model, images[a:b], labels[a:b], threat_model=threat_model, eps=eps_f,
                           seed=derive_seed(seed, STREAM_PART + j), steps=steps, eot_samples=eot_samples,
                           n_target_classes=n_target_classes, target_eot_samples=target_eot_samples,
                           late_target_eot_samples=late_target_eot_samples, cascade_after=cascade_after,
                           cascade_margin=cascade_margin, refine_margin=refine_margin,
                           decision_samples=decision_samples, rnd=rnd,
                           precision=precision, progress=progress)
        part["elapsed_s"] = round(time.perf_counter() - tp, 3)
        done[j] = part
        if on_part is not None:
            on_part(j, part)
    params = {**ensemble_params(steps=steps, eot_samples=eot_samples, n_target_classes=n_target_classes,
                                target_eot_samples=target_eot_samples,
                                late_target_eot_samples=late_target_eot_samples, cascade_after=cascade_after,
                                cascade_margin=cascade_margin, refine_margin=refine_margin,
                                decision_samples=decision_samples),
              "threat_model": threat_model, "eps": eps_f, "resolve_margin": RESOLVE_MARGIN, "part_size": part_size,
              "precision": _precision_of([done[j] for j, _, _ in todo], precision)}
    return make_record([done[j] for j, _, _ in todo], model_name=model_name or type(model).__name__,
                       model=model, rnd=rnd, params=params, seed=seed, offset=offset + (todo[0][1] if todo else 0),
                       elapsed_s=time.perf_counter() - t0)


def make_record(parts: Sequence[dict[str, Any]], *, model_name: str, model: nn.Module | None, rnd: Randomness,
                params: dict[str, Any], seed: int, offset: int, elapsed_s: float | None = None) -> Record:
    """The record of measured parts (in image order)."""
    m = _merge(parts)
    n = len(m.get("clean_correct", []))
    k_clean, k_rob = sum(m.get("clean_correct", [])), sum(m.get("robust", []))
    per_image = {k: v for k, v in m.items() if isinstance(v, list) and k not in ("clean_single", "single")}
    attacks_done = {name: sum(m[f"robust_after_{_key(name)}"]) / n if n else float("nan") for name in ENSEMBLE}
    p = next(iter(model.parameters()), None) if model is not None else None
    return Record(
        model=model_name, attack="benchmark", n=n, seed=seed, randomized=rnd.randomized, randomness=rnd.to_dict(),
        params=params, threat_model=params["threat_model"], eps=params["eps"], offset=offset, split="test",
        eot_samples=params["eot_samples"], effective_eot_samples=params["eot_samples"] if rnd.randomized else 1,
        decision_samples=params["decision_samples"] if rnd.randomized else 1,
        decision_rule=DECISION_RULE + "; broken when any attack of the ensemble fooled it (worst case per image)",
        ci_method="wilson",
        clean_accuracy=k_clean / n if n else float("nan"), clean_accuracy_ci95=list(wilson_interval(k_clean, n)),
        robust_accuracy=k_rob / n if n else float("nan"), robust_accuracy_ci95=list(wilson_interval(k_rob, n)),
        clean_single_draw_accuracy=sum(m.get("clean_single", [])) / n if n else float("nan"),
        single_draw_accuracy=sum(m.get("single", [])) / n if n else float("nan"),
        per_image=per_image, passes=m["passes"],
        elapsed_s=round(sum(pt.get("elapsed_s", 0.0) for pt in parts), 3) if elapsed_s is None else round(
            max(elapsed_s, sum(pt.get("elapsed_s", 0.0) for pt in parts)), 3),
        versions=versions(), device=str(p.device) if p is not None else None,
        extra={"robust_accuracy_after": attacks_done, "per_attack": m["per_attack"],
               "model_config": model_config(model) if model is not None else None},
    )


if __name__ == "__main__":  # `python -m ratzoo.benchmarking`: the library; the command is ratzoo.commands.benchmark
    raise SystemExit("run it as: python -m ratzoo benchmark ARGS (see python -m ratzoo benchmark --help)")
