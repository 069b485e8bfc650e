"""Nodes encode their own Patients for linkage and carry the hub's enterprise ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from healthmesh.errors import InvalidInput, NotFound
from healthmesh.fhir.store import FhirStore
from healthmesh.identity.fhir_patient import RESIDENT_ID_SYSTEM
from healthmesh.identity.mpi.api import ENTERPRISE_SYSTEM
from healthmesh.identity.mpi.service import MasterPatientIndex
from healthmesh.identity.pprl.groups import chinese_groups, split_segments
from healthmesh.identity.pprl.similarity import as_words, dice_pairs
from healthmesh.node.enterprise_ids import (
    LINK_SOURCE,
    apply_enterprise_ids,
    encodings_from_store,
)

KEY = b"linkage-project-key-of-the-region"
ID_A = "11010519491231002X"


def _patient(
    name: str,
    phone: str,
    id_number: str | None,
    mrn: str,
    born: str = "1949-12-31",
    address: str = "北京市西城区金融大街7号",
) -> dict[str, Any]:
    idents = [{"system": "urn:healthmesh:id:H01", "value": mrn}]
    if id_number:
        idents.append({"system": RESIDENT_ID_SYSTEM, "value": id_number})
    return {
        "resourceType": "Patient",
        "identifier": idents,
        "name": [{"text": name}],
        "gender": "female",
        "birthDate": born,
        "telecom": [{"system": "phone", "value": phone}],
        "address": [{"text": address}],
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FhirStore]:
    url = str(tmp_path / "node.sqlite")
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    s = FhirStore(url)
    with s.writing() as tx:
        tx.update("Patient", "a", _patient("张丽", "13800138000", ID_A, "M1"))
        tx.update("Patient", "b", _patient("張麗", "13800138000", None, "M2"))  # same person
        tx.update(
            "Patient",
            "c",
            _patient(
                "王芳", "13911112222", None, "M3", "1980-05-04", "四川省成都市武侯区人民南路4段1号"
            ),
        )
        merged = _patient("张丽", "13800138000", ID_A, "M0")
        merged["active"] = False  # the hospital merged it into "a" itself (ADT^A40)
        merged["link"] = [{"other": {"reference": "Patient/a"}, "type": "replaced-by"}]
        tx.update("Patient", "old", merged)
    yield s
    s.close()


def _version(store: FhirStore, pid: str) -> int:
    return store.read("Patient", pid).version


def test_encodings_hold_no_plaintext_and_link_at_the_index(store: FhirStore) -> None:
    encs = encodings_from_store(store, KEY)
    assert [e.local_id for e in encs] == ["a", "b", "c"]  # the merged-away record is not sent
    blob = repr(encs).encode() + b"".join(
        e.record.clk + e.groups + (e.record.id_token or b"") for e in encs
    )
    for secret in ("张丽", "張麗", "13800138000", ID_A, "zhang", "1949", "金融"):
        assert secret.encode() not in blob
    assert encs[0].record.id_token and encs[1].record.id_token is None
    # the name segments of a and b are equal (traditional -> simplified -> pinyin), c differs
    rows = np.frombuffer(b"".join(e.groups for e in encs), np.uint8).reshape(3, -1)
    name = as_words(split_segments(rows, chinese_groups())[0])
    dice = dice_pairs(name, name, np.array([0, 0]), np.array([1, 2]), kernel="numpy")
    assert dice[0] == 1.0 and dice[1] < 0.8
    mpi = MasterPatientIndex.open(":memory:")
    mpi.register_institution("H01", "Hospital 1")
    decisions = [mpi.submit("H01", e.local_id, e.record) for e in encs]
    assert decisions[0].enterprise_id == decisions[1].enterprise_id
    assert decisions[2].enterprise_id != decisions[0].enterprise_id
    with pytest.raises(InvalidInput):
        encodings_from_store(store, b"short")


def test_enterprise_ids_and_links_are_written_once(store: FhirStore) -> None:
    summary = apply_enterprise_ids(store, {"a": "e1", "b": "e1", "c": "e2"})
    assert (summary.updated, summary.unchanged, summary.identifiers_set) == (3, 1, 3)
    assert summary.links_added == 2
    a = store.read("Patient", "a").resource()
    eids = [i for i in a["identifier"] if i["system"] == ENTERPRISE_SYSTEM]
    assert eids == [
        {
            "use": "secondary",
            "system": ENTERPRISE_SYSTEM,
            "value": "e1",
            "assigner": {"display": "healthmesh hub patient index"},
        }
    ]
    assert a["identifier"][0]["value"] == "M1"  # the institution's own number stays first
    assert [(x["other"]["reference"], x["type"]) for x in a["link"]] == [("Patient/b", "seealso")]
    assert "link" not in store.read("Patient", "c").resource()
    versions = {p: _version(store, p) for p in ("a", "b", "c", "old")}
    again = apply_enterprise_ids(store, [("a", "e1"), ("b", "e1"), ("c", "e2")])
    assert (again.updated, again.unchanged) == (0, 4)
    assert {p: _version(store, p) for p in versions} == versions  # no new versions
    old = store.read("Patient", "old").resource()
    assert old["link"] == [{"other": {"reference": "Patient/a"}, "type": "replaced-by"}]


def test_unmerge_removes_stale_identifiers_and_links(store: FhirStore) -> None:
    apply_enterprise_ids(store, {"a": "e1", "b": "e1", "c": "e2"})
    summary = apply_enterprise_ids(store, {"b": "e3"})  # the hub split b off
    assert summary.updated == 2 and summary.links_removed == 2
    a, b = store.read("Patient", "a").resource(), store.read("Patient", "b").resource()
    assert "link" not in a and "link" not in b
    assert [i["value"] for i in b["identifier"] if i["system"] == ENTERPRISE_SYSTEM] == ["e3"]
    assert [i["value"] for i in a["identifier"] if i["system"] == ENTERPRISE_SYSTEM] == ["e1"]
    removed = apply_enterprise_ids(store, {"c": None})
    assert removed.identifiers_removed == 1
    c = store.read("Patient", "c").resource()
    assert all(i["system"] != ENTERPRISE_SYSTEM for i in c["identifier"])


def test_links_of_the_institution_itself_survive(store: FhirStore) -> None:
    with store.writing() as tx:
        p = store.read("Patient", "a").resource()
        p["link"] = [{"other": {"reference": "Patient/old"}, "type": "replaces"}]
        tx.update("Patient", "a", p)
    apply_enterprise_ids(store, {"a": "e1", "b": "e1"})
    apply_enterprise_ids(store, {"b": "e9"})
    a = store.read("Patient", "a").resource()
    assert a["link"] == [{"other": {"reference": "Patient/old"}, "type": "replaces"}]
    ours = [x for x in store.read("Patient", "b").resource().get("link", []) if "extension" in x]
    assert ours == [] and LINK_SOURCE


def test_bad_input_writes_nothing(store: FhirStore) -> None:
    with pytest.raises(NotFound) as err:
        apply_enterprise_ids(store, {"a": "e1", "nope": "e2"})
    assert "nope" not in str(err.value)
    assert _version(store, "a") == 1
    with pytest.raises(InvalidInput):
        apply_enterprise_ids(store, {"a": "not an id!"})
    assert _version(store, "a") == 1
