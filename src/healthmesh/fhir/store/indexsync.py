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

from sqlalchemy import Connection, and_, bindparam, delete, select

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


def sync_index(conn: Connection, params: ParamTable, targets: Targets) -> int:
    """Make the index rows of every lid in ``targets`` those of its new version (inside the
    caller's transaction); return how many (lid, parameter) groups were rewritten."""
    gone = [lid for lid, t in targets.items() if t is None]
    for i in range(0, len(gone), CHUNK):
        chunk = gone[i : i + CHUNK]
        for table in schema.INDEX_TABLES.values():
            conn.execute(delete(table).where(table.c.lid.in_(chunk)))
    live = {lid: t for lid, t in targets.items() if t is not None}
    if not live:
        return 0
    new = empty_rows()
    for lid, (res_type, rows) in live.items():
        table_rows(params, res_type, lid, rows, new)
    lids = list(live)
    rewritten = 0
    for kind, table in schema.INDEX_TABLES.items():
        old: list[Row] = []
        for i in range(0, len(lids), CHUNK):
            chunk = lids[i : i + CHUNK]
            old.extend(tuple(r) for r in conn.execute(select(table).where(table.c.lid.in_(chunk))))
        before, after = _grouped(old), _grouped(new[kind])
        stale = [key for key, rows in before.items() if after.get(key) != rows]
        fresh = [key for key, rows in after.items() if before.get(key) != rows]
        if stale:
            conn.execute(
                delete(table).where(
                    and_(table.c.lid == bindparam("k_lid"), table.c.pid == bindparam("k_pid"))
                ),
                [{"k_lid": lid, "k_pid": pid} for lid, pid in stale],
            )
        if fresh:
            fast_insert(conn, table, [row for key in fresh for row in after[key].elements()])
        rewritten += len(set(stale) | set(fresh))
    return rewritten
