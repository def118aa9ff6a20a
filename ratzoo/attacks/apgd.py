"""APGD-CE and APGD-DLR (Croce & Hein 2020), EOT-aware."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import (Attack, _per_sample_l2, _positive_int, _view, dlr_loss,
                   project_l2, project_linf)

NORMS = ("Linf", "L2")


def canonical_norm(name: str) -> str:
    """``name`` spelled as ratzoo spells a threat model (``"linf"`` -> ``"Linf"``, ``"l2"`` ->
    ``"L2"``), so a command line takes any case; anything else comes back as it is, for the
    caller to refuse with the list of :data:`NORMS`."""
    return {n.lower(): n for n in NORMS}.get(name.lower(), name) if isinstance(name, str) else name


class APGD(Attack):
    r"""Auto-PGD: PGD with momentum and an automatic step-size schedule.

    Paper: Croce, Hein, "Reliable evaluation of adversarial robustness with an ensemble
    of diverse parameter-free attacks", ICML 2020 (arXiv:2003.01690). These are the two
    white-box attacks of AutoAttack's version for randomized defenses ("rand": APGD-CE
    and APGD-DLR with EOT).

    Distance Measure: Linf (default) or L2

    As published (Algorithm 1), with the official implementation's constants: step size
    ``eta = 2 * eps``; ``x1 = P(x0 + eta * s(grad))``; then
    ``z = P(x_k + eta * s(grad))``, ``x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1}))``
    with momentum ``alpha = 0.75`` (``s`` = sign for Linf, the L2-normalized gradient for
    L2; ``P`` = projection on the ball and [0, 1]). Checkpoints
    ``w_j = ceil(p_j * steps)`` with ``p_0 = 0, p_1 = 0.22,
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``. At a checkpoint the step size is
    halved and the iterate restarted from the best point ``x_max`` when (1) the loss
    increased in at most a fraction ``rho = 0.75`` of the steps since the last checkpoint,
    or (2) the step size was not reduced at the last checkpoint and the best loss has not
    improved since. The returned image is the last iterate that fooled the attacker's
    EOT estimate, else the highest-loss point. One detail differs from the official
    code: the very first oscillation count compares with the loss at the starting point
    (the official code reads an unset zero there).

    The loss is that of the EOT output (log mean softmax over ``eot_samples`` batched
    draws): cross-entropy for APGD-CE, the Difference of Logits Ratio for APGD-DLR
    (shift/scale invariant, so it equals the plain DLR for one draw). AutoAttack's rand
    version averages the per-draw *loss gradients* instead; ratzoo differentiates the
    loss of the mean output everywhere (see :mod:`ratzoo.attacks.base`).

    Args:
        model: classifier taking images in [0, 1] (randomized or not); never switched
            to eval/train by the attack.
        eps: the budget (default ``8/255``; for ``norm="L2"`` pass e.g. 0.5).
        steps: iterations per restart (default 100, as AutoAttack); each restart costs
            ``steps + 1`` gradients (the starting point's, then one per iteration).
        restarts: random restarts (default 1); per image a fooling restart wins, else
            the one with the highest loss.
        norm: ``"Linf"`` (default) or ``"L2"``.
        rho: checkpoint condition (1) threshold (default 0.75).
        momentum: ``alpha`` (default 0.75).
        **common: the arguments every attack shares, defaults in
            :class:`~ratzoo.attacks.base.Attack`: ``eot_samples``, ``seed``, ``eot_output``,
            ``chunk_size``, ``randomness``, ``early_stop`` / ``resolve_margin`` (an image whose EOT estimate is
            fooled by this margin leaves the batch with that iterate; AutoAttack likewise
            stops attacking an image once it is broken, between restarts), ``progress``.

    Shapes:
        images ``(N, C, H, W)`` float in [0, 1], labels ``(N,)`` int64 ->
        adversarial images ``(N, C, H, W)``, same dtype and device.

    Example:
        >>> import torch, ratzoo
        >>> from ratzoo.attacks import APGD
        >>> model = ratzoo.build_model(width=4, noise_kind="fixed", noise_sigma=0.5).eval()
        >>> x, y = torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
        >>> adv = APGD(model, eps="8/255", steps=10, eot_samples=4)(x, y)
        >>> bool((adv - x).abs().max() <= 8 / 255 + 1e-7)
        True
    """

    name = "apgd-ce"
    loss_name = "ce"
    stops_early = True

    def __init__(
        self,
        model: nn.Module,
        eps: float | str = 8 / 255,
        steps: int = 100,
        restarts: int = 1,
        norm: str = "Linf",
        rho: float = 0.75,
        momentum: float = 0.75,
        **common: Any,
    ) -> None:
        norm = canonical_norm(norm)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.norm = norm
        super().__init__(model, eps=eps, **common)
        self.steps = _positive_int(steps, "steps")
        self.restarts = _positive_int(restarts, "restarts")
        if not 0 < rho <= 1 or not 0 < momentum <= 1:
            raise ValueError(f"rho and momentum must be in (0, 1], got {rho!r}, {momentum!r}")
        self.rho, self.momentum = float(rho), float(momentum)

    def params(self) -> dict:
        return {**super().params(), "steps": self.steps, "restarts": self.restarts,
                "rho": self.rho, "momentum": self.momentum, "loss": self.loss_name}

    def _steps_total(self) -> int:
        return (self.steps + 1) * self.restarts  # the starting point's gradient, then one per step

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Per-image loss to maximize, of one pass's EOT logits, the batch's labels ``y`` and
        the batch indices ``idx`` of the pass's images."""
        return F.cross_entropy(logits, y[idx], reduction="none")

    def _proj(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return project_linf(x_adv, x, self.eps) if self.norm == "Linf" else project_l2(x_adv, x, self.eps)

    def _dir(self, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "Linf":
            return grad.sign()
        return grad / _view(_per_sample_l2(grad).clamp_min(1e-12), grad)

    @staticmethod
    def checkpoints(steps: int) -> list[int]:
        """The published checkpoints ``w_j = ceil(p_j * steps)`` (increasing, < steps)."""
        p = [0.0, 0.22]
        while p[-1] < 1:
            p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
        # round first: 0.22 + 0.19 + 0.16 is 0.5700000000000001 in floating point
        w = sorted({math.ceil(round(pj * steps, 9)) for pj in p[1:] if math.ceil(round(pj * steps, 9)) < steps})
        return [wj for wj in w if wj > 0]

    def _single(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        stopped = self.stopped_early  # (N,) bool, owned by the driver
        if self.norm == "Linf":
            t = 2 * self._rand(x.shape, x) - 1
            x_adv = x + self.eps * t / _view(t.flatten(1).abs().amax(1).clamp_min(1e-12), x)
        else:
            t = self._rand(x.shape, x, "normal")
            x_adv = x + self.eps * t / _view(_per_sample_l2(t).clamp_min(1e-12), x)
        x_adv = x_adv.clamp(0.0, 1.0)

        def loss_fn(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return self._loss(z, y, idx)

        active = ~stopped
        loss, grad, logits = self.loss_and_grad(x_adv, loss_fn, active)
        fooled = active & (logits.argmax(1) != y)
        x_best, x_best_adv = x_adv.clone(), x_adv.clone()
        loss_best, grad_best = loss.clone(), grad.clone()
        done = active & self._resolved(logits, y)
        stopped |= done
        active &= ~done
        step = torch.full((n,), 2.0 * self.eps, device=x.device, dtype=x.dtype)
        checks = set(self.checkpoints(self.steps))
        last_check = 0
        losses = [loss]  # losses[i] = loss at iterate i (0 = start)
        loss_best_last_check = loss_best.clone()
        reduced_last_check = torch.ones(n, dtype=torch.bool, device=x.device)
        x_old = x_adv.clone()
        for i in range(self.steps):
            if not bool(active.any()):
                self._tick()  # every image resolved: the remaining iterations are free
                continue
            with torch.no_grad():
                mom = x_adv - x_old
                x_old = x_adv
                a = self.momentum if i > 0 else 1.0
                z = self._proj(x_adv + _view(step, x) * self._dir(grad), x)
                x_new = self._proj(x_adv + a * (z - x_adv) + (1 - a) * mom, x)
                x_adv = torch.where(_view(active, x), x_new, x_adv)  # resolved images stay put
            loss, grad, logits = self.loss_and_grad(x_adv, loss_fn, active)
            with torch.no_grad():
                loss = torch.where(active, loss, losses[-1])  # a resolved image's loss stays
                now_fooled = active & (logits.argmax(1) != y)
                x_best_adv = torch.where(_view(now_fooled, x), x_adv, x_best_adv)
                fooled |= now_fooled
                improved = active & (loss > loss_best)
                x_best = torch.where(_view(improved, x), x_adv, x_best)
                grad_best = torch.where(_view(improved, x), grad, grad_best)
                loss_best = torch.where(improved, loss, loss_best)
                losses.append(loss)
                done = active & self._resolved(logits, y)
                stopped |= done
                active &= ~done
                k = i + 1  # iterations done since the start
                if k in checks:
                    span = k - last_check
                    ups = sum((losses[j] > losses[j - 1]).float() for j in range(k - span + 1, k + 1))
                    cond1 = ups <= span * self.rho
                    cond2 = ~reduced_last_check & (loss_best_last_check >= loss_best)
                    reduce = active & (cond1 | cond2)
                    reduced_last_check = reduce
                    loss_best_last_check = loss_best.clone()
                    step = torch.where(reduce, step / 2, step)
                    x_adv = torch.where(_view(reduce, x), x_best, x_adv)
                    grad = torch.where(_view(reduce, x), grad_best, grad)
                    last_check = k
        self.final_step_size = step  # per image, for inspection (last restart)
        out = torch.where(_view(fooled, x), x_best_adv, x_best)
        return out, fooled, loss_best

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self._restarts(x, y)[0], None

    def _restarts(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All restarts: per image the example, whether it fooled the EOT estimate, its loss."""
        best, best_fooled, best_loss = None, None, None
        for _ in range(self.restarts):
            before = self.stopped_early.clone()  # a restart runs only on the images still standing
            adv, fooled, loss = self._single(x, y)
            if best is None:
                best, best_fooled, best_loss = adv, fooled, loss
                continue
            take = ~before & ((fooled & ~best_fooled) | (~best_fooled & ~fooled & (loss > best_loss)))
            best = torch.where(_view(take, x), adv, best)
            best_fooled = best_fooled | fooled
            best_loss = torch.where(take, loss, best_loss)
        return best, best_fooled, best_loss


class APGDDLR(APGD):
    r"""APGD with the Difference of Logits Ratio loss (Croce & Hein 2020).

    Paper: Croce, Hein, "Reliable evaluation of adversarial robustness with an ensemble
    of diverse parameter-free attacks", ICML 2020 (arXiv:2003.01690).

    Distance Measure: Linf (default) or L2

    Identical to :class:`APGD` (see its docstring for the schedule and every argument)
    but maximizes ``DLR(z, y) = -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3)``, which is
    invariant to shifting and rescaling the logits, so it is robust to the gradient
    masking that rescaled logits cause for cross-entropy. Needs at least 3 classes.

    Example:
        >>> import torch, ratzoo
        >>> from ratzoo.attacks import APGDDLR
        >>> model = ratzoo.build_model(width=4).eval()
        >>> x, y = torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
        >>> APGDDLR(model, eps="8/255", steps=10)(x, y).shape
        torch.Size([2, 3, 32, 32])
    """

    name = "apgd-dlr"
    loss_name = "dlr"

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return dlr_loss(logits, y[idx])
