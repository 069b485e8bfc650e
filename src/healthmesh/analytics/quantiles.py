"""Federated quantiles by grid bisection on counts, exact to a stated tolerance.

Parameters: ``cohort``, ``variable`` (numeric), ``probs`` (1 to 20 numbers in (0, 1)) and
optional ``tolerance`` (absolute; default 1e-6 × the pooled standard deviation).

The quantile of probability p is the inverse of the pooled empirical distribution function:
the smallest value x with at least ``k = ceil(p * N)`` of the N non-missing values <= x (numpy's
``method="inverted_cdf"``). The hub finds it without any node releasing a value:

1. round one: each node releases n, sum and sum of squares (as :mod:`moments`), giving N, the
   mean and sd; the search starts at the normal-approximation guess mean + z_p·sd;
2. then each round the hub sends thresholds and each node releases how many of its values are
   <= each one (``NodeData.count_le``); the hub doubles the bracket outward until
   ``count(lo) < k <= count(hi)``, then cuts it with 7 interior points a round (8× narrower)
   until ``hi - lo <= tolerance`` and answers ``hi``: within the tolerance of the true quantile.

Disclosure control: the cohort passes the guard; each count and its complement (values above
the threshold) must be zero or reach the minimum cell size, so no threshold isolates a few
values (extreme quantiles of small nodes are refused). A node that refuses is dropped and the
search restarts without it. With DP every round is a noised release charged to the budget, so
quantiles under DP are approximate and costly; use :mod:`histogram` there.

Result: ``{"n": N, "tolerance": t, "quantiles": [{"p": p, "value": x}], "rounds": r}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

from healthmesh.analytics import variables as V
from healthmesh.analytics.arguments import cohort_of, guard_cohort, require_parts, variable_of
from healthmesh.analytics.moments import ALGORITHM as MOMENTS
from healthmesh.analytics.moments import pooled
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released
from healthmesh.errors import DisclosureRisk, InvalidInput

MAX_PROBS = 20
MAX_ROUNDS = 200
GRID = 7


def _probs(params: Params) -> list[float]:
    raw = params.get("probs")
    ok = isinstance(raw, list) and 1 <= len(raw) <= MAX_PROBS
    if not ok or not all(
        isinstance(p, int | float) and not isinstance(p, bool) and 0 < p < 1 for p in raw or []
    ):
        raise InvalidInput(f"parameter probs: 1 to {MAX_PROBS} numbers in (0, 1)", location="probs")
    return [float(p) for p in raw or []]


def _tolerance(params: Params) -> float | None:
    raw = params.get("tolerance")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw < math.inf:
        raise InvalidInput("parameter tolerance: a positive number", location="tolerance")
    return float(raw)


def _validate(params: Params) -> None:
    cohort_of(params)
    V.check_numeric(variable_of(params))
    _probs(params)
    _tolerance(params)


def _count_le(ctx: NodeContext, args: Params) -> Released:
    cohort, variable = cohort_of(args), variable_of(args)
    V.check_numeric(variable)
    thresholds = [float(t) for t in args.get("thresholds") or []]
    guard_cohort(ctx, cohort)
    n = ctx.data.moments(cohort, variable).n
    counts = ctx.data.count_le(cohort, variable, thresholds)
    ctx.guard.cells([*counts, *(n - c for c in counts)], what="quantile search")
    released = ctx.guard.release_counts(counts, sensitivity=float(len(counts)) or 1.0)
    return {"counts": [round(c) for c in released]}


class _Search:
    """One quantile's bracket: count(lo) < k <= count(hi) once both are known."""

    def __init__(self, k: int, guess: float, scale: float) -> None:
        self.k = k
        # a narrow first bracket, widened by doubling steps: probes stay near the quantile
        self.lo, self.hi = guess - scale / 10, guess + scale / 10
        self.lo_ok = self.hi_ok = False  # bracket side confirmed
        self.step = scale / 5

    def thresholds(self, tol: float) -> list[float]:
        if not (self.lo_ok and self.hi_ok):
            return [t for t, ok in ((self.lo, self.lo_ok), (self.hi, self.hi_ok)) if not ok]
        if self.hi - self.lo <= max(tol, 8 * math.ulp(self.hi)):
            return []
        width = (self.hi - self.lo) / (GRID + 1)
        return [self.lo + width * (i + 1) for i in range(GRID)]

    def update(self, ts: Sequence[float], counts: Sequence[int]) -> None:
        if not (self.lo_ok and self.hi_ok):
            for t, c in zip(ts, counts, strict=True):
                if t == self.lo and not self.lo_ok:
                    self._lower(c)
                elif t == self.hi and not self.hi_ok:
                    self._upper(c)
            return
        for t, c in zip(ts, counts, strict=True):
            if c >= self.k:
                self.hi = min(self.hi, t)
            else:
                self.lo = max(self.lo, t)

    def _lower(self, c: int) -> None:
        if c < self.k:
            self.lo_ok = True
        else:  # lo is a valid upper end; move lo further down
            self.hi, self.hi_ok = min(self.hi, self.lo), True
            self.lo -= self.step
            self.step *= 2

    def _upper(self, c: int) -> None:
        if c >= self.k:
            self.hi_ok = True
        else:
            self.lo, self.lo_ok = max(self.lo, self.hi), True
            self.hi += self.step
            self.step *= 2


def _search(ctx: HubContext, params: Params, summary: Mapping[str, Released]) -> dict[str, Any]:
    probs, tol_param = _probs(params), _tolerance(params)
    nodes = ctx.nodes
    stats = pooled(
        sum(summary[n]["n"] for n in nodes),
        math.fsum(summary[n]["sum"] for n in nodes),
        math.fsum(summary[n]["sum_sq"] for n in nodes),
    )
    big_n = int(stats["n"])
    if big_n <= 0:
        return {"n": big_n, "tolerance": tol_param, "quantiles": [], "rounds": 0}
    mean, sd = stats["mean"], stats["sd"] or 0.0
    scale = sd if sd > 0 else max(abs(mean), 1.0)
    tol = tol_param if tol_param is not None else 1e-6 * scale
    searches = [
        _Search(max(1, math.ceil(p * big_n)), mean + NormalDist().inv_cdf(p) * sd, scale)
        for p in probs
    ]
    args = {k: params[k] for k in ("cohort", "variable") if k in params}
    rounds = 0
    while True:
        asks = [s.thresholds(tol) for s in searches]
        flat = [t for ts in asks for t in ts]
        if not flat:
            break
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise InvalidInput("quantile search did not converge; give a larger tolerance")
        parts = ctx.call("count_le", {**args, "thresholds": flat})
        if set(parts) != set(nodes):
            raise _Restart
        totals = [sum(p["counts"][i] for p in parts.values()) for i in range(len(flat))]
        at = 0
        for s, ts in zip(searches, asks, strict=True):
            s.update(ts, totals[at : at + len(ts)])
            at += len(ts)
    return {
        "n": big_n,
        "tolerance": tol,
        "quantiles": [{"p": p, "value": s.hi} for p, s in zip(probs, searches, strict=True)],
        "rounds": rounds,
    }


class _Restart(Exception):
    """A node refused during the search: start again without it."""


def _central(ctx: HubContext, params: Params) -> dict[str, Any]:
    summary = ctx.call("summary", params)
    require_parts(ctx, summary)
    while True:
        try:
            return _search(ctx, params, summary)
        except _Restart:
            if not ctx.nodes:
                raise DisclosureRisk(
                    f"{', '.join(sorted(set(ctx.refused.values())))}: no node released a result"
                ) from None


ALGORITHM = Algorithm(
    name="quantiles",
    summary="quantiles of a numeric variable, exact to a tolerance, from counts only",
    node_methods={"summary": MOMENTS.node_methods["moments"], "count_le": _count_le},
    central=_central,
    validate=_validate,
)
