"""The first layer's L2 Lipschitz bound, which turns a feature-space certificate into an input one.

Noise after the first layer (R.N., RAT, LeRAT) smooths the *head* at ``h = stem(x)``, so
randomized smoothing certifies feature perturbations; an input perturbation ``d`` moves the
features by ``A d``, with ``A`` the linear part of the (affine, in eval mode) stem, and the
certified input radius is the feature radius divided by ``L >= ||A||_2``
(:mod:`ratzoo.certification`). :func:`feature_lipschitz` bounds ``L`` two independent ways:
power iteration accelerated by Lanczos (:func:`spectral_norm`, from below) and the DFT bound of
a circular convolution (:func:`conv_norm_upper_bound`, a guaranteed upper bound).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def spectral_norm(
    linear_fn: Callable[[torch.Tensor], torch.Tensor],
    input_shape: Sequence[int],
    iters: int = 300,
    tol: float = 1e-10,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[float, int]:
    """Largest singular value of a *linear* map: power iteration on ``A^T A`` (autograd),
    accelerated by Lanczos.

    Each step is one product ``A^T A v``: ``u = A v`` (forward), then ``A^T u`` as a
    vector-Jacobian product, which for a linear map is exactly the transpose, so no
    matrix is ever formed. Plain power iteration converges like ``(s2 / s1)^(2k)``, and
    for a convolution ``s2 / s1`` is typically within 1e-3 of 1 (its singular values are
    a dense sampling of a smooth frequency response), so it stalls visibly below ``s1``
    for thousands of steps. The same products are therefore combined by Lanczos (with
    full reorthogonalization): the top eigenvalue of the Krylov space's tridiagonal
    matrix converges like ``exp(-2k sqrt(gap))`` instead, in tens of steps here.

    Args:
        linear_fn: a linear map from tensors of shape ``(1, *input_shape)``.
        input_shape: the input shape, without batch dimension.
        iters: maximal number of products ``A^T A v``.
        tol: stop when the estimate's relative change in one step is below this.
        seed: seed of the random start vector.

    Returns:
        ``(estimate, iterations)``. ``estimate = ||A v||`` for the unit top Ritz vector
        ``v``, a value the map actually attains, so it is a *lower* bound on the true norm
        (it converges to it); callers that need a guaranteed bound must use an upper bound
        (see :func:`conv_norm_upper_bound`).
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    q = torch.randn(math.prod(input_shape), generator=gen, dtype=torch.float64)
    q = q / q.norm()
    basis: list[torch.Tensor] = []
    alphas: list[float] = []
    betas: list[float] = []
    prev, it = -1.0, 0

    def ata(v: torch.Tensor) -> torch.Tensor:
        x = v.to(device, dtype).view(1, *input_shape).requires_grad_(True)
        u = linear_fn(x)
        (w,) = torch.autograd.grad(u, x, grad_outputs=u.detach())
        return w.detach().flatten().to("cpu", torch.float64)

    with torch.enable_grad():
        for it in range(1, iters + 1):
            basis.append(q)
            w = ata(q)
            alphas.append(float(q @ w))
            Q = torch.stack(basis, 1)
            for _ in range(2):  # full reorthogonalization, twice is enough
                w = w - Q @ (Q.T @ w)
            beta = float(w.norm())
            evals, evecs = torch.linalg.eigh(
                torch.diag(torch.tensor(alphas, dtype=torch.float64))
                + torch.diag(torch.tensor(betas, dtype=torch.float64), 1)
                + torch.diag(torch.tensor(betas, dtype=torch.float64), -1)
            )
            top = float(evals[-1])
            if beta <= 1e-12 * max(abs(top), 1e-30) or abs(top - prev) <= tol * max(abs(top), 1e-30):
                break
            prev = top
            betas.append(beta)
            q = w / beta
        v = torch.stack(basis, 1) @ evecs[:, -1]
        x = (v / v.norm()).to(device, dtype).view(1, *input_shape)
        est = float(linear_fn(x).detach().double().norm())
    return est, it


def conv_norm_upper_bound(weight: torch.Tensor, input_size: Sequence[int]) -> float:
    """An upper bound on the spectral norm of ``conv2d(., weight)`` on ``H x W`` inputs.

    Valid for any zero padding ``0 <= p <= k - 1`` and any stride: the zero-padded
    convolution on ``H x W`` equals (crop) o (circular convolution on the
    ``(H + kh - 1) x (W + kw - 1)`` torus) o (zero embedding) [o (subsampling) for a
    stride], and crop, embedding and subsampling have norm <= 1. A circular convolution
    is block-diagonalized by the 2-D DFT, so its norm is the largest singular value of
    the ``(C_out, C_in)`` matrices ``FFT(weight)(w)`` over the torus frequencies
    (Sedghi et al., ICLR 2019). Computed in float64.
    """
    w = weight.detach().to("cpu", torch.float64)
    kh, kw = w.shape[-2:]
    m = (int(input_size[0]) + kh - 1, int(input_size[1]) + kw - 1)
    spec = torch.fft.fft2(w, s=m).permute(2, 3, 0, 1)  # (mh, mw, C_out, C_in)
    return float(torch.linalg.matrix_norm(spec, ord=2).max())


@dataclasses.dataclass(frozen=True)
class LipschitzBound:
    """How far the first layer can move the features per unit of input L2 norm.

    Attributes:
        value: the bound :func:`certify` divides by, ``max(upper_bound, power_iteration)``.
        upper_bound: the DFT (circulant embedding) bound on the composed linear map; a
            guaranteed upper bound on its spectral norm.
        power_iteration: the power-iteration estimate of the same norm (a lower bound
            that converges to it); ``upper_bound / power_iteration - 1`` is the slack.
        iterations: power iterations used.
        input_shape: the ``(C, H, W)`` inputs the operator acts on.
    """

    value: float
    upper_bound: float
    power_iteration: float
    iterations: int
    input_shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d


def _effective_stem_kernel(model: nn.Module) -> tuple[torch.Tensor, nn.Conv2d]:
    """The kernel of the linear part of ``model.features``: normalization, conv, BN scale."""
    stem = getattr(model, "stem", None)
    conv, bn = getattr(stem, "conv", None), getattr(stem, "bn", None)
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise NotImplementedError(
            "feature_lipschitz knows the ratzoo stem (normalize -> Conv2d -> BatchNorm2d); this "
            f"model's stem is {type(stem).__name__}. Pass lipschitz=<an upper bound you trust> to certify()."
        )
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise NotImplementedError(
            f"the stem convolution {conv} is not a plain zero-padded convolution (groups=1, dilation=1); "
            "pass lipschitz=<an upper bound you trust> to certify()"
        )
    if bn.training or bn.running_var is None:
        raise ValueError(
            "the stem's batch norm uses batch statistics (training mode or no running stats), so the "
            "first layer is not a fixed affine map and no Lipschitz bound applies: call model.eval()"
        )
    scale = 1.0 / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.detach().double()
    std = model.std.detach().double().flatten()  # normalization (x - mean) / std
    w = conv.weight.detach().double() * scale.view(-1, 1, 1, 1) / std.view(1, -1, 1, 1)
    return w, conv


@torch.no_grad()
def feature_lipschitz(
    model: nn.Module, input_shape: Sequence[int] = (3, 32, 32), iters: int = 300
) -> LipschitzBound:
    """L2 Lipschitz constant of ``model.features`` (the part before layer-1 noise).

    ``features(x) = BN(conv((x - mean) / std))`` is affine in eval mode; biases and
    means cancel in ``features(x') - features(x)``, so the constant is the spectral norm
    of the linear part ``A`` as an operator on ``input_shape`` images. Two independent
    computations:

    - power iteration with autograd on ``v -> features(v) - features(0)``
      (:func:`spectral_norm`): converges to ``||A||`` from below;
    - the DFT bound (:func:`conv_norm_upper_bound`) on the single convolution whose
      kernel is ``W[o, c] * bn_scale[o] / std[c]`` (the per-channel scalings fold into
      the kernel): a guaranteed upper bound.

    Before trusting the second, the folded convolution is checked to reproduce
    ``features(x) - features(0)`` on random inputs (so a changed stem cannot slip
    through), and the power-iteration estimate must not exceed the upper bound.

    Raises:
        ValueError: the model (its batch norm) is in training mode.
        NotImplementedError: the stem is not normalize -> conv -> batch norm.
        RuntimeError: the two computations disagree (a bug, not a user error).
    """
    if any(m.training for m in model.modules()):
        raise ValueError("feature_lipschitz needs the model in eval() mode (batch norm with running statistics)")
    shape = tuple(int(s) for s in input_shape)
    w, conv = _effective_stem_kernel(model)
    p = next(model.parameters())
    f0 = model.features(torch.zeros((1, *shape), device=p.device, dtype=p.dtype))

    def linear(v: torch.Tensor) -> torch.Tensor:
        return model.features(v) - f0

    probe = torch.randn((2, *shape), generator=torch.Generator().manual_seed(1)).to(p.device, p.dtype)
    folded = F.conv2d(probe.double(), w.to(p.device), stride=conv.stride, padding=conv.padding)
    err = float((linear(probe).double() - folded).abs().max() / folded.abs().max())
    if not err < 1e-4:
        raise NotImplementedError(
            f"model.features is not the normalize -> conv -> batch-norm map this bound assumes "
            f"(relative mismatch {err:.2e}); pass lipschitz=<an upper bound you trust> to certify()"
        )
    upper = conv_norm_upper_bound(w, shape[1:])
    est, its = spectral_norm(linear, shape, iters=iters, device=p.device, dtype=p.dtype)
    if est > upper * (1 + 1e-4):
        raise RuntimeError(f"power iteration ({est:.6g}) exceeds the DFT upper bound ({upper:.6g}): a bug")
    return LipschitzBound(max(upper, est), upper, est, its, shape)


def _features_fingerprint(model: nn.Module) -> tuple:
    """Identifies the model's current weights (the first layer's among them): storage and
    in-place version of each parameter and buffer (an optimizer step or ``load_state_dict``
    changes the version)."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def cached_feature_lipschitz(model: nn.Module, input_shape: Sequence[int] = (3, 32, 32)) -> float:
    """:func:`feature_lipschitz`'s bound, computed once per model, input shape and weights.

    A power iteration of 300 steps costs about a second on a CPU; a demo certifying one image
    at a time would pay it on every call. The value is kept on the model (``_ratzoo_lipschitz``)
    with a fingerprint of the first layer's tensors, so changed weights are measured again.
    """
    shape = tuple(int(s) for s in input_shape)
    key = (shape, _features_fingerprint(model))
    cache = model.__dict__.setdefault("_ratzoo_lipschitz", {})
    if key not in cache:
        cache.clear()
        cache[key] = feature_lipschitz(model, shape).value
    return cache[key]
