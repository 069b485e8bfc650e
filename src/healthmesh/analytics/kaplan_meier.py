"""Federated Kaplan–Meier survival curve with Greenwood standard errors.

Each node releases its event times with the number of events at each, and its censoring times
with the number censored at each (two lists, every count at least min cell after the node's
coarsening, see :mod:`healthmesh.analytics._survival`). From these the hub has the pooled number
at risk at every event time and computes the product-limit estimate exactly: the curve equals
statsmodels ``SurvfuncRight`` on the pooled data whose times are the released ones.

Parameters: ``cohort``, ``survival`` (a survival variable), ``times``: ``exact`` (default: the
patients' own times, coarsened only where a time holds fewer than min cell patients) or
``binned`` (times first put on the hub's grid of ``bin_days``-day bins, default 30; a bin is
released at its end). Individual times are quasi-identifying, so binned is the choice for small
cohorts; on large cohorts exact times already pass min cell. No differential privacy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthmesh.analytics import _model_fit as mf
from healthmesh.analytics import _survival as sv
from healthmesh.analytics.sdk import Algorithm, HubContext, NodeContext, Params, Released


def validate(params: Params) -> None:
    """Hub-side check of a study's parameters (InvalidInput naming the bad one)."""
    sv.parse_survival(params)
    sv.parse_grid(params)


def node_life_table(ctx: NodeContext, args: Params) -> Released:
    """The node's released event and censoring times with their counts."""
    cohort, survival = sv.parse_survival(args)
    bin_days = sv.parse_grid(args)
    ctx.guard.exact("a Kaplan-Meier life table")
    _, data = ctx.data.matrix(cohort, [survival])
    time, event = data[:, 0], data[:, 1]
    sv.check_survival(time, event)
    ctx.guard.cohort(ctx.data.members(cohort))
    ctx.guard.cells([len(time)], what="patients with a survival time")
    grid = sv.to_grid(time, bin_days)
    event_times, events = sv.coarsen(grid[event == 1], ctx.guard.min_cell)
    censor_times, censored = sv.coarsen(grid[event == 0], ctx.guard.min_cell)
    ctx.guard.cells(events, what="events at a time")
    ctx.guard.cells(censored, what="censored at a time")
    return {
        "event_times": event_times,
        "events": events,
        "censor_times": censor_times,
        "censored": censored,
    }


def curve(parts: list[Released]) -> dict[str, Any]:
    """The pooled product-limit estimate from the nodes' released life tables."""
    ev = [(p["event_times"], p["events"]) for p in parts]
    both = ev + [(p["censor_times"], p["censored"]) for p in parts]
    all_t = np.concatenate([np.asarray(t, dtype=np.float64) for t, _ in ev])
    all_d = np.concatenate([np.asarray(d, dtype=np.int64) for _, d in ev])
    times, inverse = np.unique(all_t, return_inverse=True)
    d = np.bincount(inverse, weights=all_d, minlength=times.size).astype(np.int64)
    n = sv.at_risk(times, both)
    surv = np.cumprod(1.0 - d / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        green = np.cumsum(np.where(n > d, d / (n * (n - d).astype(np.float64)), np.nan))
    se = surv * np.sqrt(green)
    below = np.flatnonzero(surv <= 0.5)
    return {
        "times": times.tolist(),
        "n_risk": n.tolist(),
        "n_events": d.tolist(),
        "survival": surv.tolist(),
        "se": [float(s) if np.isfinite(s) else None for s in se],
        "median": float(times[below[0]]) if below.size else None,
        "n": int(sum(np.sum(c) for _, c in both)),
        "events": int(d.sum()),
    }


def central(ctx: HubContext, params: Params) -> dict[str, Any]:
    """Collect the nodes' life tables and pool them into one curve."""
    validate(params)
    args = {k: params[k] for k in ("cohort", "survival", "times", "bin_days") if k in params}
    parts = ctx.call("life_table", args)
    if not parts:
        raise mf.no_nodes(ctx)
    out = curve(list(parts.values()))
    out["times_mode"] = params.get("times", "exact")
    out["bin_days"] = sv.parse_grid(params)
    out["n_by_node"] = {
        node: int(sum(p["events"]) + sum(p["censored"])) for node, p in parts.items()
    }
    out["refused"] = dict(ctx.refused)
    return out


ALGORITHM = Algorithm(
    "kaplan_meier",
    "Kaplan–Meier survival curve (Greenwood SEs) from the nodes' min-cell life tables",
    {"life_table": node_life_table},
    central,
    validate,
)
