"""Migrations: applied once, in order, resumable, and never run against a newer schema."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from healthmesh.db import Migration, apply_migrations, current_version, make_engine
from healthmesh.db.migrations import MigrationError


def _steps(calls: list[int]) -> list[Migration]:
    def create(conn: Connection) -> None:
        calls.append(1)
        conn.execute(text("create table t (a integer)"))

    def add(conn: Connection) -> None:
        calls.append(2)
        conn.execute(text("alter table t add column b integer"))

    return [Migration(1, "create t", create), Migration(2, "add b", add)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrations_apply_once_and_keep_data(backend: str, tmp_path, request) -> None:
    url = str(tmp_path / "m.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    calls: list[int] = []
    steps = _steps(calls)
    assert apply_migrations(engine, "demo", steps[:1]) == 1
    with engine.begin() as conn:
        conn.execute(text("insert into t (a) values (7)"))
    assert apply_migrations(engine, "demo", steps) == 2
    assert apply_migrations(engine, "demo", steps) == 2
    assert calls == [1, 2]
    assert current_version(engine, "demo") == 2
    with engine.connect() as conn:
        assert conn.execute(text("select a, b from t")).all() == [(7, None)]
    with pytest.raises(MigrationError, match="newer than this software"):
        apply_migrations(engine, "demo", steps[:1])
    engine.dispose()
