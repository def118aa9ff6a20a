"""PGD-Linf (Madry et al. 2018), EOT-aware."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import Attack, _positive_int, _view, margin, parse_budget, project_linf


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
        **common: the arguments every attack shares, with their defaults in
            :class:`~ratzoo.attacks.base.Attack`: ``eot_samples`` (draws per step on a
            randomized model), ``seed``, ``eot_output``, ``chunk_size``, ``randomness``,
            ``early_stop`` / ``resolve_margin`` (an image whose EOT estimate is fooled by this margin stops
            being attacked and keeps that iterate), ``progress``.

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
    stops_early = True

    def __init__(
        self,
        model: nn.Module,
        eps: float | str = 8 / 255,
        steps: int = 20,
        step_size: float | str | None = None,
        restarts: int = 1,
        random_start: bool = True,
        **common: Any,
    ) -> None:
        super().__init__(model, eps=eps, **common)
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

    def _steps_total(self) -> int:
        return self.steps * self.restarts

    # the two places where Linf and L2 PGD differ
    def _init(self, x: torch.Tensor) -> torch.Tensor:
        return project_linf(x + (2 * self._rand(x.shape, x) - 1) * self.eps, x, self.eps)

    def _step(self, x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return project_linf(x_adv + self.step_size * grad.sign(), x, self.eps)

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, None]:
        def ce(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, y[idx], reduction="none")

        stopped = self.stopped_early  # (N,) bool, owned by the driver
        inf = float("inf")
        best, best_margin = x.clone(), torch.full((x.shape[0],), -inf, device=x.device)
        for _ in range(self.restarts):
            x_adv = self._init(x) if self.random_start and self.eps > 0 else x.clone()
            active = ~stopped
            for _ in range(self.steps):
                if not bool(active.any()):
                    self._tick()  # every image resolved: the remaining steps are free
                    continue
                _, grad, logits = self.loss_and_grad(x_adv, ce, active)
                done = active & self._resolved(logits, y)
                stopped |= done
                active &= ~done
                x_adv = torch.where(_view(active, x), self._step(x_adv, grad, x), x_adv)
            if self.restarts == 1:
                return x_adv, None
            # per image keep the restart that resolved it, else the end point of largest EOT margin
            newly = stopped & (best_margin < inf)
            best = torch.where(_view(newly, x), x_adv, best)
            best_margin = torch.where(newly, inf, best_margin)
            todo = (~stopped).nonzero().squeeze(1)
            if len(todo):
                m = margin(self.eot_logits(x_adv[todo]), y[todo])
                better = m > best_margin[todo]
                best[todo[better]] = x_adv[todo[better]]
                best_margin[todo[better]] = m[better]
        return best, None
