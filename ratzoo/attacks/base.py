"""What every ratzoo attack shares: the EOT objective, seeding, budgets, chunking.

**The EOT objective (one choice, used by every attack).** Against a randomized model
an attack differentiates a loss of the *expected output* over ``eot_samples`` noise
draws, and that expected output is the **mean softmax**, used through its logarithm::

    log p_bar(x) = log( (1/K) * sum_k softmax(F(x) + b_k) )      # (N, C)

Why mean softmax and not mean logits:

1. It is the quantity that decides. ratzoo's decision rule (README, :mod:`ratzoo.evaluate`)
   is the argmax of the mean softmax over fresh draws, so the attack maximizes the loss
   of exactly what it is judged on. Mean logits can disagree with it: a few draws with
   huge logits move the mean logits but barely move the mean softmax.
2. ``log p_bar`` is a valid vector of logits (``softmax(log p_bar) = p_bar``), so every
   loss (cross-entropy, the C&W margin, the DLR ratio) applies to it unchanged, and
   cross-entropy on it is ``-log p_bar[y]``, the log-likelihood of the decision's mean.
3. For one draw (a deterministic model, or ``eot_samples=1``) it reduces to the plain
   attack: ``log_softmax`` shifts all logits by the same constant, which leaves
   cross-entropy identical and every logit *difference* (C&W margin, DLR) unchanged.

It is computed stably as ``logsumexp_k(log_softmax(F(x) + b_k)) - log K``.
``eot_output="logits"`` switches to mean logits (Athalye et al.'s other variant) for
comparisons; the default is ``"softmax"``.

**Batched draws.** The ``K`` draws of a batch go through the model as one batch by
:func:`ratzoo.eot.forward_draws` (``x`` repeated ``K`` times) and the gradient is one
``torch.autograd.grad`` through that batch: one forward and one backward per attack
step, never a Python loop over draws. Memory is bounded by splitting the *images*
into sub-batches of at most ``chunk_size // K`` images (attacks act on each image
independently, so this is exact). A deterministic model is run once per step whatever
``eot_samples`` says.

**Seeding.** Each attack owns a ``torch.Generator`` seeded with ``seed``; the random
start and the model's noise (through :func:`ratzoo.noise_control`) are drawn from it, so
a seeded attack repeats bit for bit on the same machine and batch size.

**What attacks never do.** Call ``model.eval()``/``model.train()`` (the noise switch is
:func:`ratzoo.noise_control`, and batch-norm mode is the caller's business), compute
weight gradients (only ``d loss / d input``), or leave the budget: after every step the
iterate is projected onto the eps-ball and onto [0, 1], and a final exact check moves any
pixel that float rounding left one ulp outside the ball back in.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..eot import default_chunk, forward_draws
from ..noise import is_randomized, noise_control

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: called after every gradient step of an attack."""

DEFAULT_ATTACK_CHUNK = 2048  # images x draws per forward/backward on an accelerator; bounds peak memory
EOT_OUTPUTS = ("softmax", "logits")


@dataclasses.dataclass
class AttackResult:
    """What :meth:`Attack.run` returns for ``N`` images.

    Attributes:
        adv_images: ``(N, C, H, W)`` adversarial images, same dtype/device as the input.
        fooled: ``(N,)`` bool, whether the attack's own EOT estimate (its ``eot_samples``
            draws) misclassifies the returned image (``None`` when not asked for). This is
            the attacker's view; the evaluator judges with fresh draws
            (:func:`ratzoo.evaluate.evaluate`).
        norms: ``(N,)`` float, the perturbation norm in the attack's distance (Linf or
            L2). For unbounded attacks (C&W) it is ``inf`` where no adversarial example
            was found (and ``adv_images`` is then the clean image).
    """

    adv_images: torch.Tensor
    fooled: torch.Tensor | None
    norms: torch.Tensor


def parse_budget(value: float | str, name: str = "eps") -> float:
    """A budget given as a number or a string such as ``"8/255"``, ``"0.5"``, ``"2e-2"``.

    Raises:
        ValueError: not a finite non-negative number (the message says what was given).
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                num, den = text.split("/", 1)
                den_f = float(den)
                if den_f == 0:
                    raise ValueError(f"{name}={value!r} divides by zero; write a budget like 8/255")
                out = float(num) / den_f
            else:
                out = float(text)
        except ValueError as e:
            if "divides by zero" in str(e):
                raise
            raise ValueError(
                f"{name}={value!r} is not a number; write it like 8/255, 0.031 or 0.5"
            ) from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out = float(value)
    else:
        raise ValueError(f"{name} must be a number or a string like '8/255', got {value!r}")
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def _positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_inputs(images: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise a clear ``ValueError`` unless ``images`` is a float NCHW batch in [0, 1] with
    matching integer ``labels``."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor of shape (N, C, H, W) in [0, 1], got {shape}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"images must lie in [0, 1] (normalization is inside the model), got range "
            f"[{images.min().item():.3g}, {images.max().item():.3g}]"
        )
    if (
        not isinstance(labels, torch.Tensor)
        or labels.dim() != 1
        or labels.is_floating_point()
        or labels.shape[0] != images.shape[0]
    ):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an integer tensor of shape ({images.shape[0]},), got {got}")


def _per_sample_l2(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(p=2, dim=1)


def _view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """Project onto the Linf ball of radius ``eps`` around ``x``, then onto [0, 1]."""
    if isinstance(eps, torch.Tensor):
        eps = _view(eps, x)
    return torch.clamp(torch.min(torch.max(x_adv, x - eps), x + eps), 0.0, 1.0)


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """Project onto the L2 ball of radius ``eps`` around ``x``, then onto [0, 1].

    Clamping to [0, 1] after the ball projection keeps the budget: with ``x`` in [0, 1]
    clamping can only shrink each ``|delta_i|``.
    """
    delta = x_adv - x
    norm = _per_sample_l2(delta)
    eps_t = eps if isinstance(eps, torch.Tensor) else torch.full_like(norm, float(eps))
    factor = torch.where(norm > eps_t, eps_t / norm.clamp_min(1e-12), torch.ones_like(norm))
    return torch.clamp(x + delta * _view(factor, x), 0.0, 1.0)


def enforce_budget(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Exact final guard: after float rounding, ``x_adv - x`` measured in float64 is within
    ``eps`` (Linf: per pixel; L2: per image) and ``x_adv`` lies in [0, 1]."""
    x_adv = x_adv.clamp(0.0, 1.0)
    if norm == "Linf":
        # the representable bounds nearest to x -+ eps that lie inside the exact interval
        xd = x.double()
        lo, hi = (xd - eps).to(x.dtype), (xd + eps).to(x.dtype)
        lo = torch.where(lo.double() < xd - eps, torch.nextafter(lo, torch.full_like(lo, 2.0)), lo)
        hi = torch.where(hi.double() > xd + eps, torch.nextafter(hi, torch.full_like(hi, -2.0)), hi)
        return torch.min(torch.max(x_adv, lo), hi).clamp(0.0, 1.0)
    for shrink in (1.0, 1 - 1e-6, 1 - 1e-5):
        d = x_adv.double() - x.double()
        n = _per_sample_l2(d)
        bad = n > eps
        if not bool(bad.any()):
            break
        factor = torch.where(bad, eps * shrink / n.clamp_min(1e-30), torch.ones_like(n))
        x_adv = (x.double() + d * _view(factor, d)).clamp(0.0, 1.0).to(x_adv.dtype)
    return x_adv


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``max_{j != y} z_j - z_y`` per sample: > 0 exactly when the argmax is not ``y``."""
    z_y = logits.gather(1, labels[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, labels[:, None], float("-inf"))
    return other.max(1).values - z_y


def dlr_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Croce & Hein's (2020) Difference of Logits Ratio, per sample (to be maximized):
    ``-(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3 + 1e-12)`` with ``z`` sorted decreasingly.
    Shift and scale invariant, so applying it to log-probabilities changes nothing."""
    if logits.shape[1] < 3:
        raise ValueError("the DLR loss needs at least 3 classes")
    z_sorted = logits.sort(dim=1).values
    return margin(logits, labels) / (z_sorted[:, -1] - z_sorted[:, -3] + 1e-12)


class Attack:
    """Base class: EOT-aware, seeded, budgeted, untargeted white-box attack.

    Subclasses set :attr:`name` and :attr:`norm` and implement :meth:`_attack` on one
    sub-batch; they get the model's EOT output only through :meth:`eot_logits` (the one
    place the model is called) and gradients through :meth:`loss_and_grad`.

    Args:
        model: a classifier taking images in [0, 1] (randomized or not). Its mode
            (``eval``/``train``) and noise switch are left as they are.
        eps: the budget (Linf or L2 radius in [0, 1] pixel units; ``None`` for unbounded).
        eot_samples: noise draws ``K`` averaged per step (ignored, i.e. 1, when the
            model is deterministic or its noise is off).
        seed: seeds the random start and the model's noise draws.
        eot_output: ``"softmax"`` (default: mean softmax, see the module docstring) or
            ``"logits"`` (mean logits).
        chunk_size: at most ``chunk_size`` images x draws per forward/backward; the
            image batch is split into sub-batches of ``max(1, chunk_size // K)``
            (default: 2048 on an accelerator, about 3 GB at PreActResNet-18 width 16;
            256 on CPU, where bigger passes are slower, see :func:`ratzoo.eot.default_chunk`).
            On a CUDA out-of-memory error the run is retried, reseeded, with half the chunk.
        progress: optional ``progress(done, total)`` called after each gradient step.
    """

    name: str = "attack"
    norm: str = "Linf"

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: float | str | None,
        eot_samples: int = 1,
        seed: int = 0,
        eot_output: str = "softmax",
        chunk_size: int | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.eps = None if eps is None else parse_budget(eps, "eps")
        self.eot_samples = _positive_int(eot_samples, "eot_samples")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.seed = seed
        if eot_output not in EOT_OUTPUTS:
            raise ValueError(f"eot_output must be one of {EOT_OUTPUTS}, got {eot_output!r}")
        self.eot_output = eot_output
        self.chunk_size = None if chunk_size is None else _positive_int(chunk_size, "chunk_size")
        self.progress = progress
        self.generator: torch.Generator | None = None
        self._k = 1
        self._done = 0
        self._total = 0

    # ------------------------------------------------------------------ overridables

    def _steps_per_image_batch(self) -> int:
        """Gradient steps one sub-batch costs (for progress reporting)."""
        return 1

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attack one sub-batch; return adversarial images and (optionally) norms."""
        raise NotImplementedError

    def params(self) -> dict:
        """The attack's parameters, JSON-ready (for records)."""
        return {
            "attack": self.name,
            "norm": self.norm,
            "eps": self.eps,
            "eot_samples": self.eot_samples,
            "eot_output": self.eot_output,
            "seed": self.seed,
        }

    # ------------------------------------------------------------------ EOT core

    def eot_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The EOT output as logits, ``(N, C)``: ``log`` mean softmax over ``K`` draws
        (or mean logits), all draws in one batched pass. The only model call."""
        k = self._k
        z = forward_draws(self.model, x, k, chunk_size=x.shape[0] * k)  # one pass: x is a sub-batch
        if self.eot_output == "logits":
            return z.mean(0)
        logp = F.log_softmax(z.float(), dim=-1)
        if k == 1:
            return logp[0]
        return torch.logsumexp(logp, dim=0) - math.log(k)

    def loss_and_grad(
        self, x: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample loss (N,), ``d sum(loss) / d x`` and the EOT logits, with one
        forward and one backward (input gradient only)."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.eot_logits(x)
            loss = loss_fn(logits)
            (grad,) = torch.autograd.grad(loss.sum(), x)
        self._tick()
        return loss.detach(), grad.detach(), logits.detach()

    @torch.no_grad()
    def eot_logits_no_grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.eot_logits(x)

    def _tick(self) -> None:
        self._done += 1
        if self.progress is not None:
            self.progress(self._done, self._total)

    def _rand(self, shape: torch.Size, like: torch.Tensor, kind: str = "uniform") -> torch.Tensor:
        fn = torch.rand if kind == "uniform" else torch.randn
        return fn(shape, generator=self.generator, device=like.device, dtype=like.dtype)

    # ------------------------------------------------------------------ driver

    def run(
        self, images: torch.Tensor, labels: torch.Tensor, estimate_success: bool = True
    ) -> AttackResult:
        """Attack ``images`` (``(N, C, H, W)`` in [0, 1]) with true ``labels`` (``(N,)``).

        Args:
            images: the clean images.
            labels: their true labels.
            estimate_success: also run one no-grad EOT pass on the result to fill
                ``AttackResult.fooled`` (the evaluator skips it: it judges with fresh draws).

        Returns:
            An :class:`AttackResult` (adversarial images, the attacker's success
            estimate, perturbation norms).
        """
        check_inputs(images, labels)
        device = images.device
        labels = labels.to(device)
        chunk = self.chunk_size or default_chunk(device, DEFAULT_ATTACK_CHUNK)
        while True:
            try:
                return self._run(images, labels, estimate_success, chunk)
            except torch.OutOfMemoryError:
                # GPU only (a CPU out-of-memory kills the process). Retry the whole run,
                # reseeded, with half the chunk: the result is that of the smaller chunk.
                if max(1, chunk // max(self._k, 1)) <= 1:
                    raise
                chunk //= 2
                warnings.warn(f"{self.name}: out of memory; retrying with chunk_size={chunk}", stacklevel=2)
                if device.type == "cuda":
                    torch.cuda.empty_cache()

    def _run(self, images: torch.Tensor, labels: torch.Tensor, estimate_success: bool, chunk: int) -> AttackResult:
        device = images.device
        self.generator = torch.Generator(device=device).manual_seed(self.seed)
        with noise_control(self.model, generator=self.generator):
            self._k = self.eot_samples if is_randomized(self.model) else 1
            per = max(1, chunk // self._k)
            n_batches = max(1, math.ceil(images.shape[0] / per))
            self._done, self._total = 0, n_batches * self._steps_per_image_batch()
            advs, norms = [], []
            for i in range(0, images.shape[0], per):
                x, y = images[i : i + per].detach(), labels[i : i + per]
                adv, nrm = self._attack(x, y)
                if self.eps is not None:
                    adv = enforce_budget(adv, x, self.eps, self.norm)
                advs.append(adv.detach().to(images.dtype))
                norms.append(nrm)
            adv = torch.cat(advs) if advs else images.clone()
            fooled = None
            if estimate_success:
                with torch.no_grad():
                    fooled = torch.cat(
                        [self.eot_logits(adv[i : i + per]).argmax(1) != labels[i : i + per]
                         for i in range(0, adv.shape[0], per)]
                    ) if adv.shape[0] else torch.zeros(0, dtype=torch.bool, device=device)
        if all(n is None for n in norms):
            d = (adv - images).flatten(1)
            nrm = d.abs().amax(1) if self.norm == "Linf" else d.norm(dim=1)
            if adv.shape[0] == 0:
                nrm = torch.zeros(0, device=device)
        else:
            nrm = torch.cat(norms)
        return AttackResult(adv, fooled, nrm.float())

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Adversarial images, ``(N, C, H, W)``, same dtype and device as ``images``."""
        return self.run(images, labels).adv_images

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k not in ("attack",))
        return f"{type(self).__name__}({args})"
