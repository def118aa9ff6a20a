"""Expectation over Transformation (EOT) prediction for randomized models.

A randomized classifier's prediction is a random variable; its *EOT prediction* is the
mean softmax over ``K`` independent noise draws (a Monte Carlo estimate of
``E_b[softmax(F(x) + b)]``), its *vote* the most frequent single-draw class. All ``K``
draws of a batch go through the model as one batch (chunked to bound memory), so the
cost is one big forward pass instead of a Python loop of ``K``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .randomness import PER_CALL, Randomness, draw_scope, randomness_of

DEFAULT_DECISION_SAMPLES = 100
"""Draws of an EOT prediction unless asked: the decision rule's (:func:`ratzoo.judge.decide`), so
that :func:`predict_proba` with its defaults predicts what ratzoo judges with."""
DEFAULT_CHUNK = 4096  # images per forward pass on an accelerator; bounds peak memory
# On CPU a big batch's activations no longer fit in cache, so smaller passes run faster
# (benchmarks/bench_eot.py and bench_layout.py measure it).
CPU_CHUNK = 64


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether ``device`` runs bfloat16 convolutions natively: a GPU with bf16, or a CPU with
    AVX512-BF16 or AMX, as oneDNN reports it (torch has no public query for the CPU case yet;
    ``torch.ops.mkldnn._is_mkldnn_bf16_supported`` is what its own autocast tests use). Where
    it is emulated, bf16 is slower than float32, so attacks stay in float32 there."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if dev.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def default_chunk(device: torch.device | str, accelerator: int = DEFAULT_CHUNK) -> int:
    """The default number of images per forward pass on ``device``: :data:`CPU_CHUNK`
    on CPU, ``accelerator`` elsewhere."""
    return CPU_CHUNK if torch.device(device).type == "cpu" else accelerator


@dataclasses.dataclass
class EOTPrediction:
    """The result of :func:`predict_proba` for ``N`` images and ``C`` classes.

    Attributes:
        probs: ``(N, C)`` mean softmax over the draws (rows sum to 1).
        probs_std: ``(N, C)`` standard deviation of the softmax over the draws.
        votes: ``(N, C)`` int64, how many draws predicted each class (rows sum to ``samples``).
        samples: number of noise draws ``K`` this summarizes.
    """

    probs: torch.Tensor
    probs_std: torch.Tensor
    votes: torch.Tensor
    samples: int

    @property
    def label(self) -> torch.Tensor:
        """``(N,)`` the EOT prediction: argmax of the mean softmax."""
        return self.probs.argmax(1)

    @property
    def majority(self) -> torch.Tensor:
        """``(N,)`` the majority vote over single draws."""
        return self.votes.argmax(1)


def check_images(x: torch.Tensor) -> None:
    """Raise a ``ValueError`` that says what is wrong and how to fix it unless ``x`` is what
    every ratzoo function takes: a float ``(N, C, H, W)`` batch in [0, 1] (normalization is
    inside the model). The one statement of that contract (attacks, decisions, certificates)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor of shape (N, C, H, W) in [0, 1], got a {type(x).__name__} "
                         "(numpy uint8 HWC images: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255)")
    shape = tuple(x.shape)
    if x.dim() != 4:
        hint = "; one image? add the batch dimension with x.unsqueeze(0)" if x.dim() == 3 else ""
        raise ValueError(f"images must have shape (N, C, H, W), got {shape}{hint}")
    if shape[-1] in (1, 3) and shape[1] not in (1, 3):
        raise ValueError(f"images must be channels-first (N, C, H, W); {shape} looks channels-last (N, H, W, C): "
                         "pass x.permute(0, 3, 1, 2)")
    if not x.is_floating_point():
        raise ValueError(f"images must be a float tensor in [0, 1], got dtype {x.dtype}"
                         + (": for 8-bit pixels pass x.float() / 255" if x.dtype == torch.uint8 else ""))
    if x.numel() and (x.min() < 0 or x.max() > 1):
        lo, hi = x.min().item(), x.max().item()
        raise ValueError(f"images must lie in [0, 1] (normalization is inside the model), "
                         f"got range [{lo:.3g}, {hi:.3g}]" + (": for 0-255 pixels pass x / 255" if hi > 1.5 and lo >= 0 else ""))


def forward_draws(
    model: nn.Module, x: torch.Tensor, samples: int, chunk_size: int | None = None, per_call: bool = False
) -> torch.Tensor:
    """Logits of ``samples`` independent draws for each image: ``(samples, N, C)``.

    Draw ``k`` of every image sits in row ``k``. For per-sample randomness (ratzoo's noise,
    dropout, ...) the images are repeated and the ``samples * N`` rows go through the model in
    passes of at most ``chunk_size`` rows (whole draws where possible), in the order a loop
    ``for k in range(samples): model(x)`` would make them, so for the same generator the noise
    (and therefore the result) is the same as that loop's on CPU. With ``per_call=True``
    (randomness drawn once per call, see :mod:`ratzoo.randomness`) every draw is its own
    call, since copies inside one call would share one draw. Gradients flow through (used by
    the attacks). ``chunk_size=None`` picks :func:`default_chunk` for the images' device.
    """
    chunk_size = chunk_size or default_chunk(x.device)
    n = x.shape[0]
    if n > chunk_size or per_call:
        # One draw per call (per-call randomness), or not even one whole draw fits: split
        # the images of each draw, still draw-major, so the noise is consumed in loop order.
        step = min(n, chunk_size) or 1
        return torch.stack([
            torch.cat([model(x[i : i + step]) for i in range(0, n, step)])
            for _ in range(samples)
        ])
    draws_per_chunk = max(1, chunk_size // max(n, 1))
    outs = []
    for k0 in range(0, samples, draws_per_chunk):
        k = min(draws_per_chunk, samples - k0)
        xb = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
        outs.append(model(xb).view(k, n, -1))
    return torch.cat(outs, 0)


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    x: torch.Tensor,
    samples: int = DEFAULT_DECISION_SAMPLES,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
    randomness: str | Randomness | None = None,
) -> EOTPrediction:
    """EOT prediction: mean softmax, its spread and the votes over ``samples`` draws.

    Args:
        model: a classifier taking images in [0, 1]; randomized or not, ratzoo's or any
            ``nn.Module`` (its randomness is found by :func:`ratzoo.randomness.randomness_of`).
        x: ``(N, 3, H, W)`` float images in [0, 1].
        samples: number of independent draws ``K`` (default :data:`DEFAULT_DECISION_SAMPLES`,
            the decision rule's). A deterministic model (or one whose noise is switched off)
            is run once, whatever ``K``.
        seed: seed the draws for a reproducible result (exclusive with ``generator``).
        generator: draw from this generator.
        chunk_size: at most this many images per forward pass (bounds memory); default
            :func:`default_chunk` (:data:`CPU_CHUNK` on CPU, :data:`DEFAULT_CHUNK` elsewhere).
        randomness: override the detected kind (``"deterministic"``, ``"per-sample"``,
            ``"per-call"``).

    Returns:
        An :class:`EOTPrediction`.

    >>> p = predict_proba(model, images, seed=0)
    >>> p.probs.shape, p.label.shape
    (torch.Size([8, 10]), torch.Size([8]))
    """
    check_images(x)
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    rnd = randomness_of(model, x, randomness)
    with draw_scope(model, rnd, seed=seed, generator=generator):
        if not rnd.randomized:
            logits = forward_draws(model, x, 1, chunk_size)
            probs = logits.float().softmax(-1)[0]
            votes = torch.zeros_like(probs, dtype=torch.int64)
            votes.scatter_(1, probs.argmax(1, keepdim=True), samples)
            return EOTPrediction(probs, torch.zeros_like(probs), votes, samples)
        p = forward_draws(model, x, samples, chunk_size, per_call=rnd.kind == PER_CALL).float().softmax(-1)
    votes = torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1]).sum(0)
    std = p.std(0, unbiased=False) if samples > 1 else torch.zeros_like(p[0])
    return EOTPrediction(p.mean(0), std, votes, samples)
