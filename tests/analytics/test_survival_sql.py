"""Federated Kaplan–Meier and Cox over the node's SQL data (SqlNodeData on SQLite and
PostgreSQL) give the same results as over the normative ResourceData."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from healthmesh.analytics import cox, kaplan_meier
from healthmesh.analytics.local import run_local
from healthmesh.analytics.memory_data import ResourceData

from .model_resources import AGE, DM, OS, SEX, region, sql_nodes

RUNS: list[tuple[Any, dict[str, Any]]] = [
    (kaplan_meier.ALGORITHM, {"cohort": {}, "survival": OS}),
    (kaplan_meier.ALGORITHM, {"cohort": {}, "survival": OS, "times": "binned", "bin_days": 30}),
    (cox.ALGORITHM, {"cohort": {}, "survival": OS, "covariates": [AGE, SEX, DM]}),
    (cox.ALGORITHM, {"cohort": {}, "survival": OS, "covariates": [AGE, SEX, DM], "strata": "none"}),
]


@pytest.fixture(scope="module")
def institutions() -> dict[str, list[dict[str, Any]]]:
    return region([110, 70], seed=51)


def _check(url: Callable[[], str], institutions: dict[str, list[dict[str, Any]]]) -> None:
    nodes, stores = sql_nodes(institutions, url)
    memory = {name: ResourceData(res) for name, res in institutions.items()}
    try:
        for algorithm, params in RUNS:
            sql = run_local(algorithm, params, nodes)
            ref = run_local(algorithm, params, memory)
            assert sql.refused == ref.refused == {}
            got, want = sql.result, ref.result
            assert got["n_by_node"] == want["n_by_node"]
            if algorithm is kaplan_meier.ALGORITHM:
                assert got["times"] == want["times"] and got["n_risk"] == want["n_risk"]
                np.testing.assert_allclose(got["survival"], want["survival"], rtol=0, atol=1e-12)
            else:
                a = np.array([r["estimate"] for r in got["coefficients"]])
                b = np.array([r["estimate"] for r in want["coefficients"]])
                assert np.max(np.abs(a - b)) < 1e-10
    finally:
        for s in stores:
            s.close()


def test_survival_over_sqlite_nodes(
    tmp_path: Any, institutions: dict[str, list[dict[str, Any]]]
) -> None:
    _check(lambda: str(tmp_path / f"{uuid.uuid4().hex}.sqlite"), institutions)


@pytest.mark.postgres
def test_survival_over_postgres_nodes(
    pg_server_url: str, institutions: dict[str, list[dict[str, Any]]]
) -> None:
    import psycopg

    schemas: list[str] = []

    def url() -> str:
        schema = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'create schema "{schema}"')
        schemas.append(schema)
        sep = "&" if "?" in pg_server_url else "?"
        return f"{pg_server_url}{sep}options=-csearch_path%3D{schema}"

    try:
        _check(url, institutions)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'drop schema if exists "{schema}" cascade')
