"""Hub side: pool institutions' protected counts into district and regional series, run the
detectors and turn alarms into alerts with severity and signal strength.

Pure: takes count rows, returns series and alerts; storage lives in :mod:`.store`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from healthmesh.surveillance.detectors import (
    Detector,
    DetectorResult,
    EarsC,
    FarringtonFlexible,
    SeriesFrame,
)

REGION = "ALL"


@dataclass(frozen=True)
class CountRow:
    """One protected count reported by an institution (``count`` None = suppressed)."""

    institution: str
    date: dt.date
    district: str
    signal: str
    count: int | None


@dataclass
class SeriesSet:
    """Aligned series: one row per (district, signal), one column per period."""

    keys: list[tuple[str, str]]
    periods: list[dt.date]
    observed: npt.NDArray[np.float64]
    suppressed: npt.NDArray[np.int64]
    freq: int

    def frame(self) -> SeriesFrame:
        """The detectors' input (weekly series carry their dates)."""
        dates = tuple(self.periods) if self.freq == 52 else None
        return SeriesFrame(observed=self.observed, freq=self.freq, dates=dates)


def _week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def combine(
    rows: Iterable[CountRow], *, weekly: bool = False, region: bool = True,
    start: dt.date | None = None, end: dt.date | None = None,
) -> SeriesSet:
    """Sum institutions into district series (and a regional total per signal).

    Suppressed cells count as 0 and are tallied in ``suppressed``; missing days are zeros.

    >>> rows = [CountRow("h1", dt.date(2025, 1, 1), "D1", "ili", 3),
    ...         CountRow("h2", dt.date(2025, 1, 2), "D1", "ili", None)]
    >>> s = combine(rows)
    >>> s.keys, s.observed.tolist()
    ([('ALL', 'ili'), ('D1', 'ili')], [[3.0, 0.0], [3.0, 0.0]])
    """
    cells: dict[tuple[str, str], dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    supp: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    days = []
    for r in rows:
        period = _week_start(r.date) if weekly else r.date
        days.append(period)
        targets = [(r.district, r.signal)] + ([(REGION, r.signal)] if region else [])
        for key in targets:
            if r.count is None:
                supp[key][period] += 1
                cells[key][period] += 0.0
            else:
                cells[key][period] += r.count
    if not days:
        return SeriesSet([], [], np.zeros((0, 0)), np.zeros((0, 0), dtype=np.int64),
                         52 if weekly else 365)
    first = start or min(days)
    last = end or max(days)
    step = dt.timedelta(days=7 if weekly else 1)
    if weekly:
        first = _week_start(first)
    periods = []
    cur = first
    while cur <= last:
        periods.append(cur)
        cur += step
    index = {p: i for i, p in enumerate(periods)}
    keys = sorted(cells)
    obs = np.zeros((len(keys), len(periods)))
    sup = np.zeros((len(keys), len(periods)), dtype=np.int64)
    for i, key in enumerate(keys):
        for p, v in cells[key].items():
            if p in index:
                obs[i, index[p]] = v
        for p, v in supp[key].items():
            if p in index:
                sup[i, index[p]] = v
    return SeriesSet(keys, periods, obs, sup, 52 if weekly else 365)


@dataclass(frozen=True)
class Alert:
    """An alarm turned into an alert for the console."""

    district: str
    signal: str
    period: dt.date
    detector: str
    observed: float
    threshold: float
    strength: float  # observed / threshold
    severity: str
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable identity (one alert per district, signal, period and detector)."""
        return f"{self.district}|{self.signal}|{self.period.isoformat()}|{self.detector}"


def severity(strength: float, n_detectors: int) -> str:
    """``high`` for twice the threshold or agreement of several detectors, ``medium`` for
    1.5 times, else ``low``.

    >>> severity(2.5, 1), severity(1.1, 2), severity(1.1, 1)
    ('high', 'high', 'low')
    """
    if strength >= 2.0 or n_detectors >= 2:
        return "high"
    if strength >= 1.5:
        return "medium"
    return "low"


def default_detectors(freq: int) -> dict[str, Detector]:
    """EARS C1-C3 for daily series; Noufaily-Farrington and EARS C2 for weekly series."""
    if freq == 365:
        return {"ears_c1": EarsC("C1"), "ears_c2": EarsC("C2"), "ears_c3": EarsC("C3")}
    return {"noufaily": FarringtonFlexible.noufaily(b=3, w=3), "ears_c2": EarsC("C2")}


def run_detectors(
    series: SeriesSet, detectors: Mapping[str, Detector], t_range: Sequence[int]
) -> dict[str, DetectorResult]:
    """Run every detector on all series at once."""
    frame = series.frame()
    return {name: det.run(frame, t_range) for name, det in detectors.items()}


def alerts_from(
    series: SeriesSet, results: Mapping[str, DetectorResult], *, context_points: int = 26
) -> list[Alert]:
    """One alert per alarm; severity uses how many detectors alarmed on the same cell."""
    votes: dict[tuple[int, int], int] = defaultdict(int)
    for res in results.values():
        for i, j in zip(*np.nonzero(res.alarm), strict=True):
            votes[(int(i), int(res.t[j]))] += 1
    alerts = []
    for name, res in results.items():
        for i, j in zip(*np.nonzero(res.alarm), strict=True):
            t = int(res.t[j])
            obs = float(series.observed[i, t - 1])
            thr = float(res.upperbound[i, j])
            strength = obs / thr if thr > 0 else float("inf")
            lo = max(0, t - context_points)
            ctx = {
                "periods": [p.isoformat() for p in series.periods[lo:t]],
                "observed": series.observed[i, lo:t].tolist(),
                "threshold": _bounds_window(res, i, lo, t),
                "suppressed_cells": int(series.suppressed[i, lo:t].sum()),
            }
            district, signal = series.keys[i]
            alerts.append(Alert(district, signal, series.periods[t - 1], name, obs, thr,
                                strength, severity(strength, votes[(i, t)]), ctx))
    return alerts


def _bounds_window(res: DetectorResult, i: int, lo: int, t: int) -> list[float | None]:
    pos = {int(tt): k for k, tt in enumerate(res.t)}
    out: list[float | None] = []
    for tt in range(lo + 1, t + 1):
        k = pos.get(tt)
        val = None if k is None else float(res.upperbound[i, k])
        out.append(None if val is None or np.isnan(val) else val)
    return out
