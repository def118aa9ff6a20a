"""The decision rule and :func:`run_attack`: attack, then judge with fresh draws.

This is the one code path by which ratzoo turns an attack into a verdict: :func:`ratzoo.evaluate`
(the records), the benchmark and the demo all call :func:`run_attack`, so the three can never
disagree about whether an image was fooled.

**Decision rule.** An image counts as robust when the EOT prediction (argmax of the mean
softmax over ``decision_samples`` fresh draws, seeded independently of the attack's own) is
the true label on both the clean and the adversarial image. For a deterministic model the
EOT prediction is the plain prediction. Requiring the clean image to be right makes robust
accuracy never exceed clean accuracy; only clean-correct images are attacked (a
misclassified image is its own adversarial example, at norm 0).

**Confirm or continue.** PGD and APGD stop attacking an image once their own ``K``-draw
estimate is fooled by a margin (:mod:`ratzoo.attacks.base`). Such an estimate can be wrong,
so an image that stopped early but that the decision rule does not confirm as fooled is
attacked once more, from scratch, with an independent seed and without stopping early; it
counts as broken when either example fools the decision rule (the worst case of the two, as
in AutoAttack's ensemble). ``benchmarks/bench_resolve.py`` compares this with full runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .attacks import ATTACKS, canonical_name, make_attack
from .attacks.base import EOT_SAMPLES, PassStats, check_inputs
from .eot import DEFAULT_DECISION_SAMPLES, forward_draws, predict_proba  # the rule's draws: eot's default too
from .randomness import PER_CALL, Randomness, draw_scope, randomness_of

DEFAULT_EOT = 20  # EOT draws per attack step the CLIs and the benchmark use against a randomized model
DECISION_RULE = (
    "robust = EOT prediction (argmax of mean softmax over decision_samples fresh noise draws, "
    "seeded independently of the attack) is the true label on both the clean and the adversarial image"
)
STREAM_ATTACK, STREAM_CLEAN, STREAM_ADV, STREAM_RETRY, STREAM_RETRY_ADV = 1, 2, 3, 4, 5


def derive_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for ``stream`` (attack, decision, ...) from ``seed``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stream]).generate_state(2, np.uint64)[0] >> 1)


@dataclasses.dataclass
class Decision:
    """The decision rule's verdict on ``N`` images.

    Attributes:
        correct: ``(N,)`` bool, the EOT prediction is the true label.
        label: ``(N,)`` the EOT prediction (argmax of the mean softmax).
        probs: ``(N, C)`` the mean softmax over the draws.
        single: ``(N,)`` float, the fraction of single draws that predict the true label
            (the expected accuracy of one call of the model).
        samples: the draws the rule is over (1 for a deterministic model).
        draws: ``(N,)`` the draws actually made per image (the sequential rule stops an image
            once its verdict cannot change; ``None`` when not counted).
    """

    correct: torch.Tensor
    label: torch.Tensor
    probs: torch.Tensor
    single: torch.Tensor
    samples: int
    draws: torch.Tensor | None = None

    def clone(self) -> Decision:
        return Decision(self.correct.clone(), self.label.clone(), self.probs.clone(), self.single.clone(),
                        self.samples, None if self.draws is None else self.draws.clone())

    def put(self, idx: torch.Tensor, other: Decision) -> None:
        """Overwrite the decisions of images ``idx`` with ``other``'s (in place)."""
        for field in ("correct", "label", "probs", "single"):
            getattr(self, field)[idx] = getattr(other, field)
        if self.draws is not None and other.draws is not None:
            self.draws[idx] = other.draws

    def margin(self, labels: torch.Tensor) -> torch.Tensor:
        """``(N,)`` the rule's margin: mean probability of the true class minus the largest
        other (> 0 exactly when the decision is right; over the draws made, see :func:`decide`)."""
        labels = labels.to(self.probs.device).long()
        p_y = self.probs.gather(1, labels[:, None]).squeeze(1)
        return p_y - self.probs.scatter(1, labels[:, None], float("-inf")).amax(1)

    def select(self, idx: torch.Tensor) -> Decision:
        """The decision on the images ``idx`` only."""
        return Decision(self.correct[idx], self.label[idx], self.probs[idx], self.single[idx], self.samples,
                        None if self.draws is None else self.draws[idx])


DECISION_BLOCK = 10
"""Draws per round of the sequential decision (:func:`decide`)."""


def _check_label_range(labels: torch.Tensor, classes: int) -> None:
    """Labels must index the model's outputs: a label past them would count every image as
    misclassified, silently."""
    if len(labels) and int(labels.max()) >= classes:
        raise ValueError(f"labels must be class indices in [0, {classes - 1}] for this model's {classes} outputs, "
                         f"got {int(labels.max())}")


@torch.no_grad()
def decide(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    samples: int = DEFAULT_DECISION_SAMPLES,
    seed: int = 0,
    randomness: str | Randomness | None = None,
) -> Decision:
    """The decision rule on ``images``: EOT prediction over ``samples`` fresh draws seeded by ``seed``.

    The draws are made in rounds of :data:`DECISION_BLOCK`, and an image stops drawing as
    soon as the draws still to come cannot change its argmax: each adds at most 1 to any
    class's sum of softmax probabilities, so once the leading sum exceeds every other by
    more than the number of draws left, the verdict of all ``samples`` draws is already
    known. The verdict is exactly the full rule's; only the draws that cannot matter are
    skipped (a confident image needs about 55 of 100). ``single`` and ``probs`` are then
    over the draws made (``Decision.draws``), an unbiased estimate like the full one.
    """
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"decision_samples must be a positive integer, got {samples!r}")
    rnd = randomness_of(model, images, randomness)
    labels = labels.to(images.device).long()
    n = images.shape[0]
    if n == 0:
        empty = torch.zeros(0, dtype=torch.bool, device=images.device)
        return Decision(empty, labels, torch.zeros(0, 0), torch.zeros(0, dtype=torch.float64), 1)
    if not rnd.randomized:
        out = predict_proba(model, images, samples=1, randomness=rnd)
        _check_label_range(labels, out.probs.shape[-1])
        return Decision(out.label == labels, out.label, out.probs, (out.label == labels).double(), 1,
                        torch.ones(n, dtype=torch.int64, device=images.device))
    sums = votes = None
    drawn = torch.zeros(n, dtype=torch.int64, device=images.device)
    open_ = torch.arange(n, device=images.device)
    done = 0
    with draw_scope(model, rnd, seed=seed):
        while done < samples and len(open_):
            b = min(DECISION_BLOCK, samples - done)
            p = forward_draws(model, images[open_], b, per_call=rnd.kind == PER_CALL).float().softmax(-1)
            if sums is None:
                _check_label_range(labels, p.shape[-1])
                sums = torch.zeros(n, p.shape[-1], device=images.device)
                votes = torch.zeros(n, p.shape[-1], dtype=torch.int64, device=images.device)
            sums[open_] += p.sum(0)
            votes[open_] += torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1]).sum(0)
            drawn[open_] += b
            done += b
            top = sums[open_].topk(2, dim=1).values
            open_ = open_[top[:, 0] - top[:, 1] <= samples - done]
    probs = sums / drawn[:, None]
    label = sums.argmax(1)
    single = votes.gather(1, labels[:, None]).squeeze(1).double() / drawn
    return Decision(label == labels, label, probs, single, samples, drawn)


@dataclasses.dataclass
class AttackOutcome:
    """What :func:`run_attack` returns for ``N`` images.

    Attributes:
        attack: the attack's registry name (``"none"`` for clean accuracy only).
        params: every argument of the attack, JSON-ready.
        randomness: the model's randomness as used (:class:`ratzoo.randomness.Randomness`).
        eot_samples: the draws each attack step really averaged (1 on a deterministic model).
        clean: the decision on the clean images.
        adv: the decision on the adversarial images (the clean decision where the image was
            not attacked, i.e. misclassified when clean, and for ``"none"``).
        adv_images: ``(N, C, H, W)``; the clean image where the image was not attacked.
        linf, l2: ``(N,)`` the perturbation's Linf and L2 norms, measured on the images.
        attack_norms: ``(N,)`` the attack's own norms (C&W: ``inf`` where it found nothing).
        stopped_early: ``(N,)`` bool, images that left the attack once resolved (or ``None``).
        retried: ``(N,)`` bool, stopped-early images re-attacked because the decision rule
            did not confirm them (or ``None``).
        stats: passes the attack spent (calls, image-draws, largest pass, steps).
        elapsed_s: seconds, the decisions included.
        attack_s: seconds of the attack alone (the re-attack included, decisions not).
    """

    attack: str
    params: dict[str, Any]
    randomness: Randomness
    eot_samples: int
    clean: Decision
    adv: Decision
    adv_images: torch.Tensor
    linf: torch.Tensor
    l2: torch.Tensor
    attack_norms: torch.Tensor
    stopped_early: torch.Tensor | None
    retried: torch.Tensor | None
    stats: PassStats
    elapsed_s: float
    attack_s: float = 0.0

    @property
    def robust(self) -> torch.Tensor:
        """``(N,)`` bool: the decision rule is right on the clean and on the adversarial image."""
        return self.clean.correct & self.adv.correct

    @property
    def fooled(self) -> torch.Tensor:
        """``(N,)`` bool: clean image right, adversarial image wrong (the attack broke it)."""
        return self.clean.correct & ~self.adv.correct

    def within_budget(self) -> torch.Tensor | None:
        """``(N,)`` bool, each perturbation within the attack's budget (``None``: unbounded)."""
        eps = self.params.get("eps")
        if eps is None:
            return None
        norms = self.linf if self.params.get("norm", "Linf") == "Linf" else self.l2
        return norms <= eps * (1 + 1e-6) + 1e-7


def canonical_attack(name: str) -> str:
    """The registry name of ``name`` (aliases resolved), or ``"none"``.

    Raises:
        ValueError: an unknown attack (the message lists the known ones).
    """
    key = canonical_name(name)
    if key != "none" and key not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: none, {', '.join(ATTACKS)}")
    return key


def run_attack(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack: str = "pgd-linf",
    *,
    seed: int = 0,
    eps: float | str | None = None,
    steps: int | None = None,
    eot_samples: int = EOT_SAMPLES,
    decision_samples: int = DEFAULT_DECISION_SAMPLES,
    randomness: str | Randomness | None = None,
    progress: Callable[[int, int], None] | None = None,
    clean: Decision | None = None,
    **attack_kwargs: Any,
) -> AttackOutcome:
    """Attack ``images`` and judge every image by the decision rule (module docstring).

    Args:
        model: any classifier taking images in [0, 1], in the mode the caller wants.
        images: ``(N, 3, H, W)`` float in [0, 1].
        labels: ``(N,)`` integer labels.
        attack: ``"none"`` or a name from :data:`ratzoo.attacks.ATTACKS`.
        seed: the one seed: the attack, the clean and the adversarial decision get
            independent streams derived from it.
        eps, steps: the budget and iterations (``None``: the attack's default).
        eot_samples: draws per attack step on a randomized model.
        decision_samples: fresh draws of the decision rule (default 100).
        randomness: override the detected randomness (:mod:`ratzoo.randomness`).
        progress: optional ``progress(done, total)`` over attack steps.
        clean: the clean decision on these images when already made (an ensemble's next
            attack); ``None`` makes it here.
        **attack_kwargs: any other argument of the attack (``step_size``, ``restarts``, ...).

    Returns:
        An :class:`AttackOutcome`.

    >>> out = run_attack(model, x, y, "pgd-linf", eps="8/255", steps=20, eot_samples=20, seed=0)
    >>> out.robust.float().mean(), out.linf.max()
    """
    t0 = time.perf_counter()
    name = canonical_attack(attack)
    check_inputs(images, labels)  # before any verdict: a [0, 255] batch must not be judged at all
    device = images.device
    labels = labels.to(device).long()
    rnd = randomness_of(model, images, randomness) if images.shape[0] else Randomness("deterministic", "none")

    def judge(x: torch.Tensor, y: torch.Tensor, stream: int) -> Decision:
        return decide(model, x, y, samples=decision_samples, seed=derive_seed(seed, stream), randomness=rnd)

    n = images.shape[0]
    common = dict(eps=eps, steps=steps, eot_samples=eot_samples, randomness=rnd, **attack_kwargs)
    atk = None
    if name != "none":  # a budget that cannot be meant is refused even when no image gets attacked
        atk = make_attack(name, model, seed=derive_seed(seed, STREAM_ATTACK), progress=progress, **common)
        atk.check_budget(images)
    if clean is None:
        clean = judge(images, labels, STREAM_CLEAN)
    elif len(clean.correct) != n:
        raise ValueError(f"clean has {len(clean.correct)} decisions for {n} images")
    zeros = torch.zeros(n, device=device)
    if name == "none":
        return AttackOutcome(name, {}, rnd, 1, clean, clean, images.clone(), zeros, zeros, zeros, None, None,
                             PassStats(), time.perf_counter() - t0)
    keep = clean.correct.nonzero().squeeze(1)
    adv_images = images.clone()
    attack_norms = torch.zeros(n, dtype=torch.float32, device=device)
    stopped = retried = None
    t_attack = time.perf_counter()
    if len(keep):
        res = atk.run(images[keep], labels[keep], estimate_success=False)
        adv_images[keep] = res.adv_images
        attack_norms[keep] = res.norms.to(device, torch.float32)
        if res.stopped_early is not None:
            stopped = torch.zeros(n, dtype=torch.bool, device=device)
            stopped[keep] = res.stopped_early
    stats = atk.stats
    attack_s = time.perf_counter() - t_attack
    # Only attacked images need a second decision: an image misclassified when clean is not
    # robust whatever its adversarial verdict, and keeps the clean decision.
    adv = clean.clone()
    if len(keep):
        adv.put(keep, judge(adv_images[keep], labels[keep], STREAM_ADV))
    if stopped is not None:
        retried = stopped & adv.correct
        idx = retried.nonzero().squeeze(1)
        if len(idx):
            again = make_attack(name, model, seed=derive_seed(seed, STREAM_RETRY), **{**common, "early_stop": False})
            t_again = time.perf_counter()
            res2 = again.run(images[idx], labels[idx], estimate_success=False)
            attack_s += time.perf_counter() - t_again
            second = judge(res2.adv_images, labels[idx], STREAM_RETRY_ADV)
            broke = idx[~second.correct]
            adv_images[broke] = res2.adv_images[~second.correct]
            attack_norms[broke] = res2.norms.to(device, torch.float32)[~second.correct]
            adv.put(broke, second.select(~second.correct))
            stats.merge(again.stats)
    d = (adv_images - images).flatten(1).float()
    return AttackOutcome(
        attack=name, params=atk.params(), randomness=rnd, eot_samples=eot_samples if rnd.randomized else 1,
        clean=clean, adv=adv, adv_images=adv_images, linf=d.abs().amax(1) if n else zeros, l2=d.norm(dim=1) if n else zeros,
        attack_norms=attack_norms, stopped_early=stopped, retried=retried, stats=stats,
        elapsed_s=time.perf_counter() - t0, attack_s=attack_s,
    )
