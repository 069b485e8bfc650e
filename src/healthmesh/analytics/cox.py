"""Federated Cox proportional hazards (Breslow ties) by Newton–Raphson at the hub.

``strata: "node"`` (default): each node is its own stratum with its own baseline hazard (as in
WebDISCO and the usual "stratified Cox" for multi-site data), so the partial likelihood is a sum
over nodes of terms that need only the node's own risk sets. For the hub's coefficients each
node returns its log partial likelihood, score vector and information matrix (``p`` and
``p x p`` sums, never rows or times). Equals statsmodels ``PHReg(strata=node)`` on the pooled
data.

``strata: "none"``: one baseline hazard for all; each node returns risk-set sums at the hub's
grid of event times (see :mod:`healthmesh.analytics._cox_grid`), with times ``exact`` or
``binned`` (``bin_days``) and coarsened to min cell as for Kaplan–Meier. Equals ``PHReg`` on the
pooled data with the released times.

The hub adds the nodes' terms and takes a Newton step, halving it when the likelihood falls.
The risk-set sums are written here (numpy cumulative sums) because statsmodels does not expose
per-stratum score and information for a given coefficient vector without the data.

Parameters: ``cohort``, ``survival`` (survival variable), ``covariates`` (numeric or
categorical, no intercept), ``strata``, ``times``/``bin_days`` (strata none only),
``max_iter`` (default 25), ``tol`` (relative Newton step, 1e-8). Node guard: cohort (first
round), complete cases and events as cells, the GLM parameter limit (every round).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from healthmesh.analytics import _cox_grid as grid
from healthmesh.analytics import _model_fit as mf
from healthmesh.analytics import _survival as sv
from healthmesh.analytics._model_fit import Vector
from healthmesh.analytics.cohort import Variable
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released
from healthmesh.errors import InvalidInput

_MAX_HALVINGS = 20
STRATA = ("node", "none")
_HINT = "; a covariate may predict the event order perfectly (monotone likelihood)"
_ARGS = ("cohort", "survival", "covariates", "times", "bin_days")

#: the terms at one beta: released partials, log-likelihood (-inf on overflow), score, info
Terms = tuple[dict[str, Released], float, Vector, Vector]


def _parse(params: Params) -> tuple[Any, Any, list[Variable]]:
    cohort, survival = sv.parse_survival(params)
    covariates = mf.parse_covariates(params, reserved=[survival])
    if not covariates:
        raise InvalidInput("a Cox model needs at least one covariate", location="covariates")
    return cohort, survival, covariates


def _strata(params: Params) -> str:
    strata = params.get("strata", "node")
    if strata not in STRATA:
        raise InvalidInput(f"'strata' must be one of {', '.join(STRATA)}", location="strata")
    if strata == "node" and ("times" in params or "bin_days" in params):
        raise InvalidInput("'times' and 'bin_days' need strata 'none'", location="times")
    return str(strata)


def validate(params: Params) -> None:
    """Hub-side check of a study's parameters (InvalidInput naming the bad one)."""
    _parse(params)
    _strata(params)
    sv.parse_grid(params)
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


def _node_data(
    ctx: NodeContext, args: Params, *, first: bool
) -> tuple[Released, Vector, Vector, Vector]:
    """The node's survival design, guarded: (header to release, time, event, covariates)."""
    cohort, survival, covariates = _parse(args)
    ctx.guard.exact("a Cox fit")
    names, data = ctx.data.matrix(cohort, [survival, *covariates])
    mf.check_finite(data, "the model's data")
    time, event, x = data[:, 0], data[:, 1], data[:, 2:]
    sv.check_survival(time, event)
    if first:
        ctx.guard.cohort(ctx.data.members(cohort))
    n, events = x.shape[0], int(event.sum())
    ctx.guard.cells([n, events], what="complete cases and events")
    ctx.guard.glm(n, x.shape[1])
    return {"names": names[2:], "n": n, "events": events}, time, event, x


def node_newton(ctx: NodeContext, args: Params) -> Released:
    """strata node: the node's stratum terms at the hub's ``beta`` (None: first round, at 0)."""
    beta = args.get("beta")
    out, time, event, x = _node_data(ctx, args, first=beta is None)
    beta = mf.parse_beta(args, x.shape[1])
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        loglik, score, info = breslow(
            time, event, x, np.zeros(x.shape[1]) if beta is None else beta
        )
    if not (np.isfinite(loglik) and np.isfinite(score).all() and np.isfinite(info).all()):
        return {**out, "overflow": True}
    return {
        **out,
        "overflow": False,
        "loglik": loglik,
        "score": score.tolist(),
        "info": info.tolist(),
    }


def _released(ctx: NodeContext, args: Params, time: Vector, event: Vector) -> Vector:
    """The node's released times (strata none), every group of events and of censorings
    passing min cell (so risk sets differ by whole groups)."""
    released = grid.released_times(time, event, ctx.guard.min_cell, sv.parse_grid(args))
    for flag, what in ((1.0, "events at a time"), (0.0, "censored at a time")):
        _, counts = np.unique(released[event == flag], return_counts=True)
        ctx.guard.cells(counts.tolist(), what=what)
    return released


def node_event_times(ctx: NodeContext, args: Params) -> Released:
    """strata none, round 0: the node's released event times and events at each."""
    out, time, event, _ = _node_data(ctx, args, first=True)
    times, counts = grid.event_table(_released(ctx, args, time, event), event)
    return {**out, "event_times": times, "event_counts": counts}


def node_risk_sets(ctx: NodeContext, args: Params) -> Released:
    """strata none: risk-set sums at the hub's ``grid`` for its ``beta``."""
    out, time, event, x = _node_data(ctx, args, first=False)
    beta = mf.parse_beta(args, x.shape[1])
    if beta is None:
        raise InvalidInput("'beta' is required", location="beta")
    released = _released(ctx, args, time, event)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        sums = grid.risk_set_sums(released, event, x, beta, grid.parse_grid_times(args.get("grid")))
    finite = all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in sums.values())
    return {**out, "overflow": False, **sums} if finite else {**out, "overflow": True}


def central(ctx: HubContext, params: Params) -> dict[str, Any]:
    """The hub's Newton–Raphson over the nodes; the coefficient table with hazard ratios."""
    validate(params)
    _, _, covariates = _parse(params)
    max_iter = mf.parse_int(params, "max_iter", 25, 1, 200)
    tol = mf.parse_float(params, "tol", 1e-8, 1e-14, 1e-2)
    names = mf.design_names(covariates)
    args = {k: params[k] for k in _ARGS if k in params}
    strata = _strata(params)
    for _restart in range(len(ctx.nodes) + 1):
        members: dict[str, int] = {}  # node -> its rows, fixed by the first round
        if strata == "node":
            evaluate = _stratified(ctx, args, names, members)
        else:
            evaluate = _pooled_baseline(ctx, args, names, members)
        fit = _newton(evaluate, len(names), max_iter, tol)
        if fit is not None:
            parts, beta, info, loglik, iterations = fit
            return _result(parts, names, beta, info, loglik, iterations, strata)
    raise mf.no_nodes(ctx)


def _call(
    ctx: HubContext, method: str, args: Params, names: list[str], members: dict[str, int]
) -> dict[str, Released] | None:
    """One round; None when the set of nodes answering changed (a node refused: restart)."""
    parts = ctx.call(method, args)
    if not parts:
        raise mf.no_nodes(ctx)
    if members and set(parts) != set(members):
        return None
    mf.same_names(parts, names)
    mf.same_rows(parts, members)
    return parts


def _stratified(
    ctx: HubContext, args: Params, names: list[str], members: dict[str, int]
) -> Callable[[Vector | None], Terms | None]:
    def evaluate(beta: Vector | None) -> Terms | None:
        parts = _call(
            ctx, "newton", {**args, "beta": None if beta is None else beta.tolist()}, names, members
        )
        if parts is None:
            return None
        if any(p["overflow"] for p in parts.values()):
            return parts, -np.inf, np.zeros(0), np.zeros(0)
        loglik = float(sum(p["loglik"] for p in parts.values()))
        return parts, loglik, mf.sum_parts(parts, "score"), mf.sum_parts(parts, "info")

    return evaluate


def _pooled_baseline(
    ctx: HubContext, args: Params, names: list[str], members: dict[str, int]
) -> Callable[[Vector | None], Terms | None]:
    first = _call(ctx, "event_times", args, names, members)
    times = [] if first is None else [t for p in first.values() for t in p["event_times"]]
    grid_times = sorted(set(times))

    def evaluate(beta: Vector | None) -> Terms | None:
        b = np.zeros(len(names)) if beta is None else beta
        sent = {**args, "beta": b.tolist(), "grid": grid_times}
        parts = None if first is None else _call(ctx, "risk_sets", sent, names, members)
        if parts is None:
            return None
        if any(p["overflow"] for p in parts.values()):
            return parts, -np.inf, np.zeros(0), np.zeros(0)
        return parts, *grid.combine(list(parts.values()), b)

    return evaluate


def _newton(
    evaluate: Callable[[Vector | None], Terms | None], p: int, max_iter: int, tol: float
) -> tuple[dict[str, Released], Vector, Vector, float, int] | None:
    """Newton with step halving from 0; None when the nodes changed (restart)."""
    beta: Vector | None = None
    best: tuple[float, Vector] | None = None
    iterations, halvings = 0, 0
    while True:
        terms = evaluate(beta)
        if terms is None:
            return None
        parts, loglik, score, info = terms
        current = np.zeros(p) if beta is None else beta
        if best is not None and not loglik >= best[0] - 1e-12 * (1 + abs(best[0])):
            halvings += 1
            if halvings > _MAX_HALVINGS:
                raise InvalidInput("model did not converge: likelihood does not increase" + _HINT)
            beta = (current + best[1]) / 2.0
            continue
        if best is None and not np.isfinite(loglik):
            raise InvalidInput("model cannot be fitted: the likelihood overflows at 0")
        best, halvings = (loglik, current), 0
        new = current + mf.newton_step(info, score, hint=_HINT)
        if mf.converged(new - current, new, tol):
            return parts, new, info, loglik, iterations
        if iterations >= max_iter:
            raise InvalidInput(f"model did not converge in {max_iter} iterations" + _HINT)
        beta, iterations = new, iterations + 1


def _result(
    parts: dict[str, Released],
    names: list[str],
    beta: Vector,
    info: Vector,
    loglik: float,
    iterations: int,
    strata: str,
) -> dict[str, Any]:
    table = mf.coef_table(names, beta, mf.inverse(info))
    for row, b in zip(table, beta, strict=True):
        row["hazard_ratio"] = float(np.exp(b))
    return {
        "coefficients": table,
        "log_likelihood": loglik,
        "ties": "breslow",
        "strata": strata,
        "iterations": iterations,
        "converged": True,
        "n": int(sum(p["n"] for p in parts.values())),
        "events": int(sum(p["events"] for p in parts.values())),
        "n_by_node": {node: int(p["n"]) for node, p in parts.items()},
    }


ALGORITHM = Algorithm(
    "cox",
    "Cox proportional hazards (Breslow ties), stratified by node or with one baseline hazard",
    {"newton": node_newton, "event_times": node_event_times, "risk_sets": node_risk_sets},
    central,
    validate,
)
