"""Reference (baseline) windows of the Farrington detectors, as R ``surveillance`` builds them.

For a monitored time point ``k`` both Farrington variants look at the same weeks ``1..b``
years back. Undated series step back ``b * freq`` indices; dated weekly series step back
calendar years (R ``seq(by = "-1 year")``) and move to the nearest day with the weekday of
``k``. ``farringtonFlexible`` adds ``noPeriods - 1`` seasonal blocks between the windows and
drops the last ``pastWeeksNotIncluded`` weeks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from healthmesh.surveillance.detectors.base import DetectorInputError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def minus_years(day: dt.date, years: int) -> dt.date:
    """R ``seq(day, by = "-1 year")``: 29 February falls on 1 March in common years."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return dt.date(day.year - years, 3, 1)


def _r_weekday(day: dt.date) -> int:
    """R ``format(day, "%w")``: Sunday is 0."""
    return (day.weekday() + 1) % 7


def flexible_reference_points(day: dt.date, b: int) -> list[dt.date]:
    """R ``algo.farrington.referencetimepoints`` for dated weekly data (``day`` first)."""
    want = _r_weekday(day)
    out = []
    for i in range(b + 1):
        ref = minus_years(day, i)
        a = ref - dt.timedelta(days=_r_weekday(ref) - want)
        bb = a + dt.timedelta(days=-7 if a > ref else 7)
        out.append(a if abs((a - ref).days) <= abs((bb - ref).days) else bb)
    return out


def classic_reference_days(day: dt.date, b: int, w: int) -> list[dt.date]:
    """R ``refvalIdxByDate`` for weekly data: the ``2w+1`` weeks around ``day`` 1..b years back."""
    want = _r_weekday(day)
    days: list[dt.date] = []
    for j in range(1, b + 1):
        ref = minus_years(day, j)
        window = [ref - dt.timedelta(weeks=i) for i in range(w, 0, -1)]
        window += [ref + dt.timedelta(weeks=i) for i in range(0, w + 1)]
        for d in window:
            fwd = (want - _r_weekday(d)) % 7
            bwd = (_r_weekday(d) - want) % 7
            days.append(d + dt.timedelta(days=fwd if fwd < bwd else -bwd))
    return days


@dataclass(frozen=True)
class Window:
    """Reference data of one monitored time point (0-based ``idx`` into the series)."""

    idx: IntArray
    wtime: FloatArray
    wtime_now: float
    levels: IntArray | None  # seasonal factor level per reference point (noPeriods > 1)
    level_now: int


def _blocks(ref_idx: list[int], n_time: int, now: int, b: int, w: int, p: int) -> FloatArray:
    """R ``blocks``: factor level per time point (NaN outside); ``ref_idx`` newest first."""
    f = np.full(n_time, np.nan)
    f[max(0, now - w) : now + 1] = p
    for i in range(1, b + 1):
        ref = ref_idx[i]
        f[max(0, ref - w) : ref + w + 1] = p
        if p != 1:
            period = ref_idx[i - 1] - 2 * w - 1 - ref
            if period < p - (2 * w + 1):
                raise DetectorInputError("too many seasonal periods (noPeriods) for this series")
            size, rest = divmod(period, p - 1)
            lengths = [0] + [size + (1 if j < rest else 0) for j in range(p - 1)]
            cum = np.cumsum(lengths)
            for j in range(1, p):
                f[ref + w + 1 + cum[j - 1] : ref + w + 1 + cum[j]] = j
    return f


def flexible_window(
    k: int,
    *,
    b: int,
    w: int,
    freq: int,
    no_periods: int,
    past_weeks_not_included: int,
    dates: list[dt.date] | None,
) -> Window:
    """Reference window of ``farringtonFlexible`` for the 1-based time point ``k``."""
    now = k - 1
    n_time = len(dates) if dates is not None else now + 1
    if dates is None:
        ref_idx = [now - i * freq for i in range(b + 1)]
    else:
        pos = {d: i for i, d in enumerate(dates)}
        points = flexible_reference_points(dates[now], b)
        if any(d not in pos for d in points):
            raise DetectorInputError("some reference time points do not exist; decrease b")
        ref_idx = [pos[d] for d in points]
    if min(ref_idx) - w < -1:  # R silently drops index 0 of a 1-based window
        raise DetectorInputError("not enough history before the monitored range for b and w")
    f = _blocks(ref_idx, max(n_time, now + 1), now, b, w, no_periods)
    f[max(0, now - past_weeks_not_included) : now + 1] = np.nan
    idx = np.flatnonzero(~np.isnan(f)).astype(np.int64)
    if dates is None:
        wtime = (idx + 1).astype(np.float64)
        wtime_now = float(k)
    else:
        step = (dates[1] - dates[0]).days
        first = dates[int(idx[0])]
        wtime = np.array([(dates[int(i)] - first).days / step for i in idx], dtype=np.float64)
        wtime_now = (dates[now] - first).days / step
    levels = f[idx].astype(np.int64) if no_periods != 1 else None
    return Window(idx=idx, wtime=wtime, wtime_now=wtime_now, levels=levels, level_now=no_periods)


def classic_window(k: int, *, b: int, w: int, freq: int, dates: list[dt.date] | None) -> Window:
    """Reference window of ``algo.farrington`` for the 1-based time point ``k``."""
    if dates is None:
        idx = np.concatenate(
            [np.arange(k - freq * i - w, k - freq * i + w + 1) for i in range(b, 0, -1)]
        )
        idx = idx[idx > 0] - 1
    else:
        pos = {d: i for i, d in enumerate(dates)}
        found = [pos.get(d) for d in classic_reference_days(dates[k - 1], b, w)]
        idx = np.array([i for i in found if i is not None], dtype=np.int64)
    idx = idx.astype(np.int64)
    return Window(
        idx=idx, wtime=(idx + 1).astype(np.float64), wtime_now=float(k), levels=None, level_now=1
    )
