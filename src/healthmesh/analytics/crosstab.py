"""Federated cross-tabulation of 1 to 3 categorical, binary or numeric variables.

Parameters: ``cohort`` and ``variables`` (1 to 3; survival variables are not allowed). Each
node releases its non-empty cells; the cohort passes the guard and so must every cell (a table
with a non-zero cell below the minimum cell size is refused whole, as DataSHIELD does). With
DP each cell is noised (L1 sensitivity 1: one patient is in one cell) and only the cells the
node has are released. Missing values are a cell of their own (key ``null``).

Result: ``{"variables": [names], "cells": [{"key": [values], "n": count}], "n": total}``,
cells sorted by key; per-node tables are not returned.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from healthmesh.analytics import variables as V
from healthmesh.analytics.arguments import cohort_of, guard_cohort, require_parts, variables_of
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released


def _validate(params: Params) -> None:
    cohort_of(params)
    V.check_crosstab(variables_of(params))


def _crosstab(ctx: NodeContext, args: Params) -> Released:
    cohort, variables = cohort_of(args), variables_of(args)
    V.check_crosstab(variables)
    guard_cohort(ctx, cohort)
    table = ctx.data.crosstab(cohort, variables)
    keys = sorted(table, key=_order)
    counts = [table[k] for k in keys]
    ctx.guard.cells(counts, what="cross-tabulation")
    released = ctx.guard.release_counts(counts, sensitivity=1.0)
    return {"cells": [[list(k), round(c)] for k, c in zip(keys, released, strict=True)]}


def _order(key: tuple[Any, ...]) -> tuple[tuple[bool, str, float], ...]:
    return tuple(
        (v is None, v if isinstance(v, str) else "", v if isinstance(v, int | float) else 0.0)
        for v in key
    )


def _central(ctx: HubContext, params: Params) -> dict[str, Any]:
    names = [v.name for v in variables_of(params)]
    parts = ctx.call("crosstab", params)
    require_parts(ctx, parts)
    total: dict[tuple[Any, ...], int] = defaultdict(int)
    for part in parts.values():
        for key, n in part["cells"]:
            total[tuple(key)] += n
    keys = sorted(total, key=_order)
    return {
        "variables": names,
        "cells": [{"key": list(k), "n": total[k]} for k in keys],
        "n": sum(total.values()),
    }


ALGORITHM = Algorithm(
    name="crosstab",
    summary="counts of cohort patients by the values of 1 to 3 variables",
    node_methods={"crosstab": _crosstab},
    central=_central,
    validate=_validate,
)
