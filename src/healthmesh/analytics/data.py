"""The contract between a federated computation's node part and the node's data.

Two implementations share one contract test suite (``tests/analytics/data_contract.py``):
:class:`healthmesh.analytics.memory_data.ResourceData` (pure Python over FHIR resources; the
normative reference, used for pooled-equality tests) and
:class:`healthmesh.node.analytics.SqlNodeData` (pushed down to SQL over the node's FHIR store,
SQLite and PostgreSQL).

Every method evaluates ``cohort`` first (consent-refusing patients excluded). Nothing returned
here leaves the node as is: the node part of an algorithm passes what it releases through the
:class:`healthmesh.analytics.sdk.ReleaseGuard`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from healthmesh.analytics.cohort import Cohort, Variable

#: a cell key of a cross-tabulation: one value per variable (None = missing)
CellKey = tuple[float | str | None, ...]


@dataclass(frozen=True)
class Moments:
    """Of the non-missing values of one numeric variable in the cohort."""

    n: int
    total: float
    total_sq: float
    min: float | None
    max: float | None


@dataclass(frozen=True)
class CrossMoments:
    """Over cohort patients with every variable present (complete cases), columns as
    :func:`healthmesh.analytics.cohort.columns` expands them."""

    names: list[str]
    n: int
    sums: npt.NDArray[np.float64]  # (p,)
    products: npt.NDArray[np.float64]  # (p, p): sum of x_i x_j


class NodeData(Protocol):
    def members(self, cohort: Cohort) -> frozenset[str]:
        """Ids of the cohort's patients (``Patient.id``). Never released; used by the
        differencing guard only."""
        ...

    def count(self, cohort: Cohort) -> int: ...

    def crosstab(self, cohort: Cohort, variables: Sequence[Variable]) -> dict[CellKey, int]:
        """Counts of cohort patients by value combination (only non-empty cells). Numeric
        variables are used as their values (binary ones are 0/1 floats); missing is None.
        Survival variables are not allowed here (InvalidInput)."""
        ...

    def moments(self, cohort: Cohort, variable: Variable) -> Moments:
        """Numeric (or binary) variable; categorical or survival -> InvalidInput."""
        ...

    def histogram(self, cohort: Cohort, variable: Variable, edges: Sequence[float]) -> list[int]:
        """``len(edges) - 1`` counts; bin i is [edges[i], edges[i+1]) and the last bin is closed.
        Values outside all bins are not counted."""
        ...

    def count_le(
        self, cohort: Cohort, variable: Variable, thresholds: Sequence[float]
    ) -> list[int]:
        """For each threshold t, the number of non-missing values <= t (used by quantiles)."""
        ...

    def cross_moments(self, cohort: Cohort, variables: Sequence[Variable]) -> CrossMoments: ...

    def matrix(
        self, cohort: Cohort, variables: Sequence[Variable]
    ) -> tuple[list[str], npt.NDArray[np.float64]]:
        """Complete-case numeric design (n x p, no intercept) with the column names of
        :func:`healthmesh.analytics.cohort.columns`, rows ordered by patient id. Only the
        named variables of the cohort's patients are read (the rest stays in the database)."""
        ...
