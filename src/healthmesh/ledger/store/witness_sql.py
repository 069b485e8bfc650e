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
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
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


evidence_t = Table(
    "ledger_witness_evidence",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", String(400), nullable=False, index=True),
    Column("note", Text, nullable=False),
    Column("reason", Text, nullable=False),
)


def _v1(conn: Connection) -> None:
    heads_t.create(conn)


def _v2(conn: Connection) -> None:
    evidence_t.create(conn)


MIGRATIONS = [
    Migration(1, "witness: latest cosigned head per log", _v1),
    Migration(2, "witness: refused checkpoints kept as evidence", _v2),
]


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

    def record_evidence(self, origin: str, note: str, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(evidence_t).values(origin=origin, note=note, reason=reason))

    def get_evidence(self, origin: str) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(evidence_t.c.note, evidence_t.c.reason)
                .where(evidence_t.c.origin == origin)
                .order_by(evidence_t.c.id)
            ).all()
        return [(str(r[0]), str(r[1])) for r in rows]

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()
