"""The one schema of a measurement (:class:`Record`), its sibling for certificates
(:class:`CertifyRecord`) and the paired test between two measurements (:func:`compare`).

A record is what :func:`ratzoo.evaluate` (one attack) and :func:`ratzoo.benchmark` (an
ensemble) write and what ``train.report`` and the demo read. Its JSON form is flat (every
field a top-level key, per-image lists as ``<name>_per_image``) so that records written by
older ratzoo versions load unchanged: unknown keys are kept in :attr:`Record.extra` and
written back, so ``Record.from_json(d).to_json() == d`` for every committed record.

**Paired comparison.** Two records measured on the same images (model vs model under one
attack, or attack vs attack on one model) are compared image by image with an exact
McNemar test: of the images robust under exactly one of the two, how surprising is the
split if both were equally robust? Under that null hypothesis each such discordant image is
robust under A with probability 1/2, so the p-value is the two-sided binomial tail. It
uses the pairing that two overlapping confidence intervals throw away, so it decides
differences that the intervals cannot.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ._io import write_json
from .stats import Z95, mcnemar_exact, wilson_interval

_PER_IMAGE = "_per_image"



def versions() -> dict[str, str]:
    """The software versions a record states."""
    from . import __version__  # the package imports this module

    return {"ratzoo": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


@dataclasses.dataclass
class Record:
    """One measurement on ``n`` images under ratzoo's decision rule.

    Attributes:
        model: the model's name (zoo name, folder or ``module:callable``).
        attack: the attack's registry name, or ``"benchmark"`` for the ensemble.
        n: images measured.
        clean_accuracy, robust_accuracy: fractions under the decision rule.
        clean_accuracy_ci95, robust_accuracy_ci95: 95 % Wilson intervals.
        seed: the one seed (``None`` for a record merged from parts).
        randomized: whether the model's output is random.
        randomness: how (kind, source, seedable, foreign: :class:`ratzoo.randomness.Randomness`).
        params: every argument of the attack (or of the benchmark).
        threat_model, eps: ``"Linf"`` / ``"L2"`` and the budget, when bounded.
        offset: the index of the first image in its split (images are ``offset .. offset+n-1``;
            ``None`` reads as 0).
        split: ``"test"`` or ``"train"`` (``None`` reads as test).
        single_draw_accuracy, clean_single_draw_accuracy: what one call of the model gives.
        eot_samples, effective_eot_samples, decision_samples: draws asked for and made.
        decision_rule, ci_method: the rule and the interval method, in words.
        per_image: per-image outcomes, e.g. ``clean_correct``, ``robust``, ``linf``, ``l2``.
        elapsed_s: seconds. passes: model calls and image-draws spent.
        versions: software versions. device: where it ran.
        extra: every other key of the JSON form (C&W statistics, sanity checks, command, ...).
    """

    model: str
    attack: str
    n: int
    clean_accuracy: float
    robust_accuracy: float
    clean_accuracy_ci95: list[float] = dataclasses.field(default_factory=lambda: [0.0, 1.0])
    robust_accuracy_ci95: list[float] = dataclasses.field(default_factory=lambda: [0.0, 1.0])
    seed: int | None = None
    randomized: bool | None = None
    randomness: dict[str, Any] | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    threat_model: str | None = None
    eps: float | None = None
    offset: int | None = None
    split: str | None = None
    single_draw_accuracy: float | None = None
    clean_single_draw_accuracy: float | None = None
    eot_samples: int | None = None
    effective_eot_samples: int | None = None
    decision_samples: int | None = None
    decision_rule: str | None = None
    ci_method: str | None = None
    per_image: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    elapsed_s: float | None = None
    passes: dict[str, Any] | None = None
    versions: dict[str, str] | None = None
    device: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    _keys: tuple[str, ...] = dataclasses.field(default=(), repr=False, compare=False)

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """The flat, JSON-ready form (``json.dumps`` of it needs no custom encoder). A record
        read by :meth:`from_json` is written back with the same keys in the same order."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("per_image", "extra", "_keys"):
                continue
            v = getattr(self, f.name)
            if v is not None or f.name in _REQUIRED or f.name in self._keys:
                out[f.name] = v
        for k, v in self.per_image.items():
            out[k + _PER_IMAGE] = v
        out.update(self.extra)
        if self._keys:
            order = {k: i for i, k in enumerate(self._keys)}
            out = dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))
        return _json_safe(out)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """A record from its JSON form; records written by older ratzoo versions load too
        (their first image's index comes from ``data.offset`` where they have one)."""
        if not isinstance(data, dict) or "n" not in data or "robust_accuracy" not in data:
            raise ValueError("not a ratzoo record: it needs at least 'n' and 'robust_accuracy' "
                             f"(got keys {sorted(data)[:8] if isinstance(data, dict) else type(data).__name__})")
        names = {f.name for f in dataclasses.fields(cls)} - {"per_image", "extra", "_keys"}
        kw: dict[str, Any] = {k: v for k, v in data.items() if k in names}
        kw.setdefault("model", None)
        kw.setdefault("attack", None)
        kw.setdefault("clean_accuracy", None)
        per_image = {k[: -len(_PER_IMAGE)]: v for k, v in data.items() if k.endswith(_PER_IMAGE)}
        extra = {k: v for k, v in data.items() if k not in names and not k.endswith(_PER_IMAGE)}
        return cls(**kw, per_image=per_image, extra=extra, _keys=tuple(data))

    @classmethod
    def load(cls, path: str | Path) -> Record:
        """Read a record from a JSON file (a clear error names the file when it is not one)."""
        return _load(cls, path, "a record")

    @classmethod
    def load_folder(cls, folder: str | Path) -> tuple[dict[str, Record], int]:
        """Every record in ``folder`` (``*.json``, sorted by file name) by file stem, and how many
        files there could not be read as records (skipped, so one bad file hides nothing else).

        The stem is the record's name: a deterministic model's EOT sweep stores one measurement
        under several names (``..._eot10`` is ``..._eot1``), which only the name tells apart.
        """
        records, bad = {}, 0
        for path in sorted(Path(folder).glob("*.json")):
            try:
                records[path.stem] = cls.load(path)
            except ValueError:
                bad += 1
        return records, bad

    def save(self, path: str | Path) -> None:
        """Write the record as JSON (atomically: a kill never leaves half a file)."""
        write_json(path, self.to_json(), indent=2)

    # ------------------------------------------------------------------ per image

    @property
    def first_index(self) -> int:
        """The dataset index of the first image (``offset``, or ``data.offset`` of older records)."""
        if self.offset is not None:
            return int(self.offset)
        data = self.extra.get("data")
        return int(data.get("offset") or 0) if isinstance(data, dict) else 0

    @property
    def image_indices(self) -> range:
        """The dataset indices of the measured images."""
        return range(self.first_index, self.first_index + self.n)

    def robust_per_image(self) -> list[bool]:
        """Per image: robust under the decision rule.

        Raises:
            ValueError: the record has no per-image outcomes (written before ratzoo kept them).
        """
        if "robust" in self.per_image:
            return [bool(v) for v in self.per_image["robust"]]
        if "fooled" in self.per_image and "clean_correct" in self.per_image and self.attack.startswith("cw"):
            # minimal-norm C&W: robust at no threshold; use accuracy_at's images instead
            return [bool(c) and not bool(f) for c, f in zip(self.per_image["clean_correct"], self.per_image["fooled"])]
        raise ValueError(f"the record of {self.model} / {self.attack} has no per-image outcomes "
                         "(measured before ratzoo recorded them): re-measure it to compare it image by image")


@dataclasses.dataclass
class CertifyRecord:
    """What ``python -m ratzoo certify`` writes for one model: randomized-smoothing certificates
    (:func:`ratzoo.certify`) of ``n`` images and the certified accuracy at each L2 radius.

    A sibling of :class:`Record`, not one: a certificate has no attack and no robust accuracy
    under one, but a certified accuracy per radius. Its JSON form is flat, ``"kind": "certify"``
    first and then every field in this order; :meth:`from_json` refuses a key the schema does not
    know and reads a missing one as its default.

    Attributes:
        model: the model's name. n: images certified (so far, while ``complete`` is false).
        seed: image ``i`` used the noise seed ``seed * 2^20 + i``.
        checkpoint, weights_sha256, model_config: what was certified.
        method: the procedure, in words. noise: ``layer``, ``sigma_min``, ``per_channel``.
        lipschitz: the first layer's L2 Lipschitz bound (:class:`ratzoo.lipschitz.LipschitzBound`'s
            ``to_dict``; ``None`` for input noise).
        params: ``n0``, ``n`` (draws), ``alpha``, ``batch_size``, ``seed``, ``skip``, ``split``.
        radii: the L2 radii (pixels in [0, 1]) of ``certified_accuracy``.
        dataset, dataset_id, data: where the images came from.
        complete: whether every image asked for is certified.
        certified_accuracy, certified_accuracy_ci95: per radius (``f"{r:g}"``), with its interval
            (``ci_method``). abstain_rate: the fraction of images the smoothed classifier abstained on.
        metrics: the same as checkpoint-results metrics (type ``certified_accuracy``).
        elapsed_s, seconds_per_image, device, threads, versions, command: how it ran.
        images: per image ``index``, ``label``, ``label_pred`` (-1: abstain), ``correct``,
            ``radius``, ``feature_radius``, ``p_lower``, ``selected``, ``counts``, ``seconds``.
    """

    KIND: ClassVar[str] = "certify"

    model: str
    n: int
    seed: int | None = None
    checkpoint: str | None = None
    weights_sha256: str | None = None
    model_config: dict[str, Any] | None = None
    method: str | None = None
    noise: dict[str, Any] | None = None
    lipschitz: dict[str, Any] | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    radii: list[float] = dataclasses.field(default_factory=list)
    dataset: str | None = None
    dataset_id: str | None = None
    data: dict[str, Any] | None = None
    complete: bool = False
    certified_accuracy: dict[str, float] = dataclasses.field(default_factory=dict)
    certified_accuracy_ci95: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    ci_method: str | None = None
    abstain_rate: float | None = None
    metrics: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    elapsed_s: float | None = None
    seconds_per_image: float | None = None
    device: str | None = None
    threads: int | None = None
    versions: dict[str, str] | None = None
    command: str | None = None
    images: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (what ``python -m ratzoo certify`` writes)."""
        return {"kind": self.KIND, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CertifyRecord:
        """A certificate record from its JSON form.

        Raises:
            ValueError: not a certify record (no ``"kind": "certify"``, no ``model`` or ``n``),
                or a key the schema does not know (the message names it).
        """
        if not isinstance(data, dict) or data.get("kind") != cls.KIND:
            raise ValueError(f"not a ratzoo certify record: it needs \"kind\": \"{cls.KIND}\"")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k != "kind" and k not in names]
        missing = [k for k in ("model", "n") if k not in data]
        if unknown or missing:
            raise ValueError("not a ratzoo certify record: " + "; ".join(
                f"{what} key(s) {', '.join(keys)}" for what, keys in (("unknown", unknown), ("missing", missing))
                if keys))
        return cls(**{k: v for k, v in data.items() if k != "kind"})

    @classmethod
    def load(cls, path: str | Path) -> CertifyRecord:
        """Read a certify record from a JSON file (a clear error names the file when it is not one)."""
        return _load(cls, path, "a certify record")

    def save(self, path: str | Path) -> None:
        """Write the record as JSON (atomically, as the certify CLI has always written it)."""
        write_json(path, self.to_json(), indent=1)


def _load(cls: Any, path: str | Path, what: str) -> Any:
    """``cls.from_json`` of the JSON file at ``path``; its errors name the file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read {what} from {path}: {e}") from None
    try:
        return cls.from_json(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


_REQUIRED = {"model", "attack", "n", "clean_accuracy", "robust_accuracy", "clean_accuracy_ci95",
             "robust_accuracy_ci95", "params", "seed"}


# --------------------------------------------------------------------------- paired comparison


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The exact McNemar test between records ``a`` and ``b`` on the images both measured.

    Attributes:
        n: shared images. both, only_a, only_b, neither: robust under both / a only / b only / neither.
        accuracy_a, accuracy_b: robust accuracy of each on the shared images.
        difference: ``accuracy_a - accuracy_b``; ``difference_ci95``: its 95 % interval
            (Wald interval for paired proportions, Agresti-Min adjusted).
        p_value: two-sided exact McNemar p-value (binomial test of ``only_a`` vs ``only_b``).
    """

    n: int
    both: int
    only_a: int
    only_b: int
    neither: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    difference_ci95: tuple[float, float]
    p_value: float

    def verdict(self, alpha: float = 0.05) -> str:
        """One sentence: which is more robust on these images, or that the data cannot tell."""
        if self.p_value < alpha:
            more = "A" if self.difference > 0 else "B"
            return (f"{more} is more robust (paired, n={self.n}: {self.only_a} images robust only under A, "
                    f"{self.only_b} only under B; exact McNemar p={self.p_value:.2g})")
        return (f"no clear difference (paired, n={self.n}: {self.only_a} vs {self.only_b} discordant images; "
                f"exact McNemar p={self.p_value:.2g})")


def compare(a: Record | dict[str, Any], b: Record | dict[str, Any]) -> Comparison:
    """Exact paired comparison of two records on the images both measured.

    Args:
        a, b: records (or their JSON form) of the same split with per-image outcomes,
            e.g. two models under one attack, or two attacks on one model.

    Returns:
        A :class:`Comparison` (counts, accuracies, the difference with its interval, p-value).

    Raises:
        ValueError: different splits, no shared images, or a record without per-image outcomes.

    >>> c = compare(Record.load("rat_pgd.json"), Record.load("at_pgd.json"))
    >>> c.difference, c.p_value, c.verdict()
    """
    ra = a if isinstance(a, Record) else Record.from_json(a)
    rb = b if isinstance(b, Record) else Record.from_json(b)
    if (ra.split or "test") != (rb.split or "test"):
        raise ValueError(f"the records measured different splits ({ra.split} vs {rb.split}); compare on one split")
    va, vb = ra.robust_per_image(), rb.robust_per_image()
    shared = sorted(set(ra.image_indices) & set(rb.image_indices))
    if not shared:
        raise ValueError(f"the records share no image (images {ra.image_indices.start}..{ra.image_indices.stop - 1} "
                         f"vs {rb.image_indices.start}..{rb.image_indices.stop - 1})")
    pa = [va[i - ra.first_index] for i in shared]
    pb = [vb[i - rb.first_index] for i in shared]
    both = sum(x and y for x, y in zip(pa, pb))
    only_a = sum(x and not y for x, y in zip(pa, pb))
    only_b = sum(y and not x for x, y in zip(pa, pb))
    n = len(shared)
    diff = (only_a - only_b) / n
    # Agresti & Min (2005): add 0.5 to each cell of the 2x2 table, then Wald
    n2, a2, b2 = n + 2, only_a + 0.5, only_b + 0.5
    d2 = (a2 - b2) / n2
    se = math.sqrt(max((a2 + b2) / n2 - d2 * d2, 0.0) / n2)
    lo, hi = max(-1.0, d2 - Z95 * se), min(1.0, d2 + Z95 * se)
    return Comparison(n, both, only_a, only_b, n - both - only_a - only_b, (both + only_a) / n,
                      (both + only_b) / n, diff, (lo, hi), mcnemar_exact(only_a, only_b))


__all__ = ["CertifyRecord", "Comparison", "Record", "compare", "mcnemar_exact", "wilson_interval"]
