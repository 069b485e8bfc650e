"""Secondary search indexes deferred during a large bulk load, and rebuilt (or recovered).

Inserting millions of index rows into B-trees keyed on (pid, code, ...) touches pages in
random order; once the indexes outgrow the page cache every insert costs page reads, and a
1 M-resource import slowed from ~1,400 to ~540 resources/s. A large import therefore drops
the *secondary* indexes of the ``idx_*`` tables first and builds them again at the end: one
sort per index instead of millions of random inserts.

What stays during the load: the tables themselves, ``ix_idx_*_lid`` (appended in lid order,
used to delete stale rows on update) and every index of ``fhir_resource`` (its unique
(type, id) key guards ids). Readers stay correct meanwhile: a search without its index
scans the table, slower but with the same result.

Crash safety: the load keeps a heartbeat row (``bulk_load`` in ``fhir_counter``). Opening a
store (``Database``), ``node reindex`` and the next import call :func:`ensure_indexes`, which
rebuilds missing indexes unless a live load's heartbeat is fresh (a store opened by the
server during a running import leaves that import alone).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Index, delete, insert, select, text, update

from healthmesh.fhir.store import schema

if TYPE_CHECKING:
    from healthmesh.fhir.store.database import Database

MARKER = "bulk_load"
#: a heartbeat older than this (seconds) belongs to a load that died
STALE_AFTER = 300.0


def secondary_indexes() -> list[Index]:
    """The indexes a bulk load may defer: those of the idx_* tables except (lid, pid)."""
    out: list[Index] = []
    for table in schema.INDEX_TABLES.values():
        out.extend(ix for ix in table.indexes if ix.name != f"ix_{table.name}_lid")
    return sorted(out, key=lambda ix: str(ix.name))


def missing_indexes(conn: Connection) -> list[Index]:
    """Secondary indexes that the database lacks."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("select name from sqlite_master where type = 'index'")
    else:
        rows = conn.execute(
            text("select indexname from pg_indexes where schemaname = current_schema()")
        )
    have = {r[0] for r in rows}
    return [ix for ix in secondary_indexes() if ix.name not in have]


def _heartbeat(conn: Connection) -> float | None:
    c = schema.counter
    value = conn.execute(select(c.c.value).where(c.c.name == MARKER)).scalar()
    return None if value is None else float(value)


def beat(conn: Connection) -> None:
    """Refresh the running load's heartbeat (inside the caller's write transaction)."""
    c = schema.counter
    conn.execute(update(c).where(c.c.name == MARKER).values(value=int(time.time())))


def ensure_indexes(db: Database, *, force: bool = False, loaded: bool = False) -> int:
    """Create missing secondary indexes unless a live bulk load owns them; return how many
    were created. ``force`` ignores the heartbeat (the load itself finishing); ``loaded``
    (a load that just finished) refreshes the statistics, and on PostgreSQL vacuums, even
    when no index was missing."""
    with db.read() as conn:
        missing = missing_indexes(conn)
        beat_at = _heartbeat(conn)
    if not missing and beat_at is None:
        if loaded:
            db.analyze(vacuum=True)
        return 0
    if not force and beat_at is not None and time.time() - beat_at < STALE_AFTER:
        return 0
    with db.write() as conn, _build_settings(conn):
        for ix in missing_indexes(conn):
            ix.create(conn, checkfirst=True)
        conn.execute(delete(schema.counter).where(schema.counter.c.name == MARKER))
    if missing or loaded:
        db.analyze(vacuum=loaded)
    return len(missing)


def drop_secondary(db: Database) -> None:
    """Start a bulk load: set the heartbeat and drop the secondary indexes (one transaction)."""
    with db.write() as conn:
        c = schema.counter
        conn.execute(delete(c).where(c.c.name == MARKER))
        conn.execute(insert(c).values(name=MARKER, value=int(time.time())))
        have = {ix.name for ix in secondary_indexes()} - {
            ix.name for ix in missing_indexes(conn)
        }
        for ix in secondary_indexes():
            if ix.name in have:
                ix.drop(conn)


@contextmanager
def deferred(db: Database) -> Iterator[None]:
    """Run a bulk load with secondary indexes dropped, rebuilding them afterwards (also when
    the load fails; a crash leaves the rebuild to the next :func:`ensure_indexes`).
    Statistics are refreshed once, at the end: ``Database.analyze`` waits meanwhile."""
    drop_secondary(db)
    db.loading += 1
    try:
        yield
    finally:
        db.loading -= 1
        ensure_indexes(db, force=True, loaded=True)


@contextmanager
def _build_settings(conn: Connection) -> Iterator[None]:
    """More sort memory (PostgreSQL) or sorter helper threads (SQLite, whose writer has a
    large page cache already) for index builds on ``conn``."""
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        yield
        return
    conn.exec_driver_sql("PRAGMA threads=2")
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA threads=0")
