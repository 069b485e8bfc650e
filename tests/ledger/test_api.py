"""The hub ledger API through Starlette's TestClient and a real uvicorn server, driven by
the node-side LedgerClient (signed appends, AuditEvent anchoring, witnesses, bundles)."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from fastapi import FastAPI

from healthmesh.cli import main
from healthmesh.hub.serving import free_port
from healthmesh.ledger.api import create_router
from healthmesh.ledger.auth import RequestSigner
from healthmesh.ledger.bundle import Trust, verify_bundle
from healthmesh.ledger.client import (
    LedgerClient,
    LedgerClientError,
    audit_event_proof,
)
from healthmesh.ledger.cosign import CosignatureSigner, CosignatureVerifier
from healthmesh.ledger.entries import make_event, sha256_digest
from healthmesh.ledger.hashing import leaf_hash
from healthmesh.ledger.keys import save_key
from healthmesh.ledger.note import Ed25519Signer, ed25519_verifier_from_vkey
from healthmesh.ledger.service import LedgerService
from healthmesh.ledger.store import SqlStore
from healthmesh.ledger.verify import verify_inclusion
from healthmesh.ledger.witness import Witness

with warnings.catch_warnings():
    # Starlette >= 1.x nudges towards httpx2; with plain httpx its TestClient still works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ORIGIN = "hub.test/ledger"
NODES = ("hosp-a", "hosp-b", "cdc-c")


def _audit_events(n: int) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "AuditEvent",
            "id": f"ae-{i}",
            "recorded": f"2026-11-28T10:{i // 60 % 60:02d}:{i % 60:02d}+08:00",
            "type": {"code": "rest"},
            "agent": [{"who": {"reference": "Practitioner/p1"}, "requestor": True}],
            "entity": [{"what": {"reference": f"Patient/pt-{i % 7}"}}],
        }
        for i in range(n)
    ]


class Hub:
    def __init__(self, db: Path) -> None:
        self.key = Ed25519Signer.generate(ORIGIN)
        self.svc = LedgerService(SqlStore(db), self.key, quorum=2)
        self.req_keys = {n: Ed25519Signer.generate(f"{n}.test/requests") for n in NODES}
        self.wit_keys = {n: CosignatureSigner.generate(f"{n}.test/witness") for n in NODES}
        for n in NODES:
            self.svc.register_key(n, "request-signing", self.req_keys[n].vkey())
            self.svc.register_key(n, "witness", self.wit_keys[n].vkey())
        self.log_verifier = ed25519_verifier_from_vkey(self.key.vkey())
        self.witnesses = {n: Witness(self.wit_keys[n], {ORIGIN: self.log_verifier}) for n in NODES}
        app = FastAPI()
        app.include_router(create_router(self.svc), prefix="/ledger")
        self.app = app

    def trust(self, quorum: int = 2) -> Trust:
        ws = tuple(CosignatureVerifier.from_vkey(k.vkey()) for k in self.wit_keys.values())
        return Trust(self.log_verifier, ws, quorum, ORIGIN)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.svc.close()


def _client(hub: Hub, http: Any, node: str = "hosp-a") -> LedgerClient:
    return LedgerClient("http://testserver", node, hub.req_keys[node], http=http)


def test_signed_append_and_refusals(hub: Hub) -> None:
    tc = TestClient(hub.app)
    client = _client(hub, tc)
    body = {
        "institution": "hosp-a",
        "batch_digest": sha256_digest(b"b"),
        "record_count": 3,
        "source_format": "csv",
    }
    ev = make_event("ingestion_batch", "hosp-a", body)
    first = client.append([ev])
    assert first == [6]  # six key registrations came first
    # Another institution's name as actor is refused.
    with pytest.raises(LedgerClientError) as err:
        client.append([make_event("ingestion_batch", "hosp-b", body)])
    assert err.value.status == 403
    # A clear resident ID number is refused and not echoed back.
    bad = dict(ev, body=dict(body, institution="11010519491231002X"))
    with pytest.raises(LedgerClientError) as err:
        client.append([bad])
    assert err.value.status == 400
    assert "11010519491231002X" not in err.value.message
    # Unsigned, replayed, stale and foreign-key requests are refused.
    raw = b'{"entries": []}'
    assert tc.post("/ledger/entries", content=raw).status_code == 401
    headers = RequestSigner("hosp-a", hub.req_keys["hosp-a"]).headers(
        "POST", "/ledger/entries", raw
    )
    assert tc.post("/ledger/entries", content=raw, headers=headers).status_code == 400
    assert tc.post("/ledger/entries", content=raw, headers=headers).status_code == 401
    stale = RequestSigner("hosp-a", hub.req_keys["hosp-a"]).headers(
        "POST", "/ledger/entries", raw, now=int(time.time()) - 3600
    )
    assert tc.post("/ledger/entries", content=raw, headers=stale).status_code == 401
    impostor = RequestSigner("hosp-a", hub.req_keys["hosp-b"]).headers(
        "POST", "/ledger/entries", raw
    )
    assert tc.post("/ledger/entries", content=raw, headers=impostor).status_code == 401
    assert tc.get("/ledger/entries/999").status_code == 404


def test_anchor_witness_and_offline_bundle(hub: Hub) -> None:
    tc = TestClient(hub.app)
    client = _client(hub, tc)
    source = _audit_events(250)

    def fetch(after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        start = int(after) if after else 0
        page = source[start : start + limit]
        return page, str(start + len(page)) if page else after

    idx, cursor = client.anchor_audit_events(fetch, None, page_size=100)
    assert len(idx) == 3
    assert cursor == "250"
    assert client.anchor_audit_events(fetch, cursor) == ([], "250")
    # Every node's witness cosigns; quorum 2 of 3 makes it final.
    results = [_client(hub, tc, n).witness_round(hub.witnesses[n]) for n in NODES]
    assert results[-1] is not None
    assert results[-1]["final"]
    # The regulator's offline check of AuditEvent #150: bundle + path inside the page.
    bundle = client.bundle(idx[1])
    summary = verify_bundle(bundle, hub.trust())
    assert len(summary["cosigners"]) == 3
    page = source[100:200]
    digest = bytes.fromhex(summary["entry"]["body"]["audit_digest"].removeprefix("sha256:"))
    from healthmesh.ledger.client import canonical_audit_events

    leaf = leaf_hash(canonical_audit_events(page)[50])
    verify_inclusion(50, len(page), leaf, audit_event_proof(page, 50), digest)
    # Proof endpoints agree with the checkpoint.
    size = summary["size"]
    proof = client.inclusion_proof(idx[0], size)
    entry = client.entry(idx[0])
    root = hub.svc.log.root(size)
    import base64

    verify_inclusion(idx[0], size, base64.b64decode(entry["leaf_hash"]), proof, root)
    assert client.consistency_proof(size - 1, size)
    assert tc.get("/ledger/proof/consistency", params={"old": 5, "new": 10**6}).status_code == 400


def test_real_uvicorn_server(hub: Hub, tmp_path: Path) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(hub.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        assert server.started
        client = LedgerClient(f"http://127.0.0.1:{port}", "cdc-c", hub.req_keys["cdc-c"])
        ev = make_event(
            "data_share",
            "cdc-c",
            {
                "from_institution": "cdc-c",
                "to_institution": "hosp-a",
                "dataset_digest": sha256_digest(b"d"),
                "purpose": "outbreak-response",
            },
        )
        (index,) = client.append([ev])
        for n in NODES[:2]:
            w = LedgerClient(f"http://127.0.0.1:{port}", n, hub.req_keys[n])
            w.witness_round(hub.witnesses[n])
        summary = verify_bundle(client.bundle(index), hub.trust(quorum=2))
        assert summary["entry"]["type"] == "data_share"
        # The third node runs its witness round from the command line.
        keydir = tmp_path / "cdc-c"
        keydir.mkdir()
        save_key(keydir / "req.key", "request", hub.req_keys["cdc-c"])
        save_key(keydir / "w.key", "witness", hub.wit_keys["cdc-c"])
        args = [
            "ledger",
            "witness",
            "--url",
            f"http://127.0.0.1:{port}",
            "--institution",
            "cdc-c",
            "--request-key",
            str(keydir / "req.key"),
            "--witness-key",
            str(keydir / "w.key"),
            "--log-key",
            hub.key.vkey(),
            "--state-db",
            str(keydir / "witness.db"),
        ]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        assert '"final": true' in res.output
        assert CliRunner().invoke(main, args).output.strip() == "nothing new"
        summary = verify_bundle(client.bundle(index), hub.trust(quorum=3))
        assert len(summary["cosigners"]) == 3
        client.http.close()
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_key_rotation_is_logged_and_enforced(hub: Hub) -> None:
    tc = TestClient(hub.app)
    old_key = hub.req_keys["hosp-b"]
    new_key = Ed25519Signer.generate("hosp-b.test/requests-2026")
    index = hub.svc.rotate_key("hosp-b", "request-signing", old_key.vkey(), new_key.vkey())
    entry = _client(hub, tc, "hosp-b").entry(index)["entry"]
    assert entry["type"] == "key_rotation"
    assert entry["body"]["vkey"] == new_key.vkey()
    ev = make_event(
        "ingestion_batch",
        "hosp-b",
        {
            "institution": "hosp-b",
            "batch_digest": sha256_digest(b"z"),
            "record_count": 1,
            "source_format": "fhir",
        },
    )
    with pytest.raises(LedgerClientError) as err:
        LedgerClient("http://testserver", "hosp-b", old_key, http=tc).append([ev])
    assert err.value.status == 401
    assert LedgerClient("http://testserver", "hosp-b", new_key, http=tc).append([ev])
