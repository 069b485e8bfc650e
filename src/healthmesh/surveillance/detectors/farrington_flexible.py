"""Improved Farrington detector (Farrington 1996 / Noufaily 2013), as R ``farringtonFlexible``.

For each monitored week a quasi-Poisson GLM is fitted to the same weeks of ``b`` earlier years
(optionally with ``noPeriods`` seasonal blocks in between, as Noufaily et al. advise), past
outbreaks are down-weighted, and the upper bound is a quantile of the predictive distribution:
``"delta"`` (Farrington's power-transformed normal), ``"nbPlugin"`` (Noufaily's negative
binomial) or ``"muan"``. All series and all monitored weeks are fitted as one batch of GLMs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import nbinom, norm, poisson

from healthmesh.surveillance.detectors._farrington_fit import fit_with_trend_selection
from healthmesh.surveillance.detectors._glm import single_blas_thread
from healthmesh.surveillance.detectors._quantiles import qnbinom, qpois
from healthmesh.surveillance.detectors._reference import Window, flexible_window
from healthmesh.surveillance.detectors.base import (
    DetectorInputError,
    DetectorResult,
    FloatArray,
    SeriesFrame,
    as_range,
)

ThresholdMethod = Literal["delta", "nbPlugin", "muan"]
PowerTrans = Literal["2/3", "1/2", "none"]
_EXTRAS = ("expected", "mu0", "phi", "trend_coef", "trend_used", "pvalue", "score")
_EPS = float(np.finfo(np.float64).eps)


def design(win: Window, level_order: Sequence[int]) -> tuple[FloatArray, FloatArray]:
    """Design (n, p) with intercept, time and treatment-coded seasonal levels; and the row now."""
    cols = [np.ones(win.idx.size), win.wtime]
    row = [1.0, win.wtime_now]
    if win.levels is not None:
        for lev in level_order[1:]:
            cols.append((win.levels == lev).astype(np.float64))
            row.append(1.0 if win.level_now == lev else 0.0)
    return np.column_stack(cols), np.asarray(row)


def power_threshold(
    mu0: FloatArray, se_fit: FloatArray, phi: FloatArray, z: float, y: FloatArray, powertrans: str
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Farrington's bound on the transformed scale; returns (upper, upper-tail prob, score)."""
    tau = phi + se_fit**2 / mu0
    if powertrans == "none":
        se, expo = np.sqrt(mu0 * tau), 1.0
    elif powertrans == "1/2":
        se, expo = np.sqrt(0.25 * tau), 0.5
    elif powertrans == "2/3":
        se, expo = np.sqrt(4 / 9 * mu0 ** (1 / 3) * tau), 2 / 3
    else:
        raise DetectorInputError("powertrans must be '2/3', '1/2' or 'none'")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        upper = (mu0**expo + z * se) ** (1 / expo)
        prob = norm.sf(y**expo, loc=mu0**expo, scale=se)
        score = (y - mu0) / (upper - mu0)
    return np.asarray(upper), np.asarray(prob), np.asarray(score)


@dataclass(frozen=True)
class FarringtonFlexible:
    """``farringtonFlexible`` with R's control names (snake_case).

    Use :meth:`farrington` or :meth:`noufaily` for the two published settings.

    Examples
    --------
    >>> det = FarringtonFlexible.noufaily(b=4, w=3, alpha=0.005)
    >>> det.settings()["thresholdMethod"]
    'nbPlugin'
    """

    b: int = 5
    w: int = 3
    reweight: bool = True
    weights_threshold: float = 2.58
    alpha: float = 0.05
    trend: bool = True
    p_threshold_trend: float = 0.05
    limit54: tuple[int, int] = (5, 4)
    powertrans: PowerTrans = "2/3"
    no_periods: int = 1
    past_weeks_not_included: int | None = None
    threshold_method: ThresholdMethod = "delta"
    name: ClassVar[str] = "farrington_flexible"

    def __post_init__(self) -> None:
        if self.b < 1 or self.w < 0 or self.no_periods < 1:
            raise DetectorInputError("farringtonFlexible needs b >= 1, w >= 0, noPeriods >= 1")
        if not (self.limit54[0] >= 0 and self.limit54[1] > 0):
            raise DetectorInputError("limit54 needs cases >= 0 and period > 0")
        if self.threshold_method not in ("delta", "nbPlugin", "muan"):
            raise DetectorInputError("thresholdMethod must be delta, nbPlugin or muan")

    @classmethod
    def farrington(cls, **kw: Any) -> FarringtonFlexible:
        """Farrington et al. (1996) settings: one period, threshold 1, trend test at 0.05."""
        base: dict[str, Any] = {"b": 4, "w": 3, "no_periods": 1, "weights_threshold": 1.0,
                                "past_weeks_not_included": 3, "p_threshold_trend": 0.05,
                                "threshold_method": "delta"}
        return cls(**(base | kw))

    @classmethod
    def noufaily(cls, **kw: Any) -> FarringtonFlexible:
        """Noufaily et al. (2013) settings: 10 periods, threshold 2.58, 26 weeks left out."""
        base: dict[str, Any] = {"b": 4, "w": 3, "no_periods": 10, "weights_threshold": 2.58,
                                "past_weeks_not_included": 26, "p_threshold_trend": 1.0,
                                "threshold_method": "nbPlugin"}
        return cls(**(base | kw))

    def settings(self) -> dict[str, Any]:
        """Control settings named as in R."""
        return {
            "b": self.b, "w": self.w, "reweight": self.reweight,
            "weightsThreshold": self.weights_threshold, "alpha": self.alpha,
            "trend": self.trend, "pThresholdTrend": self.p_threshold_trend,
            "limit54": list(self.limit54), "powertrans": self.powertrans,
            "noPeriods": self.no_periods, "pastWeeksNotIncluded": self._pwni,
            "thresholdMethod": self.threshold_method,
        }

    @property
    def _pwni(self) -> int:
        return self.w if self.past_weeks_not_included is None else self.past_weeks_not_included

    def default_range(self, n_time: int, freq: int = 52) -> npt.NDArray[np.int64]:
        """R's default range ``(freq * b + w + 1):n``."""
        return np.arange(freq * self.b + self.w + 1, n_time + 1, dtype=np.int64)

    def run(
        self, frame: SeriesFrame, t_range: Sequence[int] | npt.ArrayLike, *, chunk: int = 2048
    ) -> DetectorResult:
        """Monitor the 1-based time points ``t_range``; ``chunk`` bounds series per batch."""
        rng = as_range(t_range, frame.n_time, 1)
        dates = list(frame.dates) if frame.dates is not None else None
        wins = [
            flexible_window(int(k), b=self.b, w=self.w, freq=frame.freq,
                            no_periods=self.no_periods,
                            past_weeks_not_included=self._pwni, dates=dates)
            for k in rng
        ]
        n_series, n_range = frame.observed.shape[0], rng.size
        out = {name: np.full((n_series, n_range), np.nan) for name in ("upperbound", *_EXTRAS)}
        alarm = np.zeros((n_series, n_range), dtype=np.bool_)
        with single_blas_thread():
            for j, win in enumerate(wins):
                levels = tuple(np.unique(win.levels).tolist()) if win.levels is not None else ()
                for lo in range(0, n_series, chunk):
                    self._run_group(frame, wins, rng, j, levels, out, alarm,
                                    np.arange(lo, min(n_series, lo + chunk)))
        extras = {name: out[name] for name in _EXTRAS}
        return DetectorResult(t=rng, alarm=alarm, upperbound=out["upperbound"], extras=extras)

    def _run_group(
        self,
        frame: SeriesFrame,
        wins: list[Window],
        rng: npt.NDArray[np.int64],
        col: int,
        levels: tuple[int, ...],
        out: dict[str, FloatArray],
        alarm: npt.NDArray[np.bool_],
        series: npt.NDArray[np.int64],
    ) -> None:
        """Fit all ``series`` at the monitored time point ``rng[col]`` (one shared design)."""
        obs = frame.observed
        x, x0 = design(wins[col], levels)
        y = obs[np.ix_(series, wins[col].idx)]
        if np.isnan(y).any():
            raise DetectorInputError("missing counts inside a Farrington reference window")
        model = fit_with_trend_selection(
            x, x0, y, trend=self.trend, b=self.b, p_threshold=self.p_threshold_trend,
            reweight=self.reweight, weights_threshold=self.weights_threshold,
            overwrite_weights=True, fail_on_nonconvergence=True,
        )
        ks = np.full(series.size, rng[col])
        pos = np.full(series.size, col)
        y_now = obs[series, ks - 1]
        lim_cases, lim_period = self.limit54
        recent = np.stack([obs[series, ks - 1 - i] for i in range(lim_period)]).sum(axis=0)
        enough = recent >= lim_cases
        res = self._threshold(model.eta0, model.se_eta0, model.phi, y_now)
        upper, prob, score, expected, mu0 = res
        ok = model.ok
        bound = np.where(enough & ok, upper, np.nan)
        expected = np.where(enough & ok & ~np.isnan(upper), expected, np.nan)
        is_alarm = enough & ok & ~np.isnan(score) & (score > 1) & (y_now != 0)
        values = {
            "upperbound": bound, "expected": expected, "mu0": np.where(ok, mu0, np.nan),
            "phi": np.where(ok, model.phi, np.nan), "trend_coef": model.trend_coef,
            "trend_used": np.where(ok, model.do_trend.astype(np.float64), np.nan),
            "pvalue": np.where(ok, prob, np.nan), "score": np.where(ok, score, np.nan),
        }
        for name, vals in values.items():
            out[name][series, pos] = vals
        alarm[series, pos] = is_alarm

    def _threshold(
        self, eta0: FloatArray, se_eta0: FloatArray, phi: FloatArray, y: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """(upper, upper-tail probability, score, expected, mu0) as R reports them."""
        z = float(norm.ppf(1 - self.alpha))
        if self.threshold_method == "delta":
            with np.errstate(over="ignore"):
                mu = np.maximum(np.exp(eta0), _EPS)
            se_resp = se_eta0 * mu
            upper, prob, score = power_threshold(mu, se_resp, phi, z, y, self.powertrans)
            with np.errstate(over="ignore"):
                mu0 = np.exp(norm.ppf(1 - self.alpha, loc=mu, scale=se_resp))
            return upper, prob, score, mu, mu0
        with np.errstate(over="ignore"):
            if self.threshold_method == "nbPlugin":
                mu_q = np.exp(eta0)
            else:
                mu_q = np.exp(norm.ppf(1 - self.alpha, loc=eta0, scale=se_eta0))
        finite = np.isfinite(mu_q)
        over = phi > 1
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            size = mu_q / (phi - 1)
            upper = np.where(over, qnbinom(1 - self.alpha, size, 1 / phi),
                             qpois(1 - self.alpha, mu_q))
            prob = np.where(phi != 1, nbinom.sf(y - 1, size, 1 / phi),
                            poisson.sf(y - 1, mu_q))
            upper = np.where(finite, upper, np.nan)
            prob = np.where(finite, prob, np.nan)
            score = (y - eta0) / (upper - eta0)
            expected = np.exp(eta0)
        return upper, prob, score, expected, mu_q
