"""Shared parts of the exact federated models (GLM, Cox): parameter parsing, the Newton solve
at the hub and the coefficient table.

The hub only ever solves small ``p x p`` systems built from the nodes' summed contributions;
numpy's LAPACK bindings do that. What no library offers is the federated split itself (the
nodes' sums are the sufficient statistics of one Newton step), so that part is written here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import TypeAdapter, ValidationError
from scipy import stats

from healthmesh.analytics.cohort import Cohort, SexVariable, SurvivalVariable, Variable, columns
from healthmesh.analytics.sdk import HubContext, Params
from healthmesh.errors import Conflict, DisclosureRisk, InvalidInput

Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]

_VARIABLE: TypeAdapter[Variable] = TypeAdapter(Variable)

#: below this (relative to the largest) an eigenvalue of the scaled information matrix counts as 0
_SINGULAR = 1e-12


def parse_cohort(params: Params) -> Cohort:
    """The ``cohort`` parameter as a :class:`Cohort` (absent: every patient who did not refuse
    research use, as for the other built-in algorithms; InvalidInput when malformed)."""
    raw = params.get("cohort") or {}
    try:
        return Cohort.model_validate(raw)
    except ValidationError as e:
        raise InvalidInput(f"bad cohort: {_first_error(e)}", location="cohort") from None


def parse_variable(raw: Any, where: str) -> Variable:
    """One analysis variable (InvalidInput naming ``where`` when malformed)."""
    if raw is None:
        raise InvalidInput(f"parameter '{where}' is required", location=where)
    try:
        return _VARIABLE.validate_python(raw)
    except ValidationError as e:
        raise InvalidInput(f"bad variable: {_first_error(e)}", location=where) from None


def parse_covariates(params: Params, *, reserved: Sequence[Variable]) -> list[Variable]:
    """The ``covariates`` list: numeric or categorical variables with distinct names that do
    not repeat a ``reserved`` one (the outcome). Survival variables are refused."""
    raw = params.get("covariates", [])
    if not isinstance(raw, list):
        raise InvalidInput("'covariates' must be a list of variables", location="covariates")
    out = [parse_variable(v, f"covariates[{i}]") for i, v in enumerate(raw)]
    names = [v.name for v in (*reserved, *out)]
    if len(set(names)) != len(names):
        raise InvalidInput("variable names must be distinct", location="covariates")
    for i, v in enumerate(out):
        if isinstance(v, SurvivalVariable):
            raise InvalidInput(
                "a survival variable cannot be a covariate", location=f"covariates[{i}]"
            )
        if isinstance(v, SexVariable) and len(v.levels) < 2:
            raise InvalidInput(
                "a categorical covariate needs two levels", location=f"covariates[{i}]"
            )
    return out


def parse_int(params: Params, key: str, default: int, lo: int, hi: int) -> int:
    """An integer parameter in ``lo..hi``."""
    v = params.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise InvalidInput(f"'{key}' must be an integer in {lo}..{hi}", location=key)
    return v


def parse_float(params: Params, key: str, default: float, lo: float, hi: float) -> float:
    """A float parameter in ``lo..hi``."""
    v = params.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= float(v) <= hi:
        raise InvalidInput(f"'{key}' must be a number in {lo}..{hi}", location=key)
    return float(v)


def parse_beta(args: Params, p: int) -> Vector | None:
    """The hub's current coefficients sent to a node (None in the first round)."""
    raw = args.get("beta")
    if raw is None:
        return None
    beta = np.asarray(raw, dtype=np.float64)
    if beta.shape != (p,) or not np.all(np.isfinite(beta)):
        raise InvalidInput(f"'beta' must be {p} finite numbers", location="beta")
    return beta


def design_names(covariates: Sequence[Variable]) -> list[str]:
    """Column names the covariates expand to (categorical: a 0/1 column per non-reference level)."""
    return [c for v in covariates for c in columns(v)]


def check_finite(values: npt.NDArray[np.float64], what: str) -> None:
    """InvalidInput when the node's data holds a non-finite value (no value in the message)."""
    if not np.all(np.isfinite(values)):
        raise InvalidInput(f"{what} has non-finite values at this node")


def no_nodes(ctx: HubContext) -> DisclosureRisk:
    """The error when no node is left taking part (every one refused a release)."""
    rules = sorted(set(ctx.refused.values()))
    return DisclosureRisk("every node refused to release: " + (", ".join(rules) or "no nodes"))


def sum_parts(parts: Mapping[str, Mapping[str, Any]], key: str) -> npt.NDArray[np.float64]:
    """The element-wise sum of one array-valued field over the nodes' partials."""
    total: npt.NDArray[np.float64] = np.sum(
        [np.asarray(p[key], dtype=np.float64) for p in parts.values()], axis=0
    )
    return total


def same_names(parts: Mapping[str, Mapping[str, Any]], expected: list[str]) -> None:
    """Every node must have built the same design columns (else its sums cannot be added)."""
    for node, part in parts.items():
        if list(part["names"]) != expected:
            raise InvalidInput(f"node {node} returned a design with other columns")


def same_rows(parts: Mapping[str, Mapping[str, Any]], first: dict[str, int]) -> None:
    """Every node must fit the same rows in every round: record each node's ``n`` the first
    time, refuse (Conflict) when it changes (data written at the node during the fit)."""
    for node, part in parts.items():
        if first.setdefault(node, int(part["n"])) != int(part["n"]):
            raise Conflict(f"the data of node {node} changed during the fit; run the job again")


def newton_step(info: Matrix, score: Vector, *, hint: str = "") -> Vector:
    """Solve ``info @ step = score`` for a symmetric positive definite information matrix.

    The matrix is first scaled to unit diagonal so that the singularity test does not depend on
    the units of the covariates. Raises InvalidInput when it is singular: a covariate is constant
    or collinear with others in the cohort (or, with ``hint``, the reason given).
    """
    d = np.diag(info).copy()
    if not np.all(np.isfinite(info)) or np.any(d <= 0):
        raise InvalidInput("model cannot be fitted: a covariate is constant in the cohort" + hint)
    s = 1.0 / np.sqrt(d)
    scaled = info * np.outer(s, s)
    eig = np.linalg.eigvalsh(scaled)
    if eig[0] <= _SINGULAR * eig[-1]:
        raise InvalidInput(
            "model cannot be fitted: the design is singular (collinear covariates)" + hint
        )
    return s * np.linalg.solve(scaled, s * score)


def inverse(info: Matrix) -> Matrix:
    """Inverse of the (already checked) information matrix, symmetrised."""
    inv = np.linalg.inv(info)
    return (inv + inv.T) / 2.0


def coef_table(
    names: Sequence[str], beta: Vector, cov: Matrix
) -> list[dict[str, float | str | None]]:
    """One row per coefficient: estimate, standard error, Wald z and two-sided normal p-value
    (z and p are null where the standard error is 0, as in an exact fit)."""
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / se
    p = 2.0 * stats.norm.sf(np.abs(z))
    return [
        {
            "name": n,
            "estimate": float(b),
            "se": float(s),
            "z": float(zz) if np.isfinite(zz) else None,
            "p": float(pp) if np.isfinite(zz) else None,
        }
        for n, b, s, zz, pp in zip(names, beta, se, z, p, strict=True)
    ]


def converged(step: Vector, beta: Vector, tol: float) -> bool:
    """Newton has converged when the largest step is below ``tol`` relative to the coefficients."""
    return float(np.max(np.abs(step), initial=0.0)) <= tol * (
        1.0 + float(np.max(np.abs(beta), initial=0.0))
    )


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])
