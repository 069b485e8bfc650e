"""FHIR R4 AuditEvent for each REST interaction, and the hook the ledger anchors them with.

An event names who (the OAuth client), what (resource references and the query), when,
the outcome and the purpose of use. It carries references only — never names or values of
a resource — and by default masks the values of identifying search parameters (``name``,
``birthdate``, ``identifier``, ``phone`` …) in the recorded query, so that searching for a
person does not copy that person's details into the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import rfc8785

from healthmesh.access.context import PURPOSE_OF_USE, PURPOSE_OF_USE_SYSTEM, AccessContext

__all__ = [
    "RESTFUL_INTERACTIONS",
    "audit_digest",
    "build_audit_event",
    "outcome_for_status",
    "redact_query",
]

#: R4 ``restful-interaction`` codes accepted as subtype.
RESTFUL_INTERACTIONS = frozenset(
    [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history",
        "history-instance",
        "history-type",
        "history-system",
        "create",
        "search",
        "search-type",
        "search-system",
        "capabilities",
        "transaction",
        "batch",
        "operation",
    ]
)
ACTIONS = frozenset("CRUDE")
_OUTCOMES = {"0": "0", "4": "4", "8": "8", "12": "12", "success": "0", "minor": "4",
             "serious": "8", "major": "12"}  # fmt: skip
_REFERENCE = re.compile(
    r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$"
)
REDACTED = "[redacted]"
#: Search parameters whose values identify a person; masked in recorded queries.
IDENTIFYING_PARAMETERS = frozenset(
    [
        "name",
        "given",
        "family",
        "phonetic",
        "birthdate",
        "death-date",
        "address",
        "address-city",
        "address-country",
        "address-postalcode",
        "address-state",
        "address-use",
        "telecom",
        "phone",
        "email",
        "identifier",
        "_content",
        "_text",
        "_filter",
    ]
)

_TYPE_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_ENTITY_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_CLIENT_SYSTEM = "urn:healthmesh:client"
_NODE_SYSTEM = "urn:healthmesh:node"


def audit_digest(event: dict[str, Any]) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of an event: what a ledger anchors."""
    return hashlib.sha256(rfc8785.dumps(event)).hexdigest()


def outcome_for_status(status: int) -> str:
    """AuditEvent outcome code for an HTTP status: 0 success, 4 client error, 8 server error."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def redact_query(query: str) -> str:
    """Mask the values of identifying search parameters, keep everything else.

    >>> redact_query("Patient?name=Zhang&birthdate=ge1980&_count=10")
    'Patient?name=[redacted]&birthdate=[redacted]&_count=10'
    >>> redact_query("subject:Patient.identifier=x|1&code=8480-6")
    'subject:Patient.identifier=[redacted]&code=8480-6'
    """
    path, sep, params = query.partition("?")
    if not sep:
        if "=" not in path:
            return query
        path, params = "", path
    parts = []
    for piece in params.split("&") if params else []:
        name, eq, _value = piece.partition("=")
        tokens = set(re.split(r"[.:]", name))
        parts.append(f"{name}={REDACTED}" if eq and tokens & IDENTIFYING_PARAMETERS else piece)
    joined = "&".join(parts)
    return f"{path}?{joined}" if path else joined


def _instant(recorded: datetime) -> str:
    if recorded.tzinfo is None or recorded.utcoffset() is None:
        raise ValueError("recorded must be timezone-aware")
    return recorded.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _entity(reference: str) -> dict[str, Any]:
    if not _REFERENCE.match(reference):
        raise ValueError("entities must be relative references like Patient/123")
    is_patient = reference.startswith("Patient/")
    return {
        "what": {"reference": reference},
        "type": {"system": _ENTITY_TYPE, "code": "1" if is_patient else "2",
                 "display": "Person" if is_patient else "System Object"},
        "role": {"system": _ENTITY_ROLE, "code": "1" if is_patient else "4",
                 "display": "Patient" if is_patient else "Domain Resource"},
    }  # fmt: skip


def _agent(ctx: AccessContext | None, address: str | None) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                             "code": "110150", "display": "Application"}]},
        "who": {"identifier": {"system": _CLIENT_SYSTEM,
                               "value": ctx.client_id if ctx else "anonymous"}},
        "requestor": True,
    }  # fmt: skip
    if ctx is not None:
        agent["policy"] = [f"urn:healthmesh:token:{ctx.token_id}"]
        if ctx.purpose_of_use:
            agent["purposeOfUse"] = [_purpose(ctx.purpose_of_use)]
    if address:
        agent["network"] = {"address": address, "type": "2"}
    return agent


def _purpose(code: str) -> dict[str, Any]:
    coding = {"system": PURPOSE_OF_USE_SYSTEM, "code": code}
    if code in PURPOSE_OF_USE:
        coding["display"] = PURPOSE_OF_USE[code]
    return {"coding": [coding]}


def build_audit_event(
    ctx: AccessContext | None,
    *,
    action: str,
    subtype: str,
    outcome: str,
    entities: Sequence[str],
    query: str | None,
    source_site: str,
    recorded: datetime,
    address: str | None = None,
    outcome_desc: str | None = None,
    redact: bool = True,
) -> dict[str, Any]:
    """Build an R4 AuditEvent (a JSON-ready dict, without ``id``) for one REST interaction.

    Parameters
    ----------
    ctx:
        The caller, or ``None`` when no valid token was presented (agent "anonymous").
    action:
        ``C`` ``R`` ``U`` ``D`` or ``E``.
    subtype:
        The FHIR restful-interaction code (``read``, ``search-type``, ``create`` …).
    outcome:
        ``0``/``4``/``8``/``12`` or ``success``/``minor``/``serious``/``major``
        (see :func:`outcome_for_status`).
    entities:
        Relative references of the resources touched, e.g. ``["Patient/1"]``.
    query:
        The search query string, recorded base64-encoded; identifying values are masked
        unless ``redact`` is false.
    source_site, recorded:
        The node that observed the event and when (timezone-aware).
    address:
        The client's network address, if it should be recorded.
    outcome_desc:
        A public (patient-free) description of a failure.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> ev = build_audit_event(None, action="R", subtype="read", outcome="success",
    ...     entities=["Patient/1"], query=None, source_site="node-a",
    ...     recorded=datetime(2026, 1, 1, tzinfo=UTC))
    >>> ev["resourceType"], ev["outcome"], ev["entity"][0]["what"]["reference"]
    ('AuditEvent', '0', 'Patient/1')
    """
    if action not in ACTIONS or len(action) != 1:
        raise ValueError("action must be one of C R U D E")
    if subtype not in RESTFUL_INTERACTIONS:
        raise ValueError("subtype must be an R4 restful-interaction code")
    if outcome not in _OUTCOMES:
        raise ValueError("outcome must be 0, 4, 8, 12 or success/minor/serious/major")
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": dict(_TYPE_REST),
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": action,
        "recorded": _instant(recorded),
        "outcome": _OUTCOMES[outcome],
        "agent": [_agent(ctx, address)],
        "source": {
            "site": source_site,
            "observer": {"identifier": {"system": _NODE_SYSTEM, "value": source_site},
                         "display": source_site},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                      "code": "4", "display": "Application Server"}],
        },
    }  # fmt: skip
    if outcome_desc:
        event["outcomeDesc"] = outcome_desc
    if ctx is not None and ctx.purpose_of_use:
        event["purposeOfEvent"] = [_purpose(ctx.purpose_of_use)]
    entity = [_entity(ref) for ref in dict.fromkeys(entities)]
    if query:
        recorded_query = redact_query(query) if redact else query
        entity.append({
            "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": _ENTITY_ROLE, "code": "24", "display": "Query"},
            "query": base64.b64encode(recorded_query.encode()).decode(),
        })  # fmt: skip
    if entity:
        event["entity"] = entity
    return event
