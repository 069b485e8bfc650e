"""Bring the search-index rows of updated and deleted resources in line with their new
versions, touching only the parameters whose rows changed.

An A08 update typically changes a field or two of a resource with twenty index rows.
Deleting all of them and inserting them again rewrote every row in two or three B-trees per
table; instead the stored rows of a batch of resources are read (one query per index table),
compared per (resource, parameter) with the new version's, and only the groups that differ
are deleted and inserted again. The result is the same as a full rewrite.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table

from healthmesh.fhir.store import schema
from healthmesh.fhir.store.bulkwrite import fast_insert
from healthmesh.fhir.store.params import ParamTable, Row, empty_rows, table_rows

#: lids per IN list
CHUNK = 500

#: per logical resource key: (resource type, index rows of the new version), or None when
#: the resource was deleted (all its rows go)
Targets = Mapping[int, "tuple[str, Any] | None"]


def _grouped(rows: list[Row]) -> dict[tuple[int, int], Counter[Row]]:
    out: dict[tuple[int, int], Counter[Row]] = {}
    for row in rows:
        out.setdefault((row[0], row[1]), Counter())[row] += 1
    return out


class _Driver:
    """Plain SQL on the driver cursor (these statements run once per update transaction;
    building and compiling SQLAlchemy expressions for them cost more than running them)."""

    def __init__(self, conn: Connection) -> None:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        self.cur = dbapi.cursor()
        self.sqlite = conn.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def rows_of(self, table: Table, lids: list[int]) -> list[Row]:
        cols = ", ".join(c.name for c in table.columns)
        args: tuple[Any, ...]
        if self.sqlite:
            where, args = f"lid IN ({', '.join('?' * len(lids))})", tuple(lids)
        else:
            where, args = "lid = ANY(%s)", (lids,)
        self.cur.execute(f"SELECT {cols} FROM {table.name} WHERE {where}", args)
        return [tuple(r) for r in self.cur.fetchall()]

    def delete_lids(self, table: Table, lids: list[int]) -> None:
        if self.sqlite:
            self.cur.execute(
                f"DELETE FROM {table.name} WHERE lid IN ({', '.join('?' * len(lids))})", lids
            )
        else:
            self.cur.execute(f"DELETE FROM {table.name} WHERE lid = ANY(%s)", (lids,))

    def delete_groups(self, table: Table, keys: list[tuple[int, int]]) -> None:
        m = self.mark
        self.cur.executemany(f"DELETE FROM {table.name} WHERE lid = {m} AND pid = {m}", keys)


def sync_index(conn: Connection, params: ParamTable, targets: Targets) -> int:
    """Make the index rows of every lid in ``targets`` those of its new version (inside the
    caller's transaction); return how many (lid, parameter) groups were rewritten."""
    driver = _Driver(conn)
    try:
        return _sync(conn, driver, params, targets)
    finally:
        driver.cur.close()


def _sync(conn: Connection, driver: _Driver, params: ParamTable, targets: Targets) -> int:
    gone = [lid for lid, t in targets.items() if t is None]
    for i in range(0, len(gone), CHUNK):
        for table in schema.INDEX_TABLES.values():
            driver.delete_lids(table, gone[i : i + CHUNK])
    new = empty_rows()
    lids: list[int] = []
    for lid, target in targets.items():
        if target is not None:
            table_rows(params, target[0], lid, target[1], new)
            lids.append(lid)
    rewritten = 0
    for kind, table in schema.INDEX_TABLES.items():
        old: list[Row] = []
        for i in range(0, len(lids), CHUNK):
            old.extend(driver.rows_of(table, lids[i : i + CHUNK]))
        before, after = _grouped(old), _grouped(new[kind])
        stale = [key for key, rows in before.items() if after.get(key) != rows]
        fresh = [key for key, rows in after.items() if before.get(key) != rows]
        if stale:
            driver.delete_groups(table, stale)
        if fresh:
            fast_insert(conn, table, [row for key in fresh for row in after[key].elements()])
        rewritten += len(set(stale) | set(fresh))
    return rewritten
