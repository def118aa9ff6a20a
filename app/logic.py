"""The demo's logic without Streamlit: what to ask ratzoo, and how to say what it answered.

Presentation only. Attacking and judging is :func:`ratzoo.run_attack` (the decision rule,
seeding, norms and budget verdicts that :func:`ratzoo.evaluate` uses), certificates are
:func:`ratzoo.certify`, measurements are :class:`ratzoo.Record`, Figure 2 is
:func:`ratzoo.norm_regions`, the zoo is :func:`ratzoo.list_models`. What is left here:
the attack menu, upload preparation, a queue for the CPU, and the words and rows the page shows.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

import ratzoo

from .images import (  # noqa: F401  (re-exported: the page uses one module)
    FIT_MODES, MAX_UPLOAD_MB, InputError, PreparedImage, cifar_image, enlarge, gallery_image, load_gallery,
    perturbation_image, preprocess_upload, to_uint8,
)

RESULTS = Path(__file__).resolve().parent.parent / "checkpoints" / "results"
CLASSES: tuple[str, ...] = tuple(ratzoo.CIFAR10_CLASSES)
MAX_EOT_SAMPLES = 64
DECISION_SAMPLES = ratzoo.DEFAULT_DECISION_SAMPLES  # the decision rule's fresh draws, ratzoo's default
CERTIFY_DRAWS = 1000  # the demo certifies with 1,000 draws, not the library's 100,000, to answer in seconds
DEFAULT_MODELS = ("standard", "rat")  # the first screen's story: no defense vs RAT
# the first screen's gallery image: a cat that PGD-20 (8/255, EOT-10, seed 0) fools on `standard`
# and not on `rat` (RAT holds on about 4 in 10 test images; tests/test_app.py checks this one)
DEFAULT_IMAGE = 14
EOT_WORDS = "EOT (Expectation over Transformation: each attack step averages the gradient over this many noise draws)"


class ModelUnavailable(RuntimeError):
    """A zoo model cannot be loaded (not trained yet, missing or corrupt checkpoint)."""


# --------------------------------------------------------------------------- the attack menu


@dataclasses.dataclass(frozen=True)
class AttackInfo:
    """One attack as the demo offers it; ``key`` is ratzoo's attack name. Budgets are shown in
    /255 for Linf and in [0, 1] pixel units for L2; ``bounded`` is False for C&W (no budget)."""

    key: str
    label: str
    norm: str
    bounded: bool
    eps_default: float
    eps_max: float
    steps_default: int
    steps_max: int
    blurb: str
    fixed: tuple[tuple[str, Any], ...] = ()

    def eps_to_pixels(self, eps_display: float) -> float:
        return eps_display / 255.0 if self.norm == "Linf" else float(eps_display)

    def format_eps(self, eps: float) -> str:
        return f"{eps * 255:.4g}/255" if self.norm == "Linf" else f"{eps:.4g}"


ATTACKS: dict[str, AttackInfo] = {a.key: a for a in (
    AttackInfo("pgd-linf", "PGD, max-pixel budget (Linf)", "Linf", True, 8, 32, 20, 200,
               "Projected gradient descent: many small steps, each pixel changes by at most the budget."),
    AttackInfo("fgsm", "FGSM, one step (Linf)", "Linf", True, 8, 32, 1, 1,
               "Fast Gradient Sign Method: a single step of the full budget along the gradient's sign."),
    AttackInfo("pgd-l2", "PGD, total-change budget (L2)", "L2", True, 0.5, 5.0, 20, 200,
               "Projected gradient descent in the L2 ball: the whole image's change is bounded."),
    AttackInfo("apgd-ce", "Auto-PGD (Linf)", "Linf", True, 8, 32, 20, 200,
               "Auto-PGD (Croce & Hein 2020): PGD that tunes its own step size."),
    AttackInfo("cw-l2", "Carlini-Wagner, smallest change (L2)", "L2", False, 0, 0, 20, 200,
               "Carlini & Wagner: searches the smallest L2 change that fools the model; it has no budget "
               "(5 searches over its trade-off constant, each of 'steps' iterations).",
               fixed=(("search_steps", 5),)),
)}


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """A validated request: ``eps`` in [0, 1] pixel units (``None`` for C&W)."""

    attack: str
    eps: float | None
    steps: int
    eot_samples: int
    seed: int

    @property
    def info(self) -> AttackInfo:
        return ATTACKS[self.attack]

    def describe(self) -> str:
        a = self.info
        parts = [a.label]
        if a.bounded:
            parts.append(f"budget {a.format_eps(self.eps)}")
        if a.steps_max > 1:
            parts.append(f"{self.steps} steps" + (" per search" if a.fixed else ""))
        parts.append(f"EOT {self.eot_samples} noise draws per step on noisy models")
        return ", ".join(parts) + f", seed {self.seed}"


def validate_spec(attack: str, eps_display: Any, steps: Any, eot_samples: Any, seed: Any) -> AttackSpec:
    """The visitor's settings as an :class:`AttackSpec`, or :class:`InputError` saying what to change."""
    if attack not in ATTACKS:
        raise InputError(f"unknown attack {attack!r}; choose one of: {', '.join(a.label for a in ATTACKS.values())}")
    a = ATTACKS[attack]
    eps = None
    if a.bounded:
        unit = "/255" if a.norm == "Linf" else ""
        try:
            e = float(eps_display)
        except (TypeError, ValueError):
            raise InputError(f"the budget must be a number, got {eps_display!r}") from None
        if not (math.isfinite(e) and 0 < e <= a.eps_max):
            raise InputError(f"budget {eps_display!r} is out of range: choose more than 0 and at most {a.eps_max:g}{unit}")
        eps = a.eps_to_pixels(e)
    steps = 1 if a.steps_max == 1 else _int_in_range(steps, "steps", 1, a.steps_max)
    return AttackSpec(attack, eps, steps, _int_in_range(eot_samples, "noise draws per step", 1, MAX_EOT_SAMPLES),
                      _int_in_range(seed, "seed", 0, 2**31 - 1))


def _int_in_range(v: Any, name: str, lo: int, hi: int) -> int:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number, got {v!r}") from None
    if isinstance(v, bool) or not math.isfinite(f) or f != int(f) or not lo <= f <= hi:
        raise InputError(f"{name} must be a whole number between {lo} and {hi}, got {v!r}")
    return int(f)


# --------------------------------------------------------------------------- models and the CPU queue


@dataclasses.dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module
    randomized: bool


def load_model(name: str) -> LoadedModel:
    """A zoo model on the CPU, noise on. Raises :class:`ModelUnavailable` with ratzoo's message."""
    try:
        model = ratzoo.load(name, device="cpu")
    except KeyError as e:
        raise ModelUnavailable(str(e.args[0]) if e.args else str(e)) from e
    except Exception as e:  # CheckpointError and whatever a corrupt file raises
        raise ModelUnavailable(f"{type(e).__name__}: {e}") from e
    return LoadedModel(name, model, ratzoo.is_randomized(model))


def default_workers() -> int:
    """Attacks run at once: ``$RATZOO_APP_WORKERS``, else one per CPU core (each on one thread)."""
    try:
        return max(1, int(os.environ.get("RATZOO_APP_WORKERS", "")))
    except ValueError:
        return max(1, os.cpu_count() or 1)


class WorkerPool:
    """First come, first served slots for attacks, shared by every visitor of one server.

    One attack per core on one thread each: more at once only slows all of them (a model's
    forward pass is already a batch of noise draws). A visitor who has to wait is told their
    place in the queue through ``on_wait(position, busy)``, called about twice a second; an
    exception raised there (the visitor pressed Stop or left) takes them out of the queue.
    Each slot has its own copy of every model (models keep their noise generator on the module).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._cond = threading.Condition()
        self._queue: list[object] = []
        self._busy: set[int] = set()

    @contextmanager
    def slot(self, on_wait: Callable[[int, int], None] | None = None) -> Iterator[int]:
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
        try:
            while True:
                with self._cond:
                    free = [i for i in range(self.workers) if i not in self._busy]
                    position = self._queue.index(ticket)
                    if free and position == 0:
                        slot = free[0]
                        self._busy.add(slot)
                        self._queue.pop(0)
                        self._cond.notify_all()
                        break
                    busy = len(self._busy)
                if on_wait is not None:
                    on_wait(position + 1, busy)
                with self._cond:
                    self._cond.wait(0.5)
        except BaseException:
            with self._cond:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._cond.notify_all()
            raise
        try:
            yield slot
        finally:
            with self._cond:
                self._busy.discard(slot)
                self._cond.notify_all()


_POOLS: dict[int, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(workers: int | None = None) -> WorkerPool:
    """The process's pool for ``workers`` slots (default :func:`default_workers`): every visitor
    of one server, every rerun of the page, queues in the same one."""
    workers = workers or default_workers()
    with _POOLS_LOCK:
        return _POOLS.setdefault(workers, WorkerPool(workers))


# --------------------------------------------------------------------------- one attack, told in words


@dataclasses.dataclass
class Result:
    """One model's result on one image: ratzoo's :class:`ratzoo.AttackOutcome` plus what the page needs."""

    model: str
    spec: AttackSpec
    source: str
    x: torch.Tensor
    label: int
    label_is_true: bool
    outcome: ratzoo.AttackOutcome
    certificate: Any = None

    @property
    def clean_label(self) -> int:
        return int(self.outcome.clean.label[0])

    @property
    def adv_label(self) -> int:
        return int(self.outcome.adv.label[0])

    @property
    def verdict(self) -> str:
        """``"fooled"``, ``"held"`` or ``"wrong before the attack"``, from ratzoo's verdict."""
        if bool(self.outcome.fooled[0]):
            return "fooled"
        return "held" if bool(self.outcome.robust[0]) else "wrong before the attack"

    @property
    def randomized(self) -> bool:
        return self.outcome.randomness.randomized

    def sentence(self) -> str:
        truth = "the true class" if self.label_is_true else "its own first answer"
        judged = (f"the average over {draws_text(self.outcome.adv)}" if self.randomized
                  else "its prediction (this model has no noise)")
        if self.verdict == "fooled":
            return f"Fooled: {judged} now says '{CLASSES[self.adv_label]}', not {truth} '{CLASSES[self.label]}'."
        if self.verdict == "held":
            return f"Held: {judged} still says '{CLASSES[self.label]}' after the attack."
        return f"Wrong before the attack: it says '{CLASSES[self.clean_label]}', {truth} is '{CLASSES[self.label]}'."


def draws_text(decision: Any) -> str:
    """How many fresh draws a decision averaged: ratzoo's rule draws up to ``samples`` and stops
    an image once the draws left cannot change its verdict (``draws``)."""
    made = None if decision.draws is None else int(decision.draws[0])
    if made is None or made == decision.samples:
        return f"{decision.samples} fresh noise draws"
    return f"{made} fresh noise draws (of up to {decision.samples}: more could not change the verdict)"


def attack_image(loaded: LoadedModel, image: PreparedImage, spec: AttackSpec,
                 progress: Callable[[int, int], None] | None = None, certify: bool = False) -> Result:
    """Attack one image on one model with :func:`ratzoo.run_attack` and wrap the outcome.

    An upload has no label: the attacked class is then the model's own EOT prediction on it.
    ``certify`` adds :func:`ratzoo.certify`'s certificate of the clean image (noisy models only).
    """
    x = image.tensor()
    label = image.label
    if label is None:
        label = int(ratzoo.predict_proba(loaded.model, x, samples=DECISION_SAMPLES, seed=spec.seed).label[0])
    out = ratzoo.run_attack(loaded.model, x, torch.tensor([label]), spec.attack, seed=spec.seed, eps=spec.eps,
                            steps=spec.steps if spec.info.steps_max > 1 else None, eot_samples=spec.eot_samples,
                            progress=progress, **dict(spec.info.fixed))
    cert = None
    if certify and loaded.randomized:
        (cert,) = ratzoo.certify(loaded.model, x, n=CERTIFY_DRAWS, seed=spec.seed)
    return Result(loaded.name, spec, image.source, x, label, image.label is not None, out, cert)


def image_caption(image: PreparedImage) -> str:
    """The chosen image's caption: where it comes from and its true class, or that an upload has none."""
    if image.label is None:
        return f"{image.source} (true class unknown: each model is attacked on its own first answer)"
    return f"{image.source}: {CLASSES[image.label]}"


def norms_text(r: Result) -> dict[str, str]:
    """The perturbation's norms as the page shows them, from the outcome (never recomputed)."""
    o, a = r.outcome, r.spec.info
    within = o.within_budget()
    budget = ("no budget (C&W looks for the smallest change)" if within is None else
              f"{'within' if bool(within[0]) else 'OVER'} the {a.norm} budget {a.format_eps(r.spec.eps)}")
    return {"largest pixel change (Linf)": f"{float(o.linf[0]) * 255:.2f}/255",
            "total change (L2)": f"{float(o.l2[0]):.3f}", "budget": budget}


def probability_rows(r: Result) -> list[dict[str, Any]]:
    """One row per class and image (before / after) with the probability the decision used."""
    return [{"class": name, "image": which, "probability": float(d.probs[0, c]), "attacked class": c == r.label}
            for which, d in (("before", r.outcome.clean), ("after", r.outcome.adv)) for c, name in enumerate(CLASSES)]


def model_words(m: dict[str, Any]) -> str:
    """A zoo entry in a visitor's words: label, what it is, and its noise (a learned std by where it ended)."""
    if m.get("defense"):
        ref = f" ({m['reference']})" if m.get("reference") else ""
        return f"{m['label']}{ref}: {m.get('description', '')}; randomness: {m['defense']['summary']}"
    noise = m.get("noise") or {}
    kind = noise.get("noise_kind", "none")
    if kind in (None, "none"):
        how = "no noise"
    elif "learned_sigma_mean" in noise:
        how = (f"learned noise, std ended at mean {noise['learned_sigma_mean']:.2f} "
               f"(min {noise['learned_sigma_min']:.2f}; it started at {noise['noise_sigma']:g})")
    else:
        how = f"noise with std {noise.get('noise_sigma', 0):g}"
    where = "on the input" if noise.get("noise_layer") == 0 else "after the first layer"
    ref = f" ({m['reference']})" if m.get("reference") else ""
    return f"{m['label']}{ref}: {m.get('description', '').split(', ', 1)[-1]}; {how}" + ("" if how == "no noise" else f" {where}")
