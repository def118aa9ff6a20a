"""Which randomness a model has, found by its behaviour, and how to draw from it reproducibly.

An EOT attack and the decision rule are only right when they average *independent* draws
of the model's randomness. How to get K independent draws depends on where the randomness
comes from, so ratzoo classifies every model (any ``nn.Module``, not only its own) into one
of three kinds by a cheap probe: a few forward passes of copies of one image.

=================  ==========================================================  ====================================
kind               what the probe sees                                         how K draws are made
=================  ==========================================================  ====================================
``deterministic``  every output identical                                      one pass (K is ignored)
``per-sample``     copies of one image *inside one batch* get different        the batch repeated K times, one pass
                   outputs (noise of the batch's shape: RAT, RSE, dropout)
``per-call``       copies inside one call agree, separate calls differ (one    K separate calls (never K copies of
                   draw shared by the whole batch: random resizing, PNI's      one draw, which would average one
                   noisy weights, a noise tensor of batch size 1)              draw K times)
=================  ==========================================================  ====================================

This is AutoAttack's randomness check (``checks.check_randomized``, which compares two
forward passes) refined: AutoAttack only warns, ratzoo also tells a per-call model from a
per-sample one, because batching copies is exactly the mistake for the former.

ratzoo's own noise modules (:class:`~ratzoo.noise.NoiseSource`) are known without probing:
each says whether it draws per sample (:class:`~ratzoo.noise.GaussianNoise`) or once per call
(:class:`~ratzoo.noise.WeightNoise`, PNI's), and draws from a seeded ``torch.Generator`` (the
exact, reproducible path). Any
*other* randomness is drawn from torch's global RNG; :func:`draw_scope` forks that RNG and
seeds it, so a seeded evaluation of a foreign randomized model repeats too. Whether that
worked (randomness from numpy or Python's ``random`` does not follow torch's seed) is
measured by the probe and reported as ``seedable``.

The probe costs at most six forward calls of four copies of one image, runs once per model,
input shape, device and dtype, and is cached (weakly: the cache never keeps a model alive).
Pass ``randomness="per-call"`` (always correct, only slower) or another kind to any entry
point to override it, e.g. for a model mixing per-sample noise with a per-call draw, which
the probe classifies as per-sample.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
import weakref
from collections.abc import Iterator

import torch
from torch import nn

from .noise import noise_control, noise_modules

DETERMINISTIC, PER_SAMPLE, PER_CALL = "deterministic", "per-sample", "per-call"
KINDS = (DETERMINISTIC, PER_SAMPLE, PER_CALL)
PROBE_COPIES, PROBE_CALLS = 4, 4  # 4 calls: a two-valued per-call draw repeats all 4 times with p = 1/8
PROBE_RTOL = 1e-5  # outputs closer than this (relative to their scale) count as equal: float noise


@dataclasses.dataclass(frozen=True)
class Randomness:
    """A model's randomness, as :func:`randomness_of` found it.

    Attributes:
        kind: ``"deterministic"``, ``"per-sample"`` or ``"per-call"``.
        source: ``"ratzoo-noise"`` (ratzoo's noise modules), ``"probe"`` (found by
            behaviour), ``"ratzoo-noise+probe"`` (both), ``"none"`` or ``"argument"``
            (given by the caller).
        seedable: a seeded run repeats bit for bit (False when the model draws from an
            RNG that torch's seed does not reach, e.g. numpy).
        foreign: the model has randomness outside ratzoo's noise modules (drawn from
            torch's global RNG, which :func:`draw_scope` forks and seeds).
    """

    kind: str
    source: str
    seedable: bool = True
    foreign: bool = False

    @property
    def randomized(self) -> bool:
        return self.kind != DETERMINISTIC

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _outputs_differ(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.detach().float(), b.detach().float()
    if a.shape != b.shape:
        return True
    scale = max(1.0, float(a.abs().max()), float(b.abs().max()))
    return bool((a - b).abs().max() > PROBE_RTOL * scale)


def _fork(device: torch.device):
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


@torch.no_grad()
def _probe_foreign(model: nn.Module, x0: torch.Tensor) -> tuple[str, bool]:
    """(kind, seedable) of the randomness outside ratzoo's noise modules, from copies of ``x0``."""
    batch = x0.expand(PROBE_COPIES, *x0.shape[1:]).contiguous()
    with noise_control(model, enabled=False), _fork(x0.device):
        outs = [model(batch) for _ in range(PROBE_CALLS)]
        if any(_outputs_differ(o[0], o[j]) for o in outs for j in range(1, PROBE_COPIES)):
            kind = PER_SAMPLE
        elif any(_outputs_differ(outs[0], o) for o in outs[1:]):
            kind = PER_CALL
        else:
            return DETERMINISTIC, True
        seeded = []
        for _ in range(2):
            torch.manual_seed(12345)
            seeded.append(model(batch))
    return kind, not _outputs_differ(*seeded)


_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[str, bool]]] = weakref.WeakKeyDictionary()


def _warn_if_batchnorm_trains(model: nn.Module, modules: tuple[nn.Module, ...]) -> None:
    """Warn about BatchNorm layers in training mode: each call then normalizes by its own batch
    and updates the running statistics, so every prediction, probe and attack step changes the
    model. ratzoo does not call ``.eval()`` for the user (unlike torchattacks' default): that
    would also switch off dropout, silently turning an MC-dropout defense deterministic."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in modules):
        warnings.warn(
            f"{type(model).__name__} has BatchNorm layers in training mode: each call normalizes by its batch and "
            "updates running_mean/running_var, so evaluating it changes the model. Call model.eval() first (to keep "
            "dropout as your randomness, then set those Dropout modules back with .train(), or use "
            "F.dropout(x, p, training=True)); ratzoo's own noise does not depend on .training.",
            UserWarning, stacklevel=3)


def randomness_of(model: nn.Module, x: torch.Tensor, override: str | Randomness | None = None) -> Randomness:
    """The randomness of ``model`` on inputs shaped like ``x`` (probed once per input shape
    and train/eval state of its modules, then cached).

    Args:
        model: any classifier.
        x: a batch of its inputs (only the first image is used, and only by the probe).
        override: a kind (``"deterministic"``, ``"per-sample"``, ``"per-call"``) or a
            :class:`Randomness` to use instead of probing.

    Raises:
        ValueError: an unknown ``override``.
    """
    modules = tuple(model.modules())  # walked once: the BatchNorm check and the cache key
    _warn_if_batchnorm_trains(model, modules)
    if isinstance(override, Randomness):
        return override
    if override is not None:
        if override not in KINDS:
            raise ValueError(f"randomness must be one of {', '.join(KINDS)} (or None to detect it), got {override!r}")
        return Randomness(override, "argument", seedable=True, foreign=override != DETERMINISTIC)
    # keyed by the modules' train/eval flags too: .eval() can switch dropout off, and a probe
    # made before must not answer for the model after
    key = (tuple(x.shape[1:]), x.device, x.dtype, tuple(m.training for m in modules))
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = _probe_foreign(model, x[:1].detach())
        if not per_model[key][1]:
            warnings.warn(f"{type(model).__name__} draws randomness that torch's seed does not reach (numpy's or "
                          "its own RNG?): a seeded run will not repeat, and its record says seedable: false. Draw "
                          "from torch's global RNG (torch.randn_like, torch.rand) to make it repeatable.",
                          UserWarning, stacklevel=2)
    kind, seedable = per_model[key]
    own = [m for m in noise_modules(model) if m.enabled]
    if not own:
        return Randomness(kind, "probe" if kind != DETERMINISTIC else "none", seedable, kind != DETERMINISTIC)
    # one module drawing once per call makes copies in a batch share that draw: separate calls
    own_kind = PER_SAMPLE if all(m.per_sample for m in own) else PER_CALL
    if kind == DETERMINISTIC:
        return Randomness(own_kind, "ratzoo-noise")
    return Randomness(PER_CALL if PER_CALL in (kind, own_kind) else PER_SAMPLE, "ratzoo-noise+probe", seedable, True)


def is_randomized(model: nn.Module, x: torch.Tensor | None = None) -> bool:
    """Whether ``model``'s output is random, found by behaviour (any ``nn.Module``).

    Args:
        model: any classifier.
        x: a batch of its inputs; default: one random CIFAR-10-sized image on the
            model's device.

    ratzoo's noise modules count when switched on (:func:`ratzoo.noise_control`); other
    randomness (dropout at inference, input noise, random resizing) is found by
    :func:`randomness_of`'s probe.
    """
    if x is None:
        p = next(model.parameters(), None)
        x = torch.rand(1, 3, 32, 32, device=p.device if p is not None else "cpu",
                       dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    return randomness_of(model, x).randomized


@contextlib.contextmanager
def draw_scope(
    model: nn.Module,
    randomness: Randomness,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> Iterator[None]:
    """Every draw inside comes from ``generator`` (or a fresh one seeded with ``seed``).

    ratzoo's noise modules draw from the generator itself (exact and reproducible); a model
    with foreign randomness runs inside a fork of torch's global RNG, seeded from the
    generator, so the caller's own RNG state is untouched and a seeded run repeats.
    """
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    if generator is None and seed is not None:
        p = next(model.parameters(), None)
        generator = torch.Generator(device=p.device if p is not None else "cpu").manual_seed(int(seed))
    with contextlib.ExitStack() as stack:
        stack.enter_context(noise_control(model, generator=generator))
        if randomness.foreign and generator is not None:
            stack.enter_context(_fork(generator.device))
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)))
        yield
