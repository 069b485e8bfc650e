"""Single-use request nonces in SQL (component ``federation_nonces``), so replay protection
holds across hub restarts and across several hub workers sharing one database.

A nonce is kept until its request could no longer pass the time window; expired ones are
deleted every ``sweep_every`` uses.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    insert,
    update,
)
from sqlalchemy.exc import IntegrityError

from healthmesh.db import Migration, apply_migrations, make_engine

COMPONENT = "federation_nonces"
metadata = MetaData()
nonces = Table(
    "fed_nonces",
    metadata,
    Column("institution", String(64), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)


_USE = insert(nonces).values(
    institution=bindparam("i"), nonce=bindparam("n"), expires_at=bindparam("e")
)  # built once: the hub runs it for every request


def _create(conn: Connection) -> None:
    metadata.create_all(conn)


MIGRATIONS = [Migration(1, "federation request nonces", _create)]


class SqlNonceStore:
    """:class:`~healthmesh.federation.signing.NonceStore` in SQLite or PostgreSQL."""

    def __init__(self, db: Engine | str | Path, *, sweep_every: int = 1000) -> None:
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        self.sweep_every = sweep_every
        self._uses = 0
        apply_migrations(self.engine, COMPONENT, MIGRATIONS)

    def use(self, institution: str, nonce: str, expires_at: float, now: float) -> bool:
        """See :meth:`~healthmesh.federation.signing.NonceStore.use`."""
        self._uses += 1
        if self._uses % self.sweep_every == 0:
            with self.engine.begin() as conn:
                conn.execute(delete(nonces).where(nonces.c.expires_at < now))
        try:
            with self.engine.begin() as conn:
                conn.execute(_USE, {"i": institution, "n": nonce, "e": expires_at})
            return True
        except IntegrityError:
            pass
        with self.engine.begin() as conn:  # a stale entry the sweep has not removed yet
            res = conn.execute(
                update(nonces)
                .where(
                    nonces.c.institution == institution,
                    nonces.c.nonce == nonce,
                    nonces.c.expires_at < now,
                )
                .values(expires_at=expires_at)
            )
            return res.rowcount == 1
