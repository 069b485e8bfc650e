"""End to end over real HTTP: a hub served by uvicorn, two nodes whose agents poll it with
HttpTransport (signed requests, signed answers), a researcher with an OAuth2 client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import InstitutionMetadata
from healthmesh.federation.transport import HttpTransport
from healthmesh.fhir.store import FhirStore
from healthmesh.hub.app import Hub, build_hub
from healthmesh.hub.serving import ServerThread, free_port
from healthmesh.hub.settings import HubSettings
from healthmesh.node.federated import FederatedNode, build_federated_node

from .data import resources, study


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Hub, str, list[FederatedNode]]]:
    port = free_port()
    hub = build_hub(HubSettings(data_dir=tmp_path / "hub", port=port, job_timeout=20))
    server = ServerThread(hub.app, "127.0.0.1", port).start()
    nodes = []
    for i, (inst, kind) in enumerate((("hosp-a", "hospital"), ("cdc-b", "cdc"))):
        ident = Identity.generate(inst)
        store = FhirStore(tmp_path / f"{inst}.sqlite")
        with store.writing() as tx:
            for r in resources(inst, 80, i):
                tx.update(r["resourceType"], r["id"], r)
        node = build_federated_node(
            identity=ident,
            store=store,
            transport=HttpTransport(ident, server.url, hub_key_id=hub.identity.key_id),
            metadata=InstitutionMetadata(name=inst, kind=kind),  # type: ignore[arg-type]
        )
        assert node.register() == "pending"
        hub.registry.approve(inst, "operator")
        node.start(wait_s=0.5)
        nodes.append(node)
    yield hub, server.url, nodes
    for node in nodes:
        node.stop()
        node.store.close()
    server.stop()
    hub.close()


def _token(url: str, client_id: str, secret: str, scope: str) -> str:
    r = httpx.post(
        url + "/auth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, secret),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _wait(fn: Any, timeout: float = 20.0) -> Any:
    done = threading.Event()
    for _ in range(int(timeout / 0.1)):
        value = fn()
        if value:
            return value
        done.wait(0.1)
    raise AssertionError("condition not reached")


def test_study_over_http(served: tuple[Hub, str, list[FederatedNode]]) -> None:
    hub, url, nodes = served
    creds = hub.add_researcher("dr-li")
    assert creds.client_secret is not None
    scope = "system/Study.c system/Study.rs system/Catalog.rs"
    auth = {"Authorization": "Bearer " + _token(url, creds.client_id, creds.client_secret, scope)}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
        # the catalog the nodes published on start is searchable
        found = _wait(lambda: client.get("/catalog", params={"code": "I10"}).json())
        assert {e["institution"] for e in found} <= {"hosp-a", "cdc-b"}
        cdcs = client.get("/catalog", params={"kind": "cdc"}).json()
        assert all(e["institution"] == "cdc-b" for e in cdcs)
        r = client.post("/studies", json=study(["hosp-a", "cdc-b"]))
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        _wait(lambda: all(d["state"] == "approved"
                          for d in client.get(f"/studies/{sid}").json()["decisions"]))
        # the regression needs each node's operator; until then nothing runs it
        refused = client.post(f"/studies/{sid}/run", json={"computations": ["model"]})
        assert refused.status_code == 403
        for node in nodes:
            node.agent.publish_decision(node.studies.approve(sid, ["model"]))
        ran = client.post(f"/studies/{sid}/run", json={"computations": ["n", "model"]})
        assert ran.status_code == 200, ran.text
        jobs = ran.json()["jobs"]
        assert [j["status"] for j in jobs] == ["done", "done"]
        assert jobs[0]["result"]["n"] == sum(jobs[0]["result"]["by_node"].values())
        got = client.get(f"/studies/{sid}/results").json()["jobs"]
        assert [j["job_id"] for j in got] == [j["job_id"] for j in jobs]

        # another researcher sees none of it; a token without the scope cannot submit
        other = hub.add_researcher("dr-wang", "system/Study.rs")
        assert other.client_secret is not None
        tok = _token(url, other.client_id, other.client_secret, "system/Study.rs")
        h2 = {"Authorization": "Bearer " + tok}
        assert httpx.get(f"{url}/studies/{sid}", headers=h2).status_code == 403
        assert httpx.post(f"{url}/studies", json=study(["hosp-a"]), headers=h2).status_code == 403
        assert httpx.get(f"{url}/studies/{sid}").status_code == 401
    # the ledger is served too
    assert httpx.get(url + "/ledger/checkpoint").status_code == 200
