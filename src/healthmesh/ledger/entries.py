"""Provenance events: the entries of the ledger, as RFC 8785 canonical JSON.

Every entry is ``{"type", "v", "time", "actor", "body"}``; ``body`` has a fixed schema per
``(type, v)`` (:data:`SCHEMAS`). Validation is strict so that no patient identifier can be
written in the clear: every field has a narrow pattern (identifiers, ``sha256:`` digests,
``pseu:`` pseudonyms, enums, counts), unknown fields are refused, and every string is also
scanned by :func:`healthmesh.ledger.phi.find_identifier` for anything that looks like a
resident ID number, phone number or e-mail address.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

from healthmesh.errors import InvalidInput
from healthmesh.ledger.phi import find_identifier


class EntryError(InvalidInput):
    """A provenance event failed validation; the message never echoes field values."""


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PSEUDONYM = re.compile(r"pseu:[A-Za-z0-9_-]{16,128}")
_VKEY = re.compile(r"[^\s+]{1,128}\+[0-9a-f]{8}\+[A-Za-z0-9+/]{40,}={0,2}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")

Check = Callable[[Any], bool]


def _re(pattern: re.Pattern[str]) -> Check:
    return lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None


def _enum(*values: str) -> Check:
    return lambda v: isinstance(v, str) and v in values


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**53


def _time(v: Any) -> bool:
    if not (isinstance(v, str) and _TIME.fullmatch(v)):
        return False
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _list_of(check: Check, max_len: int = 256) -> Check:
    return lambda v: isinstance(v, list) and len(v) <= max_len and all(check(x) for x in v)


ident, digest, pseudonym = _re(_ID), _re(_DIGEST), _re(_PSEUDONYM)

# (type, version) -> field -> (required, check)
SCHEMAS: dict[tuple[str, int], dict[str, tuple[bool, Check]]] = {
    ("data_access", 1): {
        "node": (True, ident),
        "audit_digest": (True, digest),
        "event_count": (True, _count),
        "first_event": (False, ident),
        "last_event": (False, ident),
        "period_start": (False, _time),
        "period_end": (False, _time),
    },
    ("data_share", 1): {
        "from_institution": (True, ident),
        "to_institution": (True, ident),
        "dataset_digest": (True, digest),
        "purpose": (True, ident),
        "record_count": (False, _count),
        "study_id": (False, ident),
    },
    ("ingestion_batch", 1): {
        "institution": (True, ident),
        "batch_digest": (True, digest),
        "record_count": (True, _count),
        "source_format": (True, _enum("hl7v2", "csv", "dicom", "fhir", "other")),
        "rejected_count": (False, _count),
    },
    ("consent_change", 1): {
        "institution": (True, ident),
        "patient_pseudonym": (True, pseudonym),
        "consent_digest": (True, digest),
        "action": (True, _enum("granted", "revoked", "updated")),
        "scope": (False, ident),
    },
    ("study_submission", 1): {
        "study_id": (True, ident),
        "researcher": (True, ident),
        "protocol_digest": (True, digest),
        "institutions": (True, _list_of(ident, 5000)),
    },
    ("job_start", 1): {
        "job_id": (True, ident),
        "study_id": (True, ident),
        "algorithm": (True, ident),
        "institutions": (True, _list_of(ident, 5000)),
    },
    ("job_failure", 1): {
        "job_id": (True, ident),
        "study_id": (True, ident),
        "algorithm": (True, ident),
        "institutions": (True, _list_of(ident, 5000)),
        "reason": (True, _re(re.compile(r"[a-z][a-z0-9-]{0,63}"))),
    },
    ("study_approval", 1): {
        "study_id": (True, ident),
        "approver": (True, ident),
        "decision": (True, _enum("approved", "rejected", "suspended")),
        "protocol_digest": (True, digest),
        "institutions": (False, _list_of(ident)),
    },
    ("job_result_release", 1): {
        "job_id": (True, ident),
        "study_id": (True, ident),
        "result_digest": (True, digest),
        "released_to": (True, ident),
        "privacy_epsilon_milli": (False, _count),
    },
    ("model_release", 1): {
        "model_id": (True, ident),
        "model_version": (True, ident),
        "model_digest": (True, digest),
        "training_job_id": (True, ident),
        "released_to": (False, ident),
    },
    ("key_registration", 1): {
        "institution": (True, ident),
        "purpose": (True, _enum("request-signing", "witness", "log")),
        "vkey": (True, _re(_VKEY)),
    },
    ("key_rotation", 1): {
        "institution": (True, ident),
        "purpose": (True, _enum("request-signing", "witness", "log")),
        "old_key_id": (True, _re(re.compile(r"[0-9a-f]{8}"))),
        "vkey": (True, _re(_VKEY)),
    },
}

EVENT_TYPES = sorted({t for t, _ in SCHEMAS})


def _strings(value: Any, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, str):
        out.append((path, value))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            out.append((path, str(k)))
            _strings(v, f"{path}.{k}", out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _strings(v, f"{path}[{i}]", out)


def _values(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, Mapping):
        out.extend(map(str, value))
        for v in value.values():
            _values(v, out)
    elif isinstance(value, list):
        for v in value:
            _values(v, out)


def _scan_strings(value: Any, path: str) -> None:
    texts: list[str] = []
    _values(value, texts)
    # One scan over all strings joined by newlines (the patterns never cross a newline);
    # only on a hit do we walk again to name the field in the error.
    if find_identifier("\n".join(texts)) is None:
        return
    found: list[tuple[str, str]] = []
    _strings(value, path, found)
    for where, text in found:
        kind = find_identifier(text)
        if kind:
            raise EntryError(f"field {where} looks like a clear {kind}", location=where)
    raise EntryError("entry looks like it contains a clear identifier")


def validate_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Check a provenance event against its schema; return a plain-dict copy.

    >>> e = validate_event({"type": "model_release", "v": 1, "time": "2026-01-01T00:00:00Z",
    ...     "actor": "hub", "body": {"model_id": "ckd-risk", "model_version": "3",
    ...     "model_digest": "sha256:" + "0" * 64, "training_job_id": "job-7"}})
    >>> e["type"]
    'model_release'
    """
    if not isinstance(event, Mapping):
        raise EntryError("an entry must be a JSON object")
    extra = set(event) - {"type", "v", "time", "actor", "body"}
    if extra:
        raise EntryError("unknown top-level fields in entry")
    etype, version = event.get("type"), event.get("v")
    if not isinstance(etype, str) or not isinstance(version, int) or isinstance(version, bool):
        raise EntryError("entry needs a string type and an integer version v", location="type")
    schema = SCHEMAS.get((etype, version))
    if schema is None:
        raise EntryError("unknown entry type or version", location="type")
    if not _time(event.get("time")):
        raise EntryError("entry time must be RFC 3339 UTC (…Z)", location="time")
    if not ident(event.get("actor")):
        raise EntryError("entry actor must be an institution identifier", location="actor")
    body = event.get("body")
    if not isinstance(body, Mapping):
        raise EntryError("entry body must be an object", location="body")
    for name in body:
        if name not in schema:
            raise EntryError("unknown field in entry body", location=f"body.{name}")
    for name, (required, check) in schema.items():
        if name not in body:
            if required:
                raise EntryError(f"missing field body.{name}", location=f"body.{name}")
            continue
        if not check(body[name]):
            raise EntryError(f"invalid value for body.{name}", location=f"body.{name}")
    _scan_strings(event, "entry")
    return {
        "type": etype,
        "v": version,
        "time": event["time"],
        "actor": event["actor"],
        "body": dict(body),
    }


def canonical_json(event: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of an already *validated* event, by the standard library.

    For validated events (ASCII schema keys, strings, integers below 2**53, lists, objects)
    ``json.dumps`` with sorted keys, no whitespace and no ASCII escaping produces exactly the
    RFC 8785 bytes (same key order, integer form and string escapes) about ten times faster
    than the pure-Python ``rfc8785`` package; ``tests/ledger/test_entries.py`` checks the two
    agree, and verifiers keep using ``rfc8785`` itself.
    """
    try:
        text = json.dumps(
            event, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        return text.encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError) as exc:
        raise EntryError("entry cannot be serialised as canonical JSON") from exc


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Validate and serialise an event as RFC 8785 canonical JSON (the leaf bytes)."""
    return canonical_json(validate_event(event))


def encode_event_reference(event: Mapping[str, Any]) -> bytes:
    """:func:`encode_event` through the ``rfc8785`` package (the reference)."""
    return bytes(rfc8785.dumps(validate_event(event)))


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``, the digest form entries use."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_event(
    etype: str, actor: str, body: Mapping[str, Any], time: str | None = None, version: int = 1
) -> dict[str, Any]:
    """Build and validate an event; ``time`` defaults to now (UTC, seconds)."""
    if time is None:
        time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return validate_event(
        {"type": etype, "v": version, "time": time, "actor": actor, "body": dict(body)}
    )
