"""Federated generalised linear model (binomial/logit, poisson/log, gaussian/identity) by IRLS.

Exact: the hub's Newton (IRLS) iteration uses only sums over patients, so each node returns, for
the hub's current coefficients, ``X'WX``, ``X'Wz``, its deviance, Pearson chi-square and
log-likelihood; the hub adds them and solves. The fit equals a GLM on the pooled data (statsmodels
``GLM``) to rounding. Families (link, variance, deviance, starting values) are statsmodels'; the
federated split and the hub loop are written here because no library runs IRLS across sites.

Parameters: ``cohort``, ``outcome`` (numeric variable: 0/1 for binomial, counts for poisson),
``covariates`` (numeric or categorical variables; an intercept is always added), ``family``,
``max_iter`` (default 25) and ``tol`` (relative Newton step, default 1e-8; the returned
coefficients are one Newton step past it, so they are accurate to rounding).

Disclosure control at each node: the cohort guard (min cell, differencing) in the first round,
the complete-case count as a cell and the GLM parameter limit (``p <= ratio * n``) every round.
Only ``p x p`` sums leave a node, never rows. Exact models take no differential privacy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from statsmodels.genmod import families

from healthmesh.analytics import _model_fit as mf
from healthmesh.analytics._model_fit import Vector
from healthmesh.analytics.cohort import SexVariable, SurvivalVariable, Variable
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released
from healthmesh.errors import InvalidInput

FAMILIES = ("binomial", "poisson", "gaussian")
INTERCEPT = "intercept"

#: fitted probabilities this close to 0 or 1 signal (quasi-)complete separation
_BOUNDARY = 1e-10
#: halvings of a Newton step whose deviance went up before giving up
_MAX_HALVINGS = 20


def _family(name: str) -> families.Family:
    if name == "binomial":
        return families.Binomial()
    if name == "poisson":
        return families.Poisson()
    return families.Gaussian()


def _parse(params: Params) -> tuple[Any, Variable, list[Variable], str]:
    cohort = mf.parse_cohort(params)
    outcome = mf.parse_variable(params.get("outcome"), "outcome")
    if isinstance(outcome, SexVariable | SurvivalVariable):
        raise InvalidInput("the outcome must be a numeric or 0/1 variable", location="outcome")
    covariates = mf.parse_covariates(params, reserved=[outcome])
    family = params.get("family", "binomial")
    if family not in FAMILIES:
        raise InvalidInput(f"'family' must be one of {', '.join(FAMILIES)}", location="family")
    return cohort, outcome, covariates, str(family)


def validate(params: Params) -> None:
    """Hub-side check of a study's parameters (InvalidInput naming the bad one)."""
    _parse(params)
    mf.parse_int(params, "max_iter", 25, 1, 200)
    mf.parse_float(params, "tol", 1e-8, 1e-14, 1e-2)


def _check_outcome(family: str, y: Vector) -> None:
    if family == "binomial" and not np.all((y == 0) | (y == 1)):
        raise InvalidInput("a binomial outcome must be 0/1")
    if family == "poisson" and np.any(y < 0):
        raise InvalidInput("a poisson outcome must be non-negative")


def node_irls(ctx: NodeContext, args: Params) -> Released:
    """One IRLS round at a node: its sums for the hub's ``beta`` (None: starting values)."""
    cohort, outcome, covariates, family_name = _parse(args)
    ctx.guard.exact("a GLM fit")
    names, data = ctx.data.matrix(cohort, [outcome, *covariates])
    mf.check_finite(data, "the model's data")
    n, p = data.shape[0], data.shape[1]  # outcome column + covariates = p with the intercept
    beta = mf.parse_beta(args, p)
    if beta is None:
        ctx.guard.cohort(ctx.data.members(cohort))
    ctx.guard.cells([n], what="complete cases")
    ctx.guard.glm(n, p)
    y = data[:, 0]
    x = np.column_stack([np.ones(n), data[:, 1:]])
    _check_outcome(family_name, y)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        return _sums(_family(family_name), y, x, beta, [INTERCEPT, *names[1:]])


def _sums(
    fam: families.Family, y: Vector, x: Vector, beta: Vector | None, names: list[str]
) -> Released:
    """The node's IRLS sums at ``beta``; only ``overflow`` when they are not finite there."""
    if beta is None:
        mu = fam.starting_mu(y)
        eta = fam.predict(mu)
    else:
        eta = x @ beta
        mu = fam.fitted(eta)
    w = fam.weights(mu)
    z = eta + (y - mu) * fam.link.deriv(mu)
    xw = x * w[:, None]
    xtwx, xtwz = xw.T @ x, xw.T @ z
    out: Released = {"names": names, "n": len(y), "overflow": False}
    if beta is not None:
        binomial = isinstance(fam, families.Binomial)
        out["deviance"] = float(fam.deviance(y, mu))
        out["pearson"] = float(np.sum((y - mu) ** 2 / fam.variance(mu)))
        out["loglik"] = None if isinstance(fam, families.Gaussian) else float(fam.loglike(y, mu))
        out["boundary"] = bool(binomial and np.any((mu < _BOUNDARY) | (mu > 1 - _BOUNDARY)))
        if not np.isfinite([out["deviance"], out["pearson"], out["loglik"] or 0.0]).all():
            return {"names": names, "n": len(y), "overflow": True}
    if not (np.isfinite(xtwx).all() and np.isfinite(xtwz).all()):
        return {"names": names, "n": len(y), "overflow": True}
    out["xtwx"], out["xtwz"] = xtwx.tolist(), xtwz.tolist()
    return out


def _round(
    ctx: HubContext, params: Params, beta: np.ndarray[Any, Any] | None
) -> dict[str, Released]:
    args = {k: params[k] for k in ("cohort", "outcome", "covariates", "family") if k in params}
    args["beta"] = None if beta is None else beta.tolist()
    parts = ctx.call("irls", args)
    if not parts:
        raise mf.no_nodes(ctx)
    return parts


def central(ctx: HubContext, params: Params) -> dict[str, Any]:
    """The hub's IRLS loop over the nodes; the fitted model with its coefficient table."""
    validate(params)
    _, _, covariates, family = _parse(params)
    max_iter = mf.parse_int(params, "max_iter", 25, 1, 200)
    tol = mf.parse_float(params, "tol", 1e-8, 1e-14, 1e-2)
    names = [INTERCEPT, *mf.design_names(covariates)]
    for _restart in range(len(ctx.nodes) + 1):
        fit = _fit(ctx, params, names, family, max_iter, tol)
        if fit is not None:
            return fit
    raise mf.no_nodes(ctx)


def _fit(
    ctx: HubContext, params: Params, names: list[str], family: str, max_iter: int, tol: float
) -> dict[str, Any] | None:
    """IRLS with step halving; None when the set of nodes changed (a node refused): restart."""
    parts = _round(ctx, params, None)
    members, rows = set(parts), dict[str, int]()
    mf.same_names(parts, names)
    mf.same_rows(parts, rows)
    if any(p["overflow"] for p in parts.values()):
        raise InvalidInput("model cannot be fitted: the outcome overflows its family")
    hint = ""
    beta = mf.newton_step(mf.sum_parts(parts, "xtwx"), mf.sum_parts(parts, "xtwz"))
    best: tuple[float, np.ndarray[Any, Any]] | None = None
    iterations, halvings = 1, 0
    while True:
        parts = _round(ctx, params, beta)
        if set(parts) != members:
            return None
        mf.same_rows(parts, rows)
        overflow = any(p["overflow"] for p in parts.values())
        dev = np.inf if overflow else float(sum(p["deviance"] for p in parts.values()))
        if any(p.get("boundary") for p in parts.values()):
            hint = "; fitted probabilities are 0 or 1: perfect or quasi-complete separation"
        if overflow or (best is not None and not dev <= best[0] * (1 + 1e-12) + 1e-12):
            if best is None:
                raise InvalidInput("model cannot be fitted: the first step overflows" + hint)
            halvings += 1
            if halvings > _MAX_HALVINGS:
                raise InvalidInput("model did not converge: deviance does not decrease" + hint)
            beta = (beta + best[1]) / 2.0
            continue
        best, halvings = (dev, beta), 0
        info = mf.sum_parts(parts, "xtwx")
        new = mf.newton_step(info, mf.sum_parts(parts, "xtwz"), hint=hint)
        if mf.converged(new - beta, new, tol):
            return _result(parts, names, family, new, info, dev, iterations)
        if iterations >= max_iter:
            raise InvalidInput(f"model did not converge in {max_iter} iterations" + hint)
        beta, iterations = new, iterations + 1


def _result(
    parts: dict[str, Released],
    names: list[str],
    family: str,
    beta: np.ndarray[Any, Any],
    info: np.ndarray[Any, Any],
    deviance: float,
    iterations: int,
) -> dict[str, Any]:
    n = int(sum(p["n"] for p in parts.values()))
    k = len(names)
    pearson = float(sum(p["pearson"] for p in parts.values()))
    scale = pearson / (n - k) if family == "gaussian" else 1.0
    if family == "gaussian":
        with np.errstate(divide="ignore"):  # a perfect fit has no finite likelihood
            loglik = -n / 2.0 * (np.log(2 * np.pi * deviance / n) + 1.0)
    else:
        loglik = float(sum(p["loglik"] for p in parts.values()))
    finite = bool(np.isfinite(loglik))
    return {
        "family": family,
        "coefficients": mf.coef_table(names, beta, mf.inverse(info) * scale),
        "deviance": deviance,
        "pearson_chi2": pearson,
        "scale": scale,
        "log_likelihood": float(loglik) if finite else None,
        "aic": float(-2.0 * loglik + 2.0 * k) if finite else None,
        "iterations": iterations,
        "converged": True,
        "n": n,
        "df_resid": n - k,
        "n_by_node": {node: int(p["n"]) for node, p in parts.items()},
    }


ALGORITHM = Algorithm(
    "glm",
    "generalised linear model (binomial, poisson, gaussian) fitted exactly by federated IRLS",
    {"irls": node_irls},
    central,
    validate,
)
