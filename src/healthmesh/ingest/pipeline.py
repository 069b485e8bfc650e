"""The write side of ingestion: adapter outcomes -> the node's FHIR store and quarantine.

Each converted record is written in its own transaction (all its resources or none), with
the ids the adapter chose, so re-ingesting creates nothing new: a resource whose content is
unchanged is skipped, a changed one becomes a new version (A08). A record the store refuses
(validation) goes to quarantine like a rejected one. The books always balance:
``received == converted + quarantined``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from sqlalchemy.exc import SQLAlchemyError

from healthmesh.errors import HealthmeshError
from healthmesh.fhir.store import FhirStore
from healthmesh.ingest.adapter import Adapter, Converted, Outcome, Rejected
from healthmesh.ingest.batchwrite import Prework, decide, write_chunk
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.hl7v2.decode import split_messages
from healthmesh.ingest.longlived import frozen
from healthmesh.ingest.quarantine import QuarantineStore

log = logging.getLogger(__name__)

#: records per write transaction
CHUNK = 200


@dataclass
class Summary:
    """Counts of one ingest run; ``converted`` = created + updated + unchanged records."""

    received: int = 0
    converted: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    resources_written: int = 0
    notes: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: Summary) -> None:
        for name in (
            "received",
            "converted",
            "created",
            "updated",
            "unchanged",
            "quarantined",
            "resources_written",
            "notes",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reasons.update(other.reasons)

    def balanced(self) -> bool:
        return self.received == self.converted + self.quarantined

    def line(self) -> str:
        return (
            f"received {self.received}, converted {self.converted} (created {self.created}, "
            f"updated {self.updated}, unchanged {self.unchanged}), "
            f"quarantined {self.quarantined}"
        )


class Pipeline:
    """Writes adapter outcomes for one institution into a store, quarantining failures.

    >>> from healthmesh.ingest.hl7v2 import Hl7v2Adapter
    >>> p = Pipeline(FhirStore(":memory:"), QuarantineStore(":memory:"), "H1")
    >>> msg = b"MSH|^~\\\\&|HIS|H1|||20240101||ADT^A04|1|P|2.5\\rPID|1||M1^^^H1^MR||Li^Lei\\r"
    >>> p.ingest(Hl7v2Adapter("H1"), msg, "a.hl7").line()
    'received 1, converted 1 (created 1, updated 0, unchanged 0), quarantined 0'
    >>> p.ingest(Hl7v2Adapter("H1"), msg, "a.hl7").unchanged
    1
    """

    def __init__(self, store: FhirStore, quarantine: QuarantineStore, institution: str) -> None:
        self.store = store
        self.quarantine = quarantine
        self.institution = institution

    def ingest(
        self,
        adapter: Adapter,
        data: bytes,
        source: str,
        *,
        on_record: Callable[[Outcome, str], None] | None = None,
        workers: int = 1,
    ) -> Summary:
        """Convert ``data`` with ``adapter`` and write every outcome; return the counts.

        ``on_record(outcome, result)`` hears of each record (result: created, updated,
        unchanged or quarantined), e.g. to advance a progress bar or build an ACK.
        With ``workers > 1`` HL7 v2 messages are converted, validated and indexed in that
        many processes while this one writes.
        """
        if workers > 1 and isinstance(adapter, Hl7v2Adapter):
            from healthmesh.ingest.parallel import chunks_in_workers

            summary = Summary()
            with frozen():
                for chunk, prework in chunks_in_workers(adapter, data, source, workers):
                    pairs: list[tuple[Outcome, bytes | None]] = list(chunk)
                    self._write_chunk(adapter.format, pairs, summary, on_record, prework)
            return summary
        items: Iterable[tuple[Outcome, bytes | None]]
        if isinstance(adapter, Hl7v2Adapter):
            # message by message, so a record the store refuses is kept as its own bytes
            items = (
                (adapter.convert_one(raw, source=f"{source}#{raw.number}"), raw.data)
                for raw in split_messages(data)
            )
        else:
            items = ((o, None) for o in adapter.convert(data, source=source))
        return self.write_many(adapter.format, items, on_record)

    def write_all(
        self,
        fmt: str,
        outcomes: Iterable[Outcome],
        on_record: Callable[[Outcome, str], None] | None = None,
    ) -> Summary:
        """Write outcomes that carry no separate source bytes (see ``write_many``)."""
        return self.write_many(fmt, ((o, None) for o in outcomes), on_record)

    def write_many(
        self,
        fmt: str,
        items: Iterable[tuple[Outcome, bytes | None]],
        on_record: Callable[[Outcome, str], None] | None = None,
        *,
        chunk_size: int = CHUNK,
    ) -> Summary:
        """Write (outcome, source bytes) pairs in chunks of one transaction each."""
        summary = Summary()
        chunk: list[tuple[Outcome, bytes | None]] = []
        with frozen():
            for item in items:
                chunk.append(item)
                if len(chunk) >= chunk_size:
                    self._write_chunk(fmt, chunk, summary, on_record)
                    chunk = []
            if chunk:
                self._write_chunk(fmt, chunk, summary, on_record)
        return summary

    def _write_chunk(
        self,
        fmt: str,
        chunk: list[tuple[Outcome, bytes | None]],
        summary: Summary,
        on_record: Callable[[Outcome, str], None] | None,
        prework: Prework | None = None,
    ) -> None:
        positions = [i for i, (o, _) in enumerate(chunk) if isinstance(o, Converted)]
        records = [o for o, _ in chunk if isinstance(o, Converted)]
        try:
            results, refused = write_chunk(self.store, records, prework)
        except (HealthmeshError, SQLAlchemyError) as exc:
            # unexpected at chunk level: fall back to one transaction per record
            log.warning("chunk write failed (%s); writing record by record", type(exc).__name__)
            for outcome, raw in chunk:
                result = self.write_one(fmt, outcome, summary, raw)
                if on_record is not None:
                    on_record(outcome, result)
            return
        by_pos = dict(zip(positions, results, strict=True))
        errors = {positions[k]: exc for k, exc in refused}
        for i, (outcome, raw) in enumerate(chunk):
            summary.received += 1
            if isinstance(outcome, Rejected):
                result = self._quarantine(fmt, outcome, summary)
            elif i in errors:
                result = self._refuse(fmt, outcome, raw, errors[i], summary)
            else:
                result, written = by_pos[i]
                self._count(outcome, result, written, summary)
            if on_record is not None:
                on_record(outcome, result)

    def _count(self, outcome: Converted, result: str, written: int, summary: Summary) -> None:
        summary.converted += 1
        summary.resources_written += written
        summary.notes += len(outcome.notes)
        setattr(summary, result, getattr(summary, result) + 1)
        for note in outcome.notes:  # notes name locations and rules, never values
            log.info("%s: %s", outcome.source_ref, note)

    def _refuse(
        self,
        fmt: str,
        outcome: Converted,
        raw: bytes | None,
        exc: HealthmeshError,
        summary: Summary,
    ) -> str:
        if raw is None:
            fmt, raw = "fhir", _as_bundle(outcome)
        rejected = Rejected(
            outcome.source_ref, raw, f"refused by the FHIR store: {exc.message}", exc.location or ""
        )
        return self._quarantine(fmt, rejected, summary)

    def write_one(
        self, fmt: str, outcome: Outcome, summary: Summary, source_bytes: bytes | None = None
    ) -> str:
        """Write or quarantine one record; returns created/updated/unchanged/quarantined.

        ``source_bytes`` are kept if the store refuses the record; without them the
        converted resources are kept as a FHIR collection Bundle (format "fhir").
        """
        summary.received += 1
        if isinstance(outcome, Rejected):
            return self._quarantine(fmt, outcome, summary)
        try:
            try:
                ((result, written),), refused = write_chunk(self.store, [outcome])
                if refused:
                    raise refused[0][1]
            except SQLAlchemyError as exc:  # e.g. a key clash the batch path did not foresee
                log.warning("batch write failed (%s); plain write", type(exc).__name__)
                result, written = self.write_record(outcome)
        except HealthmeshError as exc:
            return self._refuse(fmt, outcome, source_bytes, exc, summary)
        self._count(outcome, result, written, summary)
        return result

    def _quarantine(self, fmt: str, rejected: Rejected, summary: Summary) -> str:
        self.quarantine.add(self.institution, fmt, rejected)
        summary.quarantined += 1
        summary.reasons[rejected.reason] += 1
        log.info("quarantined %s at %s", rejected.source_ref, rejected.location)
        return "quarantined"

    def write_record(self, converted: Converted) -> tuple[str, int]:
        """Write the resources of one record in one transaction; (result, versions written)."""
        created = updated = 0
        with self.store.writing() as tx:
            for res in converted.resources:
                rtype, rid = str(res.get("resourceType", "")), str(res.get("id", ""))
                cur = tx.current(rtype, rid) if rtype and rid else None
                old = cur.resource() if cur is not None and not cur.deleted else None
                action, final = decide(res, old)
                if action == "unchanged":
                    continue
                tx.update(rtype, rid, final)
                created += action == "created"
                updated += action == "updated"
        if created:
            return "created", created + updated
        return ("updated" if updated else "unchanged"), updated


def _as_bundle(converted: Converted) -> bytes:
    """A refused record without source bytes, kept as a collection Bundle of its resources."""
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in converted.resources],
        }
    )


def retry(pipeline: Pipeline, entry_id: int, adapter: Adapter) -> tuple[bool, str]:
    """Convert a quarantined record again (after a mapping or data fix) and write it.

    Returns (resolved, detail): the entry is resolved when every record its bytes hold
    converts and is written; otherwise it stays open with the new reason and location.
    """
    entry = pipeline.quarantine.get(entry_id)
    if entry.status != "open":
        return True, "already resolved"
    outcomes = list(adapter.convert(entry.source_bytes, source=entry.source_ref))
    if not outcomes:
        pipeline.quarantine.failed_again(entry_id, "no record found in the bytes", "")
        return False, "no record found in the bytes"
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            pipeline.quarantine.failed_again(entry_id, outcome.reason, outcome.location)
            return False, f"{outcome.reason} at {outcome.location}"
    try:
        results = [pipeline.write_record(o)[0] for o in outcomes if isinstance(o, Converted)]
    except HealthmeshError as exc:
        reason = f"refused by the FHIR store: {exc.message}"
        pipeline.quarantine.failed_again(entry_id, reason, exc.location or "")
        return False, reason
    pipeline.quarantine.resolve(entry_id)
    return True, ", ".join(results)
