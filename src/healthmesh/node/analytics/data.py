"""``SqlNodeData``: the :class:`~healthmesh.analytics.data.NodeData` of a node, pushed down
to SQL over its FHIR store (SQLite or PostgreSQL, same SQLAlchemy Core queries).

Cohorts compile to one query over the search indexes (:mod:`.cohort_sql`); variables to
per-patient columns over the cohort (:mod:`.variables_sql`); every figure is an SQL aggregate
(``COUNT``, ``SUM``, ``MIN``/``MAX``, ``GROUP BY``), so only aggregates cross from the
database into Python, except :meth:`SqlNodeData.members` (patient ids, for the differencing
guard) and :meth:`SqlNodeData.matrix` (the cohort's rows of the named variables only).
Semantics are those of :class:`healthmesh.analytics.memory_data.ResourceData`; both pass
``tests/analytics/data_contract.py``.

Example::

    data = SqlNodeData(store)
    n = data.count(Cohort(include=[ConditionCriterion(codes=["http://hl7.org/fhir/sid/icd-10|E11*"])]))
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import CTE, Float, Select, and_, case, cast, func, literal, select

from healthmesh.analytics import variables as V
from healthmesh.analytics.cohort import Cohort, SexVariable, Variable
from healthmesh.analytics.data import CellKey, CrossMoments, Moments
from healthmesh.errors import InvalidInput
from healthmesh.fhir.store import FhirStore, schema
from healthmesh.node.analytics.cohort_sql import CohortSql
from healthmesh.node.analytics.compiled import SHARED, CompiledCache
from healthmesh.node.analytics.variables_sql import design_columns, inner_columns, value_column

R = schema.resource
#: thresholds / bins per aggregate query (keeps statements and bind lists small)
CHUNK = 200
#: pid maps seen in this process -> small ids (the compiled-query cache is keyed by them)
_PID_MAPS: dict[tuple[tuple[tuple[str, str], int], ...], int] = {}
_PID_LOCK = threading.Lock()


class SqlNodeData:
    """NodeData over a node's :class:`~healthmesh.fhir.store.FhirStore`."""

    def __init__(self, store: FhirStore) -> None:
        self.store = store
        self.sql = CohortSql(store)
        #: compiled cohort and design queries, shared by stores with the same pid map
        self.compiled: CompiledCache = SHARED
        self._pid_map: tuple[int, int] = (-1, -1)
        self._ensure_statistics()

    def _ensure_statistics(self) -> None:
        """Give the planner statistics when the index tables have none yet (a store loaded
        in fewer writes than its own ANALYZE threshold): without them PostgreSQL estimates
        one row everywhere and nests loops that re-run whole subqueries per row."""
        with self.store.db.read() as conn:
            if self.store.db.is_sqlite:
                has = conn.exec_driver_sql(
                    "select count(*) from sqlite_master where name = 'sqlite_stat1'"
                ).scalar()
            else:
                has = conn.exec_driver_sql(
                    "select count(distinct tablename) from pg_stats where schemaname = "
                    "current_schema() and tablename in ('idx_token', 'idx_reference', "
                    "'idx_date')"
                ).scalar()
                has = int(has or 0) == 3
            empty = conn.execute(select(R.c.lid).limit(1)).first() is None
        if not has and not empty:
            self.store.db.analyze()

    # -- plumbing ----------------------------------------------------------------------------
    def _rows(self, query: Select[Any]) -> list[Any]:
        with self.store.db.read() as conn:
            return list(conn.execute(query).all())

    def _pids(self) -> int:
        """A small id of this store's search-parameter map (equal maps, equal ids)."""
        pids = self.store.params.pids
        if self._pid_map[0] != len(pids):
            items = tuple(sorted(pids.items()))
            with _PID_LOCK:
                ident = _PID_MAPS.setdefault(items, len(_PID_MAPS))
            self._pid_map = (len(pids), ident)
        return self._pid_map[1]

    def _cached(self, key: tuple[str, ...], build: Any) -> list[Any]:
        """Rows of ``build()``, compiled once per ``key`` (and pid map) for every store."""
        with self.store.db.read() as conn:
            return self.compiled.rows(conn, self._pids(), key, build)

    def _design(self, cohort: Cohort, variables: Sequence[Variable]) -> Any:
        """Subquery: one row per cohort patient, ``res_id`` and raw columns per variable."""
        c: CTE = self.sql.cohort(cohort)
        cols: list[Any] = [c.c.res_id]
        frm: Any = c
        for i, v in enumerate(variables):
            got, joins = inner_columns(self.sql.res, i, v, c, cohort.reference_date)
            cols += got
            for sub, on in joins:
                frm = frm.outerjoin(sub, on)
        return select(*cols).select_from(frm).subquery("design")

    def _numeric(self, cohort: Cohort, variable: Variable) -> Any:
        V.check_numeric(variable)
        d = self._design(cohort, [variable])
        return d, value_column(0, variable, d)

    # -- NodeData ----------------------------------------------------------------------------
    def members(self, cohort: Cohort) -> frozenset[str]:
        """Ids of the cohort's patients (never released; for the differencing guard)."""
        rows = self._cached(
            ("members", cohort.model_dump_json()),
            lambda: select(self.sql.cohort(cohort).c.res_id),
        )
        return frozenset(str(r[0]) for r in rows)

    def count(self, cohort: Cohort) -> int:
        """Number of the cohort's patients (one ``COUNT``)."""
        rows = self._cached(
            ("count", cohort.model_dump_json()),
            lambda: select(func.count()).select_from(self.sql.cohort(cohort)),
        )
        return int(rows[0][0])

    def crosstab(self, cohort: Cohort, variables: Sequence[Variable]) -> dict[CellKey, int]:
        """Counts by value combination (``GROUP BY``; non-empty cells, None = missing)."""
        V.check_crosstab(variables)
        d = self._design(cohort, variables)
        values = [value_column(i, v, d) for i, v in enumerate(variables)]
        rows = self._rows(select(*values, func.count()).group_by(*values))
        out: dict[CellKey, int] = {}
        for row in rows:
            key: list[float | str | None] = []
            for v, val in zip(variables, row[:-1], strict=True):
                if val is None:
                    key.append(None)
                else:
                    key.append(str(val) if isinstance(v, SexVariable) else float(val))
            out[tuple(key)] = int(row[-1])
        return out

    def moments(self, cohort: Cohort, variable: Variable) -> Moments:
        """n, sum, sum of squares, min and max of the non-missing values (one aggregate)."""
        _, x = self._numeric(cohort, variable)
        row = self._rows(
            select(func.count(x), func.sum(x), func.sum(x * x), func.min(x), func.max(x)).where(
                x.is_not(None)
            )
        )[0]
        n = int(row[0])
        return Moments(
            n=n,
            total=float(row[1] or 0.0),
            total_sq=float(row[2] or 0.0),
            min=None if n == 0 else float(row[3]),
            max=None if n == 0 else float(row[4]),
        )

    def histogram(self, cohort: Cohort, variable: Variable, edges: Sequence[float]) -> list[int]:
        """Counts per bin [e_i, e_i+1), the last bin closed (``SUM(CASE ...)`` per bin)."""
        e = V.check_edges(edges)
        _, x = self._numeric(cohort, variable)
        last = len(e) - 2
        bins = [
            and_(x >= lo, x <= hi if i == last else x < hi)
            for i, (lo, hi) in enumerate(itertools.pairwise(e))
        ]
        return self._sums(x, bins)

    def count_le(
        self, cohort: Cohort, variable: Variable, thresholds: Sequence[float]
    ) -> list[int]:
        """Number of non-missing values <= each threshold (``SUM(CASE ...)``)."""
        ts = [float(t) for t in thresholds]
        if any(math.isnan(t) for t in ts):
            raise InvalidInput("thresholds must be numbers")
        _, x = self._numeric(cohort, variable)
        return self._sums(x, [x <= t for t in ts])

    def _sums(self, x: Any, conditions: Sequence[Any]) -> list[int]:
        out: list[int] = []
        for k in range(0, len(conditions), CHUNK):
            part = conditions[k : k + CHUNK]
            aggs = [func.coalesce(func.sum(case((cond, 1), else_=0)), 0) for cond in part]
            row = self._rows(select(*aggs).where(x.is_not(None)))[0]
            out += [int(v) for v in row]
        return out

    def _complete(self, cohort: Cohort, variables: Sequence[Variable]) -> tuple[Any, list[Any]]:
        """The design subquery and its numeric columns, complete cases only."""
        d = self._design(cohort, variables)
        cols: list[Any] = []
        present: list[Any] = []
        for i, v in enumerate(variables):
            got, ok = design_columns(i, v, d)
            cols += got
            present.append(ok)
        labelled = [cast(col, Float).label(f"x{j}") for j, col in enumerate(cols)]
        return select(d.c.res_id, *labelled).where(and_(literal(True), *present)).subquery(), cols

    def cross_moments(self, cohort: Cohort, variables: Sequence[Variable]) -> CrossMoments:
        """n, column sums and cross products over complete cases (one aggregate query)."""
        names = V.check_design(variables)
        sub, _ = self._complete(cohort, variables)
        xs = [sub.c[f"x{j}"] for j in range(len(names))]
        pairs = [(i, j) for i in range(len(xs)) for j in range(i, len(xs))]
        aggs = [func.count(), *(func.sum(x) for x in xs)]
        aggs += [func.sum(xs[i] * xs[j]) for i, j in pairs]
        row = self._rows(select(*aggs))[0]
        n = int(row[0])
        p = len(names)
        sums = np.array([float(v or 0.0) for v in row[1 : 1 + p]], dtype=np.float64)
        products = np.zeros((p, p), dtype=np.float64)
        for (i, j), v in zip(pairs, row[1 + p :], strict=True):
            products[i, j] = products[j, i] = float(v or 0.0)
        return CrossMoments(names=names, n=n, sums=sums, products=products)

    def matrix(
        self, cohort: Cohort, variables: Sequence[Variable]
    ) -> tuple[list[str], npt.NDArray[np.float64]]:
        """Complete-case design (rows by patient id): only the cohort's rows of the named
        variables leave the database."""
        names, _, x = self.matrix_ids(cohort, variables)
        return names, x

    def matrix_ids(
        self, cohort: Cohort, variables: Sequence[Variable]
    ) -> tuple[list[str], list[str], npt.NDArray[np.float64]]:
        """:meth:`matrix` with each row's patient id (for results that stay at the node,
        such as risk scores)."""
        names = V.check_design(variables)
        key = json.dumps([v.model_dump(mode="json") for v in variables], sort_keys=True)
        rows = self._cached(
            ("matrix", cohort.model_dump_json(), key),
            lambda: select(self._complete(cohort, variables)[0]),
        )
        rows.sort(key=lambda r: str(r[0]))
        x = np.array([[float(v) for v in r[1:]] for r in rows], dtype=np.float64)
        return names, [str(r[0]) for r in rows], x.reshape(len(rows), len(names))
