"""A node's own record of the studies it was asked to take part in, its decisions, and the
results it already released (so a re-delivered task is answered without computing again).

The node decides for itself: its operator approves or rejects (``healthmesh node studies``),
or its auto-approval policy approves named algorithms (e.g. ``count``, ``crosstab``). The node
agent runs a compute task only when THIS record approves that study and that computation's
algorithm, so a hub that lies about approvals cannot make the node compute.
Tables: component ``node_studies`` (SQLite or PostgreSQL, in the node's database).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from healthmesh.analytics.cohort import Cohort
from healthmesh.db import Migration, apply_migrations
from healthmesh.errors import Conflict, Forbidden, InvalidInput, NotFound

COMPONENT = "node_studies"
metadata = sa.MetaData()

studies = sa.Table(
    "node_studies",
    metadata,
    sa.Column("study_id", sa.String(128), primary_key=True),
    sa.Column("researcher", sa.String(200), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("request", sa.Text, nullable=False),  # the study as announced (JSON)
    sa.Column("protocol_digest", sa.String(80), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | approved | rejected
    sa.Column("computations", sa.Text, nullable=False),  # JSON: approved computation names
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("decided_by", sa.String(16), nullable=True),  # operator | policy
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
)

released = sa.Table(
    "node_task_results",
    metadata,
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("study_id", sa.String(128), nullable=True),
    sa.Column("result", sa.Text, nullable=False),  # the TaskResult JSON (sealed)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def _create_v1(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[studies, released])


MIGRATIONS = [Migration(1, "node study decisions and released task results", _create_v1)]


@dataclass(frozen=True)
class NodeStudy:
    study_id: str
    researcher: str
    title: str
    request: dict[str, Any]
    protocol_digest: str
    state: str
    computations: tuple[str, ...]
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None

    def algorithm_of(self, computation: str) -> str | None:
        for c in self.request.get("computations", []):
            if c.get("name") == computation:
                return str(c.get("algorithm"))
        return None

    def approves(self, algorithm: str) -> bool:
        """Whether this node approved a computation of the study that uses ``algorithm``."""
        return self.state == "approved" and any(
            self.algorithm_of(c) == algorithm for c in self.computations
        )

    def approved_cohorts(self, algorithm: str) -> set[str]:
        """Canonical cohorts of the approved computations that use ``algorithm``."""
        out = set()
        for c in self.request.get("computations", []):
            if c.get("name") in self.computations and c.get("algorithm") == algorithm:
                out.add(_cohort_key(c.get("params", {}).get("cohort", self.request.get("cohort"))))
        return out

    def decision_body(self) -> dict[str, Any]:
        """What the node publishes to the hub (kind ``study-decision``)."""
        return {
            "study_id": self.study_id,
            "state": self.state,
            "computations": list(self.computations),
            "reason": self.reason,
            "protocol_digest": self.protocol_digest,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.decision_body(),
            "researcher": self.researcher,
            "title": self.title,
            "purpose": self.request.get("purpose"),
            "requested": [
                {"name": c.get("name"), "algorithm": c.get("algorithm")}
                for c in self.request.get("computations", [])
            ],
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }


def _cohort_key(value: Any) -> str:
    try:
        cohort = Cohort.model_validate(value or {})
    except ValidationError:
        return "invalid"
    return json.dumps(cohort.model_dump(mode="json"), sort_keys=True)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class NodeStudies:
    """The node's study records and released results, in the node's database."""

    def __init__(self, engine: sa.Engine, *, auto_approve: Iterable[str] = ()) -> None:
        self.engine = engine
        #: algorithm names this node's policy approves without an operator
        self.auto_approve = frozenset(auto_approve)
        apply_migrations(engine, COMPONENT, MIGRATIONS)

    # -- announcements and decisions ------------------------------------------------------
    def receive(self, announcement: Mapping[str, Any]) -> tuple[NodeStudy, bool]:
        """Record a study the hub announced (pending), then apply the auto-approval policy.

        Returns the record and whether the policy decided now. A re-announced study keeps
        its record (and the decision already taken)."""
        try:
            study_id = str(announcement["study_id"])
            request = dict(announcement["request"])
            researcher = str(announcement["researcher"])
            digest = str(announcement["protocol_digest"])
            title = str(request.get("title", ""))[:200]
            comps = list(request["computations"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("malformed study announcement") from None
        try:
            existing = self.get(study_id)
        except NotFound:
            existing = None
        if existing is not None:
            if existing.protocol_digest != digest:
                raise Conflict("the study was announced before with another protocol")
            return existing, False
        with self.engine.begin() as conn:
            conn.execute(
                studies.insert().values(
                    study_id=study_id,
                    researcher=researcher,
                    title=title,
                    request=json.dumps(request),
                    protocol_digest=digest,
                    received_at=datetime.now(UTC),
                    state="pending",
                    computations="[]",
                )
            )
        auto = sorted(str(c["name"]) for c in comps if c.get("algorithm") in self.auto_approve)
        if not auto:
            return self.get(study_id), False
        return self._decide(study_id, "approved", auto, None, "policy"), True

    def approve(self, study_id: str, computations: Iterable[str] | None = None) -> NodeStudy:
        """Operator approval of the named computations (default: all of the study's)."""
        study = self.get(study_id)
        requested = [str(c["name"]) for c in study.request.get("computations", [])]
        names = list(computations) if computations is not None else requested
        unknown = [n for n in names if n not in requested]
        if unknown or not names:
            raise InvalidInput("approve names computations of the study")
        merged = sorted(
            set(names) | (set(study.computations) if study.state == "approved" else set())
        )
        return self._decide(study_id, "approved", merged, None, "operator")

    def reject(self, study_id: str, reason: str) -> NodeStudy:
        """Operator rejection of the whole study (nothing of it will be computed here)."""
        if not reason.strip():
            raise InvalidInput("a rejection gives a reason")
        self.get(study_id)
        return self._decide(study_id, "rejected", [], reason.strip()[:500], "operator")

    def _decide(
        self, study_id: str, state: str, names: list[str], reason: str | None, by: str
    ) -> NodeStudy:
        with self.engine.begin() as conn:
            conn.execute(
                studies.update()
                .where(studies.c.study_id == study_id)
                .values(
                    state=state,
                    computations=json.dumps(names),
                    reason=reason,
                    decided_by=by,
                    decided_at=datetime.now(UTC),
                )
            )
        return self.get(study_id)

    def require_approval(
        self, study_id: str | None, algorithm: str | None, args: Mapping[str, Any]
    ) -> NodeStudy:
        """The study record, when this node approved ``algorithm`` for it and the task's
        cohort is one the approved computations use; else Forbidden."""
        if not study_id or not algorithm:
            raise Forbidden("a compute task must name a study and an algorithm")
        try:
            study = self.get(study_id)
        except NotFound:
            raise Forbidden("this node has no record of the study") from None
        if not study.approves(algorithm):
            raise Forbidden("this node has not approved this computation of the study")
        if "cohort" in args and _cohort_key(args["cohort"]) not in study.approved_cohorts(
            algorithm
        ):
            raise Forbidden("the task's cohort is not the one this node approved")
        return study

    def get(self, study_id: str) -> NodeStudy:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(studies).where(studies.c.study_id == study_id)).first()
        if r is None:
            raise NotFound("no such study at this node")
        return NodeStudy(
            r.study_id,
            r.researcher,
            r.title,
            json.loads(r.request),
            r.protocol_digest,
            r.state,
            tuple(json.loads(r.computations)),
            r.reason,
            r.decided_by,
            _utc(r.decided_at),
        )

    def list(self, state: str | None = None) -> list[NodeStudy]:
        query = sa.select(studies.c.study_id).order_by(studies.c.received_at)
        if state is not None:
            query = query.where(studies.c.state == state)
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(query)]
        return [self.get(i) for i in ids]

    # -- released results (idempotent re-delivery) ---------------------------------------
    def stored_result(self, task_id: str) -> str | None:
        """The TaskResult JSON already produced for ``task_id``, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(released.c.result).where(released.c.task_id == task_id)
            ).first()
        return str(row[0]) if row else None

    def store_result(self, task_id: str, study_id: str | None, result_json: str) -> str:
        """Keep a produced result; when one is already stored, that one wins (returned)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    released.insert().values(
                        task_id=task_id,
                        study_id=study_id,
                        result=result_json,
                        created_at=datetime.now(UTC),
                    )
                )
        except sa.exc.IntegrityError:
            kept = self.stored_result(task_id)
            return kept if kept is not None else result_json
        return result_json
