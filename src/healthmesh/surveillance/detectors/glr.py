"""GLR and LR charts for Poisson and negative binomial counts, as R ``surveillance::glrnb``.

The in-control mean ``mu0`` is a seasonal GLM (Poisson, or ``glm.nb``) fitted to all counts
before the monitored range. The generalised likelihood ratio for an intercept increase
``kappa`` since some time ``k`` is maximised over ``k``; an alarm is raised when it reaches
``c.ARL`` and the chart restarts after the alarm (R's ``glrnb`` does). With a fixed ``theta``
the chart is the LR CUSUM. ``ret="cases"`` reports the count that would have raised an alarm.
Series are independent, so the chart runs per series; the mu0 models are fitted as a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from healthmesh.surveillance.detectors._glm import fit_log_glm
from healthmesh.surveillance.detectors._glm_nb import fit_glm_nb
from healthmesh.surveillance.detectors._glr_kernels import nb_chart
from healthmesh.surveillance.detectors.base import (
    DetectorInputError,
    DetectorResult,
    FloatArray,
    SeriesFrame,
    as_range,
)


def seasonal_design(t: npt.NDArray[np.int64], freq: int, s: int, trend: bool) -> FloatArray:
    """Columns ``1 [, t], cos(2 s pi t / freq), sin(2 s pi t / freq)`` for ``s = 1..S``."""
    tf = t.astype(np.float64)
    cols = [np.ones_like(tf)]
    if trend:
        cols.append(tf)
    for j in range(1, s + 1):
        cols += [np.cos(2 * j * np.pi / freq * tf), np.sin(2 * j * np.pi / freq * tf)]
    return np.column_stack(cols)


def _glr_pois(x: FloatArray, mu0: FloatArray, n: int) -> float:
    """max_k of the Poisson GLR for an intercept increase over ``x[k..n]`` (C ``glr``)."""
    sx = np.cumsum(x[n::-1])
    sm = np.cumsum(mu0[n::-1])
    with np.errstate(divide="ignore"):
        kappa = np.maximum(0.0, np.log(sx / sm))
    return float(np.max(kappa * sx + (1 - np.exp(kappa)) * sm))


@dataclass(frozen=True)
class GlrNb:
    """``glrnb`` with R's control names (``change="intercept"``, ``dir="inc"``, ``M=-1``).

    Parameters
    ----------
    c_arl:
        Alarm threshold on the (G)LR statistic.
    alpha:
        Negative binomial dispersion; 0 gives the Poisson chart, ``None`` estimates it with
        ``glm.nb`` as R does.
    theta:
        Known log change for the LR chart; ``None`` for the GLR.
    ret:
        ``"value"`` (the statistic) or ``"cases"`` (counts needed for an alarm) as bound.
    mu0:
        Known in-control means per monitored point, or ``None`` to fit the seasonal model
        with ``S`` harmonics and an optional ``trend``.

    Examples
    --------
    >>> frame = SeriesFrame.from_counts([3, 4, 2, 3, 5, 3, 4, 3, 2, 4, 3, 20, 25])
    >>> GlrNb(alpha=0.0, mu0=[3.3, 3.3]).run(frame, [12, 13]).alarm.tolist()
    [[True, True]]
    """

    c_arl: float = 5.0
    alpha: float | None = 0.0
    theta: float | None = None
    ret: Literal["value", "cases"] = "value"
    mu0: npt.ArrayLike | None = None
    s: int = 1
    trend: bool = False
    name: ClassVar[str] = "glrnb"

    def __post_init__(self) -> None:
        if self.theta is not None and self.theta == 1:
            raise DetectorInputError("theta has to be larger than 1")
        if self.ret == "cases" and self.theta is None and self.alpha != 0:
            raise DetectorInputError("ret='cases' for the negative binomial GLR is not offered")

    def settings(self) -> dict[str, Any]:
        """Control settings named as in R."""
        return {"c.ARL": self.c_arl, "alpha": self.alpha, "theta": self.theta,
                "ret": self.ret, "mu0": {"S": self.s, "trend": self.trend},
                "change": "intercept", "dir": "inc", "M": -1, "Mtilde": 1}

    def fit_mu0(self, frame: SeriesFrame, rng: npt.NDArray[np.int64]) -> tuple[
        FloatArray, FloatArray
    ]:
        """In-control means (series, range) and the dispersion used per series."""
        n_series = frame.observed.shape[0]
        if self.mu0 is not None:
            mu0 = np.broadcast_to(np.asarray(self.mu0, float), (n_series, rng.size)).copy()
            alpha = np.full(n_series, 0.0 if self.alpha is None else self.alpha)
            return mu0, alpha
        train = np.arange(1, rng[0], dtype=np.int64)
        x = np.broadcast_to(seasonal_design(train, frame.freq, self.s, self.trend),
                            (n_series, train.size, 2 * self.s + 1 + int(self.trend)))
        y = frame.observed[:, : rng[0] - 1]
        if np.isnan(y).any():
            raise DetectorInputError("missing counts before the monitored range")
        if self.alpha is None:
            fit, theta = fit_glm_nb(np.ascontiguousarray(x), y)
            alpha = 1 / theta
        else:
            theta_arr = None if self.alpha == 0 else np.full(n_series, 1 / self.alpha)
            fit = fit_log_glm(np.ascontiguousarray(x), y, theta=theta_arr)
            alpha = np.full(n_series, self.alpha)
        x_new = seasonal_design(rng, frame.freq, self.s, self.trend)
        mu0 = np.maximum(np.exp(fit.coef @ x_new.T), np.finfo(np.float64).eps)
        return mu0, alpha

    def run(self, frame: SeriesFrame, t_range: Sequence[int] | npt.ArrayLike) -> DetectorResult:
        """Monitor the 1-based, contiguous time points ``t_range``."""
        rng = as_range(t_range, frame.n_time, 1 if self.mu0 is not None else 2)
        if np.any(np.diff(rng) != 1):
            raise DetectorInputError("glrnb needs a contiguous monitored range")
        mu0, alpha = self.fit_mu0(frame, rng)
        x = frame.observed[:, rng - 1]
        bound = np.zeros_like(x)
        alarm = np.zeros(x.shape, dtype=np.bool_)
        nb = (alpha > 0) & (self.theta is None)
        for i in np.flatnonzero(nb):
            bound[i], alarm[i] = nb_chart(np.ascontiguousarray(x[i]),
                                          np.ascontiguousarray(mu0[i]), float(alpha[i]),
                                          float(self.c_arl))
        for i in np.flatnonzero(~nb):  # Poisson charts: cumulative sums, fast in numpy
            bound[i], alarm[i] = self._chart(x[i], mu0[i], float(alpha[i]))
        bound = np.where(np.isnan(bound) | (bound < 0), 0.0, bound)
        return DetectorResult(t=rng, alarm=alarm, upperbound=bound,
                              extras={"mu0": mu0, "alpha": np.repeat(alpha[:, None], rng.size, 1)})

    def _chart(self, x: FloatArray, mu0: FloatArray, alpha: float) -> tuple[
        FloatArray, npt.NDArray[np.bool_]
    ]:
        bound = np.zeros_like(x)
        alarm = np.zeros(x.size, dtype=np.bool_)
        start = 0
        while start < x.size:
            xs, ms = x[start:], mu0[start:]
            stop = self._segment(xs, ms, alpha, bound[start:])
            if stop is None:
                break
            alarm[start + stop] = True
            start += stop + 1
        return bound, alarm

    def _segment(self, x: FloatArray, mu0: FloatArray, alpha: float, out: FloatArray) -> (
        int | None
    ):
        """Fill ``out`` until the first alarm; return its position or ``None``."""
        cases = self.ret == "cases"
        if self.theta is not None:
            kap = self.theta
            lr = 0.0
            for n in range(x.size):
                if alpha == 0:
                    zn = kap * x[n] + (1 - np.exp(kap)) * mu0[n]
                    need = (self.c_arl - lr + mu0[n] * (np.exp(kap) - 1)) / kap
                else:
                    lg = np.log((1 + alpha * mu0[n]) / (1 + alpha * mu0[n] * np.exp(kap)))
                    zn = kap * x[n] + (x[n] + 1 / alpha) * lg
                    need = -(lr * alpha + lg - self.c_arl * alpha) / alpha / (kap + lg)
                lr = max(0.0, lr + zn)
                out[n] = need if cases else lr
                if lr > self.c_arl:
                    return n
            return None
        for n in range(x.size):
            if alpha == 0:
                val = _glr_pois(x, mu0, n)
                if cases:
                    trial = x.copy()
                    trial[n], glr_new = -1.0, self.c_arl - 1
                    while glr_new < self.c_arl:
                        trial[n] += 1
                        glr_new = _glr_pois(trial, mu0, n)
                    out[n] = trial[n]
                else:
                    out[n] = val
            else:
                raise DetectorInputError("the negative binomial GLR runs in glr_nb_chart")
            if val >= self.c_arl:
                return n
        return None
