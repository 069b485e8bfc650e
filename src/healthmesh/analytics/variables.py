"""Analysis variables: one value per patient, checks of variable lists, and the plain
aggregations (moments, histogram, counts at thresholds, cross moments) over those values.

The value rules are normative (see :mod:`healthmesh.analytics.memory_data`); the aggregation
helpers are shared so that every :class:`~healthmesh.analytics.data.NodeData` that ends up with
values in Python aggregates them the same way.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from healthmesh.analytics.cohort import (
    AgeVariable,
    ConditionCriterion,
    ConditionVariable,
    MedicationCriterion,
    MedicationVariable,
    ObservationCriterion,
    ObservationVariable,
    SexVariable,
    SurvivalVariable,
    Variable,
    columns,
)
from healthmesh.analytics.data import CrossMoments, Moments
from healthmesh.analytics.resource_fields import (
    Resource,
    age_years,
    has_code,
    in_window,
    parse_date,
    quantity_value,
    resource_date,
    resource_instant,
)
from healthmesh.errors import InvalidInput

MEDICATION_TYPES = ("MedicationRequest", "MedicationDispense")
Coded = (
    ConditionCriterion
    | MedicationCriterion
    | ObservationCriterion
    | ConditionVariable
    | MedicationVariable
    | ObservationVariable
)
#: one variable's value for one patient: a number, a category, (time, event), or None (missing)
Value = float | str | tuple[float, float] | None
_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


class PatientResources(Protocol):
    def patient(self, pid: str) -> Resource: ...

    def resources_of(self, pid: str, *types: str) -> list[Resource]: ...


def in_range(value: float, low: float | None, high: float | None) -> bool:
    """Inclusive range with open ends."""
    return (low is None or value >= low) and (high is None or value <= high)


def gender(patient: Resource) -> str:
    """``Patient.gender`` (missing or unrecognised = ``unknown``)."""
    g = patient.get("gender")
    return g if g in ("female", "male", "other", "unknown") else "unknown"


def encounter_class(encounter: Resource) -> str | None:
    """``Encounter.class.code`` (a Coding in R4)."""
    c = encounter.get("class")
    code = c.get("code") if isinstance(c, dict) else None
    return code if isinstance(code, str) else None


def _matching(data: PatientResources, pid: str, types: tuple[str, ...], v: Coded) -> list[Resource]:
    return [
        r
        for r in data.resources_of(pid, *types)
        if has_code(r, v.codes) and in_window(resource_date(r), v.start, v.end)
    ]


def _observation(data: PatientResources, pid: str, v: ObservationVariable) -> float | None:
    found = [
        (resource_instant(o) or _EPOCH, str(o.get("id")), val)
        for o in _matching(data, pid, ("Observation",), v)
        if (val := quantity_value(o)) is not None
    ]
    if not found:
        return None
    vals = [f[2] for f in found]
    if v.pick == "mean":
        return math.fsum(vals) / len(vals)
    if v.pick == "min":
        return min(vals)
    if v.pick == "max":
        return max(vals)
    found.sort(key=lambda f: (f[0], f[1]))
    return found[-1][2] if v.pick == "last" else found[0][2]


def _survival(data: PatientResources, pid: str, v: SurvivalVariable) -> tuple[float, float] | None:
    starts = [
        d
        for r in data.resources_of(pid, "Condition")
        if has_code(r, v.start_codes) and (d := resource_date(r)) is not None
    ]
    if not starts:
        return None
    start = min(starts)
    patient = data.patient(pid)
    death = parse_date(patient.get("deceasedDateTime"))
    if death is None and patient.get("deceasedBoolean") is True:
        return None
    died = death is not None and death <= v.censor_date
    end, event = (death, 1.0) if died and death is not None else (v.censor_date, 0.0)
    if end < start:
        return None
    return float((end - start).days), event


def value(data: PatientResources, pid: str, v: Variable, reference_date: dt.date) -> Value:
    """The value of variable ``v`` for patient ``pid`` (see the module rules)."""
    if isinstance(v, AgeVariable):
        birth = parse_date(data.patient(pid).get("birthDate"))
        return None if birth is None else float(age_years(birth, reference_date))
    if isinstance(v, SexVariable):
        g = gender(data.patient(pid))
        return g if g in v.levels else None
    if isinstance(v, ConditionVariable):
        return 1.0 if _matching(data, pid, ("Condition",), v) else 0.0
    if isinstance(v, MedicationVariable):
        return 1.0 if _matching(data, pid, MEDICATION_TYPES, v) else 0.0
    if isinstance(v, ObservationVariable):
        return _observation(data, pid, v)
    if isinstance(v, SurvivalVariable):
        return _survival(data, pid, v)
    raise TypeError(f"unknown variable {type(v).__name__}")


def rows(
    data: PatientResources, pids: Sequence[str], variables: Sequence[Variable], ref: dt.date
) -> list[list[Value]]:
    """One row of values per patient, in the order of ``pids``."""
    return [[value(data, pid, v, ref) for v in variables] for pid in pids]


def expand(variables: Sequence[Variable], row: Sequence[Value]) -> list[float] | None:
    """A row as design columns (:func:`~healthmesh.analytics.cohort.columns`); None if any value
    is missing."""
    out: list[float] = []
    for v, val in zip(variables, row, strict=True):
        if val is None:
            return None
        if isinstance(v, SexVariable):
            out.extend(1.0 if val == lvl else 0.0 for lvl in v.levels[1:])
        elif isinstance(val, tuple):
            out.extend(val)
        elif isinstance(val, float):
            out.append(val)
        else:
            raise InvalidInput(f"variable {v.name!r} is not numeric")
    return out


# ---- checks -------------------------------------------------------------------------------


def _check_levels(variables: Sequence[Variable]) -> None:
    for v in variables:
        if isinstance(v, SexVariable) and (not v.levels or len(set(v.levels)) != len(v.levels)):
            raise InvalidInput(f"variable {v.name!r}: levels must be distinct and not empty")


def check_crosstab(variables: Sequence[Variable]) -> None:
    """1 to 3 distinct non-survival variables."""
    if not 1 <= len(variables) <= 3:
        raise InvalidInput("a cross-tabulation takes 1 to 3 variables")
    if len({v.name for v in variables}) != len(variables):
        raise InvalidInput("variable names must be distinct")
    if any(isinstance(v, SurvivalVariable) for v in variables):
        raise InvalidInput("survival variables cannot be cross-tabulated")
    _check_levels(variables)


def check_numeric(variable: Variable) -> None:
    """A numeric or binary variable (not categorical, not survival)."""
    if isinstance(variable, SexVariable | SurvivalVariable):
        raise InvalidInput(f"variable {variable.name!r} is not numeric")


def check_design(variables: Sequence[Variable]) -> list[str]:
    """At least one variable with distinct column names; returns the column names."""
    if not variables:
        raise InvalidInput("at least one variable is required")
    _check_levels(variables)
    names = [c for v in variables for c in columns(v)]
    if len(set(names)) != len(names):
        raise InvalidInput("variable column names must be distinct")
    return names


def check_edges(edges: Sequence[float]) -> list[float]:
    """At least two finite, strictly increasing edges."""
    out = [float(e) for e in edges]
    if len(out) < 2 or not all(math.isfinite(e) for e in out):
        raise InvalidInput("histogram edges: at least two finite numbers")
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise InvalidInput("histogram edges must increase strictly")
    return out


# ---- aggregations ---------------------------------------------------------------------------


def moments_of(values: Sequence[float]) -> Moments:
    """Moments of values (min/max None when empty)."""
    return Moments(
        n=len(values),
        total=math.fsum(values),
        total_sq=math.fsum(x * x for x in values),
        min=min(values) if values else None,
        max=max(values) if values else None,
    )


def histogram_of(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Bins [e_i, e_i+1), last closed; values outside are not counted."""
    e = check_edges(edges)
    counts = [0] * (len(e) - 1)
    for x in values:
        if e[0] <= x <= e[-1]:
            i = int(np.searchsorted(e, x, side="right")) - 1
            counts[min(i, len(counts) - 1)] += 1
    return counts


def count_le_of(values: Sequence[float], thresholds: Sequence[float]) -> list[int]:
    """Number of values <= each threshold."""
    ts = [float(t) for t in thresholds]
    if any(math.isnan(t) for t in ts):
        raise InvalidInput("thresholds must be numbers")
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return [int(np.searchsorted(ordered, t, side="right")) for t in ts]


def cross_moments_of(names: list[str], x: npt.NDArray[np.float64]) -> CrossMoments:
    """Column sums and the cross-product matrix of a complete-case design."""
    return CrossMoments(names=names, n=int(x.shape[0]), sums=x.sum(axis=0), products=x.T @ x)
