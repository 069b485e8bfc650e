"""The Bayes system 1-3 of R ``surveillance::algo.bayes`` (Riebler 2004).

With a flat prior on a Poisson mean and ``n`` reference counts summing to ``s``, the posterior
predictive of the next count is negative binomial with size ``s + 1/2`` and probability
``n / (n + 1)``; its ``1 - alpha`` quantile is the bound, and an alarm is raised when the count
exceeds it. Reference counts are the ``w`` previous weeks (``actY``) and the ``2w + 1`` weeks
around the same week ``1..b`` years back. Vectorised over series and time points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from healthmesh.surveillance.detectors._quantiles import qnbinom
from healthmesh.surveillance.detectors.base import (
    DetectorInputError,
    DetectorResult,
    SeriesFrame,
    alarm_from_bound,
    as_range,
)


@dataclass(frozen=True)
class Bayes:
    """Bayes detector with R ``algo.bayes`` control names; see :func:`bayes_system`.

    Examples
    --------
    >>> frame = SeriesFrame.from_counts([3, 2, 4, 3, 2, 3, 30])
    >>> Bayes(b=0, w=6).run(frame, [7]).alarm.tolist()
    [[True]]
    """

    b: int = 0
    w: int = 6
    act_y: bool = True
    alpha: float = 0.05
    name: ClassVar[str] = "bayes"

    def __post_init__(self) -> None:
        if self.b < 0 or self.w < 0 or not 0 < self.alpha < 1:
            raise DetectorInputError("bayes needs b >= 0, w >= 0 and 0 < alpha < 1")
        if self.b == 0 and not self.act_y:
            raise DetectorInputError("bayes needs reference values: b >= 1 or act_y")

    def settings(self) -> dict[str, Any]:
        """Control settings named as in R."""
        return {"b": self.b, "w": self.w, "actY": self.act_y, "alpha": self.alpha}

    def offsets(self, freq: int) -> npt.NDArray[np.int64]:
        """Offsets (negative, relative to the monitored time point) of the reference counts."""
        parts: list[npt.NDArray[np.int64]] = []
        if self.act_y:
            parts.append(np.arange(-self.w, 0, dtype=np.int64))
        for i in range(1, self.b + 1):
            parts.append(np.arange(-i * freq - self.w, -i * freq + self.w + 1, dtype=np.int64))
        return np.concatenate(parts)

    def run(self, frame: SeriesFrame, t_range: Sequence[int] | npt.ArrayLike) -> DetectorResult:
        """Monitor the 1-based time points ``t_range``."""
        rng = as_range(t_range, frame.n_time, self.b * frame.freq + self.w + 1)
        idx = (rng - 1)[:, None] + self.offsets(frame.freq)[None, :]
        ref = frame.observed[:, idx]  # (series, range, n_ref)
        total = np.nansum(ref, axis=2)
        n_ref = np.sum(~np.isnan(ref), axis=2).astype(np.float64)
        bound = qnbinom(1.0 - self.alpha, total + 0.5, n_ref / (n_ref + 1.0))
        obs = frame.observed[:, rng - 1]
        return DetectorResult(
            t=rng,
            alarm=alarm_from_bound(obs, bound),
            upperbound=bound,
            extras={"ref_sum": total, "ref_n": n_ref},
        )


def bayes_system(number: int) -> Bayes:
    """Bayes 1 (``b=0, w=6``), 2 (``b=1, w=6``) or 3 (``b=2, w=4, actY=False``).

    >>> bayes_system(3).settings()["actY"]
    False
    """
    systems = {1: Bayes(0, 6, True), 2: Bayes(1, 6, True), 3: Bayes(2, 4, False)}
    if number not in systems:
        raise DetectorInputError("the Bayes systems are numbered 1 to 3")
    return systems[number]
