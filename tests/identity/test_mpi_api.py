"""The $match-style routes: authorisation by the caller's dependency, FHIR Bundle answers."""

from __future__ import annotations

import base64

from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from healthmesh.identity.mpi.api import ENTERPRISE_SYSTEM, make_router
from healthmesh.identity.mpi.service import MasterPatientIndex

_CALLERS = {"Bearer good": "researcher-1", "Bearer h1": "node-h1", "Bearer c1": "node-c1"}


def _authorize(authorization: str = Header(default="")) -> str:
    if authorization not in _CALLERS:
        raise HTTPException(status_code=403, detail="forbidden")
    return _CALLERS[authorization]


def _client() -> TestClient:
    mpi = MasterPatientIndex.open(":memory:")
    mpi.register_institution("h1", "Hospital 1", client_id="node-h1")
    mpi.register_institution("c1", "Clinic 1", client_id="node-c1")
    app = FastAPI()
    app.include_router(make_router(mpi, _authorize))
    return TestClient(app)


def _body(clk: bytes, **extra: object) -> dict[str, object]:
    return {"clk": base64.b64encode(clk).decode(), "block_tokens": ["12345"], **extra}


def test_submit_then_match_by_local_id_and_by_encoding() -> None:
    client = _client()
    ok = {"Authorization": "Bearer good"}
    clk = bytes(range(64))
    r1 = client.post(
        "/linkage/records",
        json=_body(clk, institution="h1", local_id="A"),
        headers={"Authorization": "Bearer h1"},
    )
    r2 = client.post(
        "/linkage/records",
        json=_body(clk, institution="c1", local_id="B"),
        headers={"Authorization": "Bearer c1"},
    )
    assert r1.json()["status"] == "new"
    assert r2.json()["status"] == "linked"
    assert r2.json()["enterprise_id"] == r1.json()["enterprise_id"]

    bundle = client.get(
        "/Patient/$match", params={"institution": "h1", "local_id": "A"}, headers=ok
    ).json()
    assert bundle["resourceType"] == "Bundle"
    idents = {(i["system"], i["value"]) for i in bundle["entry"][0]["resource"]["identifier"]}
    assert ("urn:healthmesh:institution:c1", "B") in idents
    assert (ENTERPRISE_SYSTEM, r1.json()["enterprise_id"]) in idents

    found = client.post("/Patient/$match", json=_body(clk), headers=ok).json()
    assert found["total"] == 1
    assert found["entry"][0]["search"]["score"] == 1.0


def test_refusals() -> None:
    client = _client()
    clk = bytes(range(64))
    assert (
        client.get("/Patient/$match", params={"institution": "h1", "local_id": "A"}).status_code
        == 403
    )
    ok = {"Authorization": "Bearer good"}
    rogue = client.post(
        "/linkage/records", json=_body(clk, institution="x", local_id="1"), headers=ok
    )
    assert rogue.status_code == 403
    assert rogue.json()["resourceType"] == "OperationOutcome"
    # a node's client may submit for its own institution only; researchers for none
    for token, inst in (("Bearer h1", "c1"), ("Bearer good", "h1")):
        other = client.post(
            "/linkage/records",
            json=_body(clk, institution=inst, local_id="Z"),
            headers={"Authorization": token},
        )
        assert other.status_code == 403
        assert other.json()["resourceType"] == "OperationOutcome"
    missing = client.get(
        "/Patient/$match", params={"institution": "h1", "local_id": "nope"}, headers=ok
    )
    assert missing.status_code == 404
    bad = client.post("/Patient/$match", json={"clk": "***"}, headers=ok)
    assert bad.status_code == 400
