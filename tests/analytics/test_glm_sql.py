"""Federated GLM over the node's SQL data (SqlNodeData on SQLite and PostgreSQL) gives the
same fit as over the normative ResourceData and as statsmodels on the pooled data."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm

from healthmesh.analytics import glm
from healthmesh.analytics.local import run_local
from healthmesh.analytics.memory_data import ResourceData

from .model_resources import AGE, COVARIATES, DM, OUTCOMES, SEX, region, sql_nodes

FAMILY = {
    "binomial": sm.families.Binomial,
    "poisson": sm.families.Poisson,
    "gaussian": sm.families.Gaussian,
}


@pytest.fixture(scope="module")
def institutions() -> dict[str, list[dict[str, Any]]]:
    return region([120, 45, 80], seed=41)


def _coef(result: dict[str, Any]) -> np.ndarray:
    return np.array([r["estimate"] for r in result["coefficients"]])


def _check(
    nodes: dict[str, Any],
    institutions: dict[str, list[dict[str, Any]]],
    families: tuple[str, ...] = glm.FAMILIES,
    covariates: list[dict[str, Any]] = COVARIATES,
) -> None:
    memory = {name: ResourceData(res) for name, res in institutions.items()}
    for family in families:
        params = {
            "cohort": {},
            "outcome": OUTCOMES[family],
            "covariates": covariates,
            "family": family,
        }
        sql = run_local(glm.ALGORITHM, params, nodes).result
        ref = run_local(glm.ALGORITHM, params, memory).result
        assert sql["n_by_node"] == ref["n_by_node"]
        assert np.max(np.abs(_coef(sql) - _coef(ref))) < 1e-10
        assert sql["deviance"] == pytest.approx(ref["deviance"], rel=1e-12)
        # and statsmodels on the pooled rows the SQL nodes read
        pooled = [d.matrix(_cohort(), _vars(params)) for d in nodes.values()]
        m = np.vstack([x for _, x in pooled])
        fit = sm.GLM(m[:, 0], sm.add_constant(m[:, 1:]), family=FAMILY[family]()).fit(
            tol=1e-13, maxiter=100
        )
        assert np.max(np.abs(_coef(sql) - fit.params)) < 1e-8


def _cohort() -> Any:
    from healthmesh.analytics.cohort import Cohort

    return Cohort()


def _vars(params: dict[str, Any]) -> list[Any]:
    from pydantic import TypeAdapter

    from healthmesh.analytics.cohort import Variable

    va = TypeAdapter(Variable)
    return [va.validate_python(v) for v in (params["outcome"], *params["covariates"])]


def _with_sql(
    url: Callable[[], str], institutions: dict[str, list[dict[str, Any]]]
) -> Iterator[dict[str, Any]]:
    nodes, stores = sql_nodes(institutions, url)
    try:
        yield nodes
    finally:
        for s in stores:
            s.close()


def test_glm_over_sqlite_nodes(
    tmp_path: Any, institutions: dict[str, list[dict[str, Any]]]
) -> None:
    for nodes in _with_sql(lambda: str(tmp_path / f"{uuid.uuid4().hex}.sqlite"), institutions):
        _check(nodes, institutions)


@pytest.mark.postgres
def test_glm_over_postgres_nodes(
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
        for nodes in _with_sql(url, institutions):
            # binomial on age, sex, diabetes: SqlNodeData's observation variables take ~12 s
            # per query on PostgreSQL (not on SQLite), too slow for the default run
            _check(nodes, institutions, ("binomial",), [AGE, SEX, DM])
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'drop schema if exists "{schema}" cascade')
