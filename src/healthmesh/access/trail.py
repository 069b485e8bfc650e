"""The audit trail of a node: build an AuditEvent for an interaction, store it, hand it on.

``store`` is the FHIR store's create (so events are searchable as ``AuditEvent``); ``sinks``
receive each stored event — the ledger registers one to anchor :func:`audit_digest`. The
caller must not audit the writes of AuditEvents themselves (that would recurse).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from healthmesh.access.audit import AuditSink, build_audit_event
from healthmesh.access.context import AccessContext

__all__ = ["AuditTrail"]

log = logging.getLogger("healthmesh.access.audit")


class AuditTrail:
    """Record one AuditEvent per interaction.

    Parameters
    ----------
    store:
        Persists an event dict and returns its id (e.g. the FHIR store's create).
    source_site:
        This node's name, written as ``source.site`` / ``source.observer``.
    sinks:
        Called with every stored event (with its ``id``), in order.
    strict:
        If true, a failing sink raises (fail closed); otherwise it is logged and skipped.

    Examples
    --------
    >>> kept = []
    >>> trail = AuditTrail(lambda ev: kept.append(ev) or str(len(kept)), source_site="node-a")
    >>> trail.record(None, action="R", subtype="read", outcome="0", entities=["Patient/1"])["id"]
    '1'
    """

    def __init__(
        self,
        store: Callable[[dict[str, Any]], str],
        *,
        source_site: str,
        sinks: Sequence[AuditSink] = (),
        strict: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self.source_site = source_site
        self._sinks = list(sinks)
        self.strict = strict
        self._clock = clock

    def add_sink(self, sink: AuditSink) -> None:
        """Register a receiver of stored events (e.g. the ledger)."""
        self._sinks.append(sink)

    def record(
        self,
        ctx: AccessContext | None,
        *,
        action: str,
        subtype: str,
        outcome: str,
        entities: Sequence[str] = (),
        query: str | None = None,
        address: str | None = None,
        outcome_desc: str | None = None,
    ) -> dict[str, Any]:
        """Build, store and forward the event of one interaction; return it with its id."""
        event = build_audit_event(
            ctx,
            action=action,
            subtype=subtype,
            outcome=outcome,
            entities=entities,
            query=query,
            source_site=self.source_site,
            recorded=self._clock(),
            address=address,
            outcome_desc=outcome_desc,
        )
        event["id"] = self._store(event)
        for sink in self._sinks:
            try:
                sink.record(event)
            except Exception:
                log.exception("audit sink %s failed", type(sink).__name__)
                if self.strict:
                    raise
        return event
