"""``python -m ratzoo certify``: the command line of :func:`ratzoo.certify` (:mod:`ratzoo.certification`).

Certified accuracy of zoo models on the first test images::

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
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import cli
from ..certification import smoothing_setup, certify
from ..eot import CPU_CHUNK, DEFAULT_CHUNK, default_chunk
from ..lipschitz import LipschitzBound, feature_lipschitz
from ..parts import BY_IMAGES, Parts, folder_key
from ..identity import model_config
from ..record import CertifyRecord, versions
from ..stats import clopper_pearson


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
    from ..data import to_tensor
    from ..zoo import resolve

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
    from ..data import cache_dir

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
    from ..data import describe_source

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
        model_config=model_config(model),
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
        versions=versions(),
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

    from ..checkpoint import sha256_file
    from ..zoo import load, resolve

    with cli.model_errors():
        folder, _ = resolve(name)
        model = load(name, device=device).eval()
    try:
        sigma, layer = smoothing_setup(model)
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
    for j, start, stop in store.unclaimed():  # skips the parts another process certifies (or just did)
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


if __name__ == "__main__":  # `python -m ratzoo.commands.certify`: the command has one entry point, the one
    # its record's `command` names
    sys.exit("run it as: python -m ratzoo certify ARGS (see python -m ratzoo certify --help)")
