"""Fellegi-Sunter model fitted by expectation-maximisation (no labels needed).

Works on comparison vectors (one integer level per comparison, ``-1`` for missing). Pairs
with identical vectors are collapsed to one pattern with a count first, so EM costs
O(patterns x iterations) regardless of the number of pairs. Written here rather than with
Splink's trainer because the master patient index must score one arriving record against a
handful of candidates in milliseconds, with the parameters as plain arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

_EPS = 1e-6


@dataclass
class FSParameters:
    """m and u probabilities per comparison level and the prior match proportion."""

    m: list[NDArray[np.float64]]
    u: list[NDArray[np.float64]]
    prior: float
    iterations: int = 0

    def bayes_factors(self) -> list[NDArray[np.float64]]:
        """log2(m/u) per comparison level."""
        return [
            np.log2(np.maximum(m, _EPS) / np.maximum(u, _EPS))
            for m, u in zip(self.m, self.u, strict=True)
        ]

    def match_weight(self, gamma: NDArray[np.int8]) -> NDArray[np.float64]:
        """Match weight (log2 odds, prior included) of each comparison vector row."""
        gamma = np.atleast_2d(gamma)
        weight = np.full(gamma.shape[0], np.log2(self.prior / (1.0 - self.prior)))
        for k, bf in enumerate(self.bayes_factors()):
            g = gamma[:, k].astype(np.int64)
            weight += np.where(g >= 0, bf[np.clip(g, 0, None)], 0.0)
        return weight

    def probability(self, gamma: NDArray[np.int8]) -> NDArray[np.float64]:
        """Posterior match probability of each comparison vector row."""
        return 1.0 / (1.0 + np.exp2(-self.match_weight(gamma)))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "m": [m.tolist() for m in self.m],
            "u": [u.tolist() for u in self.u],
            "prior": self.prior,
            "iterations": self.iterations,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FSParameters:
        """Inverse of :meth:`to_json`."""
        m = [np.asarray(v, dtype=np.float64) for v in data["m"]]
        u = [np.asarray(v, dtype=np.float64) for v in data["u"]]
        return cls(m, u, float(data["prior"]), int(data.get("iterations", 0)))


def _initial(levels: list[int], prior: float) -> FSParameters:
    m, u = [], []
    for n in levels:
        mk = np.full(n, 0.1 / max(n - 1, 1))
        mk[-1] = 0.9
        uk = np.full(n, 0.1 / max(n - 1, 1))
        uk[0] = 0.9
        m.append(mk / mk.sum())
        u.append(uk / uk.sum())
    return FSParameters(m, u, prior)


def fit_em(
    gamma: NDArray[np.int8],
    levels: list[int],
    *,
    prior: float = 0.01,
    max_iter: int = 200,
    tol: float = 1e-6,
    fixed_u: list[NDArray[np.float64]] | None = None,
    initial_u: list[NDArray[np.float64]] | None = None,
) -> FSParameters:
    """Fit m, u and the match prior to comparison vectors by EM.

    Args:
        gamma: (pairs, comparisons) int8 levels, ``-1`` for missing.
        levels: number of levels of each comparison.
        prior: starting match proportion.
        fixed_u: u probabilities estimated elsewhere (e.g. from random pairs); kept fixed.
        initial_u: u probabilities to start from (updated by EM).

    Example:
        >>> g = np.array([[1, 1]] * 10 + [[0, 0]] * 990 + [[1, 0]] * 5, dtype=np.int8)
        >>> round(fit_em(g, [2, 2]).prior, 2)
        0.01
    """
    patterns, counts = np.unique(gamma, axis=0, return_counts=True)
    counts = counts.astype(np.float64)
    params = _initial(levels, prior)
    start_u = fixed_u if fixed_u is not None else initial_u
    if start_u is not None:
        params.u = [np.asarray(x, dtype=np.float64) for x in start_u]
    onehots = []
    for k, n in enumerate(levels):
        g = patterns[:, k].astype(np.int64)
        onehot = np.zeros((patterns.shape[0], n))
        present = g >= 0
        onehot[np.nonzero(present)[0], g[present]] = 1.0
        onehots.append(onehot)
    for it in range(1, max_iter + 1):
        p = params.probability(patterns)
        wm, wu = p * counts, (1.0 - p) * counts
        new_m, new_u = [], []
        for onehot in onehots:
            sm, su = wm @ onehot, wu @ onehot
            new_m.append(np.maximum(sm / max(sm.sum(), _EPS), _EPS))
            new_u.append(np.maximum(su / max(su.sum(), _EPS), _EPS))
        new_prior = float(np.clip(wm.sum() / counts.sum(), _EPS, 1 - _EPS))
        delta = max(float(np.abs(a - b).max()) for a, b in zip(new_m, params.m, strict=True))
        delta = max(delta, abs(new_prior - params.prior))
        params.m = new_m
        if fixed_u is None:
            params.u = new_u
        params.prior = new_prior
        params.iterations = it
        if delta < tol:
            break
    return params
