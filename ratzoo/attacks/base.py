"""What every ratzoo attack shares: the EOT objective, seeding, budgets, chunking.

**The EOT objective (one choice, used by every attack).** Against a randomized model
an attack differentiates a loss of the *expected output* over ``eot_samples`` noise
draws, and that expected output is the **mean softmax**, used through its logarithm::

    log p_bar(x) = log( (1/K) * sum_k softmax(F(x) + b_k) )      # (N, C)

Why mean softmax and not mean logits:

1. It is the quantity that decides. ratzoo's decision rule (README, :mod:`ratzoo.evaluation`)
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

**Batched draws, whatever the randomness.** How ``K`` independent draws are made depends
on the model's randomness, found by behaviour (:mod:`ratzoo.randomness`): per-sample
randomness (ratzoo's noise, dropout) repeats the images ``K`` times in one pass; per-call
randomness (one draw shared by a whole batch) makes ``K`` separate calls, because ``K``
copies in one call would average a single draw ``K`` times; a deterministic model is run
once per step whatever ``eot_samples`` says. Either way the gradient is one
``torch.autograd.grad`` per pass.

**Lockstep passes of one size.** All images take each step together. A step is cut into
passes of at most ``chunk_size`` image-draws (``chunk_size // K`` images each), so every pass
has the size the pass-size sweep found fastest (:data:`ratzoo.eot.CPU_CHUNK` on CPU,
``benchmarks/bench_layout.py``) however many images are still being attacked. ``chunk_size``
and the other shared defaults live here only: attack classes do not restate them.

**Resolved images leave the batch.** PGD and APGD stop spending passes on an image once
their own EOT estimate is fooled by a margin: ``max_j log p_bar_j - log p_bar_y >
resolve_margin`` (``> 0`` for a deterministic model, where the estimate is exact). The
image keeps the iterate that was fooled; later steps cost only the images still standing.
The estimate uses ``K`` draws and can be wrong, so the final word stays with the decision
rule's fresh draws (:func:`ratzoo.run_attack`), and :func:`ratzoo.run_attack` attacks an
image that stopped early again, without stopping, when the decision rule does not confirm
it (the "confirm or continue" rule; ``benchmarks/bench_resolve.py`` measures it against
full runs).

**Seeding.** Each attack owns a ``torch.Generator`` seeded with ``seed``; the random start
and ratzoo's noise are drawn from it, and any other randomness runs inside a fork of
torch's global RNG seeded from it (:func:`ratzoo.randomness.draw_scope`), so a seeded attack
repeats bit for bit on the same machine.

**What attacks never do.** Call ``model.eval()``/``model.train()`` (the noise switch is
:func:`ratzoo.noise_control`, and batch-norm mode is the caller's business), compute
weight gradients (only ``d loss / d input``), or leave the budget: after every step the
iterate is projected onto the eps-ball and onto [0, 1], and a final exact check moves any
pixel that float rounding left one ulp outside the ball back in.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..eot import bf16_is_fast, check_images, default_chunk, forward_draws
from ..randomness import PER_CALL, Randomness, draw_scope, randomness_of

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: called after every gradient step of an attack."""

DEFAULT_ATTACK_CHUNK = 2048  # images x draws per forward/backward on an accelerator; bounds peak memory
EOT_OUTPUTS = ("softmax", "logits")
PRECISIONS = ("auto", "fp32", "bf16")
EOT_SAMPLES = 1  # draws per attack step unless asked: a plain attack (the CLIs ask for judge.DEFAULT_EOT)
RESOLVE_MARGIN = 0.5
"""Default ``resolve_margin`` (log-probability units): an image whose attack-side EOT estimate
gives some wrong class ``e^0.5 = 1.65`` times the true class's mean probability stops being
attacked. With EOT-20 on the bundled noisy models this loses no robust-accuracy point against
full runs on the same images (``benchmarks/bench_resolve.py``)."""


@dataclasses.dataclass
class PassStats:
    """What an attack spent: model calls, image-draws forwarded, the largest pass."""

    calls: int = 0
    image_draws: int = 0
    max_pass: int = 0
    steps: int = 0

    def add(self, calls: int, rows: int, largest: int) -> None:
        self.calls += calls
        self.image_draws += rows
        self.max_pass = max(self.max_pass, largest)

    def merge(self, other: PassStats) -> None:
        """Add ``other``'s spending to this one."""
        self.add(other.calls, other.image_draws, other.max_pass)
        self.steps += other.steps


@dataclasses.dataclass
class AttackResult:
    """What :meth:`Attack.run` returns for ``N`` images.

    Attributes:
        adv_images: ``(N, C, H, W)`` adversarial images, same dtype/device as the input.
        fooled: ``(N,)`` bool, whether the attack's own EOT estimate (its ``eot_samples``
            draws) misclassifies the returned image (``None`` when not asked for). This is
            the attacker's view; the evaluator judges with fresh draws
            (:func:`ratzoo.evaluation.evaluate`).
        norms: ``(N,)`` float, the perturbation norm in the attack's distance (Linf or
            L2). For unbounded attacks (C&W) it is ``inf`` where no adversarial example
            was found (and ``adv_images`` is then the clean image).
        stopped_early: ``(N,)`` bool, images that left the batch once resolved (``None``
            for attacks that never stop early).
    """

    adv_images: torch.Tensor
    fooled: torch.Tensor | None
    norms: torch.Tensor
    stopped_early: torch.Tensor | None = None


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


LINF_WARN = 64 / 255
"""An Linf budget above this is accepted with a warning (CIFAR-10's usual one is 8/255)."""


def check_budget(eps: float, norm: str, image_numel: int | None = None, name: str = "eps") -> None:
    """Refuse a budget that cannot be meant, warn about one that is probably a slip.

    Images are in [0, 1], so an Linf budget above 1 allows any image (``eps=8`` meant
    ``8/255``) and an L2 budget above the diameter ``sqrt(C*H*W)`` of the image cube does too;
    an Linf budget between 64/255 and 1 is likely an L2 budget (0.5) given to Linf. The library's
    attacks and every CLI call this one rule.

    Raises:
        ValueError: the budget allows any image; the message says what was probably meant.
    """
    if norm == "Linf" and eps > 1:
        raise ValueError(f"{name}={eps:g} is an Linf budget larger than the whole pixel range (images are in "
                         f"[0, 1]): did you mean {eps:g}/255 = {eps / 255:.4f}?")
    if norm == "Linf" and LINF_WARN < eps < 1:  # 1, the whole cube, is the sanity checks' own
        warnings.warn(f"{name}={eps:g} (= {eps * 255:.0f}/255) is a very large Linf budget (CIFAR-10's usual is "
                      f"8/255); if you meant an L2 budget, choose the L2 threat model", stacklevel=3)
    if norm == "L2" and image_numel is not None and eps > math.sqrt(image_numel) * (1 + 1e-9):
        raise ValueError(f"{name}={eps:g} is an L2 budget larger than the diameter of the image space "
                         f"({math.sqrt(image_numel):.1f} for {image_numel} values in [0, 1]), so any image is "
                         f"reachable: did you mean {eps:g}/255 = {eps / 255:.4f}?")


def _positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_inputs(images: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise a clear ``ValueError`` unless ``images`` is a float NCHW batch in [0, 1]
    (:func:`ratzoo.eot.check_images`) with one non-negative integer label per image. (Labels
    above the model's classes are caught where logits meet labels, :func:`ratzoo.judge.decide`.)"""
    check_images(images)
    n = images.shape[0]
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a torch.Tensor of {n} class indices, got a {type(labels).__name__} "
                         "(torch.as_tensor(labels) converts a list or numpy array)")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}: pass labels.long()")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},), one per image, got {tuple(labels.shape)}")
    if n and labels.min() < 0:
        raise ValueError(f"labels must be class indices >= 0, got {labels.min().item()}")


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

    Subclasses set :attr:`name` and :attr:`norm` and implement :meth:`_attack` on the whole
    batch (in lockstep); they get the model's EOT output only through :meth:`eot_logits`
    and :meth:`loss_and_grad` (the one place the model is called), which cut each step
    into passes of ``chunk_size`` image-draws. Subclasses take their own arguments and pass
    the shared ones below through ``**common``; every shared default lives here only.

    Args:
        model: a classifier taking images in [0, 1] (randomized or not, ratzoo's or any
            ``nn.Module``). Its mode (``eval``/``train``) and noise switch are left as they are.
        eps: the budget (Linf or L2 radius in [0, 1] pixel units; ``None`` for unbounded).
        eot_samples: independent draws ``K`` averaged per step (default 1; ignored, i.e. 1,
            when the model is deterministic or its noise is off).
        seed: seeds the random start and every draw of the model's randomness (default 0).
        eot_output: ``"softmax"`` (default: mean softmax, see the module docstring) or
            ``"logits"`` (mean logits).
        chunk_size: at most ``chunk_size`` image-draws per forward/backward pass (default
            ``None``: :data:`ratzoo.eot.CPU_CHUNK` on CPU, the fastest size measured by the
            pass-size sweep; :data:`DEFAULT_ATTACK_CHUNK` on an accelerator, about 3 GB at
            PreActResNet-18 width 16). On a CUDA out-of-memory error the run is retried,
            reseeded, with half the chunk.
        randomness: ``None`` (default: found by behaviour, :mod:`ratzoo.randomness`) or
            ``"deterministic"`` / ``"per-sample"`` / ``"per-call"`` to override.
        early_stop: PGD and APGD stop attacking an image once their EOT estimate is fooled
            by ``resolve_margin`` (default True; False attacks every image for every step).
        resolve_margin: that margin in log-probability (default :data:`RESOLVE_MARGIN`;
            ``0`` on a deterministic model, where the estimate is exact).
        precision: the attack's own passes in ``"fp32"`` or ``"bf16"`` (autocast); ``"auto"``
            (default) takes bf16 where the device runs it natively
            (:func:`ratzoo.eot.bf16_is_fast`), except for attacks that need fine logits
            (C&W's minimal norms). About 2x faster per pass on an AVX512-BF16 CPU
            (docs/attack-engine.md); the gradient only steers the attack, and every
            verdict is made in float32 by the decision rule.
        progress: optional ``progress(done, total)`` called after each gradient step.

    After :meth:`run`, :attr:`stats` holds the passes spent and :attr:`randomness_found`
    the randomness the attack used.
    """

    name: str = "attack"
    norm: str = "Linf"
    stops_early: bool = False  # PGD and APGD set it: images leave the batch once resolved
    bf16_ok: bool = True  # "auto" precision may use bf16 (C&W sets False: its norms need fine logits)

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: float | str | None,
        eot_samples: int = EOT_SAMPLES,
        seed: int = 0,
        eot_output: str = "softmax",
        chunk_size: int | None = None,
        randomness: str | Randomness | None = None,
        early_stop: bool = True,
        resolve_margin: float | str = RESOLVE_MARGIN,
        precision: str = "auto",
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
        if randomness is not None and not isinstance(randomness, Randomness):
            randomness_of(model, torch.zeros(1), randomness)  # validates the name, probes nothing
        self.randomness = randomness
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        # resolved once, on the model's device (where the attack runs), so params() never changes
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        bf16 = precision == "bf16" or (precision == "auto" and self.bf16_ok and bf16_is_fast(device))
        self.precision_used = "bf16" if bf16 else "fp32"
        self._autocast: torch.dtype | None = torch.bfloat16 if bf16 else None
        self.early_stop = bool(early_stop)
        self.resolve_margin = parse_budget(resolve_margin, "resolve_margin")
        self.progress = progress
        self.generator: torch.Generator | None = None
        self.randomness_found: Randomness | None = None
        self.stats = PassStats()
        self._k = 1
        self._per_call = False
        self._chunk = 1
        self._done = 0
        self._total = 0

    # ------------------------------------------------------------------ overridables

    def _steps_total(self) -> int:
        """Gradient steps the whole (lockstep) batch takes (for progress reporting)."""
        return 1

    def _attack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attack the batch; return adversarial images and (optionally) norms."""
        raise NotImplementedError

    def params(self) -> dict:
        """The attack's parameters, JSON-ready (for records)."""
        out = {
            "attack": self.name,
            "norm": self.norm,
            "eps": self.eps,
            "eot_samples": self.eot_samples,
            "eot_output": self.eot_output,
            "seed": self.seed,
            "precision": self.precision_used,
        }
        if self.stops_early:
            out["early_stop"] = self.early_stop
            out["resolve_margin"] = self.resolve_margin
        return out

    # ------------------------------------------------------------------ EOT core

    @property
    def eot_draws(self) -> int:
        """The draws each step of the last :meth:`run` really averaged (1: deterministic)."""
        return self._k

    def _passes(self, n: int) -> list[torch.Tensor]:
        """Index sets of the passes that cover ``n`` images: ``chunk // K`` images each."""
        per = max(1, self._chunk // self._k)
        return [torch.arange(i, min(i + per, n)) for i in range(0, n, per)]

    def _eot_pass(self, x: torch.Tensor) -> torch.Tensor:
        """The EOT output of one pass as logits, ``(n, C)``: ``log`` mean softmax over ``K``
        draws (or mean logits). The only model call."""
        k, n = self._k, x.shape[0]
        with torch.autocast(x.device.type, dtype=self._autocast or torch.bfloat16, enabled=self._autocast is not None):
            z = forward_draws(self.model, x, k, chunk_size=n * k, per_call=self._per_call)
        self.stats.add(k if self._per_call else 1, n * k, n if self._per_call else n * k)
        z = z.float()  # the objective in float32 whatever the passes ran in
        if self.eot_output == "logits":
            return z.mean(0)
        logp = F.log_softmax(z, dim=-1)
        if k == 1:
            return logp[0]
        return torch.logsumexp(logp, dim=0) - math.log(k)

    @torch.no_grad()
    def eot_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The EOT output of any number of images, ``(N, C)``, without gradient."""
        if x.shape[0] == 0:
            raise ValueError("eot_logits needs at least one image")
        return torch.cat([self._eot_pass(x[idx.to(x.device)]) for idx in self._passes(x.shape[0])])

    def loss_and_grad(
        self,
        x: torch.Tensor,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        active: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-image loss ``(N,)``, ``d loss / d x`` and the EOT logits ``(N, C)`` at ``x``.

        ``loss_fn(logits, index)`` gets the EOT logits of one pass and the batch indices
        of its images (to pick their labels or constants). One forward and one backward
        per pass, input gradient only. With ``active`` (``(N,)`` bool) only those images
        are computed; the others get loss ``nan``, gradient 0 and logits ``nan``.
        """
        dev = x.device
        rows = torch.arange(x.shape[0], device=dev) if active is None else active.nonzero().squeeze(1)
        loss = torch.full((x.shape[0],), float("nan"), device=dev)
        grad = torch.zeros_like(x)
        logits: torch.Tensor | None = None
        for sel in self._passes(len(rows)):
            idx = rows[sel.to(dev)]
            xi = x[idx].detach().requires_grad_(True)
            with torch.enable_grad():
                z = self._eot_pass(xi)
                li = loss_fn(z, idx)
                (gi,) = torch.autograd.grad(li.sum(), xi)
            if logits is None:
                logits = torch.full((x.shape[0], z.shape[1]), float("nan"), device=dev)
            loss[idx], grad[idx], logits[idx] = li.detach().to(loss.dtype), gi.detach(), z.detach()
        self._tick()
        if logits is None:  # nothing active
            logits = torch.full((x.shape[0], 1), float("nan"), device=dev)
        return loss, grad, logits

    def _resolved(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N,)`` bool: the EOT estimate is fooled by the margin (never when disabled)."""
        if not self.early_stop:
            return torch.zeros_like(y, dtype=torch.bool)
        need = self.resolve_margin if self._k > 1 else 0.0
        m = margin(logits, y)
        return torch.nan_to_num(m, nan=-1.0) > need

    def _tick(self) -> None:
        self._done += 1
        self.stats.steps += 1
        if self.progress is not None:
            self.progress(self._done, self._total)

    def _rand(self, shape: torch.Size, like: torch.Tensor, kind: str = "uniform") -> torch.Tensor:
        fn = torch.rand if kind == "uniform" else torch.randn
        return fn(shape, generator=self.generator, device=like.device, dtype=like.dtype)

    # ------------------------------------------------------------------ driver

    def check_budget(self, images: torch.Tensor) -> None:
        """:func:`check_budget` for this attack's budget on images shaped like ``images``; callers
        that may attack none of them (all misclassified when clean) call it first."""
        if self.eps is not None:
            check_budget(self.eps, self.norm, images[0].numel() if len(images) else None)

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
            estimate, perturbation norms, which images stopped early).
        """
        check_inputs(images, labels)
        self.check_budget(images)
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
        self.stats = PassStats()
        n = images.shape[0]
        rnd = randomness_of(self.model, images, self.randomness) if n else Randomness("deterministic", "none")
        self.randomness_found = rnd
        self._k = self.eot_samples if rnd.randomized else 1
        self._per_call = rnd.kind == PER_CALL
        self._chunk = chunk
        self.stopped_early = torch.zeros(n, dtype=torch.bool, device=device) if self.stops_early else None
        if n == 0:
            empty = torch.zeros(0, device=device)
            return AttackResult(images.clone(), torch.zeros(0, dtype=torch.bool, device=device) if estimate_success
                                else None, empty, self.stopped_early)
        self._done, self._total = 0, self._steps_total()
        x = images.detach()
        with draw_scope(self.model, rnd, generator=self.generator):
            adv, nrm = self._attack(x, labels)
            if self.eps is not None:
                adv = enforce_budget(adv, x, self.eps, self.norm)
            adv = adv.detach().to(images.dtype)
            fooled = (self.eot_logits(adv).argmax(1) != labels) if estimate_success else None
        if nrm is None:
            d = (adv - images).flatten(1)
            nrm = d.abs().amax(1) if self.norm == "Linf" else d.norm(dim=1)
        return AttackResult(adv, fooled, nrm.float(), self.stopped_early)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Adversarial images, ``(N, C, H, W)``, same dtype and device as ``images``."""
        return self.run(images, labels).adv_images

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k not in ("attack",))
        return f"{type(self).__name__}({args})"


COMMON_ARGUMENTS = tuple(
    name for name, prm in inspect.signature(Attack.__init__).parameters.items()
    if prm.kind is inspect.Parameter.KEYWORD_ONLY and name != "eps"
)
"""The keyword arguments every attack takes through ``**common`` (owned by :class:`Attack`)."""
