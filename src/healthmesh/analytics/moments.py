"""Federated mean, variance and standard deviation of one numeric (or binary) variable.

Parameters: ``cohort``, ``variable`` and optional ``bound`` (values clipped to [-bound, bound]
before summing; required when the node applies differential privacy). Each node releases the
number of non-missing values ``n``, their sum and their sum of squares — never a value, and
never the minimum or maximum (they are individuals' values; this algorithm has no option to
release them). The cohort and ``n`` pass the guard; with DP ``n`` is a noised count and the two
sums one noised vector.

Result: ``{"n", "mean", "variance", "sd"}`` (variance unbiased, ``None`` when n < 2).
"""

from __future__ import annotations

import math
from typing import Any

from healthmesh.analytics import variables as V
from healthmesh.analytics.arguments import (
    bound_of,
    clipped_design,
    cohort_of,
    guard_cohort,
    require_parts,
    variable_of,
)
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released


def _validate(params: Params) -> None:
    cohort_of(params)
    V.check_numeric(variable_of(params))
    bound_of(params)


def _moments(ctx: NodeContext, args: Params) -> Released:
    cohort, variable, bound = cohort_of(args), variable_of(args), bound_of(args)
    V.check_numeric(variable)
    guard_cohort(ctx, cohort)
    if bound is None:
        m = ctx.data.moments(cohort, variable)
        n, total, total_sq = m.n, m.total, m.total_sq
        ctx.guard.cells([n], what="non-missing value")
        sums = ctx.guard.release_sums([total, total_sq], bound=math.inf)
    else:
        _, x = clipped_design(ctx, cohort, [variable], bound)
        n, total, total_sq = x.shape[0], math.fsum(x[:, 0]), math.fsum(x[:, 0] ** 2)
        ctx.guard.cells([n], what="non-missing value")
        # both sums move by at most `bound` per patient once the squares are divided by it
        scaled = ctx.guard.release_sums([total, total_sq / bound], bound=bound)
        sums = [scaled[0], scaled[1] * bound]
    return {"n": round(ctx.guard.release_count(n)), "sum": sums[0], "sum_sq": sums[1]}


def pooled(n: float, total: float, total_sq: float) -> dict[str, Any]:
    """Mean, unbiased variance and sd from pooled sums."""
    if n <= 0:
        return {"n": n, "mean": None, "variance": None, "sd": None}
    mean = total / n
    if n < 2:
        return {"n": n, "mean": mean, "variance": None, "sd": None}
    variance = max((total_sq - total * total / n) / (n - 1), 0.0)
    return {"n": n, "mean": mean, "variance": variance, "sd": math.sqrt(variance)}


def _central(ctx: HubContext, params: Params) -> dict[str, Any]:
    parts = ctx.call("moments", params)
    require_parts(ctx, parts)
    n = sum(p["n"] for p in parts.values())
    total = math.fsum(p["sum"] for p in parts.values())
    total_sq = math.fsum(p["sum_sq"] for p in parts.values())
    return pooled(n, total, total_sq)


ALGORITHM = Algorithm(
    name="moments",
    summary="mean, variance and standard deviation of a numeric variable",
    node_methods={"moments": _moments},
    central=_central,
    validate=_validate,
)
