"""Tables of the master patient index (component ``identity_mpi``), SQLite or PostgreSQL.

Nothing here holds plaintext: records carry CLK bytes, a keyed identity token and keyed
blocking tokens (uint64 stored as signed BIGINT). The audit table records decisions with
scores and opaque keys only.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from healthmesh.db import Migration

COMPONENT = "identity_mpi"
metadata = MetaData()

institutions = Table(
    "mpi_institutions",
    metadata,
    Column("institution_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

#: OAuth clients (at the hub) allowed to submit for an institution: a client stands for one
#: institution; an institution may have several (key rotation)
clients = Table(
    "mpi_clients",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column(
        "institution_id", String(64), ForeignKey("mpi_institutions.institution_id"), nullable=False
    ),
)

enterprises = Table(
    "mpi_enterprises",
    metadata,
    Column("enterprise_id", String(40), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("merged_into", String(40), nullable=True),
)

records = Table(
    "mpi_records",
    metadata,
    Column("record_key", Integer, primary_key=True, autoincrement=True),
    Column(
        "institution_id", String(64), ForeignKey("mpi_institutions.institution_id"), nullable=False
    ),
    Column("local_id", String(128), nullable=False),
    Column(
        "enterprise_id", String(40), ForeignKey("mpi_enterprises.enterprise_id"), nullable=False
    ),
    Column("clk", LargeBinary, nullable=False),
    Column("id_token", LargeBinary, nullable=True),
    Column("match_score", Float, nullable=True),
    Column("link_method", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("institution_id", "local_id", name="uq_mpi_records_local"),
)
Index("ix_mpi_records_enterprise", records.c.enterprise_id)
Index("ix_mpi_records_id_token", records.c.id_token)

block_tokens = Table(
    "mpi_block_tokens",
    metadata,
    Column(
        "record_key",
        Integer,
        ForeignKey("mpi_records.record_key", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("rule", Integer, nullable=False),
    Column("token", BigInteger, nullable=False),
)
Index("ix_mpi_block_tokens_lookup", block_tokens.c.rule, block_tokens.c.token)
Index("ix_mpi_block_tokens_record", block_tokens.c.record_key)

reviews = Table(
    "mpi_reviews",
    metadata,
    Column("review_id", Integer, primary_key=True, autoincrement=True),
    Column("record_key", Integer, ForeignKey("mpi_records.record_key"), nullable=False),
    Column("candidate_enterprise_id", String(40), nullable=False),
    Column("score", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("resolved_by", String(128), nullable=True),
)
Index("ix_mpi_reviews_status", reviews.c.status)

audit = Table(
    "mpi_audit",
    metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("institution_id", String(64), nullable=True),
    Column("record_key", Integer, nullable=True),
    Column("enterprise_id", String(40), nullable=True),
    Column("other_enterprise_id", String(40), nullable=True),
    Column("score", Float, nullable=True),
    Column("detail", Text, nullable=True),
)

settings = Table(
    "mpi_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def _create_all(conn: Connection) -> None:
    metadata.create_all(conn)


def _create_clients(conn: Connection) -> None:
    clients.create(conn, checkfirst=True)


MIGRATIONS = [
    Migration(1, "master patient index tables", _create_all),
    Migration(2, "OAuth clients bound to institutions", _create_clients),
]


def to_signed(token: int) -> int:
    """Map a uint64 token to the signed 64-bit range of SQL BIGINT."""
    return token - (1 << 64) if token >= (1 << 63) else token
