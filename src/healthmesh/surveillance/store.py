"""Alerts and their lifecycle (new, acknowledged, dismissed, escalated), with who did what,
stored with SQLAlchemy on SQLite or PostgreSQL through :mod:`healthmesh.db`."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from healthmesh.db import Migration, apply_migrations
from healthmesh.errors import Conflict, InvalidInput, NotFound
from healthmesh.surveillance.hub import Alert

COMPONENT = "surveillance"
_meta = MetaData()
alerts_table = Table(
    "surv_alerts", _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_key", String(200), nullable=False, unique=True),
    Column("district", String(100), nullable=False, index=True),
    Column("signal", String(64), nullable=False, index=True),
    Column("period", String(10), nullable=False),
    Column("detector", String(64), nullable=False),
    Column("observed", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("strength", Float, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("context", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
events_table = Table(
    "surv_alert_events", _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("surv_alerts.id"), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# action -> (allowed from-states, resulting state)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("new",), "acknowledged"),
    "dismiss": (("new", "acknowledged", "escalated"), "dismissed"),
    "escalate": (("new", "acknowledged"), "escalated"),
}


def _create(conn: Connection) -> None:
    _meta.create_all(conn)


MIGRATIONS = [Migration(1, "alerts and alert events", _create)]


@dataclass(frozen=True)
class StoredAlert:
    """An alert row with its lifecycle state."""

    id: int
    district: str
    signal: str
    period: str
    detector: str
    observed: float
    threshold: float
    strength: float
    severity: str
    status: str
    context: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


class AlertStore:
    """Alerts on one database (``healthmesh.db.make_engine``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        apply_migrations(engine, COMPONENT, MIGRATIONS)

    def add(self, alerts: list[Alert]) -> list[int]:
        """Insert new alerts; an alert already stored (same key) is left as it is."""
        now = dt.datetime.now(dt.UTC)
        ids = []
        with self.engine.begin() as conn:
            for a in alerts:
                found = conn.execute(select(alerts_table.c.id).where(
                    alerts_table.c.alert_key == a.key)).first()
                if found:
                    continue
                res = conn.execute(insert(alerts_table).values(
                    alert_key=a.key, district=a.district, signal=a.signal,
                    period=a.period.isoformat(), detector=a.detector, observed=a.observed,
                    threshold=a.threshold, strength=min(a.strength, 1e9),
                    severity=a.severity, status="new", context=json.dumps(dict(a.context)),
                    created_at=now))
                pk = res.inserted_primary_key
                if pk is None:
                    raise Conflict("the alert could not be stored")
                new_id = int(pk[0])
                conn.execute(insert(events_table).values(
                    alert_id=new_id, action="create", actor="system", note="", at=now))
                ids.append(new_id)
        return ids

    def find(self, *, status: str | None = None, district: str | None = None,
             signal: str | None = None, limit: int = 500) -> list[StoredAlert]:
        """Alerts, newest period first, optionally filtered."""
        q = select(alerts_table)
        for col, val in (("status", status), ("district", district), ("signal", signal)):
            if val is not None:
                q = q.where(alerts_table.c[col] == val)
        q = q.order_by(alerts_table.c.period.desc(), alerts_table.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [self._row(r) for r in conn.execute(q).mappings()]

    def get(self, alert_id: int) -> StoredAlert:
        """One alert, or :class:`NotFound`."""
        with self.engine.connect() as conn:
            row = conn.execute(select(alerts_table).where(
                alerts_table.c.id == alert_id)).mappings().first()
        if row is None:
            raise NotFound("no such alert")
        return self._row(row)

    def act(self, alert_id: int, action: str, actor: str, note: str = "") -> StoredAlert:
        """Apply a lifecycle action (acknowledge, dismiss, escalate) and record who did it."""
        if action not in TRANSITIONS:
            raise InvalidInput("action must be acknowledge, dismiss or escalate")
        if not actor:
            raise InvalidInput("an actor is required")
        allowed, target = TRANSITIONS[action]
        with self.engine.begin() as conn:
            row = conn.execute(select(alerts_table.c.status).where(
                alerts_table.c.id == alert_id)).first()
            if row is None:
                raise NotFound("no such alert")
            if row[0] not in allowed:
                raise Conflict(f"cannot {action} an alert that is {row[0]}")
            conn.execute(update(alerts_table).where(alerts_table.c.id == alert_id).values(
                status=target))
            conn.execute(insert(events_table).values(
                alert_id=alert_id, action=action, actor=actor, note=note,
                at=dt.datetime.now(dt.UTC)))
        return self.get(alert_id)

    def history(self, alert_id: int) -> list[dict[str, Any]]:
        """Lifecycle events of an alert, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(events_table).where(
                events_table.c.alert_id == alert_id).order_by(events_table.c.id)).mappings()
            return [{"action": r["action"], "actor": r["actor"], "note": r["note"],
                     "at": r["at"].isoformat()} for r in rows]

    @staticmethod
    def _row(r: Any) -> StoredAlert:
        return StoredAlert(
            id=int(r["id"]), district=r["district"], signal=r["signal"], period=r["period"],
            detector=r["detector"], observed=float(r["observed"]),
            threshold=float(r["threshold"]), strength=float(r["strength"]),
            severity=r["severity"], status=r["status"], context=json.loads(r["context"]),
        )
