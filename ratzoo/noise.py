"""Gaussian noise injection, switched by its own flag (never by ``module.training``).

A randomized network (the paper's Definition 2) adds ``b ~ N(0, sigma^2 I)`` to the
activations of one layer, at training *and* inference time. The switch lives on the
:class:`GaussianNoise` module itself (``enabled``) and is driven by
:func:`noise_control`, so ``model.eval()`` can never silently turn a randomized model
into a deterministic one.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

NOISE_KINDS = ("none", "fixed", "learned")


class GaussianNoise(nn.Module):
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

    Attributes:
        enabled: the noise switch (default True). Set it with :func:`noise_control`.
        generator: if set, noise is drawn from this ``torch.Generator`` (reproducible).
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
        self.enabled: bool = True
        self.generator: torch.Generator | None = None

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
        gen = self.generator
        if gen is not None and gen.device != x.device:
            raise RuntimeError(
                f"the noise generator lives on {gen.device} but the activations are on "
                f"{x.device}; enter noise_control(model, seed=...) after moving the model"
            )
        eps = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        sigma = self.sigma.to(x.dtype)
        if sigma.dim() == 1:
            sigma = sigma.view(1, -1, *([1] * (x.dim() - 2)))
        return x + sigma * eps

    def extra_repr(self) -> str:
        return f"kind={self.kind}, sigma={self.sigma.detach().mean().item():.4g}, channels={self.channels}"


def noise_modules(model: nn.Module) -> list[GaussianNoise]:
    """All :class:`GaussianNoise` modules of ``model`` (empty for a deterministic model)."""
    return [m for m in model.modules() if isinstance(m, GaussianNoise)]


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
        model: any module; its :class:`GaussianNoise` children are affected.
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
