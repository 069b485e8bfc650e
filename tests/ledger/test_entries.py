"""Provenance events: schemas, canonical JSON, and refusal of clear patient identifiers."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from healthmesh.ledger.entries import (
    SCHEMAS,
    EntryError,
    canonical_json,
    encode_event,
    encode_event_reference,
    make_event,
    sha256_digest,
    validate_event,
)
from healthmesh.ledger.phi import find_identifier, id18_check_ok

D = sha256_digest(b"batch")
EXAMPLES = {
    "data_access": {"node": "hosp-a", "audit_digest": D, "event_count": 12},
    "data_share": {
        "from_institution": "hosp-a",
        "to_institution": "cdc-1",
        "dataset_digest": D,
        "purpose": "public-health",
    },
    "ingestion_batch": {
        "institution": "hosp-a",
        "batch_digest": D,
        "record_count": 5,
        "source_format": "hl7v2",
    },
    "consent_change": {
        "institution": "hosp-a",
        "patient_pseudonym": "pseu:AbCdEf0123456789xy",
        "consent_digest": D,
        "action": "revoked",
    },
    "study_submission": {
        "study_id": "st-1",
        "researcher": "client:0123abcd",
        "protocol_digest": D,
        "institutions": ["hosp-a", "hosp-b"],
    },
    "job_start": {
        "job_id": "job-9",
        "study_id": "st-1",
        "algorithm": "glm",
        "institutions": ["hosp-a", "hosp-b"],
    },
    "job_failure": {
        "job_id": "job-9",
        "study_id": "st-1",
        "algorithm": "federated_learning",
        "institutions": ["hosp-a", "hosp-b"],
        "reason": "timeout",
    },
    "study_approval": {
        "study_id": "st-1",
        "approver": "irb-1",
        "decision": "approved",
        "protocol_digest": D,
        "institutions": ["hosp-a", "hosp-b"],
    },
    "job_result_release": {
        "job_id": "job-9",
        "study_id": "st-1",
        "result_digest": D,
        "released_to": "researcher-7",
    },
    "model_release": {
        "model_id": "ckd",
        "model_version": "2",
        "model_digest": D,
        "training_job_id": "job-9",
    },
    "key_registration": {
        "institution": "hosp-a",
        "purpose": "witness",
        "vkey": "a.test/w+01020304+BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    },
    "key_rotation": {
        "institution": "hosp-a",
        "purpose": "witness",
        "old_key_id": "01020304",
        "vkey": "a.test/w+05060708+BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    },
}
T = "2026-11-28T10:00:00Z"


def test_every_type_has_an_example_and_is_canonical() -> None:
    assert {t for t, _ in SCHEMAS} == set(EXAMPLES)
    for etype, body in EXAMPLES.items():
        raw = encode_event(make_event(etype, "hosp-a", body, time=T))
        assert raw == rfc8785.dumps(json.loads(raw))
        assert json.loads(raw)["type"] == etype


def test_key_order_does_not_change_bytes() -> None:
    a = make_event("data_access", "hosp-a", EXAMPLES["data_access"], time=T)
    b = dict(reversed(list(a.items())))
    b["body"] = dict(reversed(list(a["body"].items())))
    assert encode_event(a) == encode_event(b)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("node", "11010519491231002X"),  # resident ID number in an identifier field
        ("node", "张三"),  # a name: not an identifier
        ("node", "hosp 1"),
        ("audit_digest", "d41d8cd98f00b204e9800998ecf8427e"),  # not sha256:
        ("event_count", -1),
        ("event_count", True),
        ("first_event", "wang.fang@hospital.cn"),
        ("first_event", "13812345678"),
    ],
)
def test_refuses_bad_or_identifying_values(field: str, value: object) -> None:
    body = dict(EXAMPLES["data_access"], **{field: value})
    with pytest.raises(EntryError) as err:
        make_event("data_access", "hosp-a", body, time=T)
    assert str(value) not in err.value.message


def test_refuses_unknown_fields_types_and_times() -> None:
    with pytest.raises(EntryError):
        make_event("data_access", "hosp-a", dict(EXAMPLES["data_access"], name="x"), time=T)
    with pytest.raises(EntryError):
        make_event("telemetry", "hosp-a", {}, time=T)
    with pytest.raises(EntryError):
        make_event("data_access", "hosp-a", EXAMPLES["data_access"], time="2026-13-01T00:00:00Z")
    with pytest.raises(EntryError):
        make_event("data_access", "hosp-a", EXAMPLES["data_access"], version=2, time=T)
    with pytest.raises(EntryError):
        make_event(
            "consent_change",
            "hosp-a",
            dict(EXAMPLES["consent_change"], patient_pseudonym="110105194912310021"),
            time=T,
        )


def test_phi_scanner() -> None:
    assert id18_check_ok("11010519491231002X")
    assert not id18_check_ok("110105194912310021")
    assert find_identifier("id 110105194912310021") == "resident identity number"
    assert find_identifier("+86 13912345678") == "phone number"
    assert find_identifier("sha256:" + "1" * 64) is None
    assert find_identifier("job-2026-11-28") is None


def test_an_audit_page_whose_event_ids_read_as_phone_numbers_is_still_anchored() -> None:
    from healthmesh.ledger.client import data_access_event

    def page(first: str, last: str) -> list[dict[str, object]]:
        return [{"resourceType": "AuditEvent", "id": i, "recorded": "2026-11-28T10:00:00Z"}
                for i in (first, last)]

    plain = ["6f1c7f2e-4a57-4d0b-9c1e-3b8f0f6a2d11", "0b7a0c52-1d1e-4c4f-8a38-5e5d2f3c9a10"]
    phone_like = "5d1e1c0a-7c2b-4a0e-8f36-a13812345678"  # a real uuid4 shape
    kept = validate_event(data_access_event("hosp-a", page(*plain)))
    assert (kept["body"]["first_event"], kept["body"]["last_event"]) == tuple(plain)
    for ids in ((phone_like, plain[1]), (plain[0], phone_like)):
        entry = validate_event(data_access_event("hosp-a", page(*ids)))  # not refused
        assert "first_event" not in entry["body"] and "last_event" not in entry["body"]
        assert entry["body"]["event_count"] == 2


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(EXAMPLES)),
    st.text(min_size=1, max_size=30),
    st.integers(0, 2**53 - 1),
)
def test_fast_canonical_json_equals_rfc8785(etype: str, text: str, number: int) -> None:
    body = dict(EXAMPLES[etype])
    if etype == "data_access":
        body["event_count"] = number
    event = make_event(etype, "hosp-a", body, time=T)
    assert encode_event(event) == encode_event_reference(event)
    # Free text never reaches an entry (schemas forbid it), but the serialiser must still
    # agree with RFC 8785 on any string, escapes and non-ASCII included.
    probe = {"type": text, "v": number, "body": {"z": [text, number], "a": text}}
    try:
        expected = bytes(rfc8785.dumps(probe))
    except rfc8785.CanonicalizationError:
        return
    assert canonical_json(probe) == expected
