"""Real FHIR client libraries (fhirpy, the SMART fhirclient) against a running node."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from healthmesh.hub.serving import free_port
from healthmesh.node.app import Node, build_node
from healthmesh.node.settings import NodeSettings
from healthmesh.synth.sample import sample_bundle


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, str]]:
    port = free_port()
    node = build_node(NodeSettings(data_dir=tmp_path_factory.mktemp("node"), port=port))
    from healthmesh.fhir.bundles import BundleProcessor

    BundleProcessor(node.store, lambda _t, _i: None, lambda _u: {}).process(sample_bundle(30))
    server = uvicorn.Server(uvicorn.Config(node.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    creds = node.clients.add("clients-test", "system/*.rs")
    r = httpx.post(node.token_url, data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                   auth=(creds.client_id, creds.client_secret or ""))
    assert r.status_code == 200
    yield node, r.json()["access_token"]
    server.should_exit = True
    thread.join(timeout=10)
    node.close()


def test_fhirpy_reads_searches_and_pages(running: tuple[Node, str]) -> None:
    from fhirpy import SyncFHIRClient

    node, token = running
    client = SyncFHIRClient(node.fhir_base, authorization=f"Bearer {token}")
    patients = client.resources("Patient").limit(7).fetch_all()
    assert len(patients) == node.store.count("Patient") == 30
    first = patients[0]
    again = client.reference("Patient", first["id"]).to_resource()
    assert again["id"] == first["id"]
    fevers = client.resources("Observation").search(code="8310-5", value_quantity="ge38").fetch_all()
    assert all(o["valueQuantity"]["value"] >= 38 for o in fevers)
    count = client.resources("Condition").count()
    assert count == node.store.count("Condition")


def test_smart_fhirclient_reads_and_searches(running: tuple[Node, str]) -> None:
    from fhirclient import client as smart
    from fhirclient.models.patient import Patient

    node, token = running
    settings = {"app_id": "healthmesh-test", "api_base": node.fhir_base}
    fc = smart.FHIRClient(settings=settings)
    fc.server.session.headers["Authorization"] = f"Bearer {token}"
    bundle = next(iter(Patient.where(struct={"gender": "female"}).perform_iter(fc.server)))
    assert bundle.entry, "expected female patients"
    pid = bundle.entry[0].resource.id
    patient = Patient.read(pid, fc.server)
    assert patient.gender == "female"
