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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

REGIONS = ("inside", "cap", "beyond")
IMAGE_DIM = 3 * 32 * 32  # d of a CIFAR-10 image


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
