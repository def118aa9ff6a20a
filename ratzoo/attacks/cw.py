"""C&W-L2 (Carlini & Wagner 2017), untargeted, EOT-aware, minimal-norm."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .base import Attack, _positive_int, margin, parse_budget


class CW(Attack):
    r"""Carlini & Wagner's L2 attack: the smallest L2 perturbation that fools the model.

    Paper: Carlini, Wagner, "Towards Evaluating the Robustness of Neural Networks",
    IEEE S&P 2017 (arXiv:1608.04644).

    Distance Measure: L2 (unbounded: it returns the smallest-norm adversarial example
    found and its norm, so accuracy can be read at any threshold)

    For each image it minimizes, over ``w`` with ``x_adv = (tanh(w) + 1) / 2`` (the change
    of variables that keeps ``x_adv`` in [0, 1] without clipping)::

        ||x_adv - x||_2^2 + c * max(z_y - max_{j != y} z_j, -kappa)

    with Adam, where ``z`` is the EOT output as logits (log mean softmax over
    ``eot_samples`` batched noise draws; for one draw the margin equals the plain logit
    margin). An outer binary search over ``c`` (per image) runs ``search_steps`` times:
    ``c`` is multiplied by 10 until an adversarial example is found, then bisected. Every
    iterate that fools the attacker's estimate by more than ``kappa`` and is closer than
    the best so far is kept.

    The RAT paper (Sec. 5.4) uses "9 iterations for the binary search and 40 iterations";
    we read that as ``search_steps=9`` and ``steps=40`` Adam iterations per search step
    (360 gradient steps per image). ``initial_const`` defaults to 1e-2 instead of C&W's
    1e-3 because with 40 iterations per step (C&W used up to 10,000) a search step
    spent at a hopelessly small ``c`` is a tenth of the budget.

    Args:
        model: classifier taking images in [0, 1] (randomized or not); never switched
            to eval/train by the attack.
        steps: Adam iterations per binary-search step (default 40).
        search_steps: binary-search steps over ``c`` (default 9).
        initial_const: the first ``c`` (default 1e-2).
        kappa: confidence margin (default 0).
        lr: Adam learning rate on ``w`` (default 1e-2, as C&W).
        eps: must be ``None`` (C&W is unbounded; read accuracy at a threshold from
            the returned norms). Accepted so callers can pass one set of keywords.
        **common: the arguments every attack shares (``eot_samples``, ``seed``,
            ``chunk_size``, ...), defaults in :class:`~ratzoo.attacks.base.Attack`. C&W never
            stops early: after finding an example it keeps shrinking it.

    Shapes:
        images ``(N, C, H, W)`` float in [0, 1], labels ``(N,)`` int64 ->
        adversarial images ``(N, C, H, W)`` (the clean image where none was found);
        :meth:`run` also returns ``norms`` ``(N,)``, ``inf`` where none was found.

    Example:
        >>> import torch, ratzoo
        >>> from ratzoo.attacks import CW
        >>> model = ratzoo.build_model(width=4).eval()
        >>> x, y = torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
        >>> res = CW(model, steps=10, search_steps=3).run(x, y)
        >>> res.adv_images.shape, res.norms.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2]))
    """

    name = "cw-l2"
    norm = "L2"
    bf16_ok = False

    def __init__(
        self,
        model: nn.Module,
        steps: int = 40,
        search_steps: int = 9,
        initial_const: float = 1e-2,
        kappa: float = 0.0,
        lr: float = 1e-2,
        eps: float | None = None,
        **common: Any,
    ) -> None:
        if eps is not None:
            raise ValueError(
                "C&W-L2 is an unbounded minimal-norm attack and takes no eps; read the accuracy "
                "at an L2 threshold from the returned norms (evaluate(..., thresholds=[...]))"
            )
        super().__init__(model, eps=None, **common)
        self.steps = _positive_int(steps, "steps")
        self.search_steps = _positive_int(search_steps, "search_steps")
        for nm, v in (("initial_const", initial_const), ("lr", lr)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"{nm} must be a finite number > 0, got {v!r}")
        self.kappa = parse_budget(kappa, "kappa")  # a finite number >= 0, refused with its name otherwise
        self.initial_const, self.lr = float(initial_const), float(lr)

    def params(self) -> dict:
        return {**super().params(), "steps": self.steps, "search_steps": self.search_steps,
                "initial_const": self.initial_const, "kappa": self.kappa, "lr": self.lr}

    def _steps_total(self) -> int:
        return self.steps * self.search_steps

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        dev = x.device
        w0 = torch.atanh((2 * x.double() - 1).clamp(-1 + 1e-6, 1 - 1e-6)).to(x.dtype)
        const = torch.full((n,), self.initial_const, device=dev, dtype=torch.float64)
        lower = torch.zeros(n, device=dev, dtype=torch.float64)
        upper = torch.full((n,), 1e10, device=dev, dtype=torch.float64)
        best_l2sq = torch.full((n,), float("inf"), device=dev)
        best_adv = x.clone()
        for _ in range(self.search_steps):
            w = w0.clone()
            opt = torch.optim.Adam([w.requires_grad_(True)], lr=self.lr)
            found = torch.zeros(n, dtype=torch.bool, device=dev)
            c = const.to(x.dtype)

            def f(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
                return c[idx] * torch.clamp(-margin(logits, y[idx]), min=-self.kappa)

            for _ in range(self.steps):
                with torch.no_grad():
                    t = torch.tanh(w)
                    x_adv = (t + 1) / 2
                # d/dw of ||x_adv - x||^2 + f(x_adv), by the chain rule through x_adv = (tanh w + 1) / 2;
                # the model's part comes from the one place that calls it
                _, g_f, logits = self.loss_and_grad(x_adv, f)
                with torch.no_grad():
                    m = margin(logits, y)  # > 0: misclassified
                    l2sq = (x_adv - x).flatten(1).pow(2).sum(1)
                    w.grad = (2 * (x_adv - x) + g_f) * (1 - t * t) / 2
                    ok = m > self.kappa if self.kappa > 0 else m > 0
                    found |= ok
                    better = ok & (l2sq < best_l2sq)
                    best_l2sq = torch.where(better, l2sq, best_l2sq)
                    best_adv = torch.where(better.view(-1, 1, 1, 1), x_adv, best_adv)
                opt.step()
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            const = torch.where(upper < 1e9, (lower + upper) / 2, const * 10)
        norms = torch.where(torch.isfinite(best_l2sq), (best_adv - x).flatten(1).norm(dim=1), best_l2sq)
        return best_adv, norms
