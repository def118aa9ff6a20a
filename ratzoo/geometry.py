"""Where minimal L2 adversarial examples lie relative to an Linf ball: the paper's Figure 2.

Araujo et al. (arXiv:1903.10219, Figure 2) sort C&W-L2 examples into three regions of
perturbation space, for an Linf radius ``eps`` and an L2 radius ``eps_l2`` (``eps <= eps_l2
<= eps * sqrt(d)``; the L2 ball of radius ``eps`` lies inside the Linf ball of radius ``eps``,
which lies inside the L2 ball of radius ``eps * sqrt(d)``):

- ``inside``: inside the Linf ball (``linf <= eps``), which Linf adversarial training defends;
- ``cap``: outside the Linf ball but inside the L2 ball (``linf > eps`` and ``l2 <= eps_l2``),
  the region an Linf defense leaves open and the paper's argument for adding noise;
- ``beyond``: outside both (``linf > eps`` and ``l2 > eps_l2``).

The three shares sum to 1 for every ``eps_l2``. Examples the attack did not find (``inf`` or
``nan`` norms) are left out of the shares and counted in ``not_found``.

:func:`figure2` draws the figure for the zoo from its C&W records (the rows the demo charts and
``python -m train.report`` tabulates and plots).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .record import Record

REGIONS = ("inside", "cap", "beyond")
IMAGE_DIM = 3 * 32 * 32  # d of a CIFAR-10 image
FIGURE2_KEYS = ("cw_l2", "cw_l2_fig2")  # the table's C&W records and the smaller fig2 stage's
REGION_WORDS = {"inside": "inside the Linf ball", "cap": "L2 cap outside it", "beyond": "beyond the L2 radius"}
# the two Linf radii of Figure 2: the paper's 0.3 on inputs in [-1, 1] is 0.15 on ours; and 8/255
FIGURE2_EPS = {"0.15 (the paper's 0.3 on [-1, 1])": 0.15, "8/255": 8 / 255}


def figure2_radii(eps: float, dim: int = IMAGE_DIM, points: int = 13) -> list[float]:
    """``points`` L2 radii from ``eps`` to ``eps * sqrt(dim)``, evenly spaced on a log scale."""
    top = math.sqrt(dim)
    return [eps * top ** (i / (points - 1)) for i in range(points)]


def examples_of(record: Any) -> tuple[list[float], list[float]]:
    """The Linf and L2 norms of the adversarial examples in a :class:`ratzoo.Record` that fooled
    the decision rule (``per_image["fooled"]``; all attacked images when a record lacks it).

    Raises:
        ValueError: the record has no per-image Linf and L2 norms (records written before
            ratzoo measured both for every attack; measure it again).
    """
    pi = record.per_image
    if "linf" not in pi or "l2" not in pi:
        raise ValueError(f"the {record.model} {record.attack} record has no per-image Linf and L2 norms; "
                         "measure it again with the current ratzoo")
    keep = pi.get("fooled") or pi.get("clean_correct") or [True] * len(pi["l2"])
    pairs = [(a, b) for a, b, k in zip(pi["linf"], pi["l2"], keep) if k]
    return [a for a, _ in pairs], [b for _, b in pairs]


def norm_regions(
    linf: Sequence[float] | Any, l2: Sequence[float] | None = None, *, eps: float,
    eps_l2: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """Shares of perturbations inside the Linf ball, in the L2 cap, and beyond, per ``eps_l2``.

    Args:
        linf, l2: one perturbation per position (``[0, 1]`` pixel units); or ``linf`` a
            :class:`ratzoo.Record` and ``l2`` omitted: its examples that fooled the model.
        eps: the Linf radius.
        eps_l2: the L2 radii to sweep (each ``>= 0``); default :func:`figure2_radii` of ``eps``.

    Returns:
        One dict per ``eps_l2``: ``eps``, ``eps_l2``, ``n`` (found examples), ``not_found`` and
        the shares ``inside``, ``cap``, ``beyond`` (each 0 when ``n`` is 0).

    Raises:
        ValueError: ``linf`` and ``l2`` differ in length, or a radius is negative or not finite.

    >>> norm_regions([0.01, 0.05, 0.05], [0.3, 0.4, 2.0], eps=8 / 255, eps_l2=[1.0])[0]["cap"]
    0.3333333333333333
    """
    if l2 is None:
        linf, l2 = examples_of(linf)
    if eps_l2 is None:
        eps_l2 = figure2_radii(eps)
    if len(linf) != len(l2):
        raise ValueError(f"linf and l2 need one value per example each, got {len(linf)} and {len(l2)}")
    for r in (eps, *eps_l2):
        if not (math.isfinite(float(r)) and float(r) >= 0):
            raise ValueError(f"radii must be finite and >= 0, got {r!r}")
    found = [(float(a), float(b)) for a, b in zip(linf, l2)
             if a is not None and b is not None and math.isfinite(float(a)) and math.isfinite(float(b))]
    n = len(found)
    # float32 norms of a perturbation projected to eps can exceed it by rounding
    tol = 1e-6
    inside = sum(a <= eps * (1 + tol) for a, _ in found)
    out = []
    for r in eps_l2:
        cap = sum(a > eps * (1 + tol) and b <= float(r) * (1 + tol) for a, b in found)
        shares = (inside / n, cap / n, (n - inside - cap) / n) if n else (0.0, 0.0, 0.0)
        out.append({"eps": float(eps), "eps_l2": float(r), "n": n, "not_found": len(linf) - n,
                    **dict(zip(REGIONS, shares))})
    return out


@dataclasses.dataclass(frozen=True)
class Figure2:
    """The paper's Figure 2 on a zoo (:func:`figure2`).

    Attributes:
        rows: long form, one row per model, Linf radius, L2 radius and region: ``rank`` (the
            region's place in ``inside``, ``cap``, ``beyond``), ``model`` (its label), ``Linf
            radius`` (a key of ``FIGURE2_EPS``), ``L2 radius``, ``L2 radius / Linf radius``,
            ``region`` (in words), ``share (%)``, ``examples`` (found) and ``images`` (attacked).
        missing: the labels of the models whose C&W record predates per-image Linf norms (not shown).
        reading: whether the paper's reading holds, one sentence per Linf radius ("" when the
            zoo lacks ``standard`` or ``at``).
    """

    rows: list[dict[str, Any]]
    missing: list[str]
    reading: str


def figure2(records: Iterable[Record], labels: Mapping[str, str]) -> Figure2:
    """The paper's Figure 2 on the zoo: for each model's largest C&W record with per-image Linf
    norms (the table's ``cw_l2``, or the fig2 stage's ``cw_l2_fig2``) and each Linf radius of
    ``FIGURE2_EPS``, the shares inside the Linf ball / in the L2 cap / beyond as the L2 radius
    sweeps (:func:`norm_regions`), and whether the paper's reading holds.

    Args:
        records: measurement records (e.g. ``Record.load_folder(folder)[0].values()``); other
            attacks and models are ignored.
        labels: display label by model name; its order is the models' order, and only its
            models are drawn.

    Returns:
        A :class:`Figure2`: the rows, the models not shown, the reading.
    """
    rows, best = [], {}
    for r in records:  # per model, the largest C&W record (table or fig2 stage) with per-image Linf norms
        if r.attack == "cw-l2" and r.extra.get("key") in FIGURE2_KEYS and r.model in labels:
            if "linf" in r.per_image and r.n > getattr(best.get(r.model), "n", 0):
                best[r.model] = r
            best.setdefault(r.model, None)
    missing = [labels[m] for m in labels if m in best and best[m] is None]
    for r in (best[m] for m in labels if best.get(m) is not None):
        for eps_name, eps in FIGURE2_EPS.items():
            for p in norm_regions(r, eps=eps):
                for rank, (region, words) in enumerate(REGION_WORDS.items()):
                    rows.append({"rank": rank, "model": labels[r.model], "Linf radius": eps_name,
                                 "L2 radius": round(p["eps_l2"], 3),
                                 "L2 radius / Linf radius": round(p["eps_l2"] / eps, 2), "region": words,
                                 "share (%)": round(100 * p[region], 2), "examples": p["n"], "images": r.n})
    return Figure2(rows, missing, _reading(rows, labels))


def _reading(rows: list[dict[str, Any]], labels: Mapping[str, str]) -> str:
    """Whether the paper's reading holds on the zoo, one sentence per Linf radius: Linf adversarial
    training (``at``) moves C&W's examples out of the Linf ball (a smaller share inside than for
    ``standard``) into the cap (a larger share there, with the cap at its widest: L2 radius
    Linf radius x sqrt(d), the L2 ball around the whole Linf ball)."""
    std, at = labels.get("standard"), labels.get("at")
    out = []
    for eps_name in FIGURE2_EPS:
        widest = [r for r in rows if r["Linf radius"] == eps_name and r["rank"] == 0]
        if not widest:
            continue
        top = max(r["L2 radius / Linf radius"] for r in widest)
        share = {(r["model"], r["region"]): r["share (%)"] for r in rows
                 if r["Linf radius"] == eps_name and r["L2 radius / Linf radius"] == top}
        try:
            (si, sc, sb), (ai, ac, ab) = ([share[(m, w)] for w in REGION_WORDS.values()] for m in (std, at))
        except KeyError:
            continue
        holds = ai < si and ac > sc
        out.append(f"At Linf radius {eps_name}: {si:.0f}% of {std}'s C&W examples lie inside the Linf ball, "
                   f"{sc:.0f}% in the cap and {sb:.0f}% beyond (L2 radius {top:g}x the Linf radius); for {at}, "
                   f"{ai:.0f}%, {ac:.0f}% and {ab:.0f}%: "
                   + ("the paper's reading holds here, Linf adversarial training moves the examples out of the "
                      "Linf ball into the cap." if holds else "the paper's reading does not hold here."))
    return " ".join(out)
