"""EARS C1, C2 and C3 (CDC Early Aberration Reporting System), as R ``surveillance::earsC``.

C1 compares a count with the mean and standard deviation (n-1) of the ``baseline`` previous
counts, C2 does the same with a two-point guard band, C3 sums the positive C2 exceedances of
the current and two previous time points. Everything is computed with sliding windows over all
series at once.

R's C3 (the default here, ``c3_variant="r"``) reports the bound
``y(t) + s2(t) * (z - e(t-1) - e(t-2))`` with ``e(i) = max(0, C2(i) - 1)``: it leaves the
current time point out of the C3 sum, so it alarms exactly when the two previous exceedances
already pass ``z``. ``c3_variant="cdc"`` is the documented rule
``C3(t) = e(t) + e(t-1) + e(t-2) >= z`` with bound ``ybar2(t) + s2(t) * (1 + z - e(t-1) - e(t-2))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import norm

from healthmesh.surveillance.detectors.base import (
    DetectorInputError,
    DetectorResult,
    FloatArray,
    SeriesFrame,
    alarm_from_bound,
    as_range,
)

Method = Literal["C1", "C2", "C3"]
_DEFAULT_ALPHA = {"C1": 0.001, "C2": 0.001, "C3": 0.025}


def _window_stats(obs: FloatArray, t0: npt.NDArray[np.int64], baseline: int, lag: int) -> tuple[
    FloatArray, FloatArray
]:
    """Mean and sd (n-1) of ``obs[:, t-lag-baseline .. t-lag-1]`` for each 0-based ``t``.

    Whole counts below 2**20 take the fast path: running sums of ``y`` and ``y**2`` are exact
    in float64, so ``(n * Sxx - Sx**2) / (n (n - 1))`` is the exact variance rounded once,
    like R's two-pass ``var``. Other data use explicit windows.
    """
    finite = np.isfinite(obs).all()
    if finite and obs.size and np.abs(obs).max() < 2**20 and (obs == np.round(obs)).all():
        zero = np.zeros((obs.shape[0], 1))
        c1 = np.concatenate([zero, np.cumsum(obs, axis=1)], axis=1)
        c2 = np.concatenate([zero, np.cumsum(obs * obs, axis=1)], axis=1)
        hi = t0 - lag + 1
        lo = hi - baseline
        s1 = c1[:, hi] - c1[:, lo]
        s2 = c2[:, hi] - c2[:, lo]
        var = (baseline * s2 - s1 * s1) / (baseline * (baseline - 1))
        return s1 / baseline, np.sqrt(np.maximum(var, 0.0))
    windows = sliding_window_view(obs, baseline, axis=1)  # windows[:, s] = obs[:, s:s+baseline]
    ref = windows[:, t0 - lag - baseline + 1, :]
    mean = ref.mean(axis=2)
    sd = ref.std(axis=2, ddof=1)
    return mean, sd


@dataclass(frozen=True)
class EarsC:
    """EARS C1/C2/C3 with R ``earsC`` control names.

    Parameters
    ----------
    method:
        ``"C1"``, ``"C2"`` or ``"C3"``.
    baseline:
        Number of reference time points (R default 7; at least 3).
    min_sigma:
        Floor on the standard deviation (R ``minSigma``).
    alpha:
        One-sided level; ``None`` takes R's defaults (0.001 for C1/C2, 0.025 for C3).
    c3_variant:
        ``"r"`` (R's bound, default) or ``"cdc"`` (the documented C3 rule).

    Examples
    --------
    >>> res = EarsC("C1").run(SeriesFrame.from_counts([1, 2, 1, 2, 1, 2, 1, 9]), [8])
    >>> bool(res.alarm[0, 0])
    True
    """

    method: Method = "C1"
    baseline: int = 7
    min_sigma: float = 0.0
    alpha: float | None = None
    c3_variant: Literal["r", "cdc"] = "r"
    name: ClassVar[str] = "ears"

    def __post_init__(self) -> None:
        if self.method not in ("C1", "C2", "C3"):
            raise DetectorInputError("EARS method must be C1, C2 or C3")
        if self.baseline < 3:
            raise DetectorInputError("the EARS baseline must be at least 3")
        if self.min_sigma < 0:
            raise DetectorInputError("min_sigma must not be negative")
        if self.c3_variant not in ("r", "cdc"):
            raise DetectorInputError("c3_variant must be 'r' or 'cdc'")

    @property
    def z_alpha(self) -> float:
        """The normal quantile ``qnorm(1 - alpha)``."""
        alpha = _DEFAULT_ALPHA[self.method] if self.alpha is None else self.alpha
        return float(norm.ppf(1.0 - alpha))

    def settings(self) -> dict[str, Any]:
        """Control settings named as in R."""
        return {
            "method": self.method,
            "baseline": self.baseline,
            "minSigma": self.min_sigma,
            "alpha": _DEFAULT_ALPHA[self.method] if self.alpha is None else self.alpha,
            "c3_variant": self.c3_variant,
        }

    def default_range(self, n_time: int) -> npt.NDArray[np.int64]:
        """R's default range: from ``baseline + 1`` (C1), ``+ 3`` (C2) or ``+ 5`` (C3)."""
        start = self.baseline + {"C1": 1, "C2": 3, "C3": 5}[self.method]
        return np.arange(start, n_time + 1, dtype=np.int64)

    def run(self, frame: SeriesFrame, t_range: Sequence[int] | npt.ArrayLike) -> DetectorResult:
        """Monitor the 1-based time points ``t_range`` (sorted, as R does)."""
        max_lag = {"C1": self.baseline, "C2": self.baseline + 2, "C3": self.baseline + 4}
        rng = np.sort(as_range(t_range, frame.n_time, max_lag[self.method] + 1))
        obs = frame.observed
        z = self.z_alpha
        t0 = rng - 1
        extras: dict[str, FloatArray] = {}
        if self.method in ("C1", "C2"):
            lag = 1 if self.method == "C1" else 3
            mean, sd = _window_stats(obs, t0, self.baseline, lag)
            sigma = np.maximum(sd, self.min_sigma)
            bound = mean + z * sigma
            extras = {"expected": mean, "sigma": sigma}
        else:
            bound, extras = self._c3(obs, rng, z)
        alarm = alarm_from_bound(obs[:, t0], bound)
        if self.method == "C3" and self.c3_variant == "cdc":
            alarm = np.asarray(extras["C3"] >= z, dtype=np.bool_) & np.isfinite(extras["C3"])
        return DetectorResult(t=rng, alarm=alarm, upperbound=bound, extras=extras)

    def _c3(
        self, obs: FloatArray, rng: npt.NDArray[np.int64], z: float
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        # R evaluates C2 on min(range)-2 .. max(range), a contiguous block.
        full = np.arange(rng.min() - 2, rng.max() + 1, dtype=np.int64)
        mean, sd = _window_stats(obs, full - 1, self.baseline, 3)
        sigma = np.maximum(sd, self.min_sigma)
        with np.errstate(divide="ignore", invalid="ignore"):
            c2 = (obs[:, full - 1] - mean) / sigma
            excess = np.maximum(0.0, c2 - 1.0)
            pos = rng - full[0]
            prev = excess[:, pos - 2] + excess[:, pos - 1]
            sig_t = sigma[:, pos]
            if self.c3_variant == "r":
                bound = np.maximum(0.0, obs[:, rng - 1] + sig_t * (z - prev))
            else:
                bound = np.maximum(0.0, mean[:, pos] + sig_t * (1.0 + z - prev))
            c3 = excess[:, pos] + prev
        return bound, {"expected": mean[:, pos], "sigma": sig_t, "C2": c2[:, pos], "C3": c3}
