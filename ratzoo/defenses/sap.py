"""Stochastic activation pruning, SAP (Dhillon et al., ICLR 2018, "Stochastic activation pruning
for robust adversarial defense").

At inference, every layer's activations ``h`` (per image) are pruned at random, larger ones
kept more often: activation ``i`` is sampled with probability ``p_i = |h_i| / sum_j |h_j|``,
``r`` times with replacement; an activation never drawn is set to 0, one drawn is divided by
its chance of being drawn, ``1 - (1 - p_i)^r``, so the layer's output is unbiased. The paper's
CIFAR-10 setting, SAP-100, draws ``r`` = 100 % of the layer's activation count
(``sample_fraction=1.0``). The network is the undefended one: no training.

Here each activation is kept independently with that same probability ``1 - (1 - p_i)^r``
(the paper's marginal), instead of drawing ``r`` indices: the same expected output and keep rate,
without materializing ``r`` draws per layer. "Every layer" is the input of every convolution
and of the linear head after the first convolution (in a pre-activation ResNet, each is a
ReLU's output, the activations the paper prunes; a block's shortcut and its first convolution
read one activation, pruned once); the image itself is never pruned.

Randomness: **per sample** (each image of a batch draws its own masks), from torch's global
RNG, which ratzoo's evaluations seed. Athalye et al. (ICML 2018) broke it with EOT (0.9 %
robust on CIFAR-10 at Linf 4/255, from the paper's claimed gain). ``enabled = False``
switches the pruning off: the base model's logits, exactly.
"""

from __future__ import annotations

import torch
from torch import nn


class StochasticActivationPruning(nn.Module):
    """``base`` with SAP on the input of each of its layers after the first.

    Args:
        base: the classifier (images in [0, 1]); its modules are not changed, SAP runs in
            forward pre-hooks on its ``nn.Conv2d`` / ``nn.Linear`` layers, which this
            module owns (they are removed with :meth:`remove`).
        sample_fraction: ``r`` as a fraction of each layer's activation count (SAP-100: 1.0).
    """

    summary = "random pruning of the activations, larger ones kept more often, per image"

    def __init__(self, base: nn.Module, sample_fraction: float = 1.0) -> None:
        super().__init__()
        if not sample_fraction > 0:
            raise ValueError(f"sample_fraction must be > 0, got {sample_fraction}")
        self.base, self.sample_fraction = base, float(sample_fraction)
        self.enabled = True  # the randomness switch, never .training
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None
        layers = [m for m in base.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        first = next((m for m in layers if isinstance(m, nn.Conv2d)), None)
        self._hooks = [m.register_forward_pre_hook(self._prune) for m in layers if m is not first]

    def _prune(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        if not self.enabled:
            return None
        (h,) = args
        if self._last is not None and self._last[0] is h:  # one activation, two consumers (a shortcut): one mask
            return (self._last[1],)
        flat = h.flatten(1)
        a = flat.abs().float()
        p = a / a.sum(1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)
        r = max(1.0, self.sample_fraction * flat.shape[1])
        keep = -torch.expm1(r * torch.log1p(-p.clamp(max=1 - 1e-7)))  # 1 - (1 - p)^r, exact for small p
        mask = torch.rand_like(keep) < keep
        out = torch.where(mask, flat / keep.clamp_min(1e-12).to(flat.dtype), torch.zeros_like(flat))
        self._last = (h, out.view_as(h))
        return (self._last[1],)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._last = None
        try:
            return self.base(x)
        finally:
            self._last = None

    def remove(self) -> None:
        """Take SAP's hooks off the base model (it is then the undefended model again)."""
        for hk in self._hooks:
            hk.remove()
        self._hooks = []

    def extra_repr(self) -> str:
        return f"SAP-{self.sample_fraction * 100:g}, per sample"
