"""Loaders for the R ``surveillance`` 1.20.3 reference outputs in ../shared/data/surveillance."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class RefRun:
    series: str
    run: str
    r_function: str
    range_first: int
    range_last: int
    control: dict
    file: str


@dataclass
class RefInput:
    t: np.ndarray
    observed: np.ndarray
    state: np.ndarray
    dates: list[str]
    epoch_in_year: np.ndarray


def manifest(root: Path) -> list[RefRun]:
    base = root / "surveillance" / "algo_outputs"
    with open(base / "_manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        RefRun(
            series=r["series"],
            run=r["run"],
            r_function=r["r_function"],
            range_first=int(r["range_first"]),
            range_last=int(r["range_last"]),
            control=json.loads(r["control_json"]),
            file=r["file"],
        )
        for r in rows
        if (base / r["file"]).exists()
    ]


def load_input(root: Path, series: str) -> RefInput:
    path = root / "surveillance" / "algo_outputs" / "_inputs" / f"{series}.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return RefInput(
        t=np.array([int(r["t"]) for r in rows]),
        observed=np.array([float(r["observed"]) for r in rows]),
        state=np.array([int(r["state"]) for r in rows]),
        dates=[r["date"] for r in rows],
        epoch_in_year=np.array([int(r["epoch_in_year"]) for r in rows]),
    )


def _num(text: str) -> float:
    return float("nan") if text in ("NA", "") else float(text)


def load_output(root: Path, run: RefRun) -> dict[str, np.ndarray]:
    path = root / "surveillance" / "algo_outputs" / run.file
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols = [c for c in rows[0] if c not in ("date",)]
    return {c: np.array([_num(r[c]) for r in rows]) for c in cols}


def rel_close(ours: np.ndarray, ref: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """Elementwise: both NaN, or equal within ``rtol`` relative (absolute near zero)."""
    both_nan = np.isnan(ours) & np.isnan(ref)
    with np.errstate(invalid="ignore"):
        close = np.abs(ours - ref) <= rtol * np.maximum(np.abs(ref), 1e-12) + 1e-12
    return both_nan | close | (ours == ref)
