"""The quarantine: every rejected source record with its bytes, reason and location, so
nothing is dropped silently and a fixed mapping can retry it.

Kept in the node's own database (component "quarantine", via ``apply_migrations``) rather
than as files under the data dir: it follows the node to PostgreSQL in production, lists
and filters by institution/format/status with plain SQL, and a retry marks an entry resolved
in the same database the resources are written to.
"""

from __future__ import annotations

import builtins
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from healthmesh.db import Migration, apply_migrations, make_engine
from healthmesh.errors import NotFound
from healthmesh.ingest.adapter import Rejected

_meta = MetaData()
entries = Table(
    "quarantine_entry",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("institution", String(128), nullable=False, index=True),
    Column("format", String(16), nullable=False),
    Column("source_ref", Text, nullable=False),
    Column("source_bytes", LargeBinary, nullable=False),
    Column("digest", String(64), nullable=False, index=True),  # sha256 of the bytes
    Column("reason", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),  # open | resolved
    Column("attempts", Integer, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("resolved_at", Float),
)


def _v1(conn: Connection) -> None:
    _meta.create_all(conn)


MIGRATIONS = [Migration(1, "quarantine entries", _v1)]


@dataclass(frozen=True)
class Entry:
    """One quarantined record. ``reason`` and ``location`` are public; the bytes are not."""

    id: int
    institution: str
    format: str
    source_ref: str
    source_bytes: bytes
    digest: str
    reason: str
    location: str
    status: str
    attempts: int
    received_at: float
    resolved_at: float | None


class QuarantineStore:
    """Quarantined records in a SQLite file or PostgreSQL database.

    >>> q = QuarantineStore(":memory:")
    >>> n = q.add("H1", "hl7v2", Rejected("a.hl7#1", b"MSH|", "bad", "MSH-9"))
    >>> [e.reason for e in q.list()]
    ['bad']
    """

    def __init__(self, db: str | Path) -> None:
        self.engine = make_engine(db)
        apply_migrations(self.engine, "quarantine", MIGRATIONS)

    def close(self) -> None:
        self.engine.dispose()

    def add(self, institution: str, fmt: str, rejected: Rejected) -> int:
        """Keep a rejected record; return its quarantine id. The same bytes rejected again
        (a re-sent message, a re-ingested file) update the open entry instead of adding one."""
        digest = hashlib.sha256(rejected.source_bytes).hexdigest()
        with self.engine.begin() as conn:
            found = conn.execute(
                select(entries.c.id).where(
                    entries.c.institution == institution,
                    entries.c.digest == digest,
                    entries.c.status == "open",
                )
            ).first()
            if found is not None:
                conn.execute(
                    update(entries)
                    .where(entries.c.id == found[0])
                    .values(
                        reason=rejected.reason,
                        location=rejected.location,
                        source_ref=rejected.source_ref,
                        attempts=entries.c.attempts + 1,
                    )
                )
                return int(found[0])
            res = conn.execute(
                insert(entries).values(
                    institution=institution,
                    format=fmt,
                    source_ref=rejected.source_ref,
                    source_bytes=rejected.source_bytes,
                    digest=digest,
                    reason=rejected.reason,
                    location=rejected.location,
                    status="open",
                    attempts=1,
                    received_at=time.time(),
                )
            )
            key = res.inserted_primary_key
            return int(key[0]) if key is not None else 0

    def list(
        self, *, institution: str | None = None, status: str | None = "open", limit: int = 1000
    ) -> builtins.list[Entry]:
        """Entries, oldest first, filtered by institution and status (None: all)."""
        q = select(entries).order_by(entries.c.id).limit(limit)
        if institution is not None:
            q = q.where(entries.c.institution == institution)
        if status is not None:
            q = q.where(entries.c.status == status)
        with self.engine.connect() as conn:
            return [Entry(**row._mapping) for row in conn.execute(q)]

    def count(self, *, institution: str | None = None, status: str | None = "open") -> int:
        q = select(func.count()).select_from(entries)
        if institution is not None:
            q = q.where(entries.c.institution == institution)
        if status is not None:
            q = q.where(entries.c.status == status)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def get(self, entry_id: int) -> Entry:
        with self.engine.connect() as conn:
            row = conn.execute(select(entries).where(entries.c.id == entry_id)).first()
        if row is None:
            raise NotFound("no such quarantine entry")
        return Entry(**row._mapping)

    def resolve(self, entry_id: int) -> None:
        """Mark an entry resolved (its record was converted on retry)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(entries)
                .where(entries.c.id == entry_id)
                .values(status="resolved", resolved_at=time.time(), attempts=entries.c.attempts + 1)
            )

    def failed_again(self, entry_id: int, reason: str, location: str) -> None:
        """Record a failed retry: the entry stays open with the latest reason."""
        with self.engine.begin() as conn:
            conn.execute(
                update(entries)
                .where(entries.c.id == entry_id)
                .values(reason=reason, location=location, attempts=entries.c.attempts + 1)
            )
