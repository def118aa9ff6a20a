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
how many processes measured it, nor on a kill and resume in between (the CLI keeps each
finished part on disk, :mod:`ratzoo.parts`). ``torchrun --nproc_per_node=N -m ratzoo benchmark ...`` gives the
parts to the ranks in turn (gloo on CPU, NCCL on GPUs) and rank 0 gathers and writes the one
record (write ``--n-images`` there: torchrun's own parser takes ``--n`` for one of its options).

CLI::

    python -m ratzoo benchmark --model rat --threat-model Linf --eps 8/255 --n 1000 \\
        --out rat_linf.json --resume --leaderboard checkpoints/results/leaderboard.json

``--model`` takes a zoo name, a checkpoint folder or ``module.path:callable`` (your own code,
called with no arguments, returning any ``nn.Module`` that takes images in [0, 1]);
``--leaderboard`` adds the record's entry to a leaderboard file (:mod:`ratzoo.leaderboard`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import cli
from ._io import write_json
from .attacks.apgd import canonical_norm
from .attacks.base import PRECISIONS, RESOLVE_MARGIN, PassStats, check_budget, check_inputs, parse_budget
from .geometry import IMAGE_DIM
from .judge import DECISION_RULE, DEFAULT_DECISION_SAMPLES, DEFAULT_EOT, Decision, derive_seed, run_attack
from .identity import model_identity
from .parts import Parts, folder_key, part_ranges
from .randomness import Randomness, randomness_of
from .record import Record
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
IDENTITY_FILE = "model.json"  # in each parts folder: the identity of the model its parts measured


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
        versions=cli.versions(), device=str(p.device) if p is not None else None,
        extra={"robust_accuracy_after": attacks_done, "per_attack": m["per_attack"],
               "model_config": cli.model_config(model) if model is not None else None},
    )


# --------------------------------------------------------------------------- CLI


def _field(default: Any, help: str, key: str | None = None, **arg: Any) -> Any:
    """A :class:`BenchmarkConfig` field (:func:`ratzoo.cli.option`) and its ``key``: whether it
    defines the measurement (``"always"``, or ``"unless_default"`` for fields added later, so
    that the parts of older runs keep their folder) or only how it is run (None)."""
    return cli.option(default, help, meta={"key": key}, **arg)


@dataclasses.dataclass
class BenchmarkConfig:
    """``python -m ratzoo benchmark``'s configuration: one field per flag (``--part-size`` for
    ``part_size``), the record's ``command`` says which were given."""

    model: str = _field(None, "zoo name, checkpoint folder, hf-hub:OWNER/NAME or module.path:callable", "always",
                        required=True)
    threat_model: str = _field("Linf", "threat model (any case)", "always", choices=list(THREAT_MODELS),
                               type=canonical_norm)
    eps: str | None = _field(None, "budget, e.g. 8/255 or 0.5 (default: 8/255 Linf, 0.5 L2)", "always")
    n: int = _field(1000, "test images; under torchrun write --n-images (torchrun reads --n as its own)",
                    flags=("--n", "--n-images"), type=cli.positive_int("--n"))
    offset: int = _field(0, "index of the first test image", "always", type=cli.nonnegative_int("--offset"))
    seed: int = _field(0, "the one seed (each part's is derived from it)", "always")
    steps: int = _field(DEFAULT_STEPS, "APGD iterations per attack and per target", "always",
                        type=cli.positive_int("--steps"))
    eot_samples: int = _field(DEFAULT_EOT, "EOT draws per step on a randomized model", "always",
                              flags=("--eot-samples", "--eot"), type=cli.positive_int("--eot-samples"))
    targets: int = _field(DEFAULT_TARGETS, "APGD-T targets, the most likely wrong classes (at most classes - 1)",
                          "always", type=cli.positive_int("--targets"))
    target_eot_samples: int = _field(DEFAULT_TARGET_EOT, "EOT draws per step of APGD-T's likeliest target on a "
                                     "randomized model", "always", flags=("--target-eot-samples", "--target-eot"),
                                     type=cli.positive_int("--target-eot-samples"))
    late_target_eot_samples: int = _field(DEFAULT_LATE_TARGET_EOT, "EOT draws per step of APGD-T's other targets",
                                          "always", flags=("--late-target-eot-samples", "--late-target-eot"),
                                          type=cli.positive_int("--late-target-eot-samples"))
    cascade_after: int = _field(DEFAULT_CASCADE_AFTER, "APGD-T target ranks every robust image gets", "always",
                                type=cli.positive_int("--cascade-after"))
    cascade_margin: float = _field(DEFAULT_CASCADE_MARGIN, "after --cascade-after ranks, an image gets the next "
                                   "target only while its smallest decision margin is at most this", "always")
    refine_margin: float = _field(DEFAULT_REFINE_MARGIN, "after the cascade, an image still robust with a margin at "
                                  "most this gets the first target again at --eot-samples draws (0: never)", "always")
    decision_samples: int = _field(DEFAULT_DECISION_SAMPLES, "fresh draws of the decision rule", "always",
                                   type=cli.positive_int("--decision-samples"))
    part_size: int = _field(PART_SIZE, "images per resumable part", "always", type=cli.positive_int("--part-size"))
    randomness: str | None = _field(None, "override the detected randomness", "always",
                                    choices=["deterministic", "per-sample", "per-call"])
    precision: str = _field("auto", "the attacks' passes (auto: bf16 where the device runs it natively); "
                                    "verdicts are always float32", "unless_default", choices=list(PRECISIONS))
    resume: bool = _field(False, "reuse finished parts (also: share one run between processes)")
    wait: bool = _field(False, "when other processes measure the last parts, wait for them and write the record "
                               "too (default: leave it to the process that finishes last)")
    procs: int = _field(0, "processes sharing the parts on CPU, one thread each (0: one per core, the faster "
                           "layout, benchmarks/bench_benchmark.py layout; 1: this process alone)",
                        type=cli.nonnegative_int("--procs"))
    threads: int = _field(0, "torch threads per process (0: 1 when several processes share the CPU, else torch's "
                             "default)", type=cli.nonnegative_int("--threads"))
    data_dir: str | None = _field(None, "CIFAR-10 folder (default $RATZOO_CIFAR10 or the Hub)")
    device: str | None = _field(None, "cuda or cpu (default: cuda when available)")
    out: str | None = _field(None, "write the record here (default: print it)")
    leaderboard: str | None = _field(None, "add or update this model's entry in this leaderboard file")
    name: str | None = _field(None, "the model's name in the record (default: --model)")
    sanity: bool = _field(False, "also run Carlini et al.'s checks (large eps; 2x steps, 2x draws)")
    no_progress: bool = _field(False, "no progress bar")

    def budget(self) -> float:
        """``eps`` as a number (the threat model's default when unset).

        Raises:
            ValueError: a budget that makes no sense (the message names the flag).
        """
        if self.eps is None:
            return THREAT_MODELS[self.threat_model]
        eps = parse_budget(self.eps, "--eps")
        check_budget(eps, self.threat_model, IMAGE_DIM, "--eps")
        return eps

    def benchmark_kwargs(self, eps: float) -> dict[str, Any]:
        """:func:`benchmark`'s arguments of this configuration (``eps``: :meth:`budget`)."""
        return dict(threat_model=self.threat_model, eps=eps, seed=self.seed, steps=self.steps,
                    eot_samples=self.eot_samples, n_target_classes=self.targets,
                    target_eot_samples=self.target_eot_samples, late_target_eot_samples=self.late_target_eot_samples,
                    cascade_after=self.cascade_after,
                    cascade_margin=self.cascade_margin, refine_margin=self.refine_margin,
                    decision_samples=self.decision_samples, randomness=self.randomness, precision=self.precision,
                    model_name=self.name or self.model, offset=self.offset, part_size=self.part_size)

    def parts_dir(self, model_digest: str | None = None) -> Path:
        """Where this run's finished parts live: ``$RATZOO_BENCHMARK_PARTS/<key>/<model>``
        (default ``$RATZOO_CACHE/benchmark``, i.e. ``~/.cache/ratzoo/benchmark``; a variable of
        its own so that pointing the parts into a repository never moves the dataset cache
        there; delete it to clear them), the key hashing every field that defines the
        measurement and ``<model>`` the measured model's
        :func:`~ratzoo.identity.model_identity` digest (None: the key's folder itself), so a
        changed model never reuses another's parts. ``n`` is not in the key: part j is the same
        images and seed whatever n, so a run of the first 100 images reuses the first part of a
        run of 1000 (and the other way round)."""
        ident = [self.budget() if f.name == "eps" else getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.metadata["key"] == "always"
                 or (f.metadata["key"] == "unless_default" and getattr(self, f.name) != f.default)]
        from .data import cache_dir

        digest = folder_key(ident)
        parts = os.environ.get("RATZOO_BENCHMARK_PARTS")
        key = (Path(parts) if parts else cache_dir() / "benchmark") / digest
        return key / model_digest if model_digest else key


def build_parser() -> argparse.ArgumentParser:
    """The CLI, one flag per :class:`BenchmarkConfig` field."""
    return cli.parser(
        "benchmark", BenchmarkConfig,
        "Benchmark any classifier (randomized or not) with APGD-CE + APGD-T, EOT for randomized "
        f"models, judged by the {DEFAULT_DECISION_SAMPLES}-draw decision rule; writes a record and optionally a "
        "leaderboard entry.",
        epilog="example: python -m ratzoo benchmark --model rat --threat-model Linf --eps 8/255 --n 1000 "
               "--out rat.json --resume")


_WORKER = "RATZOO_BENCHMARK_WORKER"


def _cpu_count() -> int:
    """Cores this process may use (``os.process_cpu_count`` is Python >= 3.13 only)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclasses.dataclass
class _Process:
    """Where this process stands in a run: its torchrun ``rank`` of ``world``, or ``worker``, a
    process this CLI started to share the parts (it never writes the record), and its layout."""

    world: int
    rank: int
    worker: str | None
    device: str
    procs: int
    threads: int

    @property
    def who(self) -> str:
        return f"worker {self.worker}" if self.worker else f"rank {self.rank}"

    @property
    def lead(self) -> bool:
        """Whether this process speaks for the run (notes, the record): rank 0, not a worker."""
        return self.rank == 0 and not self.worker


def _start_process(cfg: BenchmarkConfig) -> _Process:
    """Join torchrun's process group if there is one; choose the CPU processes and threads."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    device = cli.device(cfg.device)
    if world > 1:
        import torch.distributed as dist

        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    worker = os.environ.get(_WORKER)
    procs = 1 if world > 1 or worker or not device.startswith("cpu") else cfg.procs or _cpu_count()
    threads = cfg.threads or (1 if procs > 1 else 0)
    cli.set_threads(threads)
    return _Process(world, rank, worker, device, procs, threads)


def _open_parts(cfg: BenchmarkConfig, proc: _Process, identity: dict[str, Any], n: int) -> Parts:
    """This run's parts store, in the folder of this command and this model (its identity written
    beside the parts, and a note when the folder's siblings hold another model's parts)."""
    folder = cfg.parts_dir(identity["digest"])
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / IDENTITY_FILE).exists():  # allow_nan: a user's config or a broken model's parts may hold NaN
        write_json(folder / IDENTITY_FILE, identity, allow_nan=True)
    others = sorted(d.name for d in folder.parent.iterdir() if d != folder and any(d.glob("part_*.json")))
    if others and proc.lead:
        print(f"note: {folder.parent} also holds parts of this command measured on another model ({', '.join(others)}); "
              f"they are not reused: this model's weights, config, source or behaviour differ "
              f"({IDENTITY_FILE} in each folder says what was measured)", file=sys.stderr)
    return Parts(folder, n, cfg.part_size)


def _measure_parts(cfg: BenchmarkConfig, proc: _Process, store: Parts, mine: list[int], model: nn.Module,
                   x: torch.Tensor, y: torch.Tensor, common: dict[str, Any]) -> dict[int, dict[str, Any]] | None:
    """Measure the parts ``mine`` that no other process holds or finished, saving each as it
    ends; the parts this process measured, or None when the model or data refuse the arguments."""
    from .progress import StepBar

    measured: dict[int, dict[str, Any]] = {}

    def keep(j: int, part: dict[str, Any]) -> None:
        store.save(j, part)
        measured[j] = part

    total = len(store.ranges)
    for j in mine:
        with store.claim(j) as free:
            if not free or store.load(j) is not None:
                continue  # another process measures it (or just did)
            bar = None if cfg.no_progress or proc.worker else StepBar(f"part {j + 1}/{total}")
            try:
                rec = benchmark(model, x, y, **common, only_parts=[j], on_part=keep,
                                progress=bar.update if bar is not None else None)
            except ValueError as e:  # arguments this model or data refuse (checked before any attack runs)
                print(f"\nerror: {e}", file=sys.stderr)
                return None
        if bar is not None:
            bar.close()
        print(f"[{proc.who}] part {j + 1}/{total}: robust {rec.robust_accuracy:.3f} of {rec.n} "
              f"({rec.elapsed_s:.0f} s)", file=sys.stderr, flush=True)
    return measured


def _gather(proc: _Process, measured: dict[int, dict[str, Any]]) -> list[dict[int, dict[str, Any]]] | None:
    """Every torchrun rank's measured parts, on rank 0 (None on the other ranks); this process's
    alone without torchrun."""
    if proc.world == 1:
        return [measured]
    import torch.distributed as dist

    gathered: list[dict[int, dict[str, Any]]] | None = [{} for _ in range(proc.world)] if proc.rank == 0 else None
    dist.gather_object(measured, gathered, dst=0)  # rank 0 gets every rank's per-image outcomes
    dist.destroy_process_group()
    return gathered


def _await_parts(cfg: BenchmarkConfig, proc: _Process, store: Parts, parts: dict[int, dict[str, Any]],
                 helpers: list[subprocess.Popen]) -> int | None:
    """Wait for the helper processes, then (``--wait``) for the parts other processes measure;
    None once every part is in ``parts``, else the exit code to return now."""
    for h in helpers:
        if h.wait():
            print(f"error: a helper process exited with {h.returncode}; rerun with --resume to finish", file=sys.stderr)
            return 3
    parts.update(store.finished())
    while not all(j in parts for j, _, _ in store.ranges):  # parts another process is measuring
        if not cfg.wait:
            print(f"[rank {proc.rank}] the other parts are being measured by another process; the process that "
                  f"finishes the last part writes the record (or rerun with --resume --wait)", file=sys.stderr)
            return 0
        time.sleep(5)
        parts.update(store.finished())
    return None


def _sanity(cfg: BenchmarkConfig, rec: Record, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
            parts: dict[int, dict[str, Any]], common: dict[str, Any]) -> None:
    """``--sanity``: Carlini et al.'s checks on the first part's images, into the record's ``extra``."""
    from .sanity import benchmark_checks

    m = min(len(x), PART_SIZE)
    rec.extra["sanity"] = benchmark_checks(
        model, x[:m], y[:m], rec, base_part=parts.get(0) if cfg.part_size == m else None,
        **{k: v for k, v in common.items() if k not in ("model_name", "offset", "part_size")})
    for c in rec.extra["sanity"]:
        print(f"[{'ok' if c['passed'] else 'FLAG'}] {c['check']}: {c['message']}", file=sys.stderr)


def _publish(cfg: BenchmarkConfig, rec: Record, name: str) -> None:
    """Write the record (``--out``, else stdout), update ``--leaderboard``, print the summary."""
    from .leaderboard import leaderboard_entry, update_leaderboard  # here: it imports this module

    if cfg.out:
        rec.save(cfg.out)
        print(f"wrote {cfg.out}", file=sys.stderr)
    else:
        print(json.dumps(rec.to_json(), indent=2))
    if cfg.leaderboard:
        from .zoo import entries

        entry = entries().get(cfg.model)
        link = f"checkpoints/{entry.bundled}/README.md" if entry is not None and entry.bundled else None
        update_leaderboard(cfg.leaderboard, leaderboard_entry(rec, link=link, record_path=cfg.out))
        print(f"updated {cfg.leaderboard}", file=sys.stderr)
    lo, hi = rec.robust_accuracy_ci95
    print(f"{name}: clean {rec.clean_accuracy:.4f}, robust {rec.robust_accuracy:.4f} (95% CI {lo:.4f}-{hi:.4f}), "
          f"one draw {rec.single_draw_accuracy:.4f}, n={rec.n}, {rec.elapsed_s:.0f} s", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 ok, 2 bad arguments, 3 model/data error)."""
    import numpy as np

    from .data import to_tensor
    from .leaderboard import eps_text  # here: it imports this module

    cfg = BenchmarkConfig(**vars(build_parser().parse_args(argv)))
    try:
        eps = cfg.budget()
    except ValueError as e:
        print(f"error: {e}\n(see python -m ratzoo benchmark --help)", file=sys.stderr)
        return 2
    proc = _start_process(cfg)
    try:
        model = cli.load_model(cfg.model, proc.device)
        xs, ys = cli.load_data("test", cfg.data_dir)
    except cli.CommandError as e:
        return e.report()
    x = to_tensor(np.array(xs[cfg.offset: cfg.offset + cfg.n])).to(proc.device)
    y = torch.from_numpy(np.array(ys[cfg.offset: cfg.offset + cfg.n])).long().to(proc.device)
    n = len(x)
    if n < cfg.n:
        print(f"warning: only {n} images from offset {cfg.offset}", file=sys.stderr)
    identity = model_identity(model, cfg.model)
    store = _open_parts(cfg, proc, identity, n)
    all_parts = store.ranges
    parts = store.finished()
    if len(parts) == len(all_parts) and proc.lead:
        print(f"[{proc.who}] all {len(parts)} parts of this run were measured before, on this same model "
              f"({store.folder}): the record is rebuilt from them, no attack runs (delete the folder to measure "
              f"again)", file=sys.stderr)
    elif parts and not cfg.resume and proc.rank == 0 and proc.world == 1:
        print(f"error: {len(parts)} of the {len(all_parts)} parts of this exact run, on this same model, are finished "
              f"in {store.folder}; pass --resume to reuse them (or delete the folder to start over)", file=sys.stderr)
        return 2

    name = cfg.name or cfg.model
    common = cfg.benchmark_kwargs(eps)
    rnd = randomness_of(model, x, cfg.randomness)
    print(f"[{proc.who}] {name}: {rnd.kind}; {cfg.threat_model} eps {eps_text(cfg.threat_model, eps)}; "
          f"{len(all_parts)} parts of {cfg.part_size}; {len(parts)} already done ({store.folder})", file=sys.stderr)
    mine = [j for j, _, _ in all_parts if j % proc.world == proc.rank and j not in parts]
    procs = min(proc.procs, len(mine))
    layout = {"processes": max(procs, 1) * proc.world, "threads": torch.get_num_threads()}
    if not proc.worker:
        print(f"[{proc.who}] layout: {layout['processes']} process(es) x {layout['threads']} thread(s) on "
              f"{proc.device}", file=sys.stderr, flush=True)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    helpers = [subprocess.Popen([sys.executable, "-m", "ratzoo", "benchmark", *argv_list, "--resume", "--threads",
                                 str(proc.threads or 1)], env={**os.environ, _WORKER: str(k)})
               for k in range(1, procs)]
    measured = _measure_parts(cfg, proc, store, mine, model, x, y, common)
    if measured is None:
        return 2
    gathered = _gather(proc, measured)
    if gathered is None or proc.worker:
        return 0
    for got in gathered:
        parts.update(got)
    if (code := _await_parts(cfg, proc, store, parts, helpers)) is not None:
        return code
    rec = benchmark(model, x, y, **common, parts=parts)
    rec.elapsed_s = round(sum(p.get("elapsed_s", 0.0) for p in parts.values()), 3)
    rec.extra.update(dataset_note="CIFAR-10 test split" + (" (JPEG copy)" if cfg.data_dir or os.environ.get("RATZOO_CIFAR10") else ""),
                     command="python -m ratzoo benchmark " + " ".join(argv_list), layout=layout,
                     model_identity=identity)
    if cfg.sanity:
        _sanity(cfg, rec, model, x, y, parts, common)
    _publish(cfg, rec, name)
    return 0


if __name__ == "__main__":  # `python -m ratzoo.benchmarking`: `import ratzoo` already imported this module, so
    # runpy would run a second copy; the command has one entry point
    sys.exit("run it as: python -m ratzoo benchmark ARGS (see python -m ratzoo benchmark --help)")
