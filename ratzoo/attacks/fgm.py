"""FGM, the L2 fast gradient method (Goodfellow et al. 2015; Miyato et al. 2016), EOT-aware."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import _per_sample_l2, _view, project_l2
from .fgsm import FGSM


class FGM(FGSM):
    r"""Fast Gradient Method: one L2-normalized gradient step of length eps.

    Paper: Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial
    Examples", ICLR 2015 (the L2 variant, as in Miyato et al. 2016 and CleverHans).

    Distance Measure: L2

    ``x_adv = clip_[0,1](x + eps * g / ||g||_2)`` with ``g`` the gradient of the
    cross-entropy of the EOT output (log mean softmax over batched noise draws).

    Args:
        model: classifier taking images in [0, 1] (randomized or not); never switched
            to eval/train by the attack.
        eps: L2 budget in [0, 1] pixel units (default 0.5).
        steps: only ``None`` or 1 (one step).
        **common: the arguments every attack shares (``eot_samples``, ``seed``,
            ``chunk_size``, ...), defaults in :class:`~ratzoo.attacks.base.Attack`.

    Shapes:
        images ``(N, C, H, W)`` float in [0, 1], labels ``(N,)`` int64 ->
        adversarial images ``(N, C, H, W)``, same dtype and device.

    Example:
        >>> import torch, ratzoo
        >>> from ratzoo.attacks import FGM
        >>> model = ratzoo.build_model(width=4).eval()
        >>> x, y = torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
        >>> adv = FGM(model, eps=0.5)(x, y)
        >>> bool((adv - x).flatten(1).norm(dim=1).max() <= 0.5 + 1e-6)
        True
    """

    name = "fgm"
    norm = "L2"

    def __init__(
        self,
        model: nn.Module,
        eps: float | str = 0.5,
        steps: int | None = None,
        **common: Any,
    ) -> None:
        super().__init__(model, eps, steps, **common)

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        return grad / _view(_per_sample_l2(grad).clamp_min(1e-12), grad)

    def _project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return project_l2(x_adv, x, self.eps)
