"""Federated Pearson correlation (and covariance) matrix from cross moments.

Parameters: ``cohort``, ``variables`` (at least two design columns once categorical variables
are expanded by :func:`~healthmesh.analytics.cohort.columns`; numeric, binary or sex) and
optional ``bound`` (values clipped to [-bound, bound]; required under DP). Over complete cases
each node releases n, the column sums and the upper triangle of the cross-product matrix
(p + p(p+1)/2 numbers, never a row). The cohort and n pass the guard; with DP the sums and the
products (divided by ``bound``) are one noised vector.

Result: ``{"names", "n", "means", "covariance", "correlation"}`` (covariance unbiased; a
column without variance gets ``None`` correlations).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from healthmesh.analytics import variables as V
from healthmesh.analytics.arguments import (
    bound_of,
    clipped_design,
    cohort_of,
    guard_cohort,
    require_parts,
    variables_of,
)
from healthmesh.analytics.cohort import SurvivalVariable
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released
from healthmesh.errors import InvalidInput

MAX_COLUMNS = 30


def _check(params: Params) -> list[str]:
    variables = variables_of(params)
    if any(isinstance(v, SurvivalVariable) for v in variables):
        raise InvalidInput("parameter variables: survival variables are not allowed here")
    names = V.check_design(variables)
    if not 2 <= len(names) <= MAX_COLUMNS:
        raise InvalidInput(f"parameter variables: 2 to {MAX_COLUMNS} columns", location="variables")
    return names


def _validate(params: Params) -> None:
    cohort_of(params)
    _check(params)
    bound_of(params)


def _correlation(ctx: NodeContext, args: Params) -> Released:
    cohort, variables, bound = cohort_of(args), variables_of(args), bound_of(args)
    _check(args)
    guard_cohort(ctx, cohort)
    iu = np.triu_indices(len(V.check_design(variables)))
    if bound is None:
        cm = ctx.data.cross_moments(cohort, variables)
        n, sums, products = cm.n, cm.sums, cm.products
        ctx.guard.cells([n], what="complete case")
        flat = ctx.guard.release_sums([*sums.tolist(), *products[iu].tolist()], bound=math.inf)
    else:
        _, x = clipped_design(ctx, cohort, variables, bound)
        n, sums, products = x.shape[0], x.sum(axis=0), x.T @ x
        ctx.guard.cells([n], what="complete case")
        scaled = [*sums.tolist(), *(products[iu] / bound).tolist()]
        flat = ctx.guard.release_sums(scaled, bound=bound)
        p = len(sums)
        flat = flat[:p] + [v * bound for v in flat[p:]]
    p = len(sums)
    return {"n": round(ctx.guard.release_count(n)), "sums": flat[:p], "products": flat[p:]}


def _ratio(cov: float, scale: float) -> float | None:
    return float(np.clip(cov / scale, -1.0, 1.0)) if scale > 0 else None


def _central(ctx: HubContext, params: Params) -> dict[str, Any]:
    names = _check(params)
    p = len(names)
    parts = ctx.call("correlation", params)
    require_parts(ctx, parts)
    n = sum(part["n"] for part in parts.values())
    sums = np.sum([part["sums"] for part in parts.values()], axis=0)
    upper = np.sum([part["products"] for part in parts.values()], axis=0)
    products = np.zeros((p, p))
    products[np.triu_indices(p)] = upper
    products = products + np.triu(products, 1).T
    if n < 2:
        return {"names": names, "n": n, "means": None, "covariance": None, "correlation": None}
    means = sums / n
    cov = (products - np.outer(sums, sums) / n) / (n - 1)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    corr: list[list[float | None]] = [
        [_ratio(cov[i, j], sd[i] * sd[j]) for j in range(p)] for i in range(p)
    ]
    return {
        "names": names,
        "n": n,
        "means": means.tolist(),
        "covariance": cov.tolist(),
        "correlation": corr,
    }


ALGORITHM = Algorithm(
    name="correlation",
    summary="Pearson correlation and covariance matrix over complete cases",
    node_methods={"correlation": _correlation},
    central=_central,
    validate=_validate,
)
