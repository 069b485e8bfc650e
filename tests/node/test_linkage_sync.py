"""Nodes sync enterprise ids with the hub's patient index over real HTTP (uvicorn)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from healthmesh.cli import main
from healthmesh.errors import Forbidden
from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import InstitutionMetadata
from healthmesh.fhir.store import FhirStore
from healthmesh.hub.app import Hub, build_hub
from healthmesh.hub.serving import ServerThread, free_port
from healthmesh.hub.settings import HubSettings
from healthmesh.identity.fhir_patient import RESIDENT_ID_SYSTEM
from healthmesh.identity.mpi import curation
from healthmesh.identity.mpi.api import ENTERPRISE_SYSTEM
from healthmesh.identity.mpi.service import MasterPatientIndex
from healthmesh.node.hub_client import client_credentials
from healthmesh.node.linkage_sync import sync_enterprise_ids

KEY = b"linkage-project-key-of-the-region"
ID_ZHANG = "11010519491231002X"
ID_LI = "44010619630816024X"


def _patient(
    name: str, phone: str, id_number: str | None, born: str, address: str
) -> dict[str, Any]:
    idents = [{"system": "urn:healthmesh:id:local", "value": "MRN-" + phone[-4:]}]
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


PEOPLE = {
    "h1": {
        "zhang": _patient("张丽", "13800138000", ID_ZHANG, "1949-12-31", "北京市西城区金融大街7号"),
        "wang": _patient(
            "王芳", "13911112222", None, "1980-05-04", "四川省成都市武侯区人民南路4段1号"
        ),
        "li": _patient("李娜", "13722223333", ID_LI, "1963-08-16", "广东省广州市天河区体育西路3号"),
    },
    "c1": {
        # the same person as h1/zhang: traditional characters, no identity number
        "p-7": _patient("張麗", "13800138000", None, "1949-12-31", "北京市西城区金融大街7号"),
        "p-9": _patient("赵敏", "13633334444", None, "1992-02-29", "上海市黄浦区南京东路100号"),
    },
}
SECRETS = [
    *(p["name"][0]["text"] for n in PEOPLE.values() for p in n.values()),
    *(p["telecom"][0]["value"] for n in PEOPLE.values() for p in n.values()),
    ID_ZHANG,
    ID_LI,
    "zhangli",
    "wangfang",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def region(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    db = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    port = free_port()
    hub = build_hub(HubSettings(data_dir=tmp_path / "hub", port=port, db=db))
    server = ServerThread(hub.app, "127.0.0.1", port).start()
    mpi = MasterPatientIndex(hub.engine)
    stores, tokens, creds_of = {}, {}, {}
    for inst, people in PEOPLE.items():
        creds = hub.clients.add(f"node-{inst}", "system/Linkage.c")
        assert creds.client_secret is not None
        creds_of[inst] = (creds.client_id, creds.client_secret)
        mpi.register_institution(inst, inst.upper(), client_id=creds.client_id)
        tokens[inst] = client_credentials(server.url, creds.client_id, creds.client_secret)
        stores[inst] = FhirStore(tmp_path / f"{inst}.sqlite")
        with stores[inst].writing() as tx:
            for pid, patient in people.items():
                tx.update("Patient", pid, patient)
    yield {
        "hub": hub,
        "url": server.url,
        "mpi": mpi,
        "stores": stores,
        "tokens": tokens,
        "db": db,
        "creds": creds_of,
    }
    for s in stores.values():
        s.close()
    server.stop()
    hub.close()


def _eids(region: dict[str, Any], inst: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pid in PEOPLE[inst]:
        res = region["stores"][inst].read("Patient", pid).resource()
        idents = res.get("identifier", [])
        out[pid] = next((i["value"] for i in idents if i["system"] == ENTERPRISE_SYSTEM), None)
    return out


def _versions(stores: dict[str, FhirStore]) -> dict[str, int]:
    return {
        pid: stores[inst].read("Patient", pid).version
        for inst, people in PEOPLE.items()
        for pid in people
    }


def _sync(region: dict[str, Any], inst: str, token: str | None = None) -> Any:
    return sync_enterprise_ids(
        region["stores"][inst], region["url"], region["tokens"][token or inst], KEY, inst
    )


def test_two_nodes_share_the_enterprise_id_of_one_person(
    region: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = _sync(region, "h1")
    assert (first.submitted, first.new, first.updated_patients) == (3, 3, 3)
    second = _sync(region, "c1")
    assert (second.submitted, second.linked, second.new) == (2, 1, 1)
    h1, c1 = _eids(region, "h1"), _eids(region, "c1")
    assert h1["zhang"] is not None and h1["zhang"] == c1["p-7"]
    distinct = {h1["zhang"], h1["wang"], h1["li"], c1["p-9"]}
    assert len(distinct) == 4 and None not in distinct

    # nothing changed: nothing is sent again and no Patient gets a new version
    before = _versions(region["stores"])
    for inst in PEOPLE:
        again = _sync(region, inst)
        assert (again.submitted, again.skipped, again.updated_patients) == (0, len(PEOPLE[inst]), 0)
    assert _versions(region["stores"]) == before

    # a steward merges two persons at the hub: the next run picks up the current id
    curation.merge(region["mpi"], h1["wang"], c1["p-9"], actor="steward")
    assert _sync(region, "c1").updated_patients == 1
    assert _eids(region, "c1")["p-9"] == h1["wang"]
    # ... and the unmerge
    new_id = curation.unmerge_record(region["mpi"], "c1", "p-9", actor="steward")
    _sync(region, "c1")
    assert _eids(region, "c1")["p-9"] == new_id

    _assert_no_plaintext(region, caplog.text, h1["zhang"])


def test_a_submission_for_another_institution_is_refused(region: dict[str, Any]) -> None:
    with pytest.raises(Forbidden):
        _sync(region, "c1", token="h1")  # h1's client submitting as c1
    # the index is untouched
    with region["hub"].engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM mpi_records").scalar_one()
    assert rows == 0
    refused = [a for a in region["mpi"].audit_trail() if a["action"] == "refused"]
    assert [a["institution_id"] for a in refused] == ["c1"]
    assert _eids(region, "c1") == {"p-7": None, "p-9": None}


def test_the_hubs_federation_decision_gates_submissions(region: dict[str, Any]) -> None:
    """Registered in the index is not enough once the hub's federation registry holds the
    institution: pending, revoked or rejected there means refused here."""
    registry = region["hub"].registry
    ident = Identity.generate("c1")
    registry.register(ident.public_record(), InstitutionMetadata(name="C1", kind="clinic"))
    with pytest.raises(Forbidden, match="not approved at the hub"):
        _sync(region, "c1")  # pending
    registry.approve("c1", "operator")
    assert _sync(region, "c1").submitted == 2
    registry.revoke(operator="operator", institution="c1")
    with region["stores"]["c1"].writing() as tx:
        changed = dict(PEOPLE["c1"]["p-9"], birthDate="1992-03-01")
        tx.update("Patient", "p-9", changed)
    with pytest.raises(Forbidden, match="not approved at the hub"):
        _sync(region, "c1")  # revoked: the changed encoding is not taken
    refused = [a for a in region["mpi"].audit_trail() if a["action"] == "refused"]
    assert [a["institution_id"] for a in refused] == ["c1", "c1"]
    # h1, unknown to the federation registry, is admitted by its index registration alone
    assert _sync(region, "h1").submitted == 3


def test_node_link_command(region: dict[str, Any], tmp_path: Path) -> None:
    key_file = tmp_path / "project.key"
    key_file.write_bytes(KEY + b"\n")
    _sync(region, "h1")
    client_id, secret = region["creds"]["c1"]
    args = ["node", "link", "--db", str(tmp_path / "c1.sqlite"), "--hub", region["url"]]
    args += ["--institution", "c1", "--client-id", client_id, "--project-key-file", str(key_file)]
    env = {"HEALTHMESH_NODE_LINKAGE_CLIENT_SECRET": secret}
    done = CliRunner().invoke(main, args, env=env)
    assert done.exit_code == 0, done.output
    assert "2 submitted (1 linked, 1 new" in done.output
    assert _eids(region, "c1")["p-7"] == _eids(region, "h1")["zhang"]
    wrong = CliRunner().invoke(main, [*args[:-4], "--institution", "h1", *args[-4:]], env=env)
    assert wrong.exit_code == 1
    assert "its own institution" in wrong.output


def _assert_no_plaintext(region: dict[str, Any], logs: str, eid: str) -> None:
    hub: Hub = region["hub"]
    blobs = [logs.encode()]
    if region["db"] is None:
        blobs += [p.read_bytes() for p in hub.settings.data_dir.glob("hub.sqlite*")]
    with hub.engine.connect() as conn:
        for name in inspect(hub.engine).get_table_names():
            for row in conn.exec_driver_sql(f'SELECT * FROM "{name}"').all():
                blobs.append(repr(tuple(row)).encode())
    haystack = b"\n".join(blobs)
    assert eid.encode() in haystack  # the scan saw the index's rows
    leaked = [s for s in SECRETS if s.encode() in haystack]
    assert leaked == []
