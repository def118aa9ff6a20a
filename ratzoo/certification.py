"""Certified L2 robustness of noisy models by randomized smoothing (Cohen et al., 2019).

A randomized ratzoo model defines a *smoothed classifier*: ``g(x)`` is the class that a
single noise draw of the model most probably predicts. Cohen, Rosenfeld & Kolter
(ICML 2019, "Certified Adversarial Robustness via Randomized Smoothing") show that when
the noise ``N(0, sigma^2 I)`` is added to the input and the top class has probability
``pA > 1/2``, then ``g`` is constant on the L2 ball of radius ``sigma * Phi^-1(pA)``.
:func:`certify` is their CERTIFY: pick the top class from ``n0`` draws, lower-bound its
probability with ``n`` fresh draws (one-sided Clopper-Pearson at level ``alpha``),
abstain when the bound is ``<= 1/2``. :func:`predict` is their PREDICT.

Noise after the first layer (R.N., RAT, LeRAT; ``noise_layer == 1``): the model is
``head(stem(x) + b)``, i.e. the *head* is smoothed at the point ``h = stem(x)``, so the
certificate holds for feature perturbations of L2 norm ``< sigma * Phi^-1(pA)``. An input
perturbation ``d`` moves the features by ``stem(x + d) - stem(x) = A d`` where ``A`` is
the linear part of the (affine, in eval mode) stem: normalization ``1/std``, the 3x3
convolution and the non-affine batch norm's ``1/sqrt(running_var + eps)``. So
``||A d|| <= L ||d||`` with ``L = ||A||_2`` and the certified *input* radius is
``sigma * Phi^-1(pA) / L``. See :func:`ratzoo.lipschitz.feature_lipschitz` for how ``L`` is bounded.

Per-channel (learned, LeRAT) noise std: the certificate uses the smallest std, which is
valid because ``N(0, diag(s^2))`` with every ``s_c >= s_min`` is the sum of
``N(0, s_min^2 I)`` and an independent ``N(0, diag(s^2 - s_min^2))``. Absorb the second
part into the base classifier, ``f'(h) = head(h + e2)``, a classifier with its own
(independent) randomness: ``h -> P(f'(h) = c)`` is a function into ``[0, 1]``, and for
any such function its Gaussian smoothing ``p_c(h) = E[f'_c(h + e1)]``, ``e1 ~
N(0, s_min^2 I)``, has ``Phi^-1(p_c)`` ``1/s_min``-Lipschitz (Salman et al., NeurIPS
2019, Lemma 2; Cohen et al.'s Theorem 1 is the special case of a 0/1 ``f'``). Since
``p_c`` is exactly the vote probability we estimate, ``pA_lower > 1/2`` certifies the
radius ``s_min * Phi^-1(pA_lower)``.

RSE (``noise_kind == "rse"``) is certified by its input noise, the same argument: its inner
noise, drawn independently of the input noise, is part of the base classifier ``f'``. PNI's
noise is on the weights, not an additive Gaussian on the input or the features: no
certificate here covers it, and :func:`certify` refuses it.

Radii are in the units of the images ratzoo models take: pixels in [0, 1], L2 norm over
the whole ``(3, H, W)`` image (the same units as the L2 attacks' ``eps``).

Its command line, certified accuracy of zoo models on the first test images in resumable parts
(``python -m ratzoo certify``), is :mod:`ratzoo.commands.certify`.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .eot import check_images, default_chunk, forward_draws
from .lipschitz import cached_feature_lipschitz
from .noise import noise_control, noise_enabled, noise_modules
from .stats import binomial_lower_bound, binomial_test_pvalue

_NORMAL = statistics.NormalDist()


# --------------------------------------------------------------------------- smoothing


@dataclasses.dataclass(frozen=True)
class Certificate:
    """The certificate of one image (Cohen et al.'s CERTIFY).

    Attributes:
        label: the certified class, or -1 when abstaining (``p_lower <= 1/2``).
        radius: certified L2 radius in input space (pixels in [0, 1]); 0.0 when abstaining.
            The smoothed classifier returns ``label`` on the whole open ball, with
            probability ``>= 1 - alpha`` over the sampling.
        p_lower: Clopper-Pearson lower bound on the probability of the selected class.
        selected: the candidate class picked from the ``n0`` selection draws.
        counts: votes per class among the ``n`` estimation draws.
        feature_radius: ``sigma * Phi^-1(p_lower)``, the radius in the noised space
            (features for layer-1 noise; equal to ``radius`` for input noise).
        sigma: the noise std used (the smallest one for per-channel std).
        lipschitz: the first layer's Lipschitz bound (1.0 for input noise).
        n0, n, alpha: the sampling parameters.
    """

    label: int
    radius: float
    p_lower: float
    selected: int
    counts: tuple[int, ...]
    feature_radius: float
    sigma: float
    lipschitz: float
    n0: int
    n: int
    alpha: float

    @property
    def abstained(self) -> bool:
        return self.label < 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["counts"] = list(self.counts)
        return d


def smoothing_setup(model: nn.Module) -> tuple[float, int]:
    """Check that ``model`` can be certified; return ``(sigma_min, noise_layer)``."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "noise_layer"):
        raise TypeError(
            f"certify needs a ratzoo model (RandomizedClassifier, e.g. from ratzoo.load), got {type(model).__name__}"
        )
    if getattr(config, "noise_kind", None) == "pni":
        raise ValueError(
            "this is a PNI model: its noise is on the weights (one draw per call, shared by the batch), not a Gaussian "
            "added to the input or to the first layer's features, so randomized smoothing's certificate does not apply; "
            "measure it with an attack instead (ratzoo.benchmark)"
        )
    mods = noise_modules(model)
    if not mods or not noise_enabled(model):
        raise ValueError(
            "this model is deterministic (no noise, or its noise switched off with noise_control): "
            "randomized smoothing certifies noisy models only (noise_kind 'fixed', 'learned' or 'rse')"
        )
    smoothing = model.noise
    if getattr(config, "noise_kind", None) == "rse":
        if smoothing is None or not smoothing.enabled:
            raise ValueError("RSE is certified by its input noise, which is switched off; switch it on (noise_control)")
    elif len(mods) != 1:
        raise ValueError(f"expected one noise module, found {len(mods)}")
    if any(m.training for m in model.modules()):
        raise ValueError(
            "the model is in training mode: batch norm would use the statistics of each batch of draws, so "
            "draws would not be independent and the first layer not a fixed map. Call model.eval() first "
            "(the noise stays on: ratzoo switches it with noise_control, not with eval())"
        )
    return smoothing.min_sigma(), int(config.noise_layer)


@torch.no_grad()
def _vote_counts(model: nn.Module, x: torch.Tensor, draws: int, chunk_size: int) -> torch.Tensor:
    """``(N, C)`` int64: how many of ``draws`` noise draws predict each class, per image."""
    out = []
    for i0 in range(0, x.shape[0], chunk_size):
        xb = x[i0 : i0 + chunk_size]
        per_call = max(1, chunk_size // xb.shape[0])
        counts = None
        for k0 in range(0, draws, per_call):
            logits = forward_draws(model, xb, min(per_call, draws - k0), chunk_size=chunk_size)
            votes = F.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0)
            counts = votes if counts is None else counts + votes
        out.append(counts)
    return torch.cat(out).cpu()


def _chunk(chunk_size: int | None, batch_size: int | None, device: torch.device) -> int:
    """``chunk_size``, or the old name ``batch_size`` (with a warning), or the device's default."""
    if batch_size is not None:
        if chunk_size is not None:
            raise TypeError("give chunk_size only (batch_size is its old name)")
        warnings.warn("certify/predict's batch_size is now chunk_size, as in every ratzoo function",
                      FutureWarning, stacklevel=3)
        chunk_size = batch_size
    return chunk_size or default_chunk(device)


def _check_sampling(n: int, alpha: float, chunk_size: int, **more: int) -> None:
    for name, v in {"n": n, "chunk_size": chunk_size, **more}.items():
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def certify(
    model: nn.Module,
    x: torch.Tensor,
    n0: int = 100,
    n: int = 100_000,
    alpha: float = 0.001,
    chunk_size: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    lipschitz: float | None = None,
    *,
    batch_size: int | None = None,
) -> list[Certificate]:
    """Certified L2 radius of each image under the model's own noise (Cohen's CERTIFY).

    Args:
        model: a noisy ratzoo model in ``eval()`` mode, noise on (``noise_layer`` 0 or 1, or RSE;
            PNI is refused).
        x: ``(N, 3, H, W)`` float images in [0, 1].
        n0: draws used to select the candidate class (default 100).
        n: draws used to lower-bound its probability (default 100,000).
        alpha: the certificate fails with probability at most ``alpha`` per image.
        chunk_size: images per forward pass (image copies x draws); bounds memory. Default:
            :func:`ratzoo.eot.default_chunk` for the images' device.
        seed: seed the noise (reproducible for the same ``x`` and ``chunk_size``).
        generator: draw the noise from this generator (exclusive with ``seed``).
        lipschitz: layer-1 noise only: an upper bound on the first layer's L2 Lipschitz
            constant. By default :func:`feature_lipschitz`, computed once per model and
            input shape and cached on the model until its first layer's weights change.
        batch_size: ``chunk_size``'s old name (warns).

    Returns:
        One :class:`Certificate` per image.

    Raises:
        TypeError: not a ratzoo model.
        ValueError: deterministic model, PNI model, training mode, bad sampling parameters.

    >>> model = ratzoo.load("rat")
    >>> certs = certify(model, images[:2], n=10_000, seed=0)
    >>> [(c.label, c.radius) for c in certs]  # (class or -1, L2 radius in [0, 1] pixels)
    """
    check_images(x)
    chunk_size = _chunk(chunk_size, batch_size, x.device)
    _check_sampling(n, alpha, chunk_size, n0=n0)
    sigma, layer = smoothing_setup(model)
    if layer == 0:
        if lipschitz is not None:
            raise ValueError("lipschitz= applies to noise after the first layer; this model's noise is on the input")
        lip = 1.0
    else:
        lip = float(lipschitz) if lipschitz is not None else cached_feature_lipschitz(model, x.shape[1:])
        if not (math.isfinite(lip) and lip > 0):
            raise ValueError(f"lipschitz must be a positive number, got {lipschitz!r}")
    with noise_control(model, seed=seed, generator=generator):
        counts0 = _vote_counts(model, x, n0, chunk_size)
        counts = _vote_counts(model, x, n, chunk_size)  # fresh draws, independent of the selection
    out = []
    for c0, c in zip(counts0, counts):
        selected = int(c0.argmax())
        p_lower = binomial_lower_bound(int(c[selected]), n, alpha)
        if p_lower <= 0.5:
            label, feat_r = -1, 0.0
        else:
            label, feat_r = selected, sigma * _NORMAL.inv_cdf(p_lower)
        out.append(
            Certificate(label, feat_r / lip, p_lower, selected, tuple(int(v) for v in c),
                        feat_r, sigma, lip, n0, n, alpha)
        )
    return out


def predict(
    model: nn.Module,
    x: torch.Tensor,
    n: int = 100_000,
    alpha: float = 0.001,
    chunk_size: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    *,
    batch_size: int | None = None,
) -> torch.Tensor:
    """The smoothed classifier's prediction, or -1 (abstain) when unsure (Cohen's PREDICT).

    With ``n`` draws, take the two most voted classes ``A`` and ``B``; return ``A`` if a
    two-sided binomial test of ``count_A`` against ``count_A + count_B`` draws at ``p = 1/2``
    rejects at level ``alpha``, else abstain. The probability of returning a class other
    than the smoothed classifier's is at most ``alpha`` per image. ``chunk_size``, ``seed`` and
    ``generator`` as in :func:`certify`; ``batch_size`` is ``chunk_size``'s old name (warns).

    Returns:
        ``(N,)`` int64 labels, -1 for abstain.
    """
    check_images(x)
    chunk_size = _chunk(chunk_size, batch_size, x.device)
    _check_sampling(n, alpha, chunk_size)
    smoothing_setup(model)
    with noise_control(model, seed=seed, generator=generator):
        counts = _vote_counts(model, x, n, chunk_size)
    top2 = counts.topk(2, dim=1)
    labels = []
    for (na, nb), (ca, _) in zip(top2.values.tolist(), top2.indices.tolist()):
        labels.append(ca if binomial_test_pvalue(na, na + nb) <= alpha else -1)
    return torch.tensor(labels, dtype=torch.int64)


if __name__ == "__main__":  # `python -m ratzoo.certification`: the library; the command is ratzoo.commands.certify
    raise SystemExit("run it as: python -m ratzoo certify ARGS (see python -m ratzoo certify --help)")
