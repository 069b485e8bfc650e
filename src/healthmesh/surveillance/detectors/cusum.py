"""Approximate Poisson CUSUM, as R ``surveillance::algo.cusum`` (Rossi et al. 1999).

Counts are standardised against an in-control mean ``m`` and accumulated as
``C(t) = max(0, C(t-1) + z(t) - k)``; an alarm is raised while ``C(t) >= h``. Like R, the
chart never resets after an alarm. The upper bound is the count that would have made the
chart signal at that time point. The recursion runs along time, vectorised across series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from healthmesh.surveillance.detectors.base import (
    DetectorInputError,
    DetectorResult,
    FloatArray,
    SeriesFrame,
    as_range,
)

Trans = Literal["standard", "rossi", "anscombe", "anscombe2nd", "pearsonNegBin", "none"]


def standardise(x: FloatArray, m: FloatArray, trans: Trans, alpha: float) -> FloatArray:
    """The transformed observations of R ``algo.cusum`` (``trans`` names as in R)."""
    if trans == "rossi":
        return np.asarray((x - 3 * m + 2 * np.sqrt(x * m)) / (2 * np.sqrt(m)))
    if trans == "standard":
        return np.asarray((x - m) / np.sqrt(m))
    if trans == "anscombe":
        return np.asarray(1.5 * (x ** (2 / 3) - m ** (2 / 3)) / m ** (1 / 6))
    if trans == "anscombe2nd":
        centre = m ** (2 / 3) - m ** (-1 / 3) / 9
        return np.asarray((x ** (2 / 3) - centre) / (2 / 3 * m ** (1 / 6)))
    if trans == "pearsonNegBin":
        return np.asarray((x - m) / np.sqrt(m + alpha * m**2))
    if trans == "none":
        return x
    raise DetectorInputError("unknown CUSUM transformation")


def _bound(m: FloatArray, ctm1: FloatArray, cusum: FloatArray, h: float, k: float, trans: Trans,
           alpha: float) -> FloatArray:
    sm = np.sqrt(m)
    if trans == "rossi":
        inner = 4 * m**2 + 2 * m**1.5 * h + 2 * m**1.5 * k - 2 * m**1.5 * ctm1
        with np.errstate(invalid="ignore"):
            return np.asarray(2 * h * sm + 2 * k * sm - 2 * ctm1 * sm + 5 * m - 2 * np.sqrt(inner))
    if trans == "standard":
        return np.asarray(np.ceil(sm * (h + k - ctm1) + m))
    if trans in ("anscombe", "anscombe2nd"):
        base = m ** (2 / 3) if trans == "anscombe" else m ** (2 / 3) - m ** (1 / 3) / 9
        inner = 2 / 3 * m ** (1 / 6) * (h + k - ctm1) + base
        with np.errstate(invalid="ignore"):
            return np.asarray(np.where(inner < 0, 0.0, np.abs(inner) ** 1.5))
    if trans == "pearsonNegBin":
        return np.asarray(np.sqrt(m + alpha * m**2) * (h + k - ctm1) + m)
    return np.asarray(h - cusum)


@dataclass(frozen=True)
class Cusum:
    """CUSUM with R ``algo.cusum`` control names.

    Parameters
    ----------
    k, h:
        Reference value and decision boundary (R defaults 1.04 and 2.26).
    m:
        In-control mean: ``None`` (mean of all counts before the range, R's default), a number,
        or an array with one value per monitored time point (or per series and time point).
    trans:
        ``"standard"`` (default), ``"rossi"``, ``"anscombe"``, ``"anscombe2nd"``,
        ``"pearsonNegBin"`` or ``"none"``.
    alpha:
        Negative binomial dispersion for ``pearsonNegBin`` (R default 0.1).

    Examples
    --------
    >>> frame = SeriesFrame.from_counts([2, 3, 2, 3, 2, 9, 9])
    >>> Cusum().run(frame, [6, 7]).alarm.tolist()
    [[True, True]]
    """

    k: float = 1.04
    h: float = 2.26
    m: float | npt.ArrayLike | None = None
    trans: Trans = "standard"
    alpha: float | None = None
    name: ClassVar[str] = "cusum"

    def settings(self) -> dict[str, Any]:
        """Control settings named as in R."""
        m = self.m if self.m is None or isinstance(self.m, float | int) else "vector"
        return {"k": self.k, "h": self.h, "m": m, "trans": self.trans, "alpha": self.alpha}

    def run(self, frame: SeriesFrame, t_range: Sequence[int] | npt.ArrayLike) -> DetectorResult:
        """Run the chart from the first monitored time point on."""
        rng = as_range(t_range, frame.n_time, 2 if self.m is None else 1)
        obs = frame.observed
        n_series, n_range = obs.shape[0], rng.size
        # m stays (series, 1) when it is one value per series: the powers in the bound are then
        # computed once per series instead of once per time point.
        if self.m is None:
            m = obs[:, : rng[0] - 1].mean(axis=1)[:, None]
        else:
            given = np.asarray(self.m, dtype=np.float64)
            m = given.reshape(1, -1) if given.ndim == 1 else np.atleast_2d(given)
            if m.shape[1] not in (1, n_range) or m.shape[0] not in (1, n_series):
                raise DetectorInputError("m needs one value, or one per monitored time point")
        alpha = 0.1 if self.alpha is None else self.alpha
        x = obs[:, rng - 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            z = standardise(x, m, self.trans, alpha)
        cusum = np.zeros((n_series, n_range + 1))
        for i in range(n_range):
            cusum[:, i + 1] = np.maximum(0.0, cusum[:, i] + (z[:, i] - self.k))
        ctm1 = cusum[:, :-1]
        stat = cusum[:, 1:]
        with np.errstate(invalid="ignore"):
            bound = _bound(m, ctm1, stat, self.h, self.k, self.trans, alpha)
            bound = np.broadcast_to(np.where(np.isnan(bound) | (bound < 0), 0.0, bound),
                                (n_series, n_range))
            alarm = np.asarray(stat >= self.h, dtype=np.bool_)
        m_full = np.broadcast_to(m, (n_series, n_range))
        return DetectorResult(t=rng, alarm=alarm, upperbound=np.asarray(bound, dtype=np.float64),
                              extras={"cusum": stat, "m": m_full})
