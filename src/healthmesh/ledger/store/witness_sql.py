"""Durable witness state on SQLite/PostgreSQL (component ``ledger_witness``): the latest
cosigned tree head per log origin, moved with an atomic compare-and-set as tlog-witness
requires (check and persist in one step, so two requests can never roll the state back)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from healthmesh.db import Migration, apply_migrations, make_engine

COMPONENT = "ledger_witness"
meta = MetaData()
heads_t = Table(
    "ledger_witness_heads",
    meta,
    Column("origin", String(400), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
)


def _v1(conn: Connection) -> None:
    meta.create_all(conn)


MIGRATIONS = [Migration(1, "witness: latest cosigned head per log", _v1)]


class SqlWitnessState:
    """A :class:`~healthmesh.ledger.witness.WitnessState` in a SQL database."""

    def __init__(self, db: str | Path | Engine) -> None:
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        apply_migrations(self.engine, COMPONENT, MIGRATIONS)

    def get(self, origin: str) -> tuple[int, bytes] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(heads_t.c.size, heads_t.c.root).where(heads_t.c.origin == origin)
            ).first()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def compare_and_set(self, origin: str, old_size: int, size: int, root: bytes) -> bool:
        try:
            with self.engine.begin() as conn:
                if old_size == 0:
                    exists = conn.execute(
                        select(heads_t.c.size).where(heads_t.c.origin == origin)
                    ).first()
                    if exists is None:
                        conn.execute(insert(heads_t).values(origin=origin, size=size, root=root))
                        return True
                moved = conn.execute(
                    update(heads_t)
                    .where(heads_t.c.origin == origin, heads_t.c.size == old_size)
                    .values(size=size, root=root)
                ).rowcount
                return bool(moved == 1)
        except IntegrityError:
            return False

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()
