"""Which institution may read which trained model at the hub: an institution reads a model
version only if it took part in training it (the version's lineage names it) or the version
was explicitly shared with it. A node reads models through an OAuth client of the hub; the
operator binds that client to its institution here (a client stands for one institution;
binding it again moves it). SQL through SQLAlchemy Core, on the hub's database.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, select

from healthmesh.db import Migration, apply_migrations
from healthmesh.errors import InvalidInput, NotFound
from healthmesh.learning.registry import models_t

COMPONENT = "hub_model_access"
_meta = MetaData()
clients_t = Table(
    "model_access_clients",
    _meta,
    Column("client_id", String(128), primary_key=True),
    Column("institution", String(64), nullable=False),
)
shares_t = Table(
    "model_access_shares",
    _meta,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("institution", String(64), primary_key=True),
)
MIGRATIONS = [Migration(1, "model readers and shares", lambda c: _meta.create_all(c))]
_INSTITUTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _institution(value: str) -> str:
    if not _INSTITUTION.fullmatch(value):
        raise InvalidInput("an institution id: letters, digits, '.', '_' and '-' (at most 64)")
    return value


class ModelAccess:
    """Client bindings and explicit shares (tables created on first use)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        apply_migrations(engine, COMPONENT, MIGRATIONS)

    def bind_client(self, client_id: str, institution: str) -> None:
        """Let the hub OAuth client ``client_id`` read models as ``institution``."""
        if not client_id or len(client_id) > 128:
            raise InvalidInput("client id must be 1-128 characters")
        inst = _institution(institution)
        with self.engine.begin() as conn:
            conn.execute(clients_t.delete().where(clients_t.c.client_id == client_id))
            conn.execute(clients_t.insert().values(client_id=client_id, institution=inst))

    def institution_of(self, client_id: str) -> str | None:
        """The institution ``client_id`` stands for (None when unbound)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(clients_t.c.institution).where(clients_t.c.client_id == client_id)
            ).first()
        return None if row is None else str(row[0])

    def share(self, name: str, version: int, institution: str) -> None:
        """Share one registered model version with an institution that did not train it."""
        inst = _institution(institution)
        with self.engine.begin() as conn:
            found = conn.execute(select(models_t.c.version).where(
                (models_t.c.name == name) & (models_t.c.version == version))).first()
            if found is None:
                raise NotFound(f"model {name!r} version {version} not found")
            conn.execute(shares_t.delete().where(
                (shares_t.c.name == name) & (shares_t.c.version == version)
                & (shares_t.c.institution == inst)))
            conn.execute(shares_t.insert().values(name=name, version=version, institution=inst))

    def readable(self, institution: str, name: str | None = None) -> set[tuple[str, int]]:
        """(name, version) of every model version ``institution`` may read (of ``name``)."""
        q = select(models_t.c.name, models_t.c.version, models_t.c.lineage)
        s = select(shares_t.c.name, shares_t.c.version).where(
            shares_t.c.institution == institution)
        if name is not None:
            q, s = q.where(models_t.c.name == name), s.where(shares_t.c.name == name)
        with self.engine.connect() as conn:
            trained = {
                (str(r[0]), int(r[1])) for r in conn.execute(q)
                if institution in (json.loads(r[2]).get("institutions") or {})
            }
            shared = {(str(r[0]), int(r[1])) for r in conn.execute(s)}
        return trained | shared
