"""Shared parts of the federated survival models: the survival parameters, the hub-given time
grid and the node-side coarsening of times so that every released time cell passes min cell.

Coarsening rule (written here because it is ours; documented in docs/federation.md, "Models"):
a node sorts the times of one kind (event times, or censoring times) and groups consecutive
ones, smallest first, until a group holds at least ``min_cell`` patients; the group is released
at its **largest** time (so a patient is only ever moved later, never earlier). A last group
smaller than ``min_cell`` joins the group before it. Times that already hold ``min_cell``
patients are released as they are, so on large data the released times are the exact ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from healthmesh.analytics import _model_fit as mf
from healthmesh.analytics.cohort import Cohort, SurvivalVariable
from healthmesh.analytics.sdk import Params
from healthmesh.errors import InvalidInput

Vector = npt.NDArray[np.float64]

TIMES = ("exact", "binned")


def parse_survival(params: Params) -> tuple[Cohort, SurvivalVariable]:
    """The ``cohort`` and the ``survival`` variable (a SurvivalVariable)."""
    cohort = mf.parse_cohort(params)
    survival = mf.parse_variable(params.get("survival"), "survival")
    if not isinstance(survival, SurvivalVariable):
        raise InvalidInput("'survival' must be a survival variable", location="survival")
    return cohort, survival


def parse_grid(params: Params) -> float | None:
    """The time grid: None for exact times, else the bin width in days (``bin_days``, default 30)
    when ``times`` is ``binned``."""
    times = params.get("times", "exact")
    if times not in TIMES:
        raise InvalidInput(f"'times' must be one of {', '.join(TIMES)}", location="times")
    if times == "exact":
        if "bin_days" in params:
            raise InvalidInput("'bin_days' needs times 'binned'", location="bin_days")
        return None
    return mf.parse_float(params, "bin_days", 30.0, 1.0, 3650.0)


def to_grid(times: Vector, bin_days: float | None) -> Vector:
    """Times on the hub's grid: bin ``((k-1)w, kw]`` is released at its end ``kw`` (0 stays 0)."""
    if bin_days is None:
        return times
    out: Vector = np.ceil(times / bin_days) * bin_days
    return out


def coarsen(times: Vector, min_cell: int) -> tuple[list[float], list[int]]:
    """Distinct released times and their counts, every count at least ``min_cell`` when the
    total is (see the module docstring). With fewer than ``min_cell`` times in all, one group
    of that size is returned and the guard refuses it."""
    if times.size == 0:
        return [], []
    values, counts = np.unique(times, return_counts=True)
    out_t: list[float] = []
    out_n: list[int] = []
    pending = 0
    for t, c in zip(values.tolist(), counts.tolist(), strict=True):
        pending += int(c)
        if pending >= min_cell:
            out_t.append(float(t))
            out_n.append(pending)
            pending = 0
    if pending:
        if out_n:
            out_t[-1] = float(values[-1])
            out_n[-1] += pending
        else:
            out_t, out_n = [float(values[-1])], [pending]
    return out_t, out_n


def check_survival(time: Vector, event: Vector) -> None:
    """InvalidInput when the node's survival columns are not times >= 0 with 0/1 events."""
    mf.check_finite(time, "the survival time")
    if np.any(time < 0) or not np.all((event == 0) | (event == 1)):
        raise InvalidInput("survival data must be times >= 0 with 0/1 events at this node")


def at_risk(times: Vector, parts: list[tuple[Any, Any]]) -> npt.NDArray[np.int64]:
    """For each of ``times``, the number with a released time at or after it, summed over
    ``parts`` given as (released times, counts)."""
    total = np.zeros(times.size, dtype=np.int64)
    for t, n in parts:
        t_arr = np.asarray(t, dtype=np.float64)
        n_arr = np.asarray(n, dtype=np.int64)
        after = np.concatenate([np.cumsum(n_arr[::-1])[::-1], [0]])
        total += after[np.searchsorted(t_arr, times, side="left")]
    return total
