"""Tables of the ``access`` component (client registry, assertion replay store) and their
forward-only migrations, applied through :func:`healthmesh.db.apply_migrations`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from healthmesh.db import Migration

COMPONENT = "access"

metadata = MetaData()

clients = Table(
    "access_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("scopes", Text, nullable=False),
    Column("auth_method", String(32), nullable=False),
    Column("secret_hash", String(200), nullable=True),
    Column("jwks", Text, nullable=True),
    Column("jwks_url", String(2000), nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per client-assertion jti seen, kept until the assertion's exp has passed.
assertion_jti = Table(
    "access_assertion_jti",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti_hash", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_access_assertion_jti_expires", "expires_at"),
)


def _create_v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[clients, assertion_jti])


MIGRATIONS = [Migration(1, "client registry and assertion replay store", _create_v1)]
