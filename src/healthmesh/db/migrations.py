"""Forward-only schema migrations, versioned per component in one ``schema_versions`` table.

Why not Alembic: several components (FHIR store, access, ledger, hub registries) share one
embedded database and must upgrade themselves at start-up without an ``alembic.ini`` or a
migrations folder on disk; a migration here is an ordered Python function run in a
transaction, which is all Alembic's runtime would do for us.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    select,
)

from healthmesh.errors import HealthmeshError

_meta = MetaData()
schema_versions = Table(
    "schema_versions",
    _meta,
    Column("component", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """One schema step of a component. ``version`` starts at 1 and increases by one."""

    version: int
    description: str
    upgrade: Callable[[Connection], None]


class MigrationError(HealthmeshError):
    code = "exception"


def current_version(engine: Engine, component: str) -> int:
    _meta.create_all(engine, checkfirst=True)
    with engine.connect() as conn:
        row = conn.execute(
            select(schema_versions.c.version).where(schema_versions.c.component == component)
        ).first()
    return int(row[0]) if row else 0


def apply_migrations(engine: Engine, component: str, migrations: Sequence[Migration]) -> int:
    """Apply the pending migrations of ``component`` in order; return the new version.

    Each step runs in its own transaction together with the version bump, so a crash leaves
    the schema at a consistent version. A database newer than this code is refused.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise MigrationError(f"migrations of {component} must be numbered 1..n")
    _meta.create_all(engine, checkfirst=True)
    have = current_version(engine, component)
    if have > len(migrations):
        raise MigrationError(
            f"database schema of {component} is at version {have}, newer than this software "
            f"({len(migrations)}); upgrade healthmesh"
        )
    for mig in migrations[have:]:
        with engine.begin() as conn:
            mig.upgrade(conn)
            now = datetime.now(UTC)
            if mig.version == 1:
                conn.execute(
                    schema_versions.insert().values(component=component, version=1, applied_at=now)
                )
            else:
                conn.execute(
                    schema_versions.update()
                    .where(schema_versions.c.component == component)
                    .values(version=mig.version, applied_at=now)
                )
    return len(migrations)
