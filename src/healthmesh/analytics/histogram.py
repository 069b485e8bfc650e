"""Federated histogram over common bin edges chosen at the hub.

Parameters: ``cohort``, ``variable`` (numeric or binary) and ``edges`` (at least two, strictly
increasing; bin i is [edges[i], edges[i+1]), the last bin closed; values outside are not
counted). The hub sends the same edges to every node. Each node releases its bin counts; the
cohort and every non-zero bin must reach the minimum cell size (else the node refuses); with DP
the bins are noised (L1 sensitivity 1).

Result: ``{"edges": [...], "counts": [...], "n": total counted}``.
"""

from __future__ import annotations

from typing import Any

from healthmesh.analytics import variables as V
from healthmesh.analytics.arguments import cohort_of, guard_cohort, require_parts, variable_of
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released
from healthmesh.errors import InvalidInput

MAX_BINS = 1000


def _edges(params: Params) -> list[float]:
    raw = params.get("edges")
    if not isinstance(raw, list) or not all(
        isinstance(e, int | float) and not isinstance(e, bool) for e in raw
    ):
        raise InvalidInput("parameter edges: a list of numbers", location="edges")
    if len(raw) > MAX_BINS + 1:
        raise InvalidInput(f"parameter edges: at most {MAX_BINS} bins", location="edges")
    return V.check_edges(raw)


def _validate(params: Params) -> None:
    cohort_of(params)
    V.check_numeric(variable_of(params))
    _edges(params)


def _histogram(ctx: NodeContext, args: Params) -> Released:
    cohort, variable, edges = cohort_of(args), variable_of(args), _edges(args)
    V.check_numeric(variable)
    guard_cohort(ctx, cohort)
    counts = ctx.data.histogram(cohort, variable, edges)
    ctx.guard.cells(counts, what="histogram bin")
    return {"counts": [round(c) for c in ctx.guard.release_counts(counts, sensitivity=1.0)]}


def _central(ctx: HubContext, params: Params) -> dict[str, Any]:
    edges = _edges(params)
    parts = ctx.call("histogram", {**params, "edges": edges})
    require_parts(ctx, parts)
    counts = [sum(p["counts"][i] for p in parts.values()) for i in range(len(edges) - 1)]
    return {"edges": edges, "counts": counts, "n": sum(counts)}


ALGORITHM = Algorithm(
    name="histogram",
    summary="counts of a numeric variable in common bins",
    node_methods={"histogram": _histogram},
    central=_central,
    validate=_validate,
)
