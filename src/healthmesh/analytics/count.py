"""Federated cohort count, optionally split by extra criteria.

Parameters: ``cohort`` (a :class:`~healthmesh.analytics.cohort.Cohort`; absent = every
patient) and optional ``criteria`` (a list of criteria). Each node releases the cohort's size
and, per criterion, the size of the cohort restricted to it; every one of these cohorts passes
the guard (minimum cell size, differencing), and with DP the vector is noised once with L1
sensitivity ``1 + len(criteria)``.

Counts are whole numbers (with DP, noised ones, possibly negative for tiny cohorts).

Result: ``{"n": total, "by_node": {node: n}, "criteria": [total per criterion]}``.
"""

from __future__ import annotations

from typing import Any

from healthmesh.analytics.arguments import cohort_of, criteria_of, guard_cohort, require_parts
from healthmesh.analytics.cohort import Cohort
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released
from healthmesh.errors import InvalidInput

MAX_CRITERIA = 20


def _validate(params: Params) -> None:
    cohort_of(params)
    if len(criteria_of(params)) > MAX_CRITERIA:
        raise InvalidInput(f"parameter criteria: at most {MAX_CRITERIA}", location="criteria")


def _count(ctx: NodeContext, args: Params) -> Released:
    cohort = cohort_of(args)
    sizes = [guard_cohort(ctx, cohort)]
    for crit in criteria_of(args):
        sub = Cohort(
            include=[*cohort.include, crit],
            exclude=cohort.exclude,
            reference_date=cohort.reference_date,
        )
        sizes.append(guard_cohort(ctx, sub))
    released = [round(c) for c in ctx.guard.release_counts(sizes, sensitivity=len(sizes))]
    return {"n": released[0], "criteria": released[1:]}


def _central(ctx: HubContext, params: Params) -> dict[str, Any]:
    parts = ctx.call("count", params)
    require_parts(ctx, parts)
    k = len(criteria_of(params))
    return {
        "n": sum(p["n"] for p in parts.values()),
        "by_node": {node: p["n"] for node, p in sorted(parts.items())},
        "criteria": [sum(p["criteria"][i] for p in parts.values()) for i in range(k)],
    }


ALGORITHM = Algorithm(
    name="count",
    summary="number of patients in a cohort (and per extra criterion)",
    node_methods={"count": _count},
    central=_central,
    validate=_validate,
)
