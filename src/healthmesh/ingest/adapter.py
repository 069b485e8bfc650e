"""The contract every source adapter (HL7 v2, CSV, DICOM, FHIR/NDJSON) implements.

An adapter turns source records into FHIR R4 resources with deterministic ids, or rejects a
record with its source bytes, a precise reason and its location. It never writes: the
pipeline writes, so every adapter gets the same idempotence, quarantine and reconciliation
(received = converted + quarantined).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import sha1
from typing import Any, Protocol

#: namespace of healthmesh's deterministic resource ids
ID_NAMESPACE = uuid.UUID("6f1c7f2e-4a57-5d0b-9c1e-3b8f0f6a2d11")
_NS_BYTES = ID_NAMESPACE.bytes


def deterministic_id(resource_type: str, *business_key: str) -> str:
    """A stable FHIR id from the source system and business keys, so re-ingesting the same
    record updates rather than duplicates.

    >>> deterministic_id("Patient", "HIS-A", "MRN", "12345") == deterministic_id(
    ...     "Patient", "HIS-A", "MRN", "12345")
    True
    """
    key = "\x1f".join((resource_type, *business_key))
    # uuid.uuid5(ID_NAMESPACE, key), written out: the same bytes without building a UUID
    # object (a third of the cost of an id; ids are made for every resource ingested)
    h = sha1(_NS_BYTES + key.encode(), usedforsecurity=False).digest()
    x = (h[:6] + bytes(((h[6] & 0x0F) | 0x50, h[7], (h[8] & 0x3F) | 0x80)) + h[9:16]).hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


@dataclass
class Converted:
    """One source record converted: the resources to write (each with a deterministic id)."""

    source_ref: str  # e.g. "adt.hl7#3" (file and message number) or "clinic.csv:17"
    resources: list[dict[str, Any]]
    #: notes that are not errors (ignored Z-segments, unknown local codes kept and flagged)
    notes: list[str] = field(default_factory=list)


@dataclass
class Rejected:
    """One source record that cannot be converted; it goes to quarantine as it came."""

    source_ref: str
    source_bytes: bytes
    reason: str  # public: never the offending value itself
    location: str  # segment/field (e.g. "PID-7") or row/column (e.g. "row 17, column birth_date")


Outcome = Converted | Rejected


class Adapter(Protocol):
    """A source format. ``convert`` yields one outcome per source record, in order."""

    format: str

    def convert(self, data: bytes, *, source: str) -> Iterator[Outcome]: ...
