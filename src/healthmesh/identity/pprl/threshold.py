"""Label-free choice of the Dice threshold from the data (a two-groups model).

For each left record the best candidate score is either a true match or the best of many
non-matches; the *second-best* score of every record is an empirical sample of the latter
(the null). The share of records without a partner (pi0) is estimated from the best scores
below the null's median (Storey's method), and the threshold maximises the expected F1:
expected false links at ``t`` are ``n * pi0 * P(null >= t)``. No labels are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class ThresholdEstimate:
    """The chosen threshold and the quantities it was derived from."""

    threshold: float
    pi0: float
    expected_false: float
    expected_missed: float


def best_two(
    left: NDArray[np.int64], score: NDArray[np.float32], n_left: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Best and second-best score per left record (NaN where there is none)."""
    by_score = np.argsort(-score, kind="stable")
    order = by_score[np.argsort(left[by_score], kind="stable")]
    ls, ss = left[order], score[order].astype(np.float64)
    first = np.r_[True, ls[1:] != ls[:-1]] if ls.size else np.zeros(0, bool)
    second = np.r_[False, (ls[1:] == ls[:-1]) & first[:-1]] if ls.size else np.zeros(0, bool)
    best = np.full(n_left, np.nan)
    runner = np.full(n_left, np.nan)
    best[ls[first]] = ss[first]
    runner[ls[second]] = ss[second]
    return best, runner


def estimate_threshold(
    left: NDArray[np.int64], score: NDArray[np.float32], n_left: int, *, step: float = 0.005
) -> ThresholdEstimate:
    """Threshold maximising expected F1 under the two-groups model.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> left = np.repeat(np.arange(200), 2)
        >>> pairs = [[0.9 + rng.random() / 20, 0.6 + rng.random() / 10] for _ in range(200)]
        >>> score = np.ravel(pairs)
        >>> 0.6 <= estimate_threshold(left, score.astype(np.float32), 200).threshold <= 0.9
        True
    """
    best, runner = best_two(left, score, n_left)
    found = best[~np.isnan(best)]
    has_runner = ~np.isnan(runner)
    if int(has_runner.sum()) < 10 or found.size == 0:
        return ThresholdEstimate(0.8, float("nan"), float("nan"), float("nan"))
    # The runner-up of a record whose best is its true partner is a "best non-match" sample;
    # the runner-up of a record without a partner is only a second-best one and would bias
    # the null low. So the null is re-drawn from records above the current threshold.
    estimate = _choose(np.sort(runner[has_runner]), found, n_left, step)
    for _ in range(8):
        selected = has_runner & (np.nan_to_num(best, nan=-1.0) >= estimate.threshold)
        if int(selected.sum()) < 10:
            break
        again = _choose(np.sort(runner[selected]), found, n_left, step)
        if again.threshold == estimate.threshold:
            break
        estimate = again
    return estimate


def _choose(
    null: NDArray[np.float64], found: NDArray[np.float64], n_left: int, step: float
) -> ThresholdEstimate:
    median = float(np.median(null))
    low_share = float(np.mean(found < median))
    pi0 = min(1.0, low_share / 0.5 * found.size / n_left + (n_left - found.size) / n_left)
    best_f1, chosen, fp_at, fn_at = -1.0, median, 0.0, 0.0
    n_true = n_left * (1.0 - pi0)
    for t in np.arange(median, 1.0 + 1e-9, step):
        tail = 1.0 - np.searchsorted(null, t, side="left") / null.size
        fp = n_left * pi0 * tail
        above = float(np.sum(found >= t))
        tp = max(above - fp, 0.0)
        fn = max(n_true - tp, 0.0)
        f1 = 2 * tp / max(2 * tp + fp + fn, 1e-9)
        if f1 > best_f1 + 1e-12:
            best_f1, chosen, fp_at, fn_at = f1, float(t), fp, fn
    return ThresholdEstimate(round(chosen, 6), pi0, fp_at, fn_at)
