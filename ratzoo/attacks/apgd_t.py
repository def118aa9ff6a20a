"""APGD-T: targeted APGD with the targeted DLR loss (Croce & Hein 2020), EOT-aware."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .apgd import APGD
from .base import _positive_int


def targeted_dlr_loss(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Croce & Hein's targeted DLR, per sample (to be maximized)::

        -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)

    with ``z`` sorted decreasingly (``pi1`` the largest). Shift and scale invariant, so it
    applies to log-probabilities unchanged. Needs at least 4 classes."""
    if logits.shape[1] < 4:
        raise ValueError("the targeted DLR loss needs at least 4 classes")
    z_sorted = logits.sort(dim=1).values
    z_y = logits.gather(1, labels[:, None]).squeeze(1)
    z_t = logits.gather(1, targets[:, None]).squeeze(1)
    return -(z_y - z_t) / (z_sorted[:, -1] - 0.5 * (z_sorted[:, -3] + z_sorted[:, -4]) + 1e-12)


class APGDT(APGD):
    r"""Targeted APGD-DLR: APGD run towards each of the most likely wrong classes in turn.

    Paper: Croce, Hein, "Reliable evaluation of adversarial robustness with an ensemble
    of diverse parameter-free attacks", ICML 2020 (arXiv:2003.01690). AutoAttack's standard
    version runs it after APGD-CE, with 9 target classes on CIFAR-10.

    Distance Measure: Linf (default) or L2

    The targets of an image are the classes its clean EOT output ranks 2nd, 3rd, ... (the
    most likely wrong classes first). For each target, APGD (the schedule and every argument
    of :class:`~ratzoo.attacks.apgd.APGD`) maximizes the targeted DLR loss
    ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` of the EOT output, only on the images no
    earlier target has fooled (they keep that example). As in AutoAttack, success is
    untargeted: the image counts as broken when any wrong class wins, the target or not.

    Args:
        model: classifier taking images in [0, 1] (randomized or not).
        eps: the budget (default ``8/255``; for ``norm="L2"`` e.g. 0.5).
        steps: iterations per target (default 100).
        n_target_classes: targets tried, most likely first (default 3 here; AutoAttack uses 9,
            all wrong classes of CIFAR-10). Each costs up to ``steps + 1`` gradients per
            image still standing.
        target_rank: the rank of the first target (default 1, the most likely wrong class);
            ranks ``target_rank .. target_rank + n_target_classes - 1`` are tried, so a caller
            can judge each target's example on its own (:func:`ratzoo.benchmark` does).
        restarts, norm, rho, momentum: as :class:`~ratzoo.attacks.apgd.APGD`.
        **common: the arguments every attack shares (``eot_samples``, ``seed``,
            ``early_stop`` / ``resolve_margin``, ...), defaults in :class:`~ratzoo.attacks.base.Attack`.

    Shapes:
        images ``(N, C, H, W)`` float in [0, 1], labels ``(N,)`` int64 (at least 4 classes)
        -> adversarial images ``(N, C, H, W)``, same dtype and device.

    Example:
        >>> import torch, ratzoo
        >>> from ratzoo.attacks import APGDT
        >>> model = ratzoo.build_model(width=4).eval()
        >>> x, y = torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
        >>> adv = APGDT(model, eps="8/255", steps=10, n_target_classes=2)(x, y)
        >>> bool((adv - x).abs().max() <= 8 / 255 + 1e-7)
        True
    """

    name = "apgd-t"
    loss_name = "dlr-targeted"

    def __init__(self, model: nn.Module, eps: float | str = 8 / 255, steps: int = 100,
                 n_target_classes: int = 3, target_rank: int = 1, **kwargs: Any) -> None:
        super().__init__(model, eps, steps, **kwargs)
        self.n_target_classes = _positive_int(n_target_classes, "n_target_classes")
        self.target_rank = _positive_int(target_rank, "target_rank")
        self._target: torch.Tensor | None = None

    def params(self) -> dict:
        return {**super().params(), "n_target_classes": self.n_target_classes, "target_rank": self.target_rank}

    def _steps_total(self) -> int:
        return super()._steps_total() * self.n_target_classes

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return targeted_dlr_loss(logits, y[idx], self._target[idx])

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, None]:
        ranking = self.eot_logits(x).argsort(dim=1, descending=True)  # the clean EOT output's ranking
        last = self.target_rank + self.n_target_classes - 1
        if ranking.shape[1] - 1 < last:
            raise ValueError(f"target ranks {self.target_rank}..{last} (target_rank, n_target_classes) but the "
                             f"model has only {ranking.shape[1] - 1} wrong classes")
        wrong = ranking[ranking != y[:, None]].view(len(y), -1)  # wrong classes, most likely first
        best = x.clone()
        best_loss = torch.full((len(y),), float("-inf"), device=x.device)
        for t in range(self.target_rank - 1, last):
            self._target = wrong[:, t]
            standing = ~self.stopped_early
            if not bool(standing.any()):
                for _ in range(super()._steps_total()):
                    self._tick()  # every image fooled: the remaining targets are free
                continue
            adv, fooled, loss = self._restarts(x, y)
            # a fooled image keeps this example and is done; one still standing keeps the example
            # closest to its target (the targeted DLR is comparable across targets: its
            # denominator does not depend on the target)
            take = standing & (fooled | (torch.nan_to_num(loss, nan=float("-inf")) > best_loss))
            best = torch.where(take.view(-1, 1, 1, 1), adv, best)
            best_loss = torch.where(take, loss, best_loss)
            self.stopped_early |= standing & fooled
        return best, None
