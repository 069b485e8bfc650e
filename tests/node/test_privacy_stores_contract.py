"""The shared privacy-store contract suites on the node's SQL stores (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from healthmesh.db import make_engine
from healthmesh.node.analytics.privacy import SqlBudgetStore, SqlReleaseLog

from ..privacy.store_contract import BudgetStoreContract, ReleaseLogContract


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (
        str(tmp_path / "node.sqlite")
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    eng = make_engine(url)
    yield eng
    eng.dispose()


class TestSqlReleaseLog(ReleaseLogContract):
    @pytest.fixture
    def log(self, engine: Engine) -> SqlReleaseLog:
        return SqlReleaseLog(engine)


class TestSqlBudgetStore(BudgetStoreContract):
    @pytest.fixture
    def budget(self, engine: Engine) -> SqlBudgetStore:
        return SqlBudgetStore(engine)
