"""Rebuild the search indexes from stored resources (after search definitions change)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from sqlalchemy import delete, select

from healthmesh.fhir.store import schema
from healthmesh.fhir.store.bulkwrite import fast_insert
from healthmesh.fhir.store.params import empty_rows, table_rows

if TYPE_CHECKING:
    from healthmesh.fhir.store.store import FhirStore

R = schema.resource


def reindex_all(store: FhirStore, batch: int = 2000) -> int:
    """Re-extract every current resource's index rows; return how many were reindexed."""
    done = 0
    last = -1
    while True:
        with store.db.write() as conn:
            rows = conn.execute(
                select(R.c.lid, R.c.res_type, R.c.content)
                .where(R.c.lid > last, R.c.deleted == False)  # noqa: E712
                .order_by(R.c.lid)
                .limit(batch)
            ).all()
            if not rows:
                store.params.mark_current(conn)
                return done
            lids = [int(r.lid) for r in rows]
            for table in schema.INDEX_TABLES.values():
                conn.execute(delete(table).where(table.c.lid.in_(lids)))
            out = empty_rows()
            for r in rows:
                resource = orjson.loads(r.content)
                table_rows(store.params, r.res_type, int(r.lid), store.extract(resource), out)
            for kind, idx_rows in out.items():
                fast_insert(conn, schema.INDEX_TABLES[kind], idx_rows)
            done += len(rows)
            last = lids[-1]
