"""Store contract: versions, history, deletes, conditional interactions, JSON Patch.
Runs on SQLite and PostgreSQL (``store`` fixture)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from healthmesh.errors import Gone, InvalidResource, NotFound, PreconditionFailed
from healthmesh.fhir.store import FhirStore
from healthmesh.fhir.store.writes import PatchFailed, apply_json_patch


def _patient(family: str = "Chalmers", mrn: str = "12345") -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:mrn", "value": mrn}],
        "name": [{"family": family, "given": ["Peter"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
    }


def test_create_read_update_versions(store: FhirStore) -> None:
    with store.writing() as tx:
        created = tx.create(_patient()).stored
    assert created.version == 1
    pid = created.res_id
    got = store.read("Patient", pid).resource()
    assert got["meta"]["versionId"] == "1" and got["name"][0]["family"] == "Chalmers"
    with store.writing() as tx:
        upd = tx.update("Patient", pid, {**_patient("Windsor"), "id": pid}, if_match=1).stored
    assert upd.version == 2
    assert store.vread("Patient", pid, 1).resource()["name"][0]["family"] == "Chalmers"
    assert store.read("Patient", pid).resource()["name"][0]["family"] == "Windsor"
    with pytest.raises(PreconditionFailed), store.writing() as tx:
        tx.update("Patient", pid, _patient("Late"), if_match=1)
    assert store.read("Patient", pid).version == 2


def test_update_creates_with_client_id(store: FhirStore) -> None:
    with store.writing() as tx:
        res = tx.update("Patient", "client-chosen-1", _patient())
    assert res.created and res.stored.version == 1
    assert store.read("Patient", "client-chosen-1").res_id == "client-chosen-1"


def test_delete_is_kept_in_history(store: FhirStore) -> None:
    with store.writing() as tx:
        pid = tx.create(_patient()).stored.res_id
    with store.writing() as tx:
        assert tx.delete("Patient", pid) is not None
        assert tx.delete("Patient", pid) is None  # idempotent
    with pytest.raises(Gone):
        store.read("Patient", pid)
    versions, total = store.history("Patient", pid)
    assert total == 2
    assert [v.deleted for v in versions] == [True, False]
    assert store.vread("Patient", pid, 1).resource()["gender"] == "male"
    with pytest.raises(NotFound):
        store.read("Patient", "never-existed")
    # searches no longer find it
    assert store.search_engine.search("Patient", [("_id", pid)]).matches == []
    # and it can come back
    with store.writing() as tx:
        back = tx.update("Patient", pid, _patient())
    assert back.stored.version == 3 and back.created


def test_history_levels_since_and_count(store: FhirStore) -> None:
    with store.writing() as tx:
        a = tx.create(_patient(mrn="a")).stored
        tx.create({"resourceType": "Organization", "name": "Clinic"})
    time.sleep(0.01)
    cut = time.time()
    with store.writing() as tx:
        tx.update("Patient", a.res_id, _patient("Second", mrn="a"))
    versions, total = store.history("Patient", a.res_id)
    assert [v.version for v in versions] == [2, 1] and total == 2
    _, type_total = store.history("Patient")
    assert type_total == 2
    _, sys_total = store.history()
    assert sys_total == 3
    since, since_total = store.history(since=cut)
    assert since_total == 1 and since[0].version == 2
    page, _ = store.history(count=1, offset=1)
    assert len(page) == 1


def test_conditional_create_and_update(store: FhirStore) -> None:
    with store.writing() as tx:
        first = tx.create(_patient(), if_none_exist="identifier=urn:mrn|12345")
        again = tx.create(_patient(), if_none_exist="identifier=urn:mrn|12345")
    assert first.created and again.matched and again.stored.res_id == first.stored.res_id
    with store.writing() as tx:
        tx.create(_patient(mrn="dup"))
        tx.create(_patient(mrn="dup"))
    with pytest.raises(PreconditionFailed), store.writing() as tx:
        tx.create(_patient(), if_none_exist="identifier=urn:mrn|dup")
    with store.writing() as tx:
        upd = tx.conditional_update("Patient", "identifier=urn:mrn|12345", _patient("Cond"))
    assert upd.stored.res_id == first.stored.res_id and upd.stored.version == 2


def test_invalid_resource_writes_nothing(store: FhirStore) -> None:
    bad = {**_patient(), "birthDate": "1974-13-45"}
    with pytest.raises(InvalidResource) as err, store.writing() as tx:
        tx.create(_patient(mrn="ok-before"))
        tx.create(bad)
    assert err.value.location == "Patient.birthDate"
    assert "1974-13-45" not in err.value.message
    assert store.count("Patient") == 0


def test_json_patch_on_resource(store: FhirStore) -> None:
    with store.writing() as tx:
        pid = tx.create(_patient()).stored.res_id
    ops = [
        {"op": "replace", "path": "/gender", "value": "female"},
        {"op": "add", "path": "/name/0/given/-", "value": "James"},
    ]
    with store.writing() as tx:
        res = tx.patch("Patient", pid, ops, if_match=1)
    got = store.read("Patient", pid).resource()
    assert res.stored.version == 2 and got["gender"] == "female"
    assert got["name"][0]["given"] == ["Peter", "James"]
    with pytest.raises(PatchFailed), store.writing() as tx:
        tx.patch("Patient", pid, [{"op": "test", "path": "/gender", "value": "male"}])
    with pytest.raises(InvalidResource), store.writing() as tx:
        tx.patch("Patient", pid, [{"op": "replace", "path": "/gender", "value": "robot"}])
    assert store.read("Patient", pid).version == 2


def test_json_patch_suite(shared_data: Path) -> None:
    """The JSON Patch cases of HL7 fhir-test-cases (RFC 6902 examples)."""
    cases = json.loads((shared_data / "fhir/patch-tests/json-patch-tests.json").read_text())
    ran = 0
    for case in cases:
        if case.get("disabled") or not isinstance(case.get("doc"), dict):
            continue
        ran += 1
        if "error" in case:
            with pytest.raises(PatchFailed):
                apply_json_patch(case["doc"], case["patch"])
        else:
            result = apply_json_patch(case["doc"], case["patch"])
            if "expected" in case:
                assert result == case["expected"], case["comment"]
    assert ran >= 10
