"""Insert many new resources and their index rows at once.

SQLite gets ``executemany`` on the driver cursor (no per-row SQL compilation); PostgreSQL
gets ``COPY ... FROM STDIN``, the fastest way into it. Both run inside the caller's
transaction, so a failed batch leaves nothing behind.

Resource rows (``fhir_resource``, ``fhir_history``) go in COPY's binary format: the JSON
content is sent as it is instead of hex-escaped to twice its size and decoded again by the
server (a 20 k-resource batch: server CPU 0.82 -> 0.70 s, client 0.35 -> 0.15 s). Their
column types are fixed by the store; index rows, whose values come from the extractor,
stay in the text format, which converts whatever it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Boolean, Connection, Float, Integer, LargeBinary, Table

from healthmesh.fhir.store import schema
from healthmesh.fhir.store.params import empty_rows, table_rows
from healthmesh.fhir.store.records import Stored

if TYPE_CHECKING:
    from healthmesh.fhir.store.store import FhirStore
    from healthmesh.fhir.store.writes import WriteTx


def _pg_types(table: Table) -> list[str]:
    """PostgreSQL type names of ``table``'s columns, for binary COPY."""
    out = []
    for col in table.columns:
        t = col.type
        if isinstance(t, BigInteger):
            out.append("int8")
        elif isinstance(t, Integer):
            out.append("int4")
        elif isinstance(t, Float):
            out.append("float8")
        elif isinstance(t, Boolean):
            out.append("bool")
        elif isinstance(t, LargeBinary):
            out.append("bytea")
        else:
            out.append("text")  # String, Text (varchar and text share their binary form)
    return out


#: tables copied in binary format, with their column types
BINARY = {t.name: _pg_types(t) for t in (schema.resource, schema.history)}


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
            types = BINARY.get(table.name)
            fmt = " (FORMAT BINARY)" if types else ""
            with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN{fmt}") as copy:
                if types:
                    copy.set_types(types)
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
    ts = tx.now()
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
