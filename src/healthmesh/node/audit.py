"""AuditEvents for every request that touches patient data.

Requests only enqueue the event; a background thread writes them in batches, so reads are
not slowed by a write each. ``flush()`` (also called at shutdown) writes what is pending.
Sinks (the ledger client, later) receive each written batch: the hook for anchoring.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from healthmesh.access.audit import build_audit_event
from healthmesh.fhir.store import FhirStore, Stored

log = logging.getLogger(__name__)

AuditListener = Callable[[Sequence[Stored]], None]


class AuditRecorder:
    def __init__(self, store: FhirStore, *, source_site: str, interval: float = 0.5) -> None:
        self.store = store
        self.source_site = source_site
        self.interval = interval
        self.listeners: list[AuditListener] = []
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="audit-writer")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def record(
        self,
        rights: Any,
        *,
        action: str,
        subtype: str,
        outcome: str,
        entities: list[str],
        query: str | None,
    ) -> None:
        event = build_audit_event(
            rights,
            action=action,
            subtype=subtype,
            outcome=outcome,
            entities=entities,
            query=query,
            source_site=self.source_site,
            recorded=datetime.now(UTC),
        )
        with self._lock:
            self._pending.append(event)

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        with self.store.writing() as tx:
            for event in batch:
                tx.create(event)
            written = list(tx.written)
        for listener in self.listeners:
            try:
                listener(written)
            except Exception:
                log.exception("audit listener failed")
        return len(batch)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception as exc:
                log.error("writing audit events failed: %s", type(exc).__name__)
