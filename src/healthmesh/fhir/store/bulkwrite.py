"""Insert many new resources and their index rows at once.

SQLite gets ``executemany`` on the driver cursor (no per-row SQL compilation); PostgreSQL
gets ``COPY ... FROM STDIN``, the fastest way into it. Both run inside the caller's
transaction, so a failed batch leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table

from healthmesh.fhir.store import schema
from healthmesh.fhir.store.params import empty_rows, table_rows
from healthmesh.fhir.store.records import Stored

if TYPE_CHECKING:
    from healthmesh.fhir.store.store import FhirStore
    from healthmesh.fhir.store.writes import WriteTx


def fast_insert(conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows (tuples in the table's column order) through the driver: executemany on
    SQLite, COPY on PostgreSQL."""
    if not rows:
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cols = [c.name for c in table.columns]
    cur = dbapi.cursor()
    try:
        if conn.dialect.name == "sqlite":
            marks = ", ".join("?" * len(cols))
            sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks})"
            cur.executemany(sql, rows)
        else:
            with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
    finally:
        cur.close()


def write_batch(store: FhirStore, tx: WriteTx, items: Sequence[Any]) -> None:
    """Insert new resources (objects with res_type, res_id, content, rows) with version 1."""
    if not items:
        return
    tx.flush()
    lids = store.db.allocate_lids(tx.conn, len(items))
    ts = tx._now()
    resources = []
    index = empty_rows()
    for lid, item in zip(lids, items, strict=True):
        resources.append((lid, item.res_type, item.res_id, 1, ts, False, "POST", item.content))
        table_rows(store.params, item.res_type, lid, item.rows, index)
    write_rows(tx, resources, index)


def write_rows(
    tx: WriteTx, resources: Sequence[tuple[Any, ...]], index: dict[str, list[tuple[Any, ...]]]
) -> None:
    """Insert prepared rows: ``resources`` in ``fhir_resource`` column order (version 1, lids
    already allocated) and their index rows by kind, and note them as written."""
    if not resources:
        return
    tx.flush()
    fast_insert(tx.conn, schema.resource, resources)
    for kind, rows in index.items():
        fast_insert(tx.conn, schema.INDEX_TABLES[kind], rows)
    tx.written.extend(Stored(*r) for r in resources)
