"""PGD-Linf (Madry et al. 2018), EOT-aware."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Attack, ProgressFn, _positive_int, margin, parse_budget, project_linf


class PGD(Attack):
    r"""Projected Gradient Descent in the Linf ball, with random start and restarts.

    Paper: Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models
    Resistant to Adversarial Attacks", ICLR 2018 (arXiv:1706.06083).

    Distance Measure: Linf

    Each step ascends the cross-entropy of the EOT output (log mean softmax over
    ``eot_samples`` batched noise draws, see :mod:`ratzoo.attacks.base`)::

        x <- Proj_[0,1] Proj_{||x - x0||_inf <= eps} (x + step_size * sign(grad))

    Args:
        model: classifier taking images in [0, 1] (randomized or not); never switched
            to eval/train by the attack.
        eps: Linf radius in [0, 1] pixel units, a number or a string (default ``8/255``).
        steps: gradient steps per restart (default 20).
        step_size: step per iteration (default ``None``: ``eps / 4``, i.e. 2/255 at 8/255).
        restarts: random restarts; per image the restart with the largest final margin
            (max other log-prob minus true log-prob) is kept (default 1).
        random_start: start uniformly inside the ball (default True); False starts at x.
        eot_samples: noise draws per step on a randomized model (default 1).
        seed: seeds the random start and the noise draws (default 0).
        eot_output: ``"softmax"`` (default) or ``"logits"``, see the base module.
        chunk_size: images x draws per forward/backward (default 2048).
        progress: optional ``progress(done, total)`` called after each gradient step.

    Shapes:
        images ``(N, C, H, W)`` float in [0, 1], labels ``(N,)`` int64 ->
        adversarial images ``(N, C, H, W)``, same dtype and device.

    Example:
        >>> import torch, ratzoo
        >>> from ratzoo.attacks import PGD
        >>> model = ratzoo.build_model(width=4, noise_kind="fixed", noise_sigma=0.5).eval()
        >>> x, y = torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
        >>> adv = PGD(model, eps="8/255", steps=5, eot_samples=4, seed=0)(x, y)
        >>> bool((adv - x).abs().max() <= 8 / 255 + 1e-7), adv.shape
        (True, torch.Size([2, 3, 32, 32]))
    """

    name = "pgd-linf"
    norm = "Linf"

    def __init__(
        self,
        model: nn.Module,
        eps: float | str = 8 / 255,
        steps: int = 20,
        step_size: float | str | None = None,
        restarts: int = 1,
        random_start: bool = True,
        *,
        eot_samples: int = 1,
        seed: int = 0,
        eot_output: str = "softmax",
        chunk_size: int = 2048,
        progress: ProgressFn | None = None,
    ) -> None:
        super().__init__(model, eps=eps, eot_samples=eot_samples, seed=seed, eot_output=eot_output,
                         chunk_size=chunk_size, progress=progress)
        self.steps = _positive_int(steps, "steps")
        self.step_size = (
            self.eps / self.default_step_divisor if step_size is None else parse_budget(step_size, "step_size")
        )
        self.restarts = _positive_int(restarts, "restarts")
        self.random_start = bool(random_start)

    default_step_divisor = 4.0

    def params(self) -> dict:
        return {**super().params(), "steps": self.steps, "step_size": self.step_size,
                "restarts": self.restarts, "random_start": self.random_start}

    def _steps_per_image_batch(self) -> int:
        return self.steps * self.restarts

    # the two places where Linf and L2 PGD differ
    def _init(self, x: torch.Tensor) -> torch.Tensor:
        return project_linf(x + (2 * self._rand(x.shape, x) - 1) * self.eps, x, self.eps)

    def _step(self, x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return project_linf(x_adv + self.step_size * grad.sign(), x, self.eps)

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, None]:
        def ce(logits: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, y, reduction="none")

        best, best_margin = x.clone(), None
        for _ in range(self.restarts):
            x_adv = self._init(x) if self.random_start and self.eps > 0 else x.clone()
            for _ in range(self.steps):
                _, grad, _ = self.loss_and_grad(x_adv, ce)
                x_adv = self._step(x_adv, grad, x)
            if self.restarts == 1:
                return x_adv, None
            m = margin(self.eot_logits_no_grad(x_adv), y)
            if best_margin is None:
                best, best_margin = x_adv, m
            else:
                better = m > best_margin
                best = torch.where(better.view(-1, 1, 1, 1), x_adv, best)
                best_margin = torch.where(better, m, best_margin)
        return best, None
