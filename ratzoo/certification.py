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

Command line (certified accuracy of a zoo model on the first test images)::

    python -m ratzoo certify --model rat --n 500 --draws 100000 \\
        --radii 0,0.25,0.5,0.75,1.0 --out cert.json

The images are certified in resumable parts of ``--part-size`` images (:mod:`ratzoo.parts`, under
``$RATZOO_CACHE/certify``): a killed run continues with ``--resume``, and processes started with the
same flags and ``--resume`` share the parts; the process that finishes the last part writes the
complete record. ``--n`` counts images, as in ``ratzoo.evaluate`` and ``ratzoo.benchmark``; Cohen et al.'s ``n`` and
``n0`` (the draws per image) are ``--draws`` and ``--draws0``, and the record's ``params`` keep
their names ``n`` and ``n0``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import cli
from .eot import CPU_CHUNK, DEFAULT_CHUNK, check_images, default_chunk, forward_draws
from .lipschitz import LipschitzBound, cached_feature_lipschitz, feature_lipschitz
from .noise import noise_control, noise_enabled, noise_modules
from .parts import BY_IMAGES, Parts, folder_key
from .record import CertifyRecord
from .stats import binomial_lower_bound, binomial_test_pvalue, clopper_pearson

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


def _smoothing_setup(model: nn.Module) -> tuple[float, int]:
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
    sigma, layer = _smoothing_setup(model)
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
    _smoothing_setup(model)
    with noise_control(model, seed=seed, generator=generator):
        counts = _vote_counts(model, x, n, chunk_size)
    top2 = counts.topk(2, dim=1)
    labels = []
    for (na, nb), (ca, _) in zip(top2.values.tolist(), top2.indices.tolist()):
        labels.append(ca if binomial_test_pvalue(na, na + nb) <= alpha else -1)
    return torch.tensor(labels, dtype=torch.int64)


# --------------------------------------------------------------------------- CLI


def _parse_radii(text: str) -> list[float]:
    try:
        radii = sorted({float(r) for r in text.split(",") if r.strip()})
    except ValueError as e:
        raise ValueError(f"--radii must be comma-separated numbers, got {text!r}") from e
    if not radii or not all(math.isfinite(r) and r >= 0 for r in radii):
        raise ValueError(f"--radii must be finite non-negative numbers, got {text!r}")
    return radii


def _summary(records: list[dict[str, Any]], radii: list[float], draws: int, alpha: float) -> tuple[dict, dict, list]:
    """Certified accuracy at each radius (correct and radius >= r), its 95% CI, and the
    same as ``metrics`` entries in the checkpoint ``results`` format."""
    total = len(records)
    table, cis, metrics = {}, {}, []
    for r in radii:
        k = sum(1 for rec in records if rec["correct"] and rec["radius"] >= r)
        value = k / total if total else 0.0
        ci = list(clopper_pearson(k, total)) if total else [0.0, 1.0]
        table[f"{r:g}"], cis[f"{r:g}"] = value, ci
        metrics.append({
            "name": f"certified accuracy L2 {r:g} (n={draws}, alpha={alpha:g})",
            "type": "certified_accuracy", "radius": r, "value": value, "n": total, "ci95": ci,
        })
    return table, cis, metrics


@dataclasses.dataclass
class CertifyConfig:
    """``python -m ratzoo certify``'s configuration: one field per flag (``--chunk-size`` for
    ``chunk_size``)."""

    model: str = cli.option(None, "zoo name(s) or checkpoint folder(s), comma-separated (e.g. rn,rat,lerat)",
                            required=True)
    n: int = cli.option(500, "number of test images, as in evaluate and benchmark (default %(default)s)",
                        flags=("--n", "--n-images"), type=cli.positive_int("--n"))
    draws: int = cli.option(100_000, "estimation draws per image, Cohen et al.'s n (default %(default)s)",
                            type=cli.positive_int("--draws"))
    draws0: int = cli.option(100, "selection draws per image, Cohen et al.'s n0 (default %(default)s)",
                             type=cli.positive_int("--draws0"))
    alpha: float = cli.option(0.001, "failure probability per image (default %(default)s)")
    skip: int = cli.option(1, "take every SKIP-th test image (default %(default)s: the first N, as the evaluator; "
                              "Cohen et al. use 20)", type=cli.positive_int("--skip"))
    radii: str = cli.option("0,0.25,0.5,0.75,1.0", "L2 radii (pixels in [0, 1]) to report")
    out: str = cli.option("certify_{model}.json",
                          "output JSON; '{model}' is replaced by the model name (default %(default)s)")
    data_dir: str | None = cli.option(None, "local CIFAR-10 folder (default $RATZOO_CIFAR10, else the Hub)")
    chunk_size: int = cli.option(0, f"images per forward pass (default: {CPU_CHUNK} on CPU, where bigger is slower; "
                                    f"{DEFAULT_CHUNK} on GPU; --batch-size is its old name)",
                                 flags=("--chunk-size", "--batch-size"), type=cli.nonnegative_int("--chunk-size"))
    seed: int = cli.option(0, "image i uses the noise seed SEED * 2^20 + i")
    split: str = cli.option("test", "CIFAR-10 split (default %(default)s)", choices=("test", "train"))
    device: str = cli.option("auto", "cpu, cuda, cuda:N or auto")
    threads: int = cli.option(0, "CPU threads (0 = torch's default)")
    part_size: int = cli.option(10, "images per resumable part (a kill loses at most the part being certified)",
                                type=cli.positive_int("--part-size"))
    resume: bool = cli.option(False, "reuse the finished parts of this model and these parameters (also: share one "
                                     "run between processes started with the same flags)")
    quiet: bool = cli.option(False, "no progress bar")

    def params(self, chunk_size: int) -> dict[str, Any]:
        """The record's ``params`` (what ``--resume`` compares), under Cohen et al.'s names ``n0`` and
        ``n`` for the draws, as records written before ``--draws`` have them."""
        return {"n0": self.draws0, "n": self.draws, "alpha": self.alpha, "batch_size": chunk_size,
                "seed": self.seed, "skip": self.skip, "split": self.split}

    def models(self) -> list[str]:
        """``--model``'s names, in order."""
        return [m.strip() for m in self.model.split(",") if m.strip()]

    def check(self) -> list[float]:
        """The radii, sorted, once every flag is checked.

        Raises:
            ValueError: a flag that makes no sense (the message names it).
        """
        radii = _parse_radii(self.radii)
        if len(self.models()) > 1 and "{model}" not in self.out:
            raise ValueError("several models need '{model}' in --out")
        if not 0 < self.alpha < 1:
            raise ValueError(f"--alpha must be in (0, 1), got {self.alpha}")
        return radii


def build_parser() -> argparse.ArgumentParser:
    """The CLI, one flag per :class:`CertifyConfig` field."""
    p = cli.parser("certify", CertifyConfig,
                   "Randomized-smoothing certified L2 accuracy (Cohen et al. 2019) of noisy ratzoo models "
                   "on the first CIFAR-10 test images; writes a JSON record like the evaluator's.",
                   show_defaults=False)
    cli.renamed(p, "--n0", "--draws0", "the selection draws per image; --n counts images")
    return p


def _old_draws_flag(argv: Sequence[str]) -> bool:
    """Whether ``argv`` gives both ``--n`` and ``--n-images`` (or a prefix of it): a command written
    when ``--n`` was the draws, which would now silently certify other images with other draws."""
    flags = {a.split("=", 1)[0] for a in argv}
    return "--n" in flags and any(len(f) > 3 and "--n-images".startswith(f) for f in flags)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ratzoo certify``: certified accuracy of zoo models on CIFAR-10 test images.

    Returns the exit code: 0 ok, 2 bad arguments or model, 3 checkpoint or data error.
    """
    from .data import to_tensor
    from .zoo import resolve

    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    if _old_draws_flag(args):
        parser.error("--n and --n-images are one flag, the number of images; the draws per image are --draws")
    cfg = CertifyConfig(**vars(parser.parse_args(args)))
    try:
        radii = cfg.check()
    except ValueError as e:
        parser.error(str(e))  # exit 2, as every bad argument
    cli.set_threads(cfg.threads)
    device = torch.device(cli.device(cfg.device))
    try:
        for name in cfg.models():  # fail fast on a bad name, before loading the data
            with cli.model_errors():
                resolve(name)
        images, labels = cli.load_data(cfg.split, cfg.data_dir)
        if cfg.n > len(labels):  # refused where evaluate cuts: an old command's `--n 100000` meant draws
            raise cli.CommandError(f"--n {cfg.n} is more than the {len(labels)} images of the {cfg.split} split: "
                                   f"--n counts images; the draws per image are --draws", cli.BAD_ARGUMENT)
    except cli.CommandError as e:
        return e.report()
    idx = np.arange(0, len(labels), cfg.skip)[: cfg.n]
    if len(idx) < cfg.n:
        print(f"warning: only {len(idx)} {cfg.split} images with --skip {cfg.skip}", file=sys.stderr)
    x_all = to_tensor(images[idx])
    y_all = torch.from_numpy(np.asarray(labels[idx]).copy())
    command = "python -m ratzoo certify " + " ".join(args)
    for name in cfg.models():
        try:
            _certify_model(name, cfg, radii=radii, device=device, chunk_size=cfg.chunk_size or default_chunk(device),
                           indices=idx.tolist(), x_all=x_all, y_all=y_all, command=command)
        except cli.CommandError as e:
            return e.report()
    return 0


def parts_dir(params: dict[str, Any], weights_sha: str) -> Path:
    """Where the finished parts of one model's certificates live: ``$RATZOO_CACHE/certify/<key>``,
    the key hashing the record's ``params`` and the weights, so changed weights or draws never
    reuse another run's images (delete the folder to clear them). ``n`` and the part size are not
    in the key: image ``i``'s seed is derived from ``i`` alone."""
    from .data import cache_dir

    return cache_dir() / "certify" / folder_key([params, weights_sha])


def _certify_part(model: nn.Module, cfg: CertifyConfig, positions: range, *, indices: list[int],
                  x_all: torch.Tensor, y_all: torch.Tensor, device: torch.device, chunk_size: int,
                  lip: float | None, bar: Any) -> dict[str, Any]:
    """The per-image certificates of the images at ``positions`` of ``indices``: one part."""
    images = []
    for pos in positions:
        i, t0 = indices[pos], time.perf_counter()
        (c,) = certify(model, x_all[pos : pos + 1].to(device), n0=cfg.draws0, n=cfg.draws, alpha=cfg.alpha,
                       chunk_size=chunk_size, seed=(cfg.seed << 20) + i, lipschitz=lip)
        y = int(y_all[pos])
        images.append({"index": i, "label": y, "label_pred": c.label, "correct": c.label == y,
                       "radius": c.radius, "feature_radius": c.feature_radius, "p_lower": c.p_lower,
                       "selected": c.selected, "counts": list(c.counts),
                       "seconds": time.perf_counter() - t0})
        bar.update(1)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(radius=f"{c.radius:.3f}")
    return {"n": len(images), "images": images}


def _import_old_record(store: Parts, out: Path, params: dict[str, Any], weights_sha: str,
                       indices: list[int]) -> int:
    """Seed an empty parts store with the whole parts that an ``--out`` record written before the
    store (same parameters and weights) already certified; returns how many parts it gave."""
    old = CertifyRecord.load(out)
    if old.params != params or old.weights_sha256 != weights_sha:
        return 0
    done = {rec["index"]: rec for rec in old.images}
    given = 0
    for j, start, stop in store.ranges:
        if store.load(j) is None and all(indices[p] in done for p in range(start, stop)):
            store.save(j, {"n": stop - start, "images": [done[indices[p]] for p in range(start, stop)]})
            given += 1
    return given


def _record(parts: dict[int, dict[str, Any]], *, total: int, name: str, cfg: CertifyConfig, radii: list[float],
            folder: Path, weights_sha: str, model: nn.Module, sigma: float, layer: int, lip: LipschitzBound | None,
            params: dict[str, Any], device: torch.device, command: str) -> CertifyRecord:
    """The record of the finished ``parts`` of ``total`` (complete when they are all there)."""
    from .data import describe_source

    records = sorted((r for part in parts.values() for r in part["images"]), key=lambda r: r["index"])
    table, cis, metrics = _summary(records, radii, cfg.draws, cfg.alpha)
    certified = [r for r in records if r["label_pred"] >= 0]
    elapsed = sum(r.get("seconds", 0.0) for r in records)
    return CertifyRecord(
        model=name,
        n=len(records),
        seed=cfg.seed,
        checkpoint=str(folder),
        weights_sha256=weights_sha,
        model_config=cli.model_config(model),
        method="randomized smoothing (Cohen et al. 2019), CERTIFY with Clopper-Pearson bound",
        noise={"layer": layer, "sigma_min": sigma, "per_channel": model.noise.kind == "learned"},
        lipschitz=lip.to_dict() if lip is not None else None,
        params=params,
        radii=radii,
        dataset=describe_source(cfg.data_dir), dataset_id="uoft-cs/cifar10",
        data={"split": cfg.split, "skip": cfg.skip, "data_dir": cfg.data_dir or os.environ.get("RATZOO_CIFAR10")},
        complete=len(parts) == total,
        certified_accuracy=table,
        certified_accuracy_ci95=cis,
        ci_method="clopper-pearson",
        abstain_rate=(len(records) - len(certified)) / len(records) if records else 0.0,
        metrics=metrics,
        elapsed_s=elapsed,
        seconds_per_image=elapsed / len(records) if records else None,
        device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        threads=torch.get_num_threads(),
        versions=cli.versions(),
        command=command,
        images=records,
    )


def _certify_model(name: str, cfg: CertifyConfig, *, radii: list[float], device: torch.device, chunk_size: int,
                   indices: list[int], x_all: torch.Tensor, y_all: torch.Tensor, command: str) -> None:
    """Certify the images ``indices`` (``x_all``, ``y_all``) on the model ``name`` in resumable
    parts (:class:`ratzoo.parts.Parts`), writing the record of the finished parts to ``--out``
    after each part; the process that finishes the last part writes the complete record.

    Raises:
        CommandError: the model cannot be loaded or certified, or finished parts exist without
            ``--resume``.
    """
    from tqdm.auto import tqdm

    from .checkpoint import sha256_file
    from .zoo import load, resolve

    with cli.model_errors():
        folder, _ = resolve(name)
        model = load(name, device=device).eval()
    try:
        sigma, layer = _smoothing_setup(model)
    except (TypeError, ValueError) as e:
        raise cli.CommandError(f"{name}: {e}", cli.BAD_ARGUMENT) from None
    lip = feature_lipschitz(model, tuple(x_all.shape[1:])) if layer == 1 else None
    weights_sha = sha256_file(folder / "model.safetensors")
    params = cfg.params(chunk_size)
    out = Path(cfg.out.replace("{model}", Path(name).name))
    store = Parts(parts_dir(params, weights_sha), len(indices), cfg.part_size, name=BY_IMAGES)
    if (cfg.resume and out.is_file() and not store.finished()
            and (given := _import_old_record(store, out, params, weights_sha, indices))):
        print(f"{name}: {given} parts taken from the images already certified in {out}", file=sys.stderr)
    finished = store.finished()
    if finished and not cfg.resume:
        raise cli.CommandError(f"{name}: {len(finished)} of the {len(store.ranges)} parts of this run are finished "
                               f"in {store.folder}; pass --resume to reuse them (or delete the folder to start over)",
                               cli.BAD_ARGUMENT)
    if finished:
        print(f"{name}: resuming, {len(finished)} of {len(store.ranges)} parts done ({store.folder})", file=sys.stderr)

    record = functools.partial(_record, total=len(store.ranges), name=name, cfg=cfg, radii=radii, folder=folder,
                               weights_sha=weights_sha, model=model, sigma=sigma, layer=layer, lip=lip,
                               params=params, device=device, command=command)
    bar = tqdm(total=len(indices), initial=sum(p["n"] for p in finished.values()), desc=f"certify {name}",
               unit="img", disable=cfg.quiet)
    for j, start, stop in store.ranges:
        with store.claim(j) as mine:
            if not mine or store.load(j) is not None:
                continue  # another process certifies it (or just did)
            store.save(j, _certify_part(model, cfg, range(start, stop), indices=indices, x_all=x_all, y_all=y_all,
                                        device=device, chunk_size=chunk_size,
                                        lip=lip.value if lip is not None else None, bar=bar))
        record(store.finished()).save(out)
    bar.close()
    final = record(store.finished())
    if not final.complete:  # left to the process finishing the last part: its last write is then complete
        print(f"{name}: {len(store.ranges) - len(store.finished())} parts are being certified by another process, "
              f"which writes the complete record to {out}", file=sys.stderr)
        return
    final.save(out)
    acc = ", ".join(f"{r}: {100 * v:.1f}%" for r, v in final.certified_accuracy.items())
    print(f"{name}: certified accuracy at L2 radius {acc} ({final.n} images) -> {out}", file=sys.stderr)


if __name__ == "__main__":  # `python -m ratzoo.certification`: `import ratzoo` already imported this module, so
    # runpy would run a second copy; the command has one entry point
    sys.exit("run it as: python -m ratzoo certify ARGS (see python -m ratzoo certify --help)")
