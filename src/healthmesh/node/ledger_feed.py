"""The node's AuditEvents as a feed for the ledger: pages in write order with a cursor.

``LedgerClient.anchor_audit_events(audit_feed(store), cursor)`` appends the digests of every
AuditEvent written since ``cursor``; the node keeps the returned cursor (for example in a
file) so each access is anchored exactly once and a restart resumes without gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import select

from healthmesh.errors import InvalidInput
from healthmesh.fhir.store import FhirStore, schema

Fetch = Callable[[str | None, int], tuple[list[dict[str, Any]], str | None]]
R = schema.resource


def audit_feed(store: FhirStore) -> Fetch:
    """A ``fetch(after_cursor, limit)`` over the store's AuditEvents, oldest first."""

    def fetch(after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        if after is not None and not after.isdigit():
            raise InvalidInput("audit cursor must be a number")
        start = int(after) if after else 0
        with store.db.read() as conn:
            rows = conn.execute(
                select(R.c.lid, R.c.content)
                .where(R.c.res_type == "AuditEvent", R.c.lid > start, R.c.deleted == False)  # noqa: E712
                .order_by(R.c.lid)
                .limit(limit)
            ).all()
        if not rows:
            return [], after
        return [orjson.loads(r.content) for r in rows], str(int(rows[-1].lid))

    return fetch
