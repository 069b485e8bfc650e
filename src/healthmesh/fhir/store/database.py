"""Connections for the FHIR store: serialised writers on SQLite, plain pooling on PostgreSQL.

SQLite allows one writer at a time. Write transactions start with ``BEGIN IMMEDIATE`` so two
writers never both read and then fail to upgrade their lock; readers use deferred
transactions and, thanks to WAL, never block writers. PostgreSQL uses one engine for both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, select, text, update
from sqlalchemy.pool import StaticPool

from healthmesh.db import apply_migrations, make_engine
from healthmesh.db.engine import normalize_url
from healthmesh.fhir.store import schema

#: page cache of the writer (KiB): big imports keep the unique (type, id) index and the
#: pages being filled in memory; the cache grows only as it is used
WRITER_CACHE_KIB = 262_144


def _sqlite_engine(url: str, begin: str, cache_kib: int | None = None) -> Engine:
    kwargs: dict[str, Any] = {}
    if url in ("sqlite://", "sqlite:///:memory:"):
        kwargs["poolclass"] = StaticPool
    engine = make_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _no_implicit_tx(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None
        # LIKE on already case-folded columns: case-sensitive, so 'prefix%' uses the index
        # (and uri :below stays case-sensitive, as URIs are)
        dbapi_conn.execute("PRAGMA case_sensitive_like=ON")
        if cache_kib is not None:
            dbapi_conn.execute(f"PRAGMA cache_size=-{cache_kib}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


class Database:
    """The store's database: ``write()`` and ``read()`` give connections in a transaction."""

    def __init__(self, db: str | Path) -> None:
        self.url = normalize_url(db)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(self.url, "BEGIN IMMEDIATE", WRITER_CACHE_KIB)
            memory = self.url in ("sqlite://", "sqlite:///:memory:")
            # An in-memory database exists once per connection: share the writer's.
            self.read_engine = self.write_engine if memory else _sqlite_engine(self.url, "BEGIN")
        else:
            self.write_engine = make_engine(self.url)
            self.read_engine = self.write_engine
        self._write_lock = threading.Lock() if self.is_sqlite else None
        #: bulk loads running in this process with their secondary indexes deferred: they
        #: refresh the statistics themselves when done, so ``analyze`` waits for them
        self.loading = 0
        apply_migrations(self.write_engine, "fhir", schema.MIGRATIONS)
        # a bulk load that died may have left its deferred indexes missing
        from healthmesh.fhir.store.bulkindex import ensure_indexes

        ensure_indexes(self)

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a write transaction; commits on success, rolls back on error."""
        if self._write_lock is not None:
            with self._write_lock, self.write_engine.begin() as conn:
                yield conn
        else:
            with self.write_engine.begin() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a read transaction (a consistent snapshot)."""
        if self.read_engine is self.write_engine and self._write_lock is not None:
            with self._write_lock, self.read_engine.begin() as conn:
                yield conn
        else:
            with self.read_engine.begin() as conn:
                yield conn

    def allocate_lids(self, conn: Connection, n: int) -> list[int]:
        """Allocate ``n`` new logical-resource keys inside the caller's write transaction."""
        if n <= 0:
            return []
        if self.is_sqlite:
            row = conn.execute(
                select(schema.counter.c.value).where(schema.counter.c.name == "lid")
            ).one()
            start = int(row[0])
            conn.execute(
                update(schema.counter).where(schema.counter.c.name == "lid").values(value=start + n)
            )
            return list(range(start, start + n))
        rows = conn.execute(
            text("select nextval('fhir_lid_seq') from generate_series(1, :n)"), {"n": n}
        ).all()
        return [int(r[0]) for r in rows]

    def analyze(self, *, vacuum: bool = False) -> None:
        """Refresh the planner's statistics of the store's tables (sampled on SQLite, so it
        stays cheap); skipped while a deferred bulk load runs, which analyzes at its end.

        ``vacuum`` (PostgreSQL, after a bulk load) also vacuums: that sets the visibility
        map, so searches read the ``idx_*`` B-trees without visiting their tables (index-only
        scans), and writes the hint bits once instead of leaving them to the first readers.
        """
        if self.loading:
            return
        with self.write_engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
                return
            # only the store's tables: a bare ANALYZE would sample every table of the
            # database (other components' and other schemas' too)
            tables = ", ".join(t.name for t in schema.metadata.sorted_tables)
            if vacuum:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql(f"VACUUM (ANALYZE) {tables}")
            else:
                conn.exec_driver_sql(f"ANALYZE {tables}")
                conn.commit()

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
