"""Cox with one baseline hazard for all nodes (unstratified): risk-set sums on the hub's grid.

The Breslow partial likelihood of the pooled data needs, at every pooled event time ``g``, the
sums over the pooled risk set of ``exp(xb)``, ``x exp(xb)`` and ``x x' exp(xb)``; they add over
nodes. So the hub first collects the nodes' event times (round 0: coarsened to min cell like
Kaplan–Meier, optionally on a ``bin_days`` grid) and then, for each Newton step, each node
returns those three sums at every grid time plus its events' count and covariate sum there.

Disclosure: each node works on its *released* times (events and censorings coarsened to groups
of at least min cell, :mod:`healthmesh.analytics._survival`), so every risk set it sums over is
a union of whole groups: at least min cell patients or none, and two grid times differ by whole
groups. The fit equals statsmodels ``PHReg(ties="breslow")`` on the pooled data with those
released times (so exactly on the raw data when every time already holds min cell patients).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthmesh.analytics import _survival as sv
from healthmesh.analytics._model_fit import Vector
from healthmesh.analytics.sdk import Released
from healthmesh.errors import InvalidInput

#: most grid times a hub may ask for (a bigger request is refused, not computed)
MAX_GRID = 20_000


def released_times(time: Vector, event: Vector, min_cell: int, bin_days: float | None) -> Vector:
    """Every patient's time as the node releases it: on the grid, then coarsened per kind."""
    out = sv.to_grid(time, bin_days).copy()
    for flag in (1.0, 0.0):
        rows = np.flatnonzero(event == flag)
        order = rows[np.argsort(out[rows], kind="stable")]
        times, counts = sv.coarsen(out[rows], min_cell)
        out[order] = np.repeat(times, counts)
    return out


def event_table(time: Vector, event: Vector) -> tuple[list[float], list[int]]:
    """Distinct released event times and the events at each."""
    times, counts = np.unique(time[event == 1], return_counts=True)
    return times.tolist(), counts.tolist()


def parse_grid_times(raw: Any) -> Vector:
    """The hub's grid: increasing finite times, at most MAX_GRID of them."""
    try:
        grid = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput("'grid' must be a list of times", location="grid") from None
    if grid.ndim != 1 or grid.size > MAX_GRID or not np.all(np.isfinite(grid)):
        raise InvalidInput(f"'grid' must be at most {MAX_GRID} finite times", location="grid")
    if np.any(np.diff(grid) <= 0):
        raise InvalidInput("'grid' must be increasing", location="grid")
    return grid


def risk_set_sums(time: Vector, event: Vector, x: Vector, beta: Vector, grid: Vector) -> Released:
    """At each grid time: the risk-set sums (scaled by ``exp(-shift)``), events and their
    covariate sum. Every event time of the node must be on the grid."""
    order = np.argsort(time, kind="stable")
    time, event, x = time[order], event[order], x[order]
    eta = x @ beta
    shift = float(eta.max(initial=0.0))
    w = np.exp(eta - shift)
    p = x.shape[1]
    zero = np.zeros((1, p))
    s0 = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
    s1 = np.concatenate([np.cumsum((w[:, None] * x)[::-1], axis=0)[::-1], zero])
    wxx = w[:, None, None] * x[:, :, None] * x[:, None, :]
    s2 = np.concatenate([np.cumsum(wxx[::-1], axis=0)[::-1], np.zeros((1, p, p))])
    at = np.searchsorted(time, grid, side="left")
    ev = np.flatnonzero(event == 1)
    slot = np.searchsorted(grid, time[ev])
    on_grid = slot < grid.size
    if not on_grid.all() or np.any(grid[slot[on_grid]] != time[ev][on_grid]):
        raise InvalidInput("the hub's grid lacks an event time of this node", location="grid")
    d = np.bincount(slot, minlength=grid.size)
    xe = np.zeros((grid.size, p))
    np.add.at(xe, slot, x[ev])
    return {
        "shift": shift,
        "s0": s0[at].tolist(),
        "s1": s1[at].tolist(),
        "s2": s2[at].tolist(),
        "d": d.tolist(),
        "xe": xe.tolist(),
    }


def combine(parts: list[Released], beta: Vector) -> tuple[float, Vector, Vector]:
    """The pooled Breslow log partial likelihood, score and information from the nodes' sums."""
    top = max(float(p["shift"]) for p in parts)
    scale = [np.exp(float(p["shift"]) - top) for p in parts]
    s0 = sum(c * np.asarray(p["s0"]) for c, p in zip(scale, parts, strict=True))
    s1 = sum(c * np.asarray(p["s1"]) for c, p in zip(scale, parts, strict=True))
    s2 = sum(c * np.asarray(p["s2"]) for c, p in zip(scale, parts, strict=True))
    d = np.sum([np.asarray(p["d"], dtype=np.float64) for p in parts], axis=0)
    xe = np.sum([np.asarray(p["xe"], dtype=np.float64) for p in parts], axis=0)
    k = np.flatnonzero(d > 0)
    s0k = np.asarray(s0)[k]
    mean = np.asarray(s1)[k] / s0k[:, None]
    loglik = float(np.sum(xe[k] @ beta) - np.sum(d[k] * (np.log(s0k) + top)))
    score = xe[k].sum(axis=0) - (d[k, None] * mean).sum(axis=0)
    cov = np.asarray(s2)[k] / s0k[:, None, None] - mean[:, :, None] * mean[:, None, :]
    info = (d[k, None, None] * cov).sum(axis=0)
    return loglik, score, info
