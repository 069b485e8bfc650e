"""The results of study computations at the hub: one row per run (job), with who took part,
who refused (and the rule they named), who did not respond, and the combined result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from healthmesh.db import apply_migrations
from healthmesh.errors import NotFound
from healthmesh.hub import tables as t


def result_digest(result: Mapping[str, Any]) -> str:
    """``sha256:`` of a result's canonical JSON (what the ledger records)."""
    text = json.dumps(result, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    study_id: str
    computation: str
    status: str
    result: dict[str, Any] | None
    participants: list[str]
    refused: dict[str, str]
    not_responded: list[str]
    error: str | None
    started_at: datetime
    finished_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "computation": self.computation,
            "status": self.status,
            "result": self.result,
            "participants": self.participants,
            "refused": self.refused,
            "not_responded": self.not_responded,
            "error": self.error,
            "started": self.started_at.isoformat(),
            "finished": self.finished_at.isoformat() if self.finished_at else None,
        }


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ResultStore:
    """Runs of study computations (component ``hub_studies``, shared with the studies)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        apply_migrations(engine, t.COMPONENT, t.MIGRATIONS)

    def start(self, job_id: str, study_id: str, computation: str, nodes: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.results.insert().values(
                    job_id=job_id,
                    study_id=study_id,
                    computation=computation,
                    status="running",
                    participants=json.dumps(list(nodes)),
                    refused="{}",
                    not_responded="[]",
                    started_at=datetime.now(UTC),
                )
            )

    def finish(
        self,
        job_id: str,
        *,
        result: Mapping[str, Any] | None,
        digest: str | None,
        participants: Sequence[str],
        refused: Mapping[str, str],
        not_responded: Sequence[str],
        error: str | None = None,
    ) -> None:
        """Store the outcome; ``digest``: :func:`result_digest` of ``result`` (None when it
        failed), computed once by the caller, which records it on the ledger first."""
        with self.engine.begin() as conn:
            conn.execute(
                t.results.update()
                .where(t.results.c.job_id == job_id)
                .values(
                    status="done" if error is None else "failed",
                    result=json.dumps(result) if result is not None else None,
                    participants=json.dumps(list(participants)),
                    refused=json.dumps(dict(refused)),
                    not_responded=json.dumps(list(not_responded)),
                    error=error[:500] if error else None,
                    result_digest=digest,
                    finished_at=datetime.now(UTC),
                )
            )

    def _record(self, r: sa.Row[Any]) -> JobRecord:
        return JobRecord(
            r.job_id,
            r.study_id,
            r.computation,
            r.status,
            json.loads(r.result) if r.result else None,
            json.loads(r.participants),
            json.loads(r.refused),
            json.loads(r.not_responded),
            r.error,
            _utc(r.started_at),
            _utc(r.finished_at) if r.finished_at else None,
        )

    def get(self, job_id: str) -> JobRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.results).where(t.results.c.job_id == job_id)).first()
        if row is None:
            raise NotFound("no such job")
        return self._record(row)

    def for_study(self, study_id: str) -> list[JobRecord]:
        """Every run of the study's computations, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.results)
                .where(t.results.c.study_id == study_id)
                .order_by(t.results.c.started_at, t.results.c.job_id)
            ).all()
        return [self._record(r) for r in rows]
