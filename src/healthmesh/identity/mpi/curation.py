"""Data stewardship on the patient index: merge, undo a merge, unmerge a record, and the
review queue for the uncertain band. Every action is audited with the acting user."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from healthmesh.errors import Conflict, NotFound
from healthmesh.identity.mpi import store as t
from healthmesh.identity.mpi.service import MasterPatientIndex, now


def merge(mpi: MasterPatientIndex, keep: str, absorb: str, actor: str) -> int:
    """Move every record of enterprise ``absorb`` to ``keep``; returns the merge's audit id.

    Raises:
        Conflict: the two ids are the same or ``absorb`` was already merged.
    """
    if keep == absorb:
        raise Conflict("cannot merge an enterprise id into itself")
    with mpi.engine.begin() as conn:
        state = conn.execute(
            select(t.enterprises.c.enterprise_id, t.enterprises.c.merged_into).where(
                t.enterprises.c.enterprise_id.in_([keep, absorb])
            )
        ).all()
        found = {r[0]: r[1] for r in state}
        if keep not in found or absorb not in found:
            raise NotFound("unknown enterprise id")
        if found[absorb] or found[keep]:
            raise Conflict("enterprise id was already merged")
        moved = [
            int(r[0])
            for r in conn.execute(
                select(t.records.c.record_key).where(t.records.c.enterprise_id == absorb)
            ).all()
        ]
        conn.execute(
            t.records.update()
            .where(t.records.c.enterprise_id == absorb)
            .values(enterprise_id=keep, link_method="manual", updated_at=now())
        )
        conn.execute(
            t.enterprises.update()
            .where(t.enterprises.c.enterprise_id == absorb)
            .values(merged_into=keep)
        )
        conn.execute(
            t.audit.insert().values(
                at=now(),
                action="merge",
                actor=actor,
                enterprise_id=keep,
                other_enterprise_id=absorb,
                detail=json.dumps({"moved_record_keys": moved}),
            )
        )
        row = conn.execute(
            select(t.audit.c.audit_id).order_by(t.audit.c.audit_id.desc()).limit(1)
        ).first()
    return int(row[0]) if row else 0


def undo_merge(mpi: MasterPatientIndex, merge_audit_id: int, actor: str) -> None:
    """Reverse a merge: the records it moved go back to the absorbed enterprise id."""
    with mpi.engine.begin() as conn:
        row = conn.execute(select(t.audit).where(t.audit.c.audit_id == merge_audit_id)).first()
        if not row or row.action != "merge":
            raise NotFound("no such merge")
        moved = json.loads(row.detail or "{}").get("moved_record_keys", [])
        conn.execute(
            t.records.update()
            .where(
                t.records.c.record_key.in_(moved), t.records.c.enterprise_id == row.enterprise_id
            )
            .values(enterprise_id=row.other_enterprise_id, link_method="manual", updated_at=now())
        )
        conn.execute(
            t.enterprises.update()
            .where(t.enterprises.c.enterprise_id == row.other_enterprise_id)
            .values(merged_into=None)
        )
        conn.execute(
            t.audit.insert().values(
                at=now(),
                action="unmerge",
                actor=actor,
                enterprise_id=row.enterprise_id,
                other_enterprise_id=row.other_enterprise_id,
                detail=json.dumps({"undoes": merge_audit_id, "moved_record_keys": moved}),
            )
        )


def unmerge_record(mpi: MasterPatientIndex, institution_id: str, local_id: str, actor: str) -> str:
    """Split one record out of its enterprise id into a new one; returns the new id."""
    with mpi.engine.begin() as conn:
        row = conn.execute(
            select(t.records.c.record_key, t.records.c.enterprise_id).where(
                t.records.c.institution_id == institution_id, t.records.c.local_id == local_id
            )
        ).first()
        if not row:
            raise NotFound("no such record in the patient index")
        new_id = mpi._new_enterprise(conn)
        conn.execute(
            t.records.update()
            .where(t.records.c.record_key == row[0])
            .values(enterprise_id=new_id, link_method="manual", match_score=None, updated_at=now())
        )
        mpi._audit(conn, "split", actor, institution_id, int(row[0]), new_id, str(row[1]))
    return new_id


def open_reviews(mpi: MasterPatientIndex) -> list[dict[str, Any]]:
    """Open review items: the record's current enterprise, the candidate and the score."""
    with mpi.engine.connect() as conn:
        rows = conn.execute(
            select(
                t.reviews.c.review_id,
                t.reviews.c.score,
                t.reviews.c.candidate_enterprise_id,
                t.records.c.enterprise_id,
                t.records.c.institution_id,
                t.records.c.local_id,
            )
            .join(t.records, t.records.c.record_key == t.reviews.c.record_key)
            .where(t.reviews.c.status == "open")
            .order_by(t.reviews.c.score.desc())
        ).all()
    return [
        {
            "review_id": r[0],
            "score": r[1],
            "candidate_enterprise_id": r[2],
            "enterprise_id": r[3],
            "institution": r[4],
            "local_id": r[5],
        }
        for r in rows
    ]


def resolve_review(
    mpi: MasterPatientIndex, review_id: int, *, same_person: bool, actor: str
) -> None:
    """Close a review item; when ``same_person`` the record's enterprise is merged into the
    candidate's."""
    with mpi.engine.connect() as conn:
        row = conn.execute(
            select(
                t.reviews.c.status, t.reviews.c.candidate_enterprise_id, t.records.c.enterprise_id
            )
            .join(t.records, t.records.c.record_key == t.reviews.c.record_key)
            .where(t.reviews.c.review_id == review_id)
        ).first()
    if not row:
        raise NotFound("no such review item")
    if row[0] != "open":
        raise Conflict("review item already resolved")
    if same_person and row[1] != row[2]:
        merge(mpi, str(row[1]), str(row[2]), actor)
    with mpi.engine.begin() as conn:
        conn.execute(
            t.reviews.update()
            .where(t.reviews.c.review_id == review_id)
            .values(
                status="accepted" if same_person else "rejected",
                resolved_at=now(),
                resolved_by=actor,
            )
        )
        mpi._audit(
            conn,
            "accept" if same_person else "reject",
            actor,
            enterprise_id=str(row[1]),
            other=str(row[2]),
        )
