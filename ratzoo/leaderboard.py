"""``ratzoo.leaderboard``: the leaderboard file, one typed entry per model and threat model.

An **entry** (:class:`LeaderboardEntry`) is one benchmark record (:func:`ratzoo.benchmark`)
boiled down to a line of the table: RobustBench's ``ModelInfo`` fields (name, architecture,
dataset, threat model, budget, clean and robust accuracy in %, extra data, link), then what a
randomized model's number needs to be read at all: its kind of randomness, the EOT draws per
attack step and the decision rule's draws, the seed and n, 95 % Wilson intervals, the
single-draw accuracy, the cost, and which ensemble ran (``ensemble_params``), so that an entry
measured by an older ensemble is told apart from today's.

**The file** (``checkpoints/results/leaderboard.json``) is a JSON list of entries, each the
dataclass's fields key for key and in order. :func:`update_leaderboard` is its one writer
(``python -m ratzoo benchmark ... --leaderboard FILE`` calls it): an entry replaces the one of
the same model and threat model, and the list stays sorted by threat model, then robust
accuracy, best first. :func:`load_leaderboard` refuses an entry with a missing or unknown key,
so the file and the dataclass cannot drift apart. :func:`leaderboard_markdown` is the table
that ``python -m train.leaderboard`` writes into the README.

The arrows point one way: an entry's ``ensemble_params`` are the keys
:func:`ratzoo.benchmarking.ensemble_params` names, so this module imports the benchmark, and the
benchmark's command line (:mod:`ratzoo.commands.benchmark`), above both, imports this module.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._io import write_json
from .benchmarking import ensemble_params
from .record import Record


@dataclasses.dataclass(frozen=True)
class LeaderboardEntry:
    """One model's line of the leaderboard (RobustBench's ``ModelInfo``, widened for randomized
    models): its JSON form is the leaderboard file's entry, key for key and in this order.

    Attributes:
        name, architecture, dataset, threat_model, eps, clean_acc, robust_acc, additional_data,
            link: RobustBench's model-info fields (accuracies in %).
        randomness: the model's kind of randomness; eot_samples, decision_samples: draws per
            attack step and of the decision rule; seed, n: the one seed and the images.
        clean_acc_ci95, robust_acc_ci95: 95 % Wilson intervals (%); single_draw_acc: one call's
            accuracy (%).
        image_draws, seconds: the cost. ensemble, steps, n_target_classes, precision,
            ensemble_params: which attacks ran (``ensemble_params`` None: before they were stored,
            the full APGD-T). record: the benchmark record's path. ratzoo: its version.
    """

    name: str
    architecture: str | None
    dataset: str
    threat_model: str
    eps: float
    clean_acc: float
    robust_acc: float
    additional_data: bool
    link: str | None
    randomness: str | None
    eot_samples: int | None
    decision_samples: int | None
    seed: int | None
    n: int
    clean_acc_ci95: list[float]
    robust_acc_ci95: list[float]
    single_draw_acc: float | None
    image_draws: int | None
    seconds: float | None
    ensemble: list[str] | None
    steps: int | None
    n_target_classes: int | None
    precision: str | None
    ensemble_params: dict[str, Any] | None
    record: str | None
    ratzoo: str | None

    def to_json(self) -> dict[str, Any]:
        """The entry as the leaderboard file holds it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LeaderboardEntry:
        """An entry from its JSON form.

        Raises:
            ValueError: a key is unknown or missing (the message names them).
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in names]
        missing = [k for k in names if k not in data]
        if unknown or missing:
            raise ValueError(f"not a leaderboard entry ({data.get('name', '?')}): "
                             + "; ".join(f"{what} key(s) {', '.join(keys)}" for what, keys in
                                         (("unknown", unknown), ("missing", missing)) if keys))
        return cls(**data)


def leaderboard_entry(rec: Record, *, architecture: str | None = None, link: str | None = None,
                      record_path: str | None = None) -> LeaderboardEntry:
    """One leaderboard entry of a benchmark record: RobustBench's fields, then what a
    randomized model needs (randomness, draws, seed, n, intervals, single-draw accuracy, cost)."""
    if rec.attack != "benchmark":
        raise ValueError(f"a leaderboard entry needs a benchmark record, got a record of {rec.attack!r}")
    cfg = rec.extra.get("model_config") or {}
    arch = architecture or (f"{cfg.get('architecture')} (width {cfg.get('width')})" if cfg.get("architecture") else None)
    return LeaderboardEntry(
        name=rec.model, architecture=arch, dataset="cifar10", threat_model=rec.threat_model,
        eps=rec.eps, clean_acc=round(100 * rec.clean_accuracy, 2), robust_acc=round(100 * rec.robust_accuracy, 2),
        additional_data=False, link=link,
        randomness=_randomness_text(rec.randomness), eot_samples=rec.effective_eot_samples,
        decision_samples=rec.decision_samples, seed=rec.seed, n=rec.n,
        clean_acc_ci95=[round(100 * v, 2) for v in rec.clean_accuracy_ci95],
        robust_acc_ci95=[round(100 * v, 2) for v in rec.robust_accuracy_ci95],
        single_draw_acc=round(100 * rec.single_draw_accuracy, 2) if rec.single_draw_accuracy is not None else None,
        image_draws=(rec.passes or {}).get("image_draws"), seconds=rec.elapsed_s,
        ensemble=rec.params.get("ensemble"), steps=rec.params.get("steps"),
        n_target_classes=rec.params.get("n_target_classes"), precision=rec.params.get("precision"),
        ensemble_params={k: rec.params.get(k) for k in ensemble_params()},
        record=record_path,
        ratzoo=(rec.versions or {}).get("ratzoo"),
    )


def _randomness_text(randomness: dict[str, Any] | None) -> str | None:
    """The record's kind of randomness, flagged ``unseeded`` when its seed does not repeat it."""
    if not randomness:
        return None
    return randomness["kind"] + ("" if randomness.get("seedable", True) else ", unseeded")


def load_leaderboard(path: str | Path) -> list[LeaderboardEntry]:
    """The entries of a leaderboard file (none when it does not exist).

    Raises:
        ValueError: an entry that is not one (the message names the file and the keys).
    """
    path = Path(path)
    try:
        return [LeaderboardEntry.from_json(e) for e in json.loads(path.read_text())] if path.exists() else []
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def update_leaderboard(path: str | Path, entry: LeaderboardEntry) -> list[LeaderboardEntry]:
    """Add ``entry`` to the leaderboard file, replacing the one of the same model and threat
    model; entries are kept sorted by threat model, then robust accuracy (best first)."""
    entries = [e for e in load_leaderboard(path) if (e.name, e.threat_model) != (entry.name, entry.threat_model)]
    entries.append(entry)
    entries.sort(key=lambda e: (e.threat_model, -e.robust_acc, e.name))
    write_json(path, [e.to_json() for e in entries], indent=1, allow_nan=True)
    return entries


def eps_text(threat_model: str, eps: float) -> str:
    """A budget as people write it: ``8/255`` for Linf, ``0.5`` for L2."""
    k = eps * 255
    return f"{round(k)}/255" if threat_model == "Linf" and abs(k - round(k)) < 1e-6 else f"{eps:g}"


def leaderboard_markdown(entries: Sequence[LeaderboardEntry]) -> str:
    """The leaderboard as a Markdown table, one section row per threat model."""
    lines = ["| threat model | model | randomness | clean % | robust % [95 % CI] | one draw % | n | EOT / decision draws |",
             "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        ci = e.robust_acc_ci95
        lines.append(f"| {e.threat_model} {eps_text(e.threat_model, e.eps)} | {e.name} | {e.randomness} | "
                     f"{e.clean_acc:.1f} | {e.robust_acc:.1f} [{ci[0]:.1f}, {ci[1]:.1f}] | "
                     f"{e.single_draw_acc:.1f} | {e.n} | {e.eot_samples} / {e.decision_samples} |")
    return "\n".join(lines)
