"""Scheduled hub run: read counts, build series, run detectors on the latest periods, store
alerts. Used by the CLI and by the hub's scheduler."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from healthmesh.errors import InvalidInput
from healthmesh.surveillance.detectors import Detector, DetectorResult
from healthmesh.surveillance.hub import (
    Alert,
    CountRow,
    SeriesSet,
    alerts_from,
    combine,
    default_detectors,
    run_detectors,
)
from healthmesh.surveillance.store import AlertStore


def read_counts_csv(path: Path) -> list[CountRow]:
    """Rows ``institution,date,district,signal,count`` (empty count = suppressed)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            try:
                count = None if rec["count"] in ("", "NA", None) else int(rec["count"])
                rows.append(CountRow(rec["institution"], dt.date.fromisoformat(rec["date"]),
                                     rec["district"], rec["signal"], count))
            except (KeyError, ValueError) as exc:
                raise InvalidInput("counts file needs institution,date,district,signal,count"
                                   ) from exc
    return rows


def detect(
    rows: Iterable[CountRow], *, weekly: bool, last: int,
    detectors: Mapping[str, Detector] | None = None,
) -> tuple[SeriesSet, dict[str, DetectorResult], list[Alert]]:
    """Pool rows, run the detectors on the last ``last`` periods, return alerts."""
    series = combine(rows, weekly=weekly)
    n = len(series.periods)
    if n == 0:
        raise InvalidInput("no counts")
    dets = dict(detectors or default_detectors(series.freq))
    first = max(1, n - last + 1)
    results: dict[str, DetectorResult] = {}
    for name, det in dets.items():
        need = _history_needed(det, series.freq)
        start = max(first, need)
        if start > n:
            continue
        results.update(run_detectors(series, {name: det}, list(np.arange(start, n + 1))))
    return series, results, alerts_from(series, results)


def _history_needed(det: Detector, freq: int) -> int:
    settings = det.settings()
    if "method" in settings:  # EARS
        return int(settings["baseline"]) + {"C1": 1, "C2": 3, "C3": 5}[settings["method"]]
    if "noPeriods" in settings or "powertrans" in settings:
        return freq * int(settings["b"]) + int(settings["w"]) + 2
    if "actY" in settings:
        return freq * int(settings["b"]) + int(settings["w"]) + 1
    return 2


def run_and_store(rows: Iterable[CountRow], store: AlertStore, *, weekly: bool,
                  last: int) -> list[int]:
    """One scheduled run: detect and store new alerts; returns their ids."""
    _series, _results, alerts = detect(rows, weekly=weekly, last=last)
    return store.add(alerts)
