"""Federated Cox proportional hazards, stratified by node (Breslow ties), by Newton–Raphson.

Each node is its own stratum with its own baseline hazard (as in WebDISCO and the usual
"stratified Cox" for multi-site data), so the partial likelihood is a sum over nodes of terms
that need only the node's own risk sets. For the hub's coefficients each node returns its
log partial likelihood, score vector and information matrix (``p`` and ``p x p`` sums, never
rows or times); the hub adds them and takes a Newton step, halving it when the likelihood
falls. The fit equals statsmodels ``PHReg(..., strata=node, ties="breslow")`` on the pooled
data. The risk-set sums are written here (numpy cumulative sums) because statsmodels does not
expose per-stratum score and information for a given coefficient vector without its data.

Parameters: ``cohort``, ``survival`` (survival variable), ``covariates`` (numeric or
categorical, no intercept), ``max_iter`` (default 25), ``tol`` (relative Newton step, 1e-8).
Node guard: cohort (first round), complete cases and events as cells, the GLM parameter limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthmesh.analytics import _model_fit as mf
from healthmesh.analytics import _survival as sv
from healthmesh.analytics._model_fit import Vector
from healthmesh.analytics.cohort import Variable
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released
from healthmesh.errors import InvalidInput

_MAX_HALVINGS = 20


def _parse(params: Params) -> tuple[Any, Any, list[Variable]]:
    cohort, survival = sv.parse_survival(params)
    covariates = mf.parse_covariates(params, reserved=[survival])
    if not covariates:
        raise InvalidInput("a Cox model needs at least one covariate", location="covariates")
    return cohort, survival, covariates


def validate(params: Params) -> None:
    """Hub-side check of a study's parameters (InvalidInput naming the bad one)."""
    _parse(params)
    mf.parse_int(params, "max_iter", 25, 1, 200)
    mf.parse_float(params, "tol", 1e-8, 1e-14, 1e-2)


def breslow(time: Vector, event: Vector, x: Vector, beta: Vector) -> tuple[float, Vector, Vector]:
    """Log partial likelihood, score and information of one stratum (Breslow ties)."""
    order = np.argsort(time, kind="stable")
    time, event, x = time[order], event[order], x[order]
    eta = x @ beta
    shift = float(eta.max(initial=0.0))
    w = np.exp(eta - shift)
    # risk set of the i-th sorted row: rows from the first with the same time to the end
    s0 = np.cumsum(w[::-1])[::-1]
    s1 = np.cumsum((w[:, None] * x)[::-1], axis=0)[::-1]
    s2 = np.cumsum((w[:, None, None] * x[:, :, None] * x[:, None, :])[::-1], axis=0)[::-1]
    times, first, inverse = np.unique(time, return_index=True, return_inverse=True)
    d = np.bincount(inverse, weights=event, minlength=times.size)
    xe = np.zeros((times.size, x.shape[1]))
    np.add.at(xe, inverse, x * event[:, None])
    k = np.flatnonzero(d > 0)
    dk, f = d[k], first[k]
    mean = s1[f] / s0[f][:, None]
    loglik = float(np.sum(eta * event) - np.sum(dk * (np.log(s0[f]) + shift)))
    score = xe[k].sum(axis=0) - (dk[:, None] * mean).sum(axis=0)
    cov = s2[f] / s0[f][:, None, None] - mean[:, :, None] * mean[:, None, :]
    info = (dk[:, None, None] * cov).sum(axis=0)
    return loglik, score, info


def node_newton(ctx: NodeContext, args: Params) -> Released:
    """The node's stratum terms at the hub's ``beta`` (None: the first round, at 0)."""
    cohort, survival, covariates = _parse(args)
    names, data = ctx.data.matrix(cohort, [survival, *covariates])
    mf.check_finite(data, "the model's data")
    time, event, x = data[:, 0], data[:, 1], data[:, 2:]
    sv.check_survival(time, event)
    n, p = x.shape
    beta = mf.parse_beta(args, p)
    if beta is None:
        ctx.guard.cohort(ctx.data.members(cohort))
        beta = np.zeros(p)
    events = int(event.sum())
    ctx.guard.cells([n, events], what="complete cases and events")
    ctx.guard.glm(n, p)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        loglik, score, info = breslow(time, event, x, beta)
    out: Released = {"names": names[2:], "n": n, "events": events}
    if not (np.isfinite(loglik) and np.isfinite(score).all() and np.isfinite(info).all()):
        return {**out, "overflow": True}
    return {
        **out,
        "overflow": False,
        "loglik": loglik,
        "score": score.tolist(),
        "info": info.tolist(),
    }


def central(ctx: HubContext, params: Params) -> dict[str, Any]:
    """The hub's Newton–Raphson over the node strata; the coefficient table (hazard ratios)."""
    validate(params)
    _, _, covariates = _parse(params)
    max_iter = mf.parse_int(params, "max_iter", 25, 1, 200)
    tol = mf.parse_float(params, "tol", 1e-8, 1e-14, 1e-2)
    names = mf.design_names(covariates)
    for _restart in range(len(ctx.nodes) + 1):
        fit = _fit(ctx, params, names, max_iter, tol)
        if fit is not None:
            return fit
    raise mf.no_nodes(ctx)


def _round(ctx: HubContext, params: Params, beta: Vector | None) -> dict[str, Released]:
    args = {k: params[k] for k in ("cohort", "survival", "covariates") if k in params}
    args["beta"] = None if beta is None else beta.tolist()
    parts = ctx.call("newton", args)
    if not parts:
        raise mf.no_nodes(ctx)
    return parts


def _fit(
    ctx: HubContext, params: Params, names: list[str], max_iter: int, tol: float
) -> dict[str, Any] | None:
    """Newton with step halving; None when the set of nodes changed (a node refused): restart."""
    hint = "; a covariate may predict the event order perfectly (monotone likelihood)"
    beta: Vector | None = None
    best: tuple[float, Vector] | None = None
    members: set[str] | None = None
    iterations, halvings = 0, 0
    while True:
        parts = _round(ctx, params, beta)
        members = members or set(parts)
        if set(parts) != members:
            return None
        mf.same_names(parts, names)
        current = np.zeros(len(names)) if beta is None else beta
        if any(p["overflow"] for p in parts.values()):
            loglik = -np.inf
        else:
            loglik = float(sum(p["loglik"] for p in parts.values()))
        if best is not None and not loglik >= best[0] - 1e-12 * (1 + abs(best[0])):
            halvings += 1
            if halvings > _MAX_HALVINGS:
                raise InvalidInput("model did not converge: likelihood does not increase" + hint)
            beta = (current + best[1]) / 2.0
            continue
        if best is None and not np.isfinite(loglik):
            raise InvalidInput("model cannot be fitted: the likelihood overflows at 0")
        best, halvings = (loglik, current), 0
        info = mf.sum_parts(parts, "info")
        new = current + mf.newton_step(info, mf.sum_parts(parts, "score"), hint=hint)
        if mf.converged(new - current, new, tol):
            return _result(parts, names, new, info, loglik, iterations)
        if iterations >= max_iter:
            raise InvalidInput(f"model did not converge in {max_iter} iterations" + hint)
        beta, iterations = new, iterations + 1


def _result(
    parts: dict[str, Released],
    names: list[str],
    beta: Vector,
    info: Vector,
    loglik: float,
    iterations: int,
) -> dict[str, Any]:
    table = mf.coef_table(names, beta, mf.inverse(info))
    for row in table:
        row["hazard_ratio"] = float(np.exp(float(row["estimate"])))
    return {
        "coefficients": table,
        "log_likelihood": loglik,
        "ties": "breslow",
        "strata": "node",
        "iterations": iterations,
        "converged": True,
        "n": int(sum(p["n"] for p in parts.values())),
        "events": int(sum(p["events"] for p in parts.values())),
        "n_by_node": {node: int(p["n"]) for node, p in parts.items()},
    }


ALGORITHM = Algorithm(
    "cox",
    "Cox proportional hazards stratified by node (Breslow ties), exact federated Newton–Raphson",
    {"newton": node_newton},
    central,
    validate,
)
