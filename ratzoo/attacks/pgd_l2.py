"""PGD-L2 (Madry et al. 2018), EOT-aware."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import _per_sample_l2, _view, project_l2
from .pgd import PGD


class PGDL2(PGD):
    r"""Projected Gradient Descent in the L2 ball, with random start and restarts.

    Paper: Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models
    Resistant to Adversarial Attacks", ICLR 2018 (arXiv:1706.06083).

    Distance Measure: L2

    Each step moves along the L2-normalized gradient of the cross-entropy of the EOT
    output (log mean softmax over ``eot_samples`` batched noise draws)::

        x <- Proj_[0,1] Proj_{||x - x0||_2 <= eps} (x + step_size * grad / ||grad||_2)

    Args:
        model: classifier taking images in [0, 1] (randomized or not); never switched
            to eval/train by the attack.
        eps: L2 radius in [0, 1] pixel units (default 0.5).
        steps: gradient steps per restart (default 20).
        step_size: L2 length of a step (default ``None``: ``eps / 5``, i.e. 0.1 at 0.5).
        restarts: random restarts, the one with the largest final margin kept (default 1).
        random_start: start uniformly inside the L2 ball (default True).
        **common: the arguments every attack shares (``eot_samples``, ``seed``,
            ``resolve_margin``, ...), defaults in :class:`~ratzoo.attacks.base.Attack`.

    Shapes:
        images ``(N, C, H, W)`` float in [0, 1], labels ``(N,)`` int64 ->
        adversarial images ``(N, C, H, W)``, same dtype and device.

    Example:
        >>> import torch, ratzoo
        >>> from ratzoo.attacks import PGDL2
        >>> model = ratzoo.build_model(width=4).eval()
        >>> x, y = torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
        >>> adv = PGDL2(model, eps=0.5, steps=5, seed=0)(x, y)
        >>> bool((adv - x).flatten(1).norm(dim=1).max() <= 0.5 + 1e-6)
        True
    """

    name = "pgd-l2"
    norm = "L2"
    default_step_divisor = 5.0

    def __init__(
        self,
        model: nn.Module,
        eps: float | str = 0.5,
        steps: int = 20,
        step_size: float | str | None = None,
        restarts: int = 1,
        random_start: bool = True,
        **common: Any,
    ) -> None:
        super().__init__(model, eps, steps, step_size, restarts, random_start, **common)

    def _init(self, x: torch.Tensor) -> torch.Tensor:
        # uniform in the L2 ball: gaussian direction, radius eps * U^(1/d)
        d = x[0].numel()
        direction = self._rand(x.shape, x, "normal")
        direction = direction / _view(_per_sample_l2(direction).clamp_min(1e-12), x)
        radius = self.eps * self._rand((x.shape[0],), x) ** (1.0 / d)
        return project_l2(x + direction * _view(radius, x), x, self.eps)

    def _step(self, x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        g = grad / _view(_per_sample_l2(grad).clamp_min(1e-12), grad)
        return project_l2(x_adv + self.step_size * g, x, self.eps)
