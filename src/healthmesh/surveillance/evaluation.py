"""Detection quality of a detector on labelled series: the measures R users report.

* :func:`algo_quality` is R ``algo.quality`` (TP, FP, TN, FN, sensitivity, specificity,
  distance to the ideal point, mean lag with a penalty).
* :func:`outbreak_metrics` pools many labelled series the way the shared Noufaily-design and
  point-source benchmarks do: false-positive rate and specificity on outbreak-free weeks,
  sensitivity on outbreak weeks, probability of detection (an alarm in at least one week of
  the outbreak), detection in the first outbreak week, timeliness and alert volume.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Quality:
    """R ``algo.quality`` output."""

    TP: int
    FP: int
    TN: int
    FN: int
    sens: float
    spec: float
    dist: float
    mlag: float


def algo_quality(state: npt.ArrayLike, alarm: npt.ArrayLike, penalty: int = 20) -> Quality:
    """R ``algo.quality`` for one series (``state`` and ``alarm`` over the monitored range).

    >>> algo_quality([0, 1, 1, 0], [0, 0, 1, 0]).mlag
    1.0
    """
    st = np.asarray(state, dtype=bool)
    al = np.asarray(np.nan_to_num(np.asarray(alarm, dtype=float)), dtype=bool)
    tp = int((st & al).sum())
    fn = int((st & ~al).sum())
    tn = int((~st & ~al).sum())
    fp = int((~st & al).sum())
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    dist = float(np.sqrt((1 - spec) ** 2 + (sens - 1) ** 2))
    ones = np.flatnonzero(st)
    if ones.size == 0:
        return Quality(tp, fp, tn, fn, sens, spec, dist, 0.0)
    begins = [int(ones[0])] + [int(ones[i + 1]) for i in np.flatnonzero(np.diff(ones) != 1)]
    lags = []
    for j, b in enumerate(begins):
        end = min(b + penalty, begins[j + 1] - 1) if j + 1 < len(begins) else min(
            b + penalty, al.size - 1)
        hit = np.flatnonzero(al[b : end + 1])
        lags.append(float(hit[0]) if hit.size else float(penalty))
    return Quality(tp, fp, tn, fn, sens, spec, dist, float(np.mean(lags)))


@dataclass(frozen=True)
class OutbreakMetrics:
    """Pooled detection measures over many labelled series."""

    n_weeks_nonob: int
    n_alarm_NA: int
    FP: int
    FPR: float
    specificity: float
    n_weeks_ob: int
    TP: int
    sensitivity: float
    n_outbreaks: int
    POD: float
    POD_week1: float
    timeliness: float
    alarms_per_100: float

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict for tables and JSON."""
        return asdict(self)


def outbreak_runs(state: BoolArray) -> list[tuple[int, int]]:
    """(first, last) index of each run of outbreak time points.

    >>> outbreak_runs(np.array([0, 1, 1, 0, 1], dtype=bool))
    [(1, 2), (4, 4)]
    """
    idx = np.flatnonzero(state)
    if idx.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(idx) != 1)
    starts = np.r_[idx[0], idx[cuts + 1]]
    ends = np.r_[idx[cuts], idx[-1]]
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def outbreak_metrics(
    series: Iterable[tuple[npt.ArrayLike, npt.ArrayLike]],
    *,
    first_week: Iterable[int | None] | None = None,
) -> OutbreakMetrics:
    """Pool ``(outbreak_flag, alarm)`` pairs, one per series over the monitored weeks.

    ``alarm`` may hold NaN (R's ``NA``): counted in ``n_alarm_NA`` and treated as no alarm.
    Each run of outbreak weeks is one outbreak, unless ``first_week`` gives, per series, the
    index of its single outbreak's first week (Noufaily design: the weeks with outbreak cases
    of one outbreak need not be contiguous). Timeliness is Salmon et al.'s: the share of the
    outbreak's span before the first alarm, 1 when never detected.
    """
    firsts = list(first_week) if first_week is not None else None
    nonob = ob = fp = tp = na = 0
    n_out = detected = detected1 = 0
    total_alarms = total_weeks = 0
    timeliness: list[float] = []
    for i, (flag_raw, alarm_raw) in enumerate(series):
        flag = np.asarray(flag_raw, dtype=bool)
        alarm_f = np.asarray(alarm_raw, dtype=float)
        na += int(np.isnan(alarm_f).sum())
        alarm = np.nan_to_num(alarm_f, nan=0.0).astype(bool)
        nonob += int((~flag).sum())
        ob += int(flag.sum())
        fp += int((alarm & ~flag).sum())
        tp += int((alarm & flag).sum())
        total_alarms += int(alarm.sum())
        total_weeks += alarm.size
        if firsts is not None:
            if not flag.any():
                continue
            weeks = np.flatnonzero(flag)
            given = firsts[i]
            start = int(weeks[0]) if given is None else int(given)
            spans = [(start, int(weeks[-1]), weeks)]
        else:
            spans = [(s, e, np.arange(s, e + 1)) for s, e in outbreak_runs(flag)]
        for start, end, weeks in spans:
            n_out += 1
            hits = weeks[alarm[weeks]]
            detected += bool(hits.size)
            detected1 += bool(0 <= start < alarm.size and alarm[start])
            span = end - start + 1
            timeliness.append(float((hits[0] - start) / span) if hits.size else 1.0)
    fpr = fp / nonob if nonob else float("nan")
    return OutbreakMetrics(
        n_weeks_nonob=nonob, n_alarm_NA=na, FP=fp, FPR=fpr, specificity=1 - fpr,
        n_weeks_ob=ob, TP=tp, sensitivity=tp / ob if ob else float("nan"),
        n_outbreaks=n_out, POD=detected / n_out if n_out else float("nan"),
        POD_week1=detected1 / n_out if n_out else float("nan"),
        timeliness=float(np.mean(timeliness)) if timeliness else float("nan"),
        alarms_per_100=100 * total_alarms / total_weeks if total_weeks else float("nan"),
    )
