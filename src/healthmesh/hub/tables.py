"""Tables of the hub's studies (component ``hub_studies``): study requests, each
institution's decision, the results of their computations, and the institutions'
catalog entries; forward-only migrations
applied through :func:`healthmesh.db.apply_migrations`."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from healthmesh.db import Migration

COMPONENT = "hub_studies"

metadata = MetaData()

studies = Table(
    "hub_studies",
    metadata,
    Column("study_id", String(64), primary_key=True),
    Column("researcher", String(200), nullable=False),
    Column("title", String(200), nullable=False),
    #: the whole validated request (purpose, computations, variables, cohort, institutions)
    Column("request", Text, nullable=False),
    Column("protocol_digest", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_hub_studies_researcher", "researcher"),
)

# One row per (study, target institution): pending until the node publishes its decision.
decisions = Table(
    "hub_study_decisions",
    metadata,
    Column("study_id", String(64), ForeignKey("hub_studies.study_id"), primary_key=True),
    Column("institution", String(128), primary_key=True),
    Column("state", String(16), nullable=False),  # pending | approved | rejected
    Column("reason", String(500), nullable=True),
    #: JSON list of the computation names the node approved
    Column("computations", Text, nullable=False, default="[]"),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

# One row per run of a study computation.
results = Table(
    "hub_study_results",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("study_id", String(64), ForeignKey("hub_studies.study_id"), nullable=False),
    Column("computation", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("result", Text, nullable=True),  # JSON of the hub part's output
    Column("participants", Text, nullable=False, default="[]"),  # JSON list
    Column("refused", Text, nullable=False, default="{}"),  # JSON node -> rule
    Column("not_responded", Text, nullable=False, default="[]"),  # JSON list
    Column("error", String(500), nullable=True),
    Column("result_digest", String(80), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_hub_study_results_study", "study_id", "computation"),
)


# The latest catalog entry each institution published (metadata only).
catalog = Table(
    "hub_catalog",
    metadata,
    Column("institution", String(128), primary_key=True),
    Column("document", Text, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)


def _create_v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[studies, decisions, results, catalog])


MIGRATIONS = [Migration(1, "studies, decisions, computation results, catalog", _create_v1)]
