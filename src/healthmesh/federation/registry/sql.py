"""The institution registry in SQL (SQLAlchemy Core; SQLite or PostgreSQL; component
``federation_registry``). One row per institution (status and metadata as columns, the
document as JSON) and one row per key, so a key id is found by index and is unique."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from healthmesh.db import Migration, apply_migrations, make_engine
from healthmesh.errors import Conflict
from healthmesh.federation.registry.base import Institution, RegistryRules

COMPONENT = "federation_registry"
metadata = MetaData()
institutions = Table(
    "fed_institutions",
    metadata,
    Column("institution", String(64), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("doc", Text, nullable=False),
)
keys = Table(
    "fed_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column(
        "institution",
        String(64),
        ForeignKey("fed_institutions.institution", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)


def _create(conn: Connection) -> None:
    metadata.create_all(conn)


MIGRATIONS = [Migration(1, "federation institution registry", _create)]


class SqlRegistry(RegistryRules):
    """:class:`~.base.InstitutionRegistry` in a SQLite file or a PostgreSQL database."""

    def __init__(
        self,
        db: Engine | str | Path,
        clock: Callable[[], float] = time.time,
        *,
        cache_s: float = 1.0,
    ) -> None:
        super().__init__(clock, cache_s)
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        apply_migrations(self.engine, COMPONENT, MIGRATIONS)

    def _load(self, institution: str) -> Institution | None:
        with self.engine.connect() as conn:
            doc = conn.execute(
                select(institutions.c.doc).where(institutions.c.institution == institution)
            ).scalar()
        return None if doc is None else Institution.model_validate_json(doc)

    def _save(self, inst: Institution, *, new: bool) -> None:
        row = {"status": inst.status, "doc": inst.model_dump_json()}
        try:
            with self.engine.begin() as conn:
                if new:
                    conn.execute(insert(institutions).values(institution=inst.institution, **row))
                else:
                    conn.execute(
                        update(institutions)
                        .where(institutions.c.institution == inst.institution)
                        .values(**row)
                    )
                    conn.execute(delete(keys).where(keys.c.institution == inst.institution))
                conn.execute(
                    insert(keys),
                    [
                        {"key_id": k.record.key_id, "institution": inst.institution}
                        for k in inst.keys
                    ],
                )
        except IntegrityError as exc:
            raise Conflict("institution or key registered concurrently") from exc

    def _all(self) -> list[Institution]:
        with self.engine.connect() as conn:
            docs = conn.execute(select(institutions.c.doc)).scalars().all()
        return [Institution.model_validate_json(d) for d in docs]

    def _owner_of(self, key_id: str) -> str | None:
        with self.engine.connect() as conn:
            owner = conn.execute(select(keys.c.institution).where(keys.c.key_id == key_id)).scalar()
        return None if owner is None else str(owner)
