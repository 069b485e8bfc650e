"""AuditEvent builder: structurally valid R4 (checked with the fhirclient R4 4.0.1 models and
the element rules of the AuditEvent definition), references only, identifying values masked."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fhirclient.models.auditevent import AuditEvent
from fhirclient.models.fhirabstractbase import FHIRValidationError

import healthmesh.access.audit
from healthmesh.access import AccessContext, ScopeSet, audit_digest, build_audit_event
from healthmesh.access.audit import outcome_for_status, redact_query

WHEN = datetime(2026, 11, 28, 9, 30, 15, 123000, tzinfo=UTC)
CTX = AccessContext(
    client_id="cdc-export",
    scopes=ScopeSet.parse("system/*.rs"),
    token_id="0f3a",
    purpose_of_use="PUBHLTH",
)


def check_r4_audit_event(event: dict) -> None:
    """Structural validation: the R4 model accepts it (types, cardinality, no unknown
    elements) and the required elements and fixed code sets of AuditEvent hold."""
    AuditEvent(json.loads(json.dumps(event)), strict=True)
    assert event["resourceType"] == "AuditEvent"
    assert event["type"]["code"]
    assert event["type"]["system"]
    assert event["action"] in {"C", "R", "U", "D", "E"}
    assert event["outcome"] in {"0", "4", "8", "12"}
    recorded = datetime.fromisoformat(event["recorded"].replace("Z", "+00:00"))
    assert recorded.tzinfo is not None
    assert event["agent"]
    for agent in event["agent"]:
        assert isinstance(agent["requestor"], bool)
    assert event["source"]["observer"]
    for entity in event.get("entity", []):
        assert not ("name" in entity and "query" in entity)  # sev-1


@pytest.mark.parametrize(
    "path",
    ["AuditEvent-example-rest.json", "AuditEvent-example-search.json", "AuditEvent-example.json"],
)
def test_checker_accepts_official_examples(shared_data, path) -> None:
    """The checker itself is checked against HL7's own R4 AuditEvent examples."""
    example = json.loads((shared_data / "fhir/examples/resources" / path).read_text())
    check_r4_audit_event(example)


def test_checker_rejects_broken_events() -> None:
    good = build_audit_event(
        CTX,
        action="R",
        subtype="read",
        outcome="0",
        entities=["Patient/1"],
        query=None,
        source_site="node-a",
        recorded=WHEN,
    )
    check_r4_audit_event(good)
    for broken in (
        {k: v for k, v in good.items() if k != "source"},
        {k: v for k, v in good.items() if k != "agent"},
        good | {"action": "X"},
        good | {"unknownElement": 1},
        good | {"agent": [{"who": {"display": "x"}}]},
    ):
        with pytest.raises((AssertionError, FHIRValidationError)):
            check_r4_audit_event(broken)


def test_read_event_shape() -> None:
    ev = build_audit_event(
        CTX,
        action="R",
        subtype="read",
        outcome="success",
        entities=["Patient/123"],
        query=None,
        source_site="hospital-a",
        recorded=WHEN,
        address="10.0.0.7",
    )
    check_r4_audit_event(ev)
    assert ev["type"] == {
        "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
        "code": "rest",
        "display": "RESTful Operation",
    }
    assert ev["subtype"] == [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}]
    assert ev["recorded"] == "2026-11-28T09:30:15.123Z"
    agent = ev["agent"][0]
    assert agent["who"]["identifier"]["value"] == "cdc-export"
    assert agent["requestor"] is True
    assert agent["policy"] == ["urn:healthmesh:token:0f3a"]
    assert agent["purposeOfUse"][0]["coding"][0]["code"] == "PUBHLTH"
    assert agent["network"] == {"address": "10.0.0.7", "type": "2"}
    assert ev["purposeOfEvent"][0]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    )
    assert ev["source"]["site"] == "hospital-a"
    assert ev["source"]["observer"]["identifier"]["value"] == "hospital-a"
    entity = ev["entity"][0]
    assert entity["what"] == {"reference": "Patient/123"}
    assert (entity["type"]["code"], entity["role"]["code"]) == ("1", "1")  # person, patient


def test_search_event_records_query_and_results() -> None:
    ev = build_audit_event(
        CTX,
        action="E",
        subtype="search-type",
        outcome="0",
        entities=["Observation/9", "Observation/10", "Observation/9", "Patient/1/_history/2"],
        query="Observation?code=http://loinc.org|8480-6&subject=Patient/1&_count=50",
        source_site="hospital-a",
        recorded=WHEN,
    )
    check_r4_audit_event(ev)
    refs = [e["what"]["reference"] for e in ev["entity"] if "what" in e]
    assert refs == ["Observation/9", "Observation/10", "Patient/1/_history/2"]
    (query,) = [e for e in ev["entity"] if "query" in e]
    assert query["role"]["code"] == "24"
    decoded = base64.b64decode(query["query"]).decode()
    assert decoded == "Observation?code=http://loinc.org|8480-6&subject=Patient/1&_count=50"


def test_identifying_query_values_are_masked() -> None:
    q = "Patient?name=张三&birthdate=1980-01-01&identifier=110101198001010011&gender=male"
    ev = build_audit_event(
        CTX,
        action="E",
        subtype="search-type",
        outcome="0",
        entities=["Patient/1"],
        query=q,
        source_site="a",
        recorded=WHEN,
    )
    text = json.dumps(ev, ensure_ascii=False)
    decoded = base64.b64decode(ev["entity"][-1]["query"]).decode()
    for secret in ("张三", "1980-01-01", "110101198001010011"):
        assert secret not in text
        assert secret not in decoded
    assert decoded == (
        "Patient?name=[redacted]&birthdate=[redacted]&identifier=[redacted]&gender=male"
    )
    full = build_audit_event(
        CTX,
        action="E",
        subtype="search-type",
        outcome="0",
        entities=[],
        query=q,
        source_site="a",
        recorded=WHEN,
        redact=False,
    )
    assert base64.b64decode(full["entity"][0]["query"]).decode() == q


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Patient", "Patient"),
        ("Patient?", "Patient?"),
        ("name=Li", "name=[redacted]"),
        ("subject:Patient.name=Li&code=x", "subject:Patient.name=[redacted]&code=x"),
        ("given:exact=Wei&_sort=-date", "given:exact=[redacted]&_sort=-date"),
        ("_has:Observation:patient:code=1234", "_has:Observation:patient:code=1234"),
        ("_content=Li", "_content=[redacted]"),
    ],
)
def test_redact_query(query, expected) -> None:
    assert redact_query(query) == expected


def test_anonymous_and_failure_events() -> None:
    ev = build_audit_event(
        None,
        action="R",
        subtype="read",
        outcome="minor",
        entities=[],
        query=None,
        source_site="a",
        recorded=WHEN,
        outcome_desc="token expired",
    )
    check_r4_audit_event(ev)
    assert ev["agent"][0]["who"]["identifier"]["value"] == "anonymous"
    assert ev["outcome"] == "4"
    assert ev["outcomeDesc"] == "token expired"
    assert "entity" not in ev
    assert "purposeOfEvent" not in ev


def test_every_interaction_and_outcome() -> None:
    for subtype in sorted(healthmesh.access.audit.RESTFUL_INTERACTIONS):
        for outcome in ("0", "4", "8", "12", "serious", "major"):
            check_r4_audit_event(
                build_audit_event(
                    CTX,
                    action="E",
                    subtype=subtype,
                    outcome=outcome,
                    entities=["Group/g1"],
                    query=None,
                    source_site="a",
                    recorded=WHEN,
                )
            )


@pytest.mark.parametrize(
    "bad",
    [
        {"action": "Q"},
        {"action": "CR"},
        {"subtype": "$export"},
        {"outcome": "ok"},
        {"entities": ["Zhang San"]},
        {"entities": ["http://other/Patient/1"]},
        {"recorded": datetime(2026, 1, 1)},  # naive
    ],
)
def test_invalid_arguments_refused(bad) -> None:
    args = {
        "action": "R",
        "subtype": "read",
        "outcome": "0",
        "entities": ["Patient/1"],
        "query": None,
        "source_site": "a",
        "recorded": WHEN,
    } | bad
    with pytest.raises(ValueError):
        build_audit_event(CTX, **args)


def test_recorded_keeps_offset_and_digest_is_canonical() -> None:
    plus8 = timezone(timedelta(hours=8))
    ev = build_audit_event(
        CTX,
        action="R",
        subtype="read",
        outcome="0",
        entities=["Patient/1"],
        query=None,
        source_site="a",
        recorded=WHEN.astimezone(plus8),
    )
    assert ev["recorded"] == "2026-11-28T17:30:15.123+08:00"
    reordered = json.loads(json.dumps(ev, sort_keys=True))
    assert audit_digest(ev) == audit_digest(reordered)
    assert len(audit_digest(ev)) == 64
    assert audit_digest(ev) != audit_digest(ev | {"outcome": "4"})


def test_outcome_for_status() -> None:
    assert [outcome_for_status(s) for s in (200, 201, 304, 400, 403, 404, 500, 503)] == [
        "0",
        "0",
        "0",
        "4",
        "4",
        "4",
        "8",
        "8",
    ]
