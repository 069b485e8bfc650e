"""The one interface every outbreak detector implements, and its result type.

A detector takes a matrix of counts (one row per series, one column per time point) and a
1-based ``range`` of time points to monitor, exactly as R ``surveillance`` does, and returns
per monitored time point an alarm, an upper bound and the intermediate quantities R reports.
All detectors are vectorised across series: the same computation for 3,000 series is one
call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from healthmesh.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


class DetectorInputError(InvalidInput):
    """The counts or the control settings given to a detector are unusable."""


@dataclass(frozen=True)
class DetectorResult:
    """Output of a detector for ``n_series`` series over the monitored time points.

    Attributes
    ----------
    t:
        1-based indices of the monitored time points (R's ``range``), shape ``(n_range,)``.
    alarm:
        Boolean alarms, shape ``(n_series, n_range)``; ``False`` where the bound is NaN.
    upperbound:
        Threshold per time point (NaN where R reports ``NA``), same shape.
    extras:
        Intermediate quantities named as in R (``expected``, ``phi``, ``cusum`` ...), each of
        shape ``(n_series, n_range)``.
    """

    t: IntArray
    alarm: BoolArray
    upperbound: FloatArray
    extras: Mapping[str, FloatArray] = field(default_factory=dict)

    @property
    def n_series(self) -> int:
        """Number of series in the result."""
        return int(self.alarm.shape[0])

    def series(self, i: int) -> dict[str, FloatArray | BoolArray | IntArray]:
        """The result of one series as a dict of 1-D arrays (``t``, ``alarm``, ...)."""
        out: dict[str, FloatArray | BoolArray | IntArray] = {
            "t": self.t,
            "alarm": self.alarm[i],
            "upperbound": self.upperbound[i],
        }
        for name, values in self.extras.items():
            out[name] = values[i]
        return out


@dataclass(frozen=True)
class SeriesFrame:
    """Counts of several series on one shared time axis.

    Attributes
    ----------
    observed:
        Counts, shape ``(n_series, n_time)``; NaN marks a missing count.
    freq:
        Observations per year (52 weekly, 365 daily, 12 monthly).
    epoch_in_year:
        1-based position of each time point within its year (R ``epochInYear``), optional;
        needed by detectors that look back whole years on dated series.
    population:
        Optional population per series and time point (for a population offset).
    dates:
        Optional date of each time point (R ``epochAsDate``); the Farrington detectors then
        find the same week of earlier years by calendar, as R does.
    """

    observed: FloatArray
    freq: int = 52
    epoch_in_year: IntArray | None = None
    population: FloatArray | None = None
    dates: tuple[dt.date, ...] | None = None

    @classmethod
    def from_counts(
        cls,
        counts: Sequence[float] | npt.ArrayLike,
        *,
        freq: int = 52,
        epoch_in_year: Sequence[int] | npt.ArrayLike | None = None,
        dates: Sequence[dt.date] | None = None,
    ) -> SeriesFrame:
        """Build a frame from one series (1-D) or several (2-D, one row per series).

        >>> SeriesFrame.from_counts([1, 2, 3]).observed.shape
        (1, 3)
        """
        arr = np.asarray(counts, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise DetectorInputError("counts must be a 1-D or 2-D array")
        eiy = None if epoch_in_year is None else np.asarray(epoch_in_year, dtype=np.int64)
        if dates is not None and len(dates) != arr.shape[1]:
            raise DetectorInputError("one date per time point is needed")
        return cls(
            observed=arr,
            freq=freq,
            epoch_in_year=eiy,
            dates=None if dates is None else tuple(dates),
        )

    @property
    def n_time(self) -> int:
        """Length of the shared time axis."""
        return int(self.observed.shape[1])


@runtime_checkable
class Detector(Protocol):
    """An outbreak detector: settings in the constructor, data in :meth:`run`."""

    name: ClassVar[str]

    def run(self, frame: SeriesFrame, t_range: Sequence[int] | npt.ArrayLike) -> DetectorResult:
        """Monitor the 1-based time points ``t_range`` of every series in ``frame``."""
        ...

    def settings(self) -> dict[str, Any]:
        """The control settings, named as in R, for records and reports."""
        ...


def as_range(t_range: Sequence[int] | npt.ArrayLike, n_time: int, first_allowed: int) -> IntArray:
    """Validate a 1-based monitoring range against the series length.

    >>> as_range([3, 4], 10, 2).tolist()
    [3, 4]
    """
    rng = np.asarray(t_range, dtype=np.int64).ravel()
    if rng.size == 0:
        raise DetectorInputError("the monitored range is empty")
    if rng.min() < first_allowed:
        raise DetectorInputError(
            f"the monitored range must start at time point {first_allowed} or later"
        )
    if rng.max() > n_time:
        raise DetectorInputError("the monitored range goes past the end of the series")
    return rng


def alarm_from_bound(observed: FloatArray, bound: FloatArray, *, strict: bool = True) -> BoolArray:
    """Alarm where the observation exceeds the bound; NaN bounds or counts never alarm."""
    with np.errstate(invalid="ignore"):
        hit = observed > bound if strict else observed >= bound
    return np.asarray(hit & np.isfinite(bound) & np.isfinite(observed), dtype=np.bool_)
