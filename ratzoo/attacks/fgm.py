"""FGM, the L2 fast gradient method (Goodfellow et al. 2015; Miyato et al. 2016), EOT-aware."""

from __future__ import annotations

import torch
from torch import nn

from .base import ProgressFn, _per_sample_l2, _view, project_l2
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
        eot_samples: noise draws for the gradient on a randomized model (default 1).
        seed: seeds the noise draws (default 0).
        eot_output: ``"softmax"`` (default) or ``"logits"``.
        chunk_size: images x draws per forward/backward (default 2048).
        progress: optional ``progress(done, total)`` called after the gradient step.

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
        *,
        eot_samples: int = 1,
        seed: int = 0,
        eot_output: str = "softmax",
        chunk_size: int = 2048,
        progress: ProgressFn | None = None,
    ) -> None:
        super().__init__(model, eps, steps, eot_samples=eot_samples, seed=seed, eot_output=eot_output,
                         chunk_size=chunk_size, progress=progress)

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        return grad / _view(_per_sample_l2(grad).clamp_min(1e-12), grad)

    def _project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return project_l2(x_adv, x, self.eps)
