"""PostgreSQL specifics of the FHIR store: statistics of the store's own tables only,
extended statistics for correlated token columns, a vacuum after a bulk load, and the
schema migration that adds the statistics to an existing store."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy import text

from healthmesh.db import apply_migrations
from healthmesh.db.engine import make_engine
from healthmesh.fhir.bulk.importer import import_files
from healthmesh.fhir.store import FhirStore, bulkindex, schema

from .fhir_helpers import load_bundle, synthea_bundles


def _schema_of(url: str) -> str:
    return url.rsplit("search_path%3D", 1)[1]


def _plain(url: str) -> str:
    return url.split("?options=")[0].split("&options=")[0]


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[FhirStore]:
    s = FhirStore(pg_url)
    yield s
    s.close()


def _stats(url: str, table: str) -> dict[str, Any]:
    """last_vacuum / last_analyze of a table of the test schema (statistics are reported
    asynchronously: wait until the collector has them)."""
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute("select pg_stat_clear_snapshot()")
        row = conn.execute(
            "select last_vacuum, last_analyze from pg_stat_user_tables "
            "where schemaname = %s and relname = %s",
            (_schema_of(url), table),
        ).fetchone()
    assert row is not None, table
    return {"vacuum": row[0], "analyze": row[1]}


def _load(store: FhirStore, tmp_path: Path, shared_data: Path, n: int, defer: bool) -> int:
    resources: list[dict[str, Any]] = []
    for p in synthea_bundles(shared_data)[:n]:
        resources.extend(e["resource"] for e in load_bundle(p)["entry"])
    f = tmp_path / "load.ndjson.gz"
    f.write_bytes(gzip.compress(b"\n".join(orjson.dumps(r) for r in resources) + b"\n"))
    report = import_files(store, [f], quarantine_dir=tmp_path / "q", workers=1,
                          defer_indexes=defer)
    assert report.quarantined == 0
    return report.created


def test_analyze_touches_only_the_store_tables(pg_store: FhirStore, pg_url: str) -> None:
    with pg_store.db.write() as conn:
        conn.execute(text("create table not_the_store (x int)"))
        conn.execute(text("insert into not_the_store select generate_series(1, 100)"))
    pg_store.db.analyze()
    assert _stats(pg_url, "fhir_resource")["analyze"] is not None
    assert _stats(pg_url, "idx_token")["analyze"] is not None
    assert _stats(pg_url, "not_the_store")["analyze"] is None


def test_analyze_waits_for_a_running_deferred_load(pg_store: FhirStore, pg_url: str) -> None:
    pg_store.db.loading = 1
    pg_store.db.analyze()
    assert _stats(pg_url, "fhir_resource")["analyze"] is None
    pg_store.db.loading = 0
    pg_store.db.analyze()
    assert _stats(pg_url, "fhir_resource")["analyze"] is not None


def test_a_deferred_load_vacuums_and_analyzes_once_at_its_end(
    pg_store: FhirStore, pg_url: str, tmp_path: Path, shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bool] = []
    real = pg_store.db.analyze

    def spy(*, vacuum: bool = False) -> None:
        calls.append(vacuum)
        real(vacuum=vacuum)

    monkeypatch.setattr(pg_store.db, "analyze", spy)
    created = _load(pg_store, tmp_path, shared_data, 8, defer=True)
    assert created > 1000  # enough writes that the store asked for statistics meanwhile
    assert calls[-1] is True and calls.count(True) == 1
    for table in ("fhir_resource", "idx_token", "idx_reference"):
        got = _stats(pg_url, table)
        assert got["vacuum"] is not None and got["analyze"] is not None, table
    with pg_store.db.read() as conn:
        assert bulkindex.missing_indexes(conn) == []


def test_extended_statistics_estimate_a_code_search(
    pg_store: FhirStore, tmp_path: Path, shared_data: Path
) -> None:
    """The estimate of ``pid = ? AND system = ? AND code = ?`` must not fall far below the
    real count (independent columns gave ~3 % of it; the planner then sorted every match)."""
    _load(pg_store, tmp_path, shared_data, 8, defer=True)
    pid = pg_store.params.pid("Observation", "code")
    sql = (
        "select lid from idx_token where pid = %s and system = 'http://loinc.org' "
        "and code = '8302-2'"
    )
    with pg_store.db.read() as conn:
        actual = conn.exec_driver_sql(f"select count(*) from ({sql}) q", (pid,)).scalar_one()
        plan = conn.exec_driver_sql(f"explain (format json) {sql}", (pid,)).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    estimate = plan[0]["Plan"]["Plan Rows"]
    assert actual >= 50, "the data must hold the code for the estimate to mean something"
    assert actual / 2 <= estimate <= actual * 2, (estimate, actual)


def test_the_migration_adds_the_statistics_to_an_existing_store(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        apply_migrations(engine, "fhir", schema.MIGRATIONS[:1])  # a store of version 1
        with engine.connect() as conn:
            assert _extended(conn) == set()
    finally:
        engine.dispose()
    store = FhirStore(pg_url)
    try:
        with store.db.read() as conn:
            assert _extended(conn) == set(schema.EXTENDED_STATISTICS)
    finally:
        store.close()


def _extended(conn: Any) -> set[str]:
    rows = conn.exec_driver_sql(
        "select stxname from pg_statistic_ext where stxnamespace = current_schema()::regnamespace"
    )
    return {r[0] for r in rows}
