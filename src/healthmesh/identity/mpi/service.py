"""The master patient index at the hub: incremental linking of arriving encodings.

A node submits, per patient, its CLK, a keyed identity token (optional) and keyed blocking
tokens. The hub retrieves candidates sharing a token, scores them (Dice + identity bonus, as
the batch PPRL linker does), and links to the best enterprise id above ``upper``, queues a
review between ``lower`` and ``upper`` (the record gets its own enterprise id meanwhile),
or creates a new enterprise id. Every decision is written to the audit table.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, and_, or_, select, union_all

from healthmesh.db import apply_migrations, make_engine
from healthmesh.errors import Forbidden, InvalidInput, NotFound
from healthmesh.identity.mpi import store as t
from healthmesh.identity.pprl.similarity import as_words, dice_pairs

log = logging.getLogger(__name__)


class UnregisteredInstitution(Forbidden):
    """Encodings from an institution the hub does not know (or has deactivated)."""


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above ``upper`` link automatically; ``lower`` to ``upper`` go to review."""

    upper: float = 0.85
    lower: float = 0.75
    id_bonus: float = 0.2


@dataclass(frozen=True)
class Encoding:
    """One patient's encodings as a node submits them (no plaintext)."""

    clk: bytes
    id_token: bytes | None = None
    block_tokens: Sequence[int | None] = ()


@dataclass(frozen=True)
class Decision:
    """Outcome of linking one record."""

    enterprise_id: str
    status: str  # "linked" | "new" | "review"
    score: float | None
    record_key: int


@dataclass(frozen=True)
class Candidate:
    """A scored enterprise for a query."""

    enterprise_id: str
    score: float


def now() -> datetime:
    """Current UTC time."""
    return datetime.now(UTC)


class MasterPatientIndex:
    """Enterprise ids <-> (institution, local id) with match scores, over SQLAlchemy.

    Example:
        >>> mpi = MasterPatientIndex.open(":memory:")
        >>> mpi.register_institution("h1", "Hospital 1")
        >>> mpi.submit("h1", "p1", Encoding(b"\\x0f" * 8)).status
        'new'
    """

    def __init__(
        self,
        engine: Engine,
        thresholds: Thresholds | None = None,
        admits: Callable[[str], bool] | None = None,
    ) -> None:
        """``admits``: a second gate on submissions beside the index's own registration —
        the hub passes its federation registry's view, so an institution the hub has
        revoked, rejected or not yet approved is refused even while registered here."""
        self.engine = engine
        self.admits = admits
        apply_migrations(engine, t.COMPONENT, t.MIGRATIONS)
        self.thresholds = thresholds or self._stored_thresholds() or Thresholds()

    @classmethod
    def open(cls, db: str | Path, thresholds: Thresholds | None = None) -> MasterPatientIndex:
        """Open (and migrate) the index in a SQLite path/URL or a PostgreSQL URL."""
        return cls(make_engine(db), thresholds)

    def _stored_thresholds(self) -> Thresholds | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.settings.c.value).where(t.settings.c.key == "thresholds")
            ).first()
        return Thresholds(**json.loads(row[0])) if row else None

    def save_thresholds(self, thresholds: Thresholds) -> None:
        """Persist thresholds (e.g. calibrated without labels) for later processes."""
        value = json.dumps(thresholds.__dict__)
        with self.engine.begin() as conn:
            conn.execute(t.settings.delete().where(t.settings.c.key == "thresholds"))
            conn.execute(t.settings.insert().values(key="thresholds", value=value))
        self.thresholds = thresholds

    # -- institutions ---------------------------------------------------------------------
    def register_institution(
        self, institution_id: str, name: str, client_id: str | None = None
    ) -> None:
        """Register (or re-activate) an institution allowed to submit encodings; with
        ``client_id``, also bind the hub OAuth client that submits for it over HTTP."""
        with self.engine.begin() as conn:
            found = conn.execute(
                select(t.institutions.c.institution_id).where(
                    t.institutions.c.institution_id == institution_id
                )
            ).first()
            if found:
                conn.execute(
                    t.institutions.update()
                    .where(t.institutions.c.institution_id == institution_id)
                    .values(active=True, name=name)
                )
            else:
                conn.execute(
                    t.institutions.insert().values(
                        institution_id=institution_id, name=name, active=True, registered_at=now()
                    )
                )
            self._audit(conn, "register", "hub", institution_id=institution_id)
        if client_id is not None:
            self.bind_client(institution_id, client_id)

    def bind_client(self, institution_id: str, client_id: str) -> None:
        """Let the hub OAuth client ``client_id`` submit for ``institution_id`` (only).

        A client stands for one institution: binding it again moves it.

        Raises:
            NotFound: the institution is not registered.
        """
        if not client_id or len(client_id) > 128:
            raise InvalidInput("client id must be 1-128 characters")
        with self.engine.begin() as conn:
            known = conn.execute(
                select(t.institutions.c.institution_id).where(
                    t.institutions.c.institution_id == institution_id
                )
            ).first()
            if not known:
                raise NotFound("institution is not registered for linkage")
            conn.execute(t.clients.delete().where(t.clients.c.client_id == client_id))
            conn.execute(
                t.clients.insert().values(client_id=client_id, institution_id=institution_id)
            )
            self._audit(conn, "bind", "hub", institution_id=institution_id)

    def check_submitter(self, institution_id: str, client_id: str) -> None:
        """Refuse a submission for an institution the caller's client is not bound to.

        Raises:
            Forbidden: the client is not bound to ``institution_id``.
        """
        with self.engine.connect() as conn:
            bound = conn.execute(
                select(t.clients.c.institution_id).where(t.clients.c.client_id == client_id)
            ).first()
        if not bound or bound[0] != institution_id:
            with self.engine.begin() as conn:
                self._audit(conn, "refused", "hub", institution_id=institution_id)
            log.warning("refused a submission for an institution the client does not stand for")
            raise Forbidden("this client may submit only for its own institution")

    def deactivate_institution(self, institution_id: str) -> None:
        """Stop accepting encodings from an institution."""
        with self.engine.begin() as conn:
            conn.execute(
                t.institutions.update()
                .where(t.institutions.c.institution_id == institution_id)
                .values(active=False)
            )
            self._audit(conn, "deactivate", "hub", institution_id=institution_id)

    def _require_institution(self, institution_id: str) -> None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.institutions.c.active).where(
                    t.institutions.c.institution_id == institution_id
                )
            ).first()
        if not row or not row[0]:
            reason = "institution is not registered for linkage"
        elif self.admits is not None and not self.admits(institution_id):
            reason = "institution is not approved at the hub (pending, rejected or revoked)"
        else:
            return
        with self.engine.begin() as conn:
            self._audit(conn, "refused", "hub", institution_id=institution_id)
        log.warning("refused encodings from an institution the hub does not admit")
        raise UnregisteredInstitution(reason)

    # -- linking --------------------------------------------------------------------------
    def candidates(
        self, conn: Connection, enc: Encoding, exclude: int | None = None
    ) -> list[Candidate]:
        """Enterprises sharing a token with ``enc``, best score first."""
        # one indexed lookup per rule (a UNION ALL; an OR of them defeats the index)
        lookups = [
            select(t.block_tokens.c.record_key).where(
                and_(t.block_tokens.c.rule == i, t.block_tokens.c.token == t.to_signed(tok))
            )
            for i, tok in enumerate(enc.block_tokens)
            if tok
        ]
        keys: set[int] = set()
        if lookups:
            keys.update(r[0] for r in conn.execute(union_all(*lookups)).all())
        if enc.id_token:
            keys.update(
                r[0]
                for r in conn.execute(
                    select(t.records.c.record_key).where(t.records.c.id_token == enc.id_token)
                ).all()
            )
        keys.discard(exclude if exclude is not None else -1)
        if not keys:
            return []
        rows = conn.execute(
            select(t.records.c.enterprise_id, t.records.c.clk, t.records.c.id_token).where(
                t.records.c.record_key.in_(sorted(keys))
            )
        ).all()
        width = len(enc.clk)
        usable = [r for r in rows if len(r[1]) == width]
        if not usable:
            return []
        mine = np.frombuffer(enc.clk, dtype=np.uint8).reshape(1, width)
        theirs = np.stack([np.frombuffer(r[1], dtype=np.uint8) for r in usable])
        idx = np.arange(len(usable), dtype=np.int64)
        scores = dice_pairs(as_words(mine), as_words(theirs), np.zeros_like(idx), idx)
        best: dict[str, float] = {}
        for r, s in zip(usable, scores.tolist(), strict=True):
            bonus = 0.0
            if enc.id_token and r[2]:  # both validated: agreement or conflict
                bonus = self.thresholds.id_bonus * (1.0 if r[2] == enc.id_token else -1.0)
            best[r[0]] = max(best.get(r[0], -1.0), float(s) + bonus)
        return sorted((Candidate(e, s) for e, s in best.items()), key=lambda c: -c.score)

    def submit(
        self, institution_id: str, local_id: str, enc: Encoding, actor: str = "node"
    ) -> Decision:
        """Store a record's encodings and link it on arrival (no recomputation of others).

        Re-submitting the same (institution, local id) replaces its encodings and re-links it.

        Raises:
            UnregisteredInstitution: the institution is not registered or is inactive.
        """
        if not enc.clk or len(enc.clk) % 8:
            raise InvalidInput("encoding must be a non-empty multiple of 64 bits")
        self._require_institution(institution_id)
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(t.records.c.record_key).where(
                    t.records.c.institution_id == institution_id, t.records.c.local_id == local_id
                )
            ).first()
            exclude = int(existing[0]) if existing else None
            cands = self.candidates(conn, enc, exclude)
            top = cands[0] if cands else None
            th = self.thresholds
            if top and top.score >= th.upper:
                eid, status = top.enterprise_id, "linked"
            else:
                eid, status = self._new_enterprise(conn), "new"
            values: dict[str, Any] = {
                "enterprise_id": eid,
                "clk": enc.clk,
                "id_token": enc.id_token,
                "match_score": top.score if status == "linked" and top else None,
                "link_method": "auto" if status == "linked" else "new",
                "updated_at": now(),
            }
            if exclude is None:
                inserted = conn.execute(
                    t.records.insert().values(
                        institution_id=institution_id, local_id=local_id, **values
                    )
                ).inserted_primary_key
                key = int(inserted[0]) if inserted else 0
            else:
                key = exclude
                conn.execute(
                    t.records.update().where(t.records.c.record_key == key).values(**values)
                )
                conn.execute(t.block_tokens.delete().where(t.block_tokens.c.record_key == key))
            rows = [
                {"record_key": key, "rule": i, "token": t.to_signed(tok)}
                for i, tok in enumerate(enc.block_tokens)
                if tok
            ]
            if rows:
                conn.execute(t.block_tokens.insert(), rows)
            score = top.score if top else None
            self._audit(
                conn,
                "link" if status == "linked" else "new",
                actor,
                institution_id,
                key,
                eid,
                score=score,
            )
            if status == "new" and top and top.score >= th.lower:
                status = "review"
                conn.execute(
                    t.reviews.insert().values(
                        record_key=key,
                        candidate_enterprise_id=top.enterprise_id,
                        score=top.score,
                        status="open",
                        created_at=now(),
                    )
                )
                self._audit(
                    conn, "review", actor, institution_id, key, eid, top.enterprise_id, top.score
                )
        return Decision(eid, status, score, key)

    def match(self, enc: Encoding, limit: int = 5) -> list[Candidate]:
        """Who is this person elsewhere: scored enterprises for an encoding (nothing stored)."""
        with self.engine.connect() as conn:
            return [c for c in self.candidates(conn, enc) if c.score >= self.thresholds.lower][
                :limit
            ]

    def enterprise_of(self, institution_id: str, local_id: str) -> str:
        """The enterprise id of a local record."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.records.c.enterprise_id).where(
                    t.records.c.institution_id == institution_id, t.records.c.local_id == local_id
                )
            ).first()
        if not row:
            raise NotFound("no such record in the patient index")
        return str(row[0])

    def members(self, enterprise_id: str) -> list[dict[str, Any]]:
        """(institution, local id, score, method) of every record linked to an enterprise id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    t.records.c.institution_id,
                    t.records.c.local_id,
                    t.records.c.match_score,
                    t.records.c.link_method,
                )
                .where(t.records.c.enterprise_id == enterprise_id)
                .order_by(t.records.c.institution_id, t.records.c.local_id)
            ).all()
        return [
            {"institution": r[0], "local_id": r[1], "score": r[2], "method": r[3]} for r in rows
        ]

    # -- helpers --------------------------------------------------------------------------
    def _new_enterprise(self, conn: Connection) -> str:
        eid = uuid.uuid4().hex
        conn.execute(t.enterprises.insert().values(enterprise_id=eid, created_at=now()))
        return eid

    def _audit(
        self,
        conn: Connection,
        action: str,
        actor: str,
        institution_id: str | None = None,
        record_key: int | None = None,
        enterprise_id: str | None = None,
        other: str | None = None,
        score: float | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            t.audit.insert().values(
                at=now(),
                action=action,
                actor=actor,
                institution_id=institution_id,
                record_key=record_key,
                enterprise_id=enterprise_id,
                other_enterprise_id=other,
                score=score,
                detail=json.dumps(detail) if detail else None,
            )
        )

    def audit_trail(self, enterprise_id: str | None = None) -> list[dict[str, Any]]:
        """Audit entries (all, or those touching one enterprise id), oldest first."""
        query = select(t.audit).order_by(t.audit.c.audit_id)
        if enterprise_id:
            query = query.where(
                or_(
                    t.audit.c.enterprise_id == enterprise_id,
                    t.audit.c.other_enterprise_id == enterprise_id,
                )
            )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]
