"""Classic Farrington (1996) detector, as R ``surveillance::algo.farrington``.

The reference values are the ``2w + 1`` weeks around the same week of ``b`` earlier years; a
quasi-Poisson GLM with an optional trend is fitted (reweighted with threshold 1), and the bound
is the upper end of a two-sided ``1 - alpha`` prediction interval on the 2/3-power scale. With
fewer than ``limit54`` cases in the last weeks the bound is 0 and no alarm is raised, as in R.
All series and time points are fitted as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

from healthmesh.surveillance.detectors._farrington_fit import fit_with_trend_selection
from healthmesh.surveillance.detectors._glm import single_blas_thread
from healthmesh.surveillance.detectors._reference import classic_window
from healthmesh.surveillance.detectors.base import (
    DetectorInputError,
    DetectorResult,
    FloatArray,
    SeriesFrame,
    as_range,
)
from healthmesh.surveillance.detectors.farrington_flexible import PowerTrans, power_threshold

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Farrington:
    """``algo.farrington`` with R's control names.

    Examples
    --------
    >>> Farrington(b=4, w=3, alpha=0.01).settings()["alpha"]
    0.01
    """

    b: int = 5
    w: int = 3
    reweight: bool = True
    alpha: float = 0.05
    trend: bool = True
    limit54: tuple[int, int] = (5, 4)
    powertrans: PowerTrans = "2/3"
    name: ClassVar[str] = "farrington"

    def __post_init__(self) -> None:
        if self.b < 1 or self.w < 0:
            raise DetectorInputError("algo.farrington needs b >= 1 and w >= 0")

    def settings(self) -> dict[str, Any]:
        """Control settings named as in R."""
        return {"b": self.b, "w": self.w, "reweight": self.reweight, "alpha": self.alpha,
                "trend": self.trend, "limit54": list(self.limit54),
                "powertrans": self.powertrans}

    def run(
        self, frame: SeriesFrame, t_range: Sequence[int] | npt.ArrayLike, *, chunk: int = 8192
    ) -> DetectorResult:
        """Monitor the 1-based time points ``t_range``."""
        rng = as_range(t_range, frame.n_time, 1)
        dates = list(frame.dates) if frame.dates is not None else None
        wins = [classic_window(int(k), b=self.b, w=self.w, freq=frame.freq, dates=dates)
                for k in rng]
        obs = frame.observed
        n_series, n_range = obs.shape[0], rng.size
        out = {n: np.full((n_series, n_range), np.nan) for n in ("upperbound", "trend_used")}
        alarm = np.zeros((n_series, n_range), dtype=np.bool_)
        groups: dict[int, list[int]] = {}
        for j, win in enumerate(wins):
            groups.setdefault(win.idx.size, []).append(j)
        z = float(norm.ppf(1 - self.alpha / 2))
        for cols_all in groups.values():
            per = max(1, chunk // max(1, n_series))
            for start in range(0, len(cols_all), per):
                cols = cols_all[start : start + per]
                x = np.concatenate([
                    np.broadcast_to(np.column_stack([np.ones(wins[j].idx.size), wins[j].wtime]),
                                    (n_series, wins[j].idx.size, 2))
                    for j in cols
                ])
                x0 = np.concatenate([np.tile([1.0, float(rng[j])], (n_series, 1)) for j in cols])
                y = np.concatenate([obs[:, wins[j].idx] for j in cols])
                with single_blas_thread():
                    model = fit_with_trend_selection(
                        x, x0, y, trend=self.trend, b=self.b, p_threshold=0.05,
                        reweight=self.reweight, weights_threshold=1.0, overwrite_weights=False,
                        fail_on_nonconvergence=False, predict_with_phi=True,
                    )
                series = np.tile(np.arange(n_series), len(cols))
                pos = np.repeat(np.asarray(cols), n_series)
                ks = rng[pos]
                y_now = obs[series, ks - 1]
                with np.errstate(over="ignore", invalid="ignore"):
                    mu = np.maximum(np.exp(model.eta0), _EPS)
                    upper, _prob, _score = power_threshold(
                        mu, model.se_eta0 * mu, model.phi, z, y_now, self.powertrans
                    )
                recent = np.stack(
                    [obs[series, ks - 1 - i] for i in range(self.limit54[1])]
                ).sum(axis=0)
                enough = recent >= self.limit54[0]
                with np.errstate(divide="ignore", invalid="ignore"):
                    score = np.where(enough, (y_now - mu) / (upper - mu), 0.0)
                out["upperbound"][series, pos] = np.where(enough, upper, 0.0)
                out["trend_used"][series, pos] = model.do_trend.astype(np.float64)
                alarm[series, pos] = score > 1
        extras: dict[str, FloatArray] = {"trend_used": out["trend_used"]}
        return DetectorResult(t=rng, alarm=alarm, upperbound=out["upperbound"], extras=extras)
