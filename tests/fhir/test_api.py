"""The FHIR REST API over HTTP: interactions, errors as OperationOutcomes, and security."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthmesh.node.app import Node, build_node
from healthmesh.node.settings import NodeSettings

BASE = "http://testserver"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = build_node(NodeSettings(data_dir=tmp_path, public_url=BASE, audit_flush_interval=0.05))
    yield n
    n.close()


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(node.app) as c:
        yield c


def token(client: TestClient, node: Node, scopes: str) -> dict[str, str]:
    creds = node.clients.add(f"test-{uuid.uuid4().hex[:8]}", scopes)
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
    r = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": scopes},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


PATIENT = {
    "resourceType": "Patient",
    "name": [{"family": "Zhang", "given": ["Wei"]}],
    "gender": "male",
    "birthDate": "1980-05-01",
}


def _seed(client: TestClient, h: dict[str, str]) -> tuple[str, str]:
    r = client.post("/fhir/Patient", json=PATIENT, headers=h)
    assert r.status_code == 201
    pid = r.json()["id"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2024-03-01T10:00:00Z",
        "valueQuantity": {"value": 38.6, "system": "http://unitsofmeasure.org", "code": "Cel"},
    }
    r = client.post("/fhir/Observation", json=obs, headers=h)
    assert r.status_code == 201
    return pid, r.json()["id"]


def _oo(r: Any) -> dict[str, Any]:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body


def test_crud_over_http(client: TestClient, node: Node) -> None:
    h = token(client, node, "system/*.cruds")
    r = client.post("/fhir/Patient", json=PATIENT, headers=h)
    assert r.status_code == 201 and r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].startswith(f"{BASE}/fhir/Patient/")
    pid = r.json()["id"]
    r = client.get(f"/fhir/Patient/{pid}", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    r = client.put(
        f"/fhir/Patient/{pid}",
        json={**PATIENT, "id": pid, "gender": "female"},
        headers={**h, "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
    r = client.put(
        f"/fhir/Patient/{pid}", json={**PATIENT, "id": pid}, headers={**h, "If-Match": 'W/"1"'}
    )
    assert r.status_code == 412 and _oo(r)
    r = client.patch(
        f"/fhir/Patient/{pid}",
        content=b'[{"op":"replace","path":"/gender","value":"male"}]',
        headers={**h, "Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200 and r.json()["gender"] == "male"
    r = client.get(f"/fhir/Patient/{pid}/_history/1", headers=h)
    assert r.json()["gender"] == "male" and r.json()["meta"]["versionId"] == "1"
    assert client.delete(f"/fhir/Patient/{pid}", headers=h).status_code == 204
    assert client.get(f"/fhir/Patient/{pid}", headers=h).status_code == 410
    hist = client.get(f"/fhir/Patient/{pid}/_history", headers=h).json()
    assert hist["type"] == "history" and hist["total"] == 4
    assert hist["entry"][0]["request"]["method"] == "DELETE"


def test_conditional_create_header(client: TestClient, node: Node) -> None:
    h = token(client, node, "system/*.cruds")
    body = {**PATIENT, "identifier": [{"system": "urn:mrn", "value": "77"}]}
    hdr = {**h, "If-None-Exist": "identifier=urn:mrn|77"}
    assert client.post("/fhir/Patient", json=body, headers=hdr).status_code == 201
    assert client.post("/fhir/Patient", json=body, headers=hdr).status_code == 200
    assert node.store.count("Patient") == 1


def test_search_paging_links(client: TestClient, node: Node) -> None:
    h = token(client, node, "system/*.cruds")
    for i in range(7):
        client.post("/fhir/Patient", json={**PATIENT, "name": [{"family": f"Li{i}"}]}, headers=h)
    r = client.get("/fhir/Patient?_count=3&_total=accurate", headers=h)
    page = r.json()
    assert page["total"] == 7 and len(page["entry"]) == 3
    seen = [e["resource"]["id"] for e in page["entry"]]
    links = {link["relation"]: link["url"] for link in page["link"]}
    # data changes between pages: a new patient must not shift what comes next
    client.post("/fhir/Patient", json=PATIENT, headers=h)
    while "next" in links:
        page = client.get(links["next"].replace(BASE, ""), headers=h).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
        links = {link["relation"]: link["url"] for link in page["link"]}
    assert len(seen) == len(set(seen)) == 8
    assert "previous" in links


def test_unknown_param_warns_and_strict_fails(client: TestClient, node: Node) -> None:
    h = token(client, node, "system/*.cruds")
    r = client.get("/fhir/Patient?foo=bar", headers=h)
    assert r.status_code == 200
    outcomes = [e for e in r.json().get("entry", []) if e["search"]["mode"] == "outcome"]
    assert outcomes and "foo" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    r = client.get("/fhir/Patient?foo=bar", headers={**h, "Prefer": "handling=strict"})
    assert r.status_code == 400 and _oo(r)


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        (b"{not json", 400, None),
        (b'{"resourceType": "Spaceship"}', 400, None),
        (b'{"resourceType": "Patient", "colour": "blue"}', 422, "Patient.colour"),
        (b'{"resourceType": "Patient", "birthDate": "1980-02-31x"}', 422, "Patient.birthDate"),
        (b'{"resourceType": "Patient", "gender": ["male"]}', 422, "Patient.gender"),
        (
            b'{"resourceType": "Patient", "managingOrganization": {"reference": "Patient/1"}}',
            422,
            "Patient.managingOrganization",
        ),
    ],
)
def test_bad_input_is_an_operation_outcome(
    client: TestClient, node: Node, body: bytes, status: int, where: str | None
) -> None:
    h = token(client, node, "system/*.cruds")
    r = client.post(
        "/fhir/Patient", content=body, headers={**h, "Content-Type": "application/fhir+json"}
    )
    assert r.status_code == status, r.text
    oo = _oo(r)
    if where:
        assert any(where in x for i in oo["issue"] for x in i.get("expression", []))
    assert node.store.count() == node.store.count("AuditEvent")


def test_oversized_body(client: TestClient, node: Node) -> None:
    node_api_max = 64 * 1024 * 1024
    h = token(client, node, "system/*.cruds")
    r = client.post(
        "/fhir/Patient",
        content=b" " * 10,
        headers={
            **h,
            "Content-Length": str(node_api_max + 1),
            "Content-Type": "application/fhir+json",
        },
    )
    assert r.status_code == 413 and _oo(r)


def test_tokens_are_required_and_checked(client: TestClient, node: Node) -> None:
    assert client.get("/fhir/metadata").json()["fhirVersion"] == "4.0.1"
    r = client.get("/fhir/Patient")
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"] and _oo(r)
    r = client.get("/fhir/Patient", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401
    h = token(client, node, "system/Patient.rs")
    header, payload, sig = h["Authorization"].split(" ")[1].split(".")
    forged = f"{header}.{payload}.{sig[:-4]}AAAA"
    assert (
        client.get("/fhir/Patient", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )
    from healthmesh.access.scopes import ScopeSet
    from healthmesh.access.tokens import TokenService

    past = TokenService(
        node.tokens.key,
        issuer=node.tokens.issuer,
        audience=node.tokens.audience,
        clock=lambda: time.time() - 3600,
    )
    cid = node.clients.list()[0].client_id
    expired, _ = past.issue(cid, ScopeSet.parse("system/Patient.rs"))
    assert (
        client.get("/fhir/Patient", headers={"Authorization": f"Bearer {expired}"}).status_code
        == 401
    )


def test_scopes_never_leak_other_types(client: TestClient, node: Node) -> None:
    admin = token(client, node, "system/*.cruds")
    pid, _ = _seed(client, admin)
    h = token(client, node, "system/Patient.rs")
    assert client.get(f"/fhir/Patient/{pid}", headers=h).status_code == 200
    assert client.get("/fhir/Observation", headers=h).status_code == 403
    assert client.post("/fhir/Patient", json=PATIENT, headers=h).status_code == 403
    # _revinclude of a type outside the scopes
    r = client.get("/fhir/Patient?_revinclude=Observation:subject", headers=h)
    assert r.status_code == 403 or all(
        e["resource"]["resourceType"] == "Patient" for e in r.json().get("entry", [])
    )
    # reverse chaining into a type outside the scopes
    r = client.get("/fhir/Patient?_has:Observation:subject:code=8310-5", headers=h)
    assert r.status_code == 403
    # $everything only returns what the token may read
    r = client.get(f"/fhir/Patient/{pid}/$everything", headers=h)
    assert r.status_code == 200
    assert {e["resource"]["resourceType"] for e in r.json()["entry"]} == {"Patient"}
    # _include from an allowed type into a forbidden one
    obs_reader = token(client, node, "system/Observation.rs")
    r = client.get("/fhir/Observation?_include=Observation:subject", headers=obs_reader)
    assert {e["resource"]["resourceType"] for e in r.json()["entry"]} == {"Observation"}
    # system search across types filters to permitted types
    r = client.get("/fhir/?_type=Observation", headers=h)
    assert r.status_code == 403


def test_every_data_request_is_audited(client: TestClient, node: Node) -> None:
    h = token(client, node, "system/*.cruds")
    pid, _ = _seed(client, h)
    client.get(f"/fhir/Patient/{pid}", headers={**h, "X-Purpose-Of-Use": "TREAT"})
    node.audit.flush()
    r = client.get("/fhir/AuditEvent?_count=100&_total=accurate", headers=h)
    events = [e["resource"] for e in r.json()["entry"]]
    reads = [e for e in events if e["subtype"][0]["code"] == "read"]
    assert reads and reads[0]["entity"][0]["what"]["reference"] == f"Patient/{pid}"
    assert any(
        c.get("code") == "TREAT"
        for e in reads
        for p in e["agent"][0].get("purposeOfUse", [])
        for c in p.get("coding", [])
    )
    assert "Zhang" not in r.text  # no patient data in audit events


def test_bulk_export_async(client: TestClient, node: Node) -> None:
    h = token(client, node, "system/*.rs system/*.cruds")
    _seed(client, h)
    assert client.get("/fhir/$export", headers=h).status_code == 400  # no respond-async
    r = client.get(
        "/fhir/$export?_type=Patient,Observation", headers={**h, "Prefer": "respond-async"}
    )
    assert r.status_code == 202
    status_url = r.headers["content-location"].replace(BASE, "")
    for _ in range(100):
        s = client.get(status_url, headers=h)
        if s.status_code == 200:
            break
        assert s.status_code == 202 and "x-progress" in s.headers
        time.sleep(0.05)
    manifest = s.json()
    assert manifest["requiresAccessToken"] is True
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {"Patient": 1, "Observation": 1}
    out = client.get(manifest["output"][0]["url"].replace(BASE, ""), headers=h)
    assert out.status_code == 200 and out.text.count("\n") == 1
    # another client cannot see the job; the owner can cancel it
    other = token(client, node, "system/Patient.rs")
    assert client.get(status_url, headers=other).status_code == 404
    assert client.delete(status_url, headers=h).status_code == 202
    # a token without Observation rights cannot export it
    r = client.get("/fhir/$export?_type=Observation", headers={**other, "Prefer": "respond-async"})
    assert r.status_code == 403


def test_transaction_over_http(client: TestClient, node: Node) -> None:
    h = token(client, node, "system/*.cruds")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:a",
                "resource": PATIENT,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:b",
                "resource": {"resourceType": "Patient", "gender": "xx"},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    r = client.post("/fhir/", json=bundle, headers=h)
    assert r.status_code == 422 and _oo(r)
    assert node.store.count("Patient") == 0
    bundle["entry"].pop()
    r = client.post("/fhir/", json=bundle, headers=h)
    assert r.status_code == 200 and r.json()["type"] == "transaction-response"
    assert node.store.count("Patient") == 1


def test_post_search_summary_elements_tags_and_validate(client: TestClient, node: Node) -> None:
    h = token(client, node, "system/*.cruds")
    tagged = {**PATIENT, "meta": {"tag": [{"system": "urn:tags", "code": "vip"}]},
              "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}
    client.post("/fhir/Patient", json=tagged, headers=h)
    client.post("/fhir/Patient", json=PATIENT, headers=h)
    r = client.post("/fhir/Patient/_search", content=b"_tag=urn:tags|vip",
                    headers={**h, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and len(r.json()["entry"]) == 1
    r = client.get("/fhir/Patient?_tag=urn:tags|vip&_elements=gender", headers=h)
    res = r.json()["entry"][0]["resource"]
    assert set(res) == {"resourceType", "id", "meta", "gender"}
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "SUBSETTED"} in res["meta"]["tag"]
    r = client.get("/fhir/Patient?_tag=urn:tags|vip&_summary=true", headers=h)
    res = r.json()["entry"][0]["resource"]
    assert "text" not in res and res["gender"] == "male" and "name" in res
    r = client.get("/fhir/Patient?_tag=urn:tags|vip&_summary=data", headers=h)
    assert "text" not in r.json()["entry"][0]["resource"]
    r = client.get("/fhir/Patient?_summary=count", headers=h)
    assert r.json()["total"] == 2 and "entry" not in r.json()
    ok = client.post("/fhir/Patient/$validate", json=PATIENT, headers=h)
    assert ok.status_code == 200 and ok.json()["issue"][0]["severity"] == "information"
    bad = client.post("/fhir/Patient/$validate", json={**PATIENT, "gender": "x"}, headers=h)
    assert bad.status_code == 422 and bad.json()["issue"][0]["expression"] == ["Patient.gender"]
    assert node.store.count("Patient") == 2  # $validate writes nothing


def test_capability_statement_tells_the_truth(client: TestClient, node: Node) -> None:
    cs = client.get("/fhir/metadata").json()
    rest = cs["rest"][0]
    types = {r["type"] for r in rest["resource"]}
    assert types == set(node.store.resource_types)
    obs = next(r for r in rest["resource"] if r["type"] == "Observation")
    params = {p["name"]: p["type"] for p in obs["searchParam"]}
    for name, ptype in params.items():
        assert node.store.registry.get("Observation", name) is not None
        assert node.store.params.pid("Observation", name) is not None, name
    assert params["code"] == "token" and params["code-value-quantity"] == "composite"
    token_url = rest["security"]["extension"][0]["extension"][0]["valueUri"]
    assert token_url.endswith("/auth/token")


def test_no_patient_data_in_logs(client: TestClient, node: Node, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    h = token(client, node, "system/*.cruds")
    secret_name = "Xiuying-Unique-Name"
    client.post("/fhir/Patient", json={**PATIENT, "name": [{"family": secret_name}]}, headers=h)
    client.get(f"/fhir/Patient?family={secret_name}", headers=h)
    client.post("/fhir/Patient", json={**PATIENT, "name": [{"family": secret_name}], "gender": "bad"},
                headers=h)
    client.get(f"/fhir/Patient?family:exact={secret_name}&foo={secret_name}", headers=h)
    node.audit.flush()
    server = [r for r in caplog.records if not r.name.startswith("httpx")]  # httpx: the client
    assert any(r.name == "healthmesh.node.app" for r in server), "expected the access log"
    assert not [r.getMessage() for r in server if secret_name in r.getMessage()]


def test_query_restricted_scope_is_enforced_everywhere(client: TestClient, node: Node) -> None:
    admin = token(client, node, "system/*.cruds")
    pid = client.post("/fhir/Patient", json=PATIENT, headers=admin).json()["id"]
    made = {}
    for cat in ("laboratory", "vital-signs"):
        obs = {"resourceType": "Observation", "status": "final",
               "category": [{"coding": [{
                   "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                   "code": cat}]}],
               "code": {"text": cat}, "subject": {"reference": f"Patient/{pid}"}}
        made[cat] = client.post("/fhir/Observation", json=obs, headers=admin).json()["id"]
    h = token(client, node, "system/Observation.rs?category=laboratory system/Patient.rs")
    assert client.get(f"/fhir/Observation/{made['laboratory']}", headers=h).status_code == 200
    assert client.get(f"/fhir/Observation/{made['vital-signs']}", headers=h).status_code == 403
    r = client.get("/fhir/Observation", headers=h)
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [made["laboratory"]]
    r = client.get(f"/fhir/Patient?_id={pid}&_revinclude=Observation:subject", headers=h)
    included = {e["resource"]["id"] for e in r.json()["entry"] if e["search"]["mode"] == "include"}
    assert included == {made["laboratory"]}
    r = client.get(f"/fhir/Patient/{pid}/$everything", headers=h)
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {pid, made["laboratory"]}
    assert client.get("/fhir/Observation/_history", headers=h).status_code == 403
    r = client.get("/fhir/Patient?_has:Observation:subject:code:text=vital", headers=h)
    assert r.status_code == 403
    r = client.get("/fhir/$export?_type=Observation", headers={**h, "Prefer": "respond-async"})
    status_url = r.headers["content-location"].replace(BASE, "")
    for _ in range(100):
        s = client.get(status_url, headers=h)
        if s.status_code == 200:
            break
        time.sleep(0.05)
    assert [o["count"] for o in s.json()["output"]] == [1]


def test_update_as_create_needs_create_permission(client: TestClient, node: Node) -> None:
    h = token(client, node, "system/Patient.ru")
    r = client.put("/fhir/Patient/new-one", json={**PATIENT, "id": "new-one"}, headers=h)
    assert r.status_code == 403 and _oo(r)
    assert node.store.count("Patient") == 0
    admin = token(client, node, "system/*.cruds")
    client.put("/fhir/Patient/new-one", json={**PATIENT, "id": "new-one"}, headers=admin)
    r = client.put("/fhir/Patient/new-one", json={**PATIENT, "id": "new-one", "gender": "female"},
                   headers=h)
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
