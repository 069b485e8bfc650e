"""Test doubles for the exact federated models: NodeData answering ``matrix()`` from numpy
arrays, a guard that records its checks (min cell and GLM ratio enforced like the real rules)
and an in-process hub that runs node methods directly.

They test the models' arithmetic on large numpy data; the pooled-equality tests over FHIR
resources use the real ResourceData, run_local and ReleaseGuard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from healthmesh.analytics.cohort import Cohort, Variable, columns
from healthmesh.analytics.sdk import Algorithm, Released
from healthmesh.errors import DisclosureRisk


@dataclass
class ArrayData:
    """NodeData.matrix over a fixed table: ``table[name]`` is one column (NaN = missing)."""

    table: Mapping[str, np.ndarray]
    calls: int = 0

    def members(self, cohort: Cohort) -> frozenset[str]:
        n = len(next(iter(self.table.values())))
        return frozenset(f"p{i}" for i in range(n))

    def matrix(self, cohort: Cohort, variables: Sequence[Variable]) -> tuple[list[str], np.ndarray]:
        self.calls += 1
        names = [c for v in variables for c in columns(v)]
        m = np.column_stack([np.asarray(self.table[c], dtype=float) for c in names])
        keep = ~np.isnan(m).any(axis=1)
        return names, m[keep]


@dataclass
class RecordingGuard:
    """The real rules' arithmetic (min cell, GLM ratio), recording every check."""

    min_cell: int = 5
    ratio: float = 0.33
    log: list[tuple[str, Any]] = field(default_factory=list)

    def cohort(self, members: frozenset[str]) -> None:
        self.log.append(("cohort", len(members)))
        if len(members) < self.min_cell:
            raise DisclosureRisk("min-cell-size: cohort too small")

    def cells(self, counts: Sequence[int], *, what: str) -> None:
        self.log.append(("cells", list(counts)))
        if any(0 < c < self.min_cell for c in counts):
            raise DisclosureRisk(f"min-cell-size: {what}")

    def charge(self, epsilon: float, delta: float) -> None:
        self.log.append(("charge", (epsilon, delta)))

    def exact(self, what: str) -> None:
        self.log.append(("exact", what))

    def glm(self, n: int, p: int) -> None:
        self.log.append(("glm", (n, p)))
        if p > self.ratio * n:
            raise DisclosureRisk("glm-parameters: too many parameters")

    def release_counts(self, counts: Sequence[float], *, sensitivity: float = 1.0) -> list[float]:
        return [float(c) for c in counts]

    def release_sums(self, sums: Sequence[float], *, bound: float) -> list[float]:
        return [float(s) for s in sums]

    def release_count(self, count: int) -> float:
        return float(count)


@dataclass
class Ctx:
    node: str
    data: Any
    guard: Any


class LocalHub:
    """HubContext running an algorithm's node methods in process; DisclosureRisk drops a node."""

    def __init__(self, algorithm: Algorithm, nodes: Mapping[str, Any], guard: Any = None) -> None:
        self.algorithm = algorithm
        self.ctxs = {n: Ctx(n, d, guard or RecordingGuard()) for n, d in nodes.items()}
        self._refused: dict[str, str] = {}
        self.rounds = 0
        self.sent: list[Released] = []

    @property
    def nodes(self) -> list[str]:
        return [n for n in self.ctxs if n not in self._refused]

    @property
    def refused(self) -> dict[str, str]:
        return dict(self._refused)

    def call(self, method: str, args: Mapping[str, Any]) -> dict[str, Released]:
        self.rounds += 1
        out: dict[str, Released] = {}
        for node in self.nodes:
            try:
                out[node] = self.algorithm.node_methods[method](self.ctxs[node], args)
            except DisclosureRisk as e:
                self._refused[node] = e.message.split(":")[0]
        self.sent.extend(out.values())
        return out

    def run(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self.algorithm.validate(params)
        return self.algorithm.central(self, params)


def split(n: int, shares: Sequence[float], rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices 0..n-1 shuffled and cut into parts of the given relative sizes."""
    idx = rng.permutation(n)
    cuts = (np.cumsum(shares)[:-1] / np.sum(shares) * n).astype(int)
    return np.split(idx, cuts)
