"""FGSM (Goodfellow et al. 2015), EOT-aware."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import Attack, project_linf


class FGSM(Attack):
    r"""Fast Gradient Sign Method: one signed-gradient step of size eps.

    Paper: Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial
    Examples", ICLR 2015 (arXiv:1412.6572).

    Distance Measure: Linf

    ``x_adv = clip_[0,1](x + eps * sign(grad_x CE(log p_bar(x), y)))`` where ``p_bar`` is
    the mean softmax over ``eot_samples`` batched noise draws (see :mod:`ratzoo.attacks.base`).

    Args:
        model: classifier taking images in [0, 1] (randomized or not); never switched
            to eval/train by the attack.
        eps: Linf budget in [0, 1] pixel units, number or string (default ``8/255``).
        steps: only ``None`` or 1 (FGSM is one step); accepted so that callers can pass
            one set of keywords to every attack.
        **common: the arguments every attack shares (``eot_samples``, ``seed``,
            ``chunk_size``, ...), defaults in :class:`~ratzoo.attacks.base.Attack`.

    Shapes:
        images ``(N, C, H, W)`` float in [0, 1], labels ``(N,)`` int64 ->
        adversarial images ``(N, C, H, W)``, same dtype and device.

    Example:
        >>> import torch, ratzoo
        >>> from ratzoo.attacks import FGSM
        >>> model = ratzoo.build_model(width=4).eval()
        >>> x, y = torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
        >>> adv = FGSM(model, eps="8/255")(x, y)
        >>> bool((adv - x).abs().max() <= 8 / 255 + 1e-7)
        True
    """

    name = "fgsm"
    norm = "Linf"

    def __init__(
        self,
        model: nn.Module,
        eps: float | str = 8 / 255,
        steps: int | None = None,
        **common: Any,
    ) -> None:
        super().__init__(model, eps=eps, **common)
        if steps not in (None, 1):
            raise ValueError(f"{self.name} is a one-step attack; steps must be 1 or None, got {steps!r}")

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        return grad.sign()

    def _project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return project_linf(x_adv, x, self.eps)

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, None]:
        _, grad, _ = self.loss_and_grad(x, lambda z, i: F.cross_entropy(z, y[i], reduction="none"))
        return self._project(x + self.eps * self._direction(grad), x), None
