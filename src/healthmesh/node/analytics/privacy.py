"""The node's privacy stores in its database (component ``node_privacy``): the budget spent
per (researcher, study) with its charges, and the cohorts released to each researcher.

SQL twins of :class:`healthmesh.privacy.budget.MemoryBudgetStore` and
:class:`healthmesh.privacy.release_log.MemoryReleaseLog` (same contract suite), on SQLite and
PostgreSQL. A budget charge is one transaction whose first statement writes (so SQLite takes
its write lock at once and PostgreSQL locks the budget row): the charge row is inserted
(``ON CONFLICT DO NOTHING``: a re-delivered task id charges nothing), then the total is raised
by a conditional ``UPDATE`` that matches no row when the cap would be passed, which rolls the
whole charge back. Released cohorts are kept as the sorted member ids (zlib-compressed) under
their SHA-256, never leaving the node.
"""

from __future__ import annotations

import hashlib
import zlib
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert

from healthmesh.db import Migration, apply_migrations, is_postgres, make_engine
from healthmesh.errors import Conflict
from healthmesh.privacy.budget import TOLERANCE, Spent, budget_refusal, check_cost

COMPONENT = "node_privacy"
metadata = MetaData()

spent_table = Table(
    "privacy_budget_spent",
    metadata,
    Column("researcher", String(200), primary_key=True),
    Column("study", String(200), primary_key=True),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
)
charges = Table(
    "privacy_budget_charge",
    metadata,
    Column("researcher", String(200), primary_key=True),
    Column("study", String(200), primary_key=True),
    Column("charge_id", String(200), primary_key=True),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("charged_at", DateTime(timezone=True), nullable=False),
)
releases = Table(
    "privacy_release",
    metadata,
    Column("researcher", String(200), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("members", LargeBinary, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


def _create(conn: Connection) -> None:
    metadata.create_all(conn)


MIGRATIONS = [Migration(1, "privacy budgets, charges and released cohorts", _create)]


def _engine(db: Engine | str | Path) -> Engine:
    engine = db if isinstance(db, Engine) else make_engine(db)
    apply_migrations(engine, COMPONENT, MIGRATIONS)
    return engine


class SqlBudgetStore:
    """:class:`~healthmesh.privacy.budget.BudgetStore` in the node's database."""

    def __init__(self, db: Engine | str | Path) -> None:
        self.engine = _engine(db)
        self._insert = pg_insert if is_postgres(self.engine) else lite_insert

    def spent(self, researcher: str, study: str) -> Spent:
        """What has been charged so far to (researcher, study)."""
        with self.engine.connect() as conn:
            return self._spent(conn, researcher, study)

    @staticmethod
    def _spent(conn: Connection, researcher: str, study: str) -> Spent:
        row = conn.execute(
            select(spent_table.c.epsilon, spent_table.c.delta).where(
                spent_table.c.researcher == researcher, spent_table.c.study == study
            )
        ).first()
        return Spent(float(row[0]), float(row[1])) if row else Spent()

    def charge(self, researcher: str, study: str, charge_id: str, cost: Spent, cap: Spent) -> Spent:
        """Add ``cost`` once per ``charge_id`` in one transaction, refusing past ``cap``."""
        check_cost(cost)
        key = {"researcher": researcher, "study": study}
        with self.engine.begin() as conn:
            new = conn.execute(
                self._insert(charges)
                .values(
                    **key,
                    charge_id=charge_id,
                    epsilon=cost.epsilon,
                    delta=cost.delta,
                    charged_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing()
                .returning(charges.c.charge_id)
            ).first()
            if new is None:
                done = conn.execute(
                    select(charges.c.epsilon, charges.c.delta).where(
                        charges.c.researcher == researcher,
                        charges.c.study == study,
                        charges.c.charge_id == charge_id,
                    )
                ).one()
                if Spent(float(done[0]), float(done[1])) != cost:
                    raise Conflict("this charge id was already charged with a different cost")
                return self._spent(conn, researcher, study)
            conn.execute(
                self._insert(spent_table)
                .values(**key, epsilon=0.0, delta=0.0)
                .on_conflict_do_nothing()
            )
            e, d = spent_table.c.epsilon, spent_table.c.delta
            raised = conn.execute(
                spent_table.update()
                .where(
                    spent_table.c.researcher == researcher,
                    spent_table.c.study == study,
                    e + cost.epsilon <= cap.epsilon + TOLERANCE,
                    d + cost.delta <= cap.delta + TOLERANCE,
                )
                .values(epsilon=e + cost.epsilon, delta=d + cost.delta)
            ).rowcount
            if not raised:
                raise budget_refusal(cap)  # leaving the block rolls the charge row back
            return self._spent(conn, researcher, study)


def _pack(members: frozenset[str]) -> tuple[str, bytes]:
    text = "\n".join(sorted(members)).encode()
    return hashlib.sha256(text).hexdigest(), zlib.compress(text)


def _unpack(blob: bytes) -> frozenset[str]:
    text = zlib.decompress(bytes(blob)).decode()
    return frozenset(text.split("\n")) if text else frozenset()


class SqlReleaseLog:
    """:class:`~healthmesh.privacy.release_log.ReleaseLog` in the node's database."""

    def __init__(self, db: Engine | str | Path) -> None:
        self.engine = _engine(db)
        self._insert = pg_insert if is_postgres(self.engine) else lite_insert

    def released(self, researcher: str) -> list[frozenset[str]]:
        """Every distinct cohort recorded for ``researcher`` (any study)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(releases.c.members).where(releases.c.researcher == researcher)
            ).all()
        return [_unpack(r[0]) for r in rows]

    def record(self, researcher: str, members: frozenset[str]) -> None:
        """Remember a released cohort (the same set again changes nothing)."""
        digest, blob = _pack(frozenset(members))
        with self.engine.begin() as conn:
            conn.execute(
                self._insert(releases)
                .values(
                    researcher=researcher,
                    digest=digest,
                    size=len(members),
                    members=blob,
                    recorded_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing()
            )
