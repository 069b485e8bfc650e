"""Transactions are atomic and resolve references; batches report each entry; Synthea loads."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from healthmesh.fhir.bundles import EntryError
from healthmesh.fhir.store import FhirStore

from .fhir_helpers import load_bundle, processor, synthea_bundles


def _load_all(store: FhirStore, paths: list[Path]) -> int:
    n = 0
    for path in paths:
        bundle = load_bundle(path)
        response, _ = processor(store).process(bundle)
        assert response["type"] == "transaction-response"
        assert all(e["response"]["status"].startswith(("200", "201")) for e in response["entry"])
        n += len(bundle["entry"])
    return n


def test_synthea_bundles_load_as_is(store: FhirStore, shared_data: Path) -> None:
    paths = synthea_bundles(shared_data)[:3]
    n = _load_all(store, paths)
    assert n > 300
    # references were rewritten from urn:uuid to Type/id and are searchable
    pat = store.search_engine.search("Patient", [("_count", "1")]).matches[0]
    obs = store.search_engine.search("Observation", [("subject", f"Patient/{pat.res_id}")])
    assert obs.matches and all(
        m.resource()["subject"]["reference"] == f"Patient/{pat.res_id}" for m in obs.matches
    )


@pytest.mark.slow
def test_all_60_synthea_bundles_load(sqlite_store: FhirStore, shared_data: Path) -> None:
    paths = synthea_bundles(shared_data)
    assert len(paths) == 60
    n = _load_all(sqlite_store, paths)
    assert n == 10276
    assert sqlite_store.count() <= n  # shared practitioners/organisations are matched


def _txn(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _post(full: str, resource: dict, **req: str) -> dict:
    return {
        "fullUrl": full,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **req},
    }


def test_transaction_is_all_or_nothing(store: FhirStore) -> None:
    bundle = _txn(
        _post("urn:uuid:1", {"resourceType": "Patient", "gender": "male"}),
        _post(
            "urn:uuid:2",
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": "urn:uuid:1"},
                "valueQuantity": {"value": "not-a-number"},
            },
        ),
    )
    with pytest.raises(EntryError) as err:
        processor(store).process(bundle)
    assert err.value.location is not None and err.value.location.startswith("Bundle.entry[1]")
    assert store.count() == 0


def test_transaction_resolves_uuids_conditionals_and_orders(store: FhirStore) -> None:
    with store.writing() as tx:
        old = tx.create({"resourceType": "Patient", "gender": "female"}).stored.res_id
        org = tx.create(
            {
                "resourceType": "Organization",
                "identifier": [{"system": "urn:org", "value": "H1"}],
                "name": "Hospital",
            }
        ).stored.res_id
    bundle = _txn(
        {"request": {"method": "GET", "url": f"Patient/{old}"}},
        _post(
            "urn:uuid:p",
            {
                "resourceType": "Patient",
                "gender": "male",
                "managingOrganization": {"reference": "Organization?identifier=urn:org|H1"},
            },
        ),
        {"request": {"method": "DELETE", "url": f"Patient/{old}"}},
        _post(
            "urn:uuid:e",
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": "urn:uuid:p"},
            },
        ),
    )
    response, _ = processor(store).process(bundle)
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses[1].startswith("201") and statuses[3].startswith("201")
    assert statuses[2].startswith("204")
    # GET runs after DELETE: the patient is gone
    assert statuses[0].startswith("410")
    loc = response["entry"][1]["response"]["location"]
    new_id = loc.split("/")[1]
    pat = store.read("Patient", new_id).resource()
    assert pat["managingOrganization"]["reference"] == f"Organization/{org}"
    enc = store.search_engine.search("Encounter", [("subject", f"Patient/{new_id}")])
    assert len(enc.matches) == 1


def test_unresolvable_urn_fails_transaction(store: FhirStore) -> None:
    bundle = _txn(
        _post(
            "urn:uuid:e",
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": "urn:uuid:missing"},
            },
        )
    )
    with pytest.raises(EntryError):
        processor(store).process(bundle)
    assert store.count() == 0


def test_batch_processes_entries_independently(store: FhirStore) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            _post("urn:uuid:a", {"resourceType": "Patient", "gender": "male"}),
            _post("urn:uuid:b", {"resourceType": "Patient", "gender": "robot"}),
            _post("urn:uuid:c", {"resourceType": "Patient", "gender": "female"}),
        ],
    }
    response, written = processor(store).process(bundle)
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses[0].startswith("201") and statuses[2].startswith("201")
    assert statuses[1] == "422"
    assert response["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert store.count("Patient") == 2 and len(written) == 2


def test_large_transaction_prepared_in_parallel(sqlite_store: FhirStore) -> None:
    """Above the parallel threshold, entries are validated and indexed in worker processes;
    errors still name the entry and nothing is written."""
    entries = [_post(f"urn:uuid:p{i}", {"resourceType": "Patient", "gender": "male",
                                         "name": [{"family": f"Fam{i}"}]}) for i in range(100)]
    entries.append(_post("urn:uuid:o", {"resourceType": "Observation", "status": "final",
                                        "code": {"text": "t"},
                                        "subject": {"reference": "urn:uuid:p7"}}))
    bad = copy.deepcopy(entries)
    bad[90] = _post("urn:uuid:bad", {"resourceType": "Patient", "gender": "robot"})
    with pytest.raises(EntryError) as err:
        processor(sqlite_store).process(_txn(*bad))
    assert err.value.location is not None and err.value.location.startswith("Bundle.entry[90]")
    assert sqlite_store.count() == 0
    response, written = processor(sqlite_store).process(_txn(*entries))
    assert len(written) == 101 and sqlite_store.count("Patient") == 100
    obs = response["entry"][-1]["response"]["location"].split("/")[1]
    subject = sqlite_store.read("Observation", obs).resource()["subject"]["reference"]
    p7 = response["entry"][7]["response"]["location"].split("/_history")[0]
    assert subject == p7
    assert len(sqlite_store.search_engine.search("Patient", [("family:exact", "Fam25")]).matches) == 1
