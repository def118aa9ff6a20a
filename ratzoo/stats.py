"""The binomial statistics ratzoo reports: confidence intervals for proportions, exact binomial
tail bounds (randomized smoothing's certificates) and exact paired tests."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (default 95%). ``(0, 1)`` if n = 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if successes <= 0 else max(0.0, center - half)
    hi = 1.0 if successes >= n else min(1.0, center + half)
    return (lo, hi)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: ``P(|X - m/2| >= |only_a - m/2|)`` for ``X ~ Bin(m, 1/2)``,
    ``m = only_a + only_b`` (1.0 when there is no discordant pair)."""
    m = only_a + only_b
    return binomial_test_pvalue(only_a, m) if m else 1.0


def _binom_log_tail_fn(k: int, n: int) -> Callable[[float], float]:
    """``p -> log P(X >= k)`` for ``X ~ Binomial(n, p)``, 0 < p < 1, summed exactly in log space.

    The log binomial coefficients (float64 ``lgamma``) are computed once, so evaluating
    the returned function costs one vectorized pass over the ``n - k + 1`` tail terms.
    """
    jt = torch.arange(k, n + 1, dtype=torch.float64)
    logcoef = (math.lgamma(n + 1) - torch.lgamma(jt + 1) - torch.lgamma(n - jt + 1)).numpy()
    j = jt.numpy()  # numpy: a few times faster than torch for this 1-D pass on a busy CPU

    def log_tail(p: float) -> float:
        terms = logcoef + j * math.log(p) + (n - j) * math.log1p(-p)
        top = terms.max()
        return float(top + np.log(np.exp(terms - top).sum()))

    return log_tail


def binomial_lower_bound(k: int, n: int, alpha: float) -> float:
    """One-sided Clopper-Pearson lower confidence bound on a binomial proportion.

    Returns the largest ``p`` with ``P(X >= k | X ~ Binomial(n, p)) <= alpha``, i.e. the
    ``alpha`` quantile of ``Beta(k, n - k + 1)`` (what Cohen et al. compute with
    ``proportion_confint(k, n, alpha=2 * alpha, method="beta")[0]``): with probability
    at least ``1 - alpha`` over the draws, the true proportion is ``>=`` the bound.

    Computed without scipy: bisection on ``p`` of the exact binomial tail (summed in log
    space with ``lgamma``, float64), 60 halvings, returning the lower end of the bracket
    so that rounding can only make the bound smaller (conservative).

    Args:
        k: number of successes, ``0 <= k <= n``.
        n: number of trials, ``n >= 1``.
        alpha: ``0 < alpha < 1``.

    >>> round(binomial_lower_bound(99_000, 100_000, 0.001), 5)
    0.98899
    """
    k, n = int(k), int(n)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if k == 0:
        return 0.0
    if k == n:  # P(X >= n) = p^n = alpha
        return alpha ** (1.0 / n)
    log_alpha, log_tail = math.log(alpha), _binom_log_tail_fn(k, n)
    lo, hi = 0.0, 1.0  # invariant: tail(lo) <= alpha < tail(hi); the tail increases with p
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if log_tail(mid) <= log_alpha:
            lo = mid
        else:
            hi = mid
    return lo


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Clopper-Pearson ("exact") interval for a binomial proportion ``k / n``."""
    a = (1.0 - confidence) / 2
    lo = binomial_lower_bound(k, n, a)
    hi = 1.0 - binomial_lower_bound(n - k, n, a)
    return lo, hi


def binomial_test_pvalue(k: int, n: int) -> float:
    """Two-sided exact binomial test of ``p = 1/2`` (scipy's ``binomtest(k, n).pvalue``)."""
    k, n = int(k), int(n)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    top = max(k, n - k)
    if 2 * top == n:
        return 1.0
    return min(1.0, 2.0 * math.exp(_binom_log_tail_fn(top, n)(0.5)))
