"""Every data access at a node is provable later: AuditEvents anchored in the hub ledger."""

from __future__ import annotations

import warnings
from pathlib import Path

from fastapi import FastAPI

from healthmesh.ledger.api import create_router
from healthmesh.ledger.client import LedgerClient, audit_digest
from healthmesh.ledger.note import Ed25519Signer
from healthmesh.ledger.service import LedgerService
from healthmesh.ledger.store import SqlStore
from healthmesh.node.app import build_node
from healthmesh.node.ledger_feed import audit_feed
from healthmesh.node.settings import NodeSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_node_audit_events_are_anchored_once(tmp_path: Path) -> None:
    node = build_node(NodeSettings(data_dir=tmp_path / "node", institution="hosp-a"))
    creds = node.clients.add("reader", "system/*.cruds")
    h = {"Authorization": f"Bearer {node.issue_token(creds.client_id)}"}
    with TestClient(node.app) as nc:
        pid = nc.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=h).json()["id"]
        for _ in range(3):
            nc.get(f"/fhir/Patient/{pid}", headers=h)
    node.audit.flush()
    feed = audit_feed(node.store)
    events, cursor = feed(None, 100)
    assert len(events) == 4 and cursor is not None

    svc = LedgerService(SqlStore(tmp_path / "hub.db"), Ed25519Signer.generate("hub.test/log"))
    req_key = Ed25519Signer.generate("hosp-a.test/requests")
    svc.register_key("hosp-a", "request-signing", req_key.vkey())
    hub = FastAPI()
    hub.include_router(create_router(svc), prefix="/ledger")
    client = LedgerClient("http://testserver", "hosp-a", req_key, http=TestClient(hub))
    indexes, new_cursor = client.anchor_audit_events(feed, None, page_size=2)
    assert len(indexes) == 2 and new_cursor == cursor
    entry = client.entry(indexes[0])
    assert audit_digest(events[:2]) in str(entry)
    # nothing new: nothing appended
    again, same = client.anchor_audit_events(feed, new_cursor)
    assert again == [] and same == new_cursor
    svc.close()
    node.close()
