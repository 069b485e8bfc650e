"""Reading algorithm parameters (at the hub and at nodes) and small shared node/hub steps.

Parameters arrive as JSON; these helpers turn them into the pydantic models of
:mod:`healthmesh.analytics.cohort`, raising :class:`~healthmesh.errors.InvalidInput` with the
parameter's name, and hold the steps every built-in algorithm repeats (guarding the cohort,
clipping values for differential privacy, refusing when every node refused).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import TypeAdapter, ValidationError

from healthmesh.analytics.cohort import Cohort, Criterion, Variable
from healthmesh.analytics.sdk import HubContext, NodeContext, Params, Released
from healthmesh.errors import DisclosureRisk, InvalidInput

_VARIABLE: TypeAdapter[Variable] = TypeAdapter(Variable)
_VARIABLES: TypeAdapter[list[Variable]] = TypeAdapter(list[Variable])
_CRITERIA: TypeAdapter[list[Criterion]] = TypeAdapter(list[Criterion])


def _bad(name: str, exc: ValidationError) -> InvalidInput:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in (name, *err["loc"]))
    return InvalidInput(f"parameter {where}: {err['msg']}", location=where)


def cohort_of(params: Params) -> Cohort:
    """``params["cohort"]`` (absent = every patient who did not refuse research use)."""
    try:
        return Cohort.model_validate(params.get("cohort") or {})
    except ValidationError as exc:
        raise _bad("cohort", exc) from None


def variable_of(params: Params, name: str = "variable") -> Variable:
    """One analysis variable."""
    if name not in params:
        raise InvalidInput(f"parameter {name} is required", location=name)
    try:
        return _VARIABLE.validate_python(params[name])
    except ValidationError as exc:
        raise _bad(name, exc) from None


def variables_of(params: Params, name: str = "variables") -> list[Variable]:
    """A list of analysis variables."""
    try:
        return _VARIABLES.validate_python(params.get(name))
    except ValidationError as exc:
        raise _bad(name, exc) from None


def criteria_of(params: Params, name: str = "criteria") -> list[Criterion]:
    """A list of cohort criteria (absent = empty)."""
    try:
        return _CRITERIA.validate_python(params.get(name) or [])
    except ValidationError as exc:
        raise _bad(name, exc) from None


def bound_of(params: Params) -> float | None:
    """``params["bound"]``: values are clipped to [-bound, bound] (needed for DP sums)."""
    raw = params.get("bound")
    if raw is None:
        return None
    number = isinstance(raw, int | float) and not isinstance(raw, bool)
    if not number or not math.isfinite(raw) or raw <= 0:
        raise InvalidInput("parameter bound: a finite positive number", location="bound")
    return float(raw)


def guard_cohort(ctx: NodeContext, cohort: Cohort) -> int:
    """Check the cohort with the guard (min cell, differencing); its size."""
    members = ctx.data.members(cohort)
    ctx.guard.cohort(members)
    return len(members)


def clipped_design(
    ctx: NodeContext, cohort: Cohort, variables: Sequence[Variable], bound: float
) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Complete-case design with every value clipped to [-bound, bound]."""
    names, x = ctx.data.matrix(cohort, variables)
    return names, np.clip(x, -bound, bound)


def require_parts(ctx: HubContext, parts: Mapping[str, Released]) -> None:
    """Refuse at the hub when no node released anything (naming the rules they gave)."""
    if not parts:
        rules = sorted(set(ctx.refused.values())) or ["no-nodes"]
        raise DisclosureRisk(f"{', '.join(rules)}: no node released a result")


def as_float(value: Any) -> float:
    """A released number back from JSON."""
    return float(value)
