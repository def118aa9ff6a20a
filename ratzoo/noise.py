"""Noise injection, switched by its own flag (never by ``module.training``).

A randomized network (the paper's Definition 2) adds ``b ~ N(0, sigma^2 I)`` to the
activations of one layer, at training *and* inference time (:class:`GaussianNoise`; RSE puts
one before every convolution). PNI instead draws noisy weights (:class:`WeightNoise`). Every
such module is a :class:`NoiseSource`: the switch lives on the module itself (``enabled``)
and is driven by :func:`noise_control`, so ``model.eval()`` can never silently turn a
randomized model into a deterministic one.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

# a model's noise (ModelConfig.noise_kind): GaussianNoise's two kinds, RSE's and PNI's
NOISE_KINDS = ("none", "fixed", "learned", "rse", "pni")


class NoiseSource(nn.Module):
    """What every ratzoo noise module has: its switch, its generator, and how a batch shares a draw.

    Attributes:
        enabled: the noise switch (default True). Set it with :func:`noise_control`.
        generator: if set, noise is drawn from this ``torch.Generator`` (reproducible).
        per_sample: True when every image of a batch gets its own draw; False when one draw
            per call is shared by the batch (:mod:`ratzoo.randomness` then makes K draws as K
            calls).
    """

    per_sample: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.enabled: bool = True
        self.generator: torch.Generator | None = None

    def _randn(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise of ``like``'s shape, device and dtype, from ``generator``."""
        gen = self.generator
        if gen is not None and gen.device != like.device:
            raise RuntimeError(
                f"the noise generator lives on {gen.device} but the tensor it perturbs is on "
                f"{like.device}; enter noise_control(model, seed=...) after moving the model"
            )
        return torch.randn(like.shape, generator=gen, device=like.device, dtype=like.dtype)


class GaussianNoise(NoiseSource):
    """Adds zero-mean Gaussian noise with standard deviation ``sigma``.

    Args:
        channels: number of channels of the activations the noise is added to.
        sigma: the noise standard deviation (for ``kind="learned"``, its initial value).
        kind: ``"fixed"`` (R.N., RAT) or ``"learned"`` (LeRAT).

    LeRAT's learned std is per channel and parametrized as ``sigma = exp(log_sigma)``
    with ``log_sigma`` an ``nn.Parameter`` of shape ``(channels,)``: the exponential keeps
    it strictly positive whatever the optimizer does, and gradient steps act on the
    scale multiplicatively, which suits a quantity whose useful range spans decades.
    The noise is reparametrized (``x + sigma * eps``), so ``sigma`` receives a gradient.
    Every image of a batch gets its own draw (``per_sample``); ``enabled`` and ``generator``
    as in :class:`NoiseSource`.
    """

    def __init__(self, channels: int, sigma: float, kind: str = "fixed") -> None:
        super().__init__()
        if kind not in ("fixed", "learned"):
            raise ValueError(f"noise kind must be 'fixed' or 'learned', got {kind!r}")
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"noise sigma must be a positive number, got {sigma!r}")
        self.kind = kind
        self.channels = channels
        if kind == "learned":
            self.log_sigma = nn.Parameter(torch.full((channels,), math.log(sigma)))
        else:
            self.register_buffer("_sigma", torch.tensor(float(sigma)), persistent=False)

    @property
    def sigma(self) -> torch.Tensor:
        """The noise std: a scalar tensor (fixed) or a ``(channels,)`` tensor (learned)."""
        if self.kind == "learned":
            return self.log_sigma.exp()
        return self._sigma

    def min_sigma(self) -> float:
        """The smallest per-channel std (what a certificate may safely assume)."""
        return float(self.sigma.detach().min())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        eps = self._randn(x)
        sigma = self.sigma.to(x.dtype)
        if sigma.dim() == 1:
            sigma = sigma.view(1, -1, *([1] * (x.dim() - 2)))
        return x + sigma * eps

    def extra_repr(self) -> str:
        return f"kind={self.kind}, sigma={self.sigma.detach().mean().item():.4g}, channels={self.channels}"


class WeightNoise(NoiseSource):
    """PNI-W's noisy weights (Rakin et al., CVPR 2019, "Parametric Noise Injection"):
    ``W + alpha * eta`` with ``eta ~ N(0, std(W)^2)``.

    Args:
        alpha: the initial noise scale (the paper's 0.25), learned: an ``nn.Parameter`` of
            shape ``()``, trained with the weights (and, as in the paper, without weight decay).

    ``std(W)`` is the standard deviation of all of the layer's weights, detached (the paper's
    code computes it without gradient), so ``alpha`` alone sets how loud the noise is relative
    to the weights, and receives the gradient ``sum(dL/dW' * eta)``. One draw per call, shared
    by the whole batch (``per_sample = False``): K draws of an image are K calls.
    """

    per_sample = False

    def __init__(self, alpha: float) -> None:
        super().__init__()
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"weight noise alpha must be a positive number, got {alpha!r}")
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return weight
        return weight + self.alpha.to(weight.dtype) * weight.detach().std() * self._randn(weight)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha.item():.4g}, one draw per call"


def noise_modules(model: nn.Module) -> list[NoiseSource]:
    """All of ratzoo's noise modules (:class:`NoiseSource`) in ``model`` (empty for a deterministic model)."""
    return [m for m in model.modules() if isinstance(m, NoiseSource)]


def noise_enabled(model: nn.Module) -> bool:
    """True when ``model`` has at least one of ratzoo's noise modules switched on.

    This sees only ratzoo's own noise; :func:`ratzoo.is_randomized` finds any randomness
    by the model's behaviour (:mod:`ratzoo.randomness`)."""
    return any(m.enabled for m in noise_modules(model))


@contextlib.contextmanager
def noise_control(
    model: nn.Module,
    enabled: bool | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[nn.Module]:
    """Temporarily switch a model's noise on/off and/or make it reproducible.

    Args:
        model: any module; its noise modules (:class:`NoiseSource`) are affected.
        enabled: ``True``/``False`` to switch the noise on/off, ``None`` to leave it.
        seed: draw the noise from a fresh generator seeded with ``seed``.
        generator: draw the noise from this generator (exclusive with ``seed``).

    The previous state is restored on exit, also on error.

    >>> with noise_control(model, seed=0):
    ...     a = model(x)
    >>> with noise_control(model, seed=0):
    ...     b = model(x)
    >>> torch.equal(a, b)
    True
    """
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    mods = noise_modules(model)
    saved = [(m.enabled, m.generator) for m in mods]
    try:
        if seed is not None and mods:
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            generator = torch.Generator(device=device).manual_seed(int(seed))
        for m in mods:
            if enabled is not None:
                m.enabled = bool(enabled)
            if generator is not None:
                m.generator = generator
        yield model
    finally:
        for m, (en, gen) in zip(mods, saved):
            m.enabled, m.generator = en, gen
