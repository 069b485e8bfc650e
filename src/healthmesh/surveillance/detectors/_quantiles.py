"""Discrete quantiles with R's conventions (``qnbinom``, ``qpois``), vectorised.

R returns the smallest integer ``y`` with ``P(Y <= y) >= p * (1 - 8 * DBL_EPSILON)`` (a fuzz
for left continuity, so that ``qnbinom(0.5, 1, 0.5)`` is 0). scipy's ``ppf`` uses its own
inversion and fuzz, so we start from it and correct by whole steps against the CDF.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.stats import nbinom, poisson

FloatArray = npt.NDArray[np.float64]
_FUZZ = 1.0 - 8.0 * np.finfo(np.float64).eps


def _search(
    p: FloatArray, start: FloatArray, cdf_fn: Callable[[FloatArray], FloatArray]
) -> FloatArray:
    target = p * _FUZZ
    y = np.where(np.isfinite(start), start, np.nan)
    for _ in range(64):
        down = np.isfinite(y) & (y > 0) & (cdf_fn(y - 1) >= target)
        if not down.any():
            break
        y = np.where(down, y - 1, y)
    for _ in range(64):
        up = np.isfinite(y) & (cdf_fn(y) < target)
        if not up.any():
            break
        y = np.where(up, y + 1, y)
    return np.asarray(y, dtype=np.float64)


def qnbinom(p: float | FloatArray, size: FloatArray, prob: FloatArray) -> FloatArray:
    """R ``qnbinom(p, size, prob)`` for arrays of ``size`` and ``prob``.

    >>> float(qnbinom(0.95, np.array([10.5]), np.array([0.9]))[0])
    3.0
    """
    size_a, prob_a = np.broadcast_arrays(np.asarray(size, float), np.asarray(prob, float))
    p_a = np.broadcast_to(np.asarray(p, float), size_a.shape)
    ok = np.isfinite(size_a) & np.isfinite(prob_a) & (size_a > 0) & (prob_a > 0) & (prob_a <= 1)
    s = np.where(ok, size_a, 1.0)
    q = np.where(ok, prob_a, 0.5)
    with np.errstate(all="ignore"):
        start = nbinom.ppf(p_a, s, q)

        def cdf(y: FloatArray) -> FloatArray:
            return np.asarray(nbinom.cdf(y, s, q))

        out = _search(p_a, np.asarray(start, float), cdf)
    return np.where(ok, out, np.nan)


def qpois(p: float | FloatArray, lam: FloatArray) -> FloatArray:
    """R ``qpois(p, lambda)`` for an array of means (``lambda == 0`` gives 0).

    >>> float(qpois(0.95, np.array([2.0]))[0])
    5.0
    """
    lam_a = np.asarray(lam, float)
    p_a = np.broadcast_to(np.asarray(p, float), lam_a.shape)
    ok = np.isfinite(lam_a) & (lam_a >= 0)
    m = np.where(ok, lam_a, 1.0)
    with np.errstate(all="ignore"):
        start = poisson.ppf(p_a, m)

        def cdf(y: FloatArray) -> FloatArray:
            return np.asarray(poisson.cdf(y, m))

        out = _search(p_a, np.asarray(start, float), cdf)
    out = np.where(m == 0, 0.0, out)
    return np.where(ok, out, np.nan)
