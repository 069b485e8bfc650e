"""``healthmesh ledger`` commands: keygen, register-key, prove, export and offline verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from healthmesh.cli import main
from healthmesh.ledger.entries import make_event, sha256_digest
from healthmesh.ledger.keys import load_cosigner, load_signer
from healthmesh.ledger.note import ed25519_verifier_from_vkey
from healthmesh.ledger.service import LedgerService
from healthmesh.ledger.witness import Witness


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["ledger", *args])
    return res.exit_code, res.output


def test_prove_and_verify_offline(tmp_path: Path) -> None:
    db = str(tmp_path / "hub.db")
    keys = {}
    for kind, name in (
        ("log", "hub.test/ledger"),
        ("witness", "hosp-a.test/witness"),
        ("witness", "hosp-b.test/witness"),
    ):
        path = tmp_path / f"{name.split('/')[0]}-{kind}.key"
        code, out = _run("keygen", "--kind", kind, "--name", name, "--out", str(path))
        assert code == 0, out
        keys[name] = (path, out.strip())
        assert (path.stat().st_mode & 0o777) == 0o600
    log_key, log_vkey = keys["hub.test/ledger"]
    for inst in ("hosp-a", "hosp-b"):
        code, out = _run(
            "register-key",
            "--db",
            db,
            "--log-key",
            str(log_key),
            "--institution",
            inst,
            "--purpose",
            "witness",
            "--vkey",
            keys[f"{inst}.test/witness"][1],
        )
        assert code == 0, out
    svc = LedgerService.open(db, load_signer(log_key), quorum=2)
    ev = make_event(
        "study_approval",
        "hub",
        {
            "study_id": "st-1",
            "approver": "irb-1",
            "decision": "approved",
            "protocol_digest": sha256_digest(b"p"),
        },
    )
    (index,) = svc.log.append_events([ev])
    size, note = svc.log.publish_checkpoint()
    verifier = ed25519_verifier_from_vkey(log_vkey)
    for inst in ("hosp-a", "hosp-b"):
        w = Witness(load_cosigner(keys[f"{inst}.test/witness"][0]), {"hub.test/ledger": verifier})
        svc.log.add_cosignature(size, w.add_checkpoint(0, [], note).line())
    svc.close()

    proof = tmp_path / "proof.json"
    code, out = _run(
        "prove", "--db", db, "--log-key", str(log_key), "--index", str(index), "--out", str(proof)
    )
    assert code == 0, out
    export = tmp_path / "export.json"
    assert _run("export", "--db", db, "--log-key", str(log_key), "--out", str(export))[0] == 0
    wkeys = [
        "--witness-key",
        keys["hosp-a.test/witness"][1],
        "--witness-key",
        keys["hosp-b.test/witness"][1],
    ]
    code, out = _run(
        "verify", str(proof), str(export), "--log-key", log_vkey, *wkeys, "--quorum", "2"
    )
    assert code == 0, out
    assert out.count("OK ") == 2
    # Tampered proof and export are refused with exit status 1.
    doc = json.loads(proof.read_text())
    doc["entry"] = doc["entry"].replace("approved", "rejected")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    exp = json.loads(export.read_text())
    exp["entries"].pop(0)
    bad_export = tmp_path / "bad_export.json"
    bad_export.write_text(json.dumps(exp))
    code, out = _run("verify", str(bad), str(bad_export), "--log-key", log_vkey, *wkeys)
    assert code == 1
    assert out.count("FAIL") == 2
    # Quorum of three cannot be met with two cosignatures.
    code, out = _run("verify", str(proof), "--log-key", log_vkey, *wkeys, "--quorum", "3")
    assert code == 1


@pytest.mark.slow  # `python -m healthmesh` imports every sub-command: ~30 s on a busy machine
def test_serve_command_answers(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys
    import time

    import httpx

    key = tmp_path / "log.key"
    assert _run("keygen", "--kind", "log", "--name", "hub.test/ledger", "--out", str(key))[0] == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "healthmesh",
            "ledger",
            "serve",
            "--db",
            str(tmp_path / "h.db"),
            "--log-key",
            str(key),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/ledger/checkpoint", timeout=2)
                break
            except httpx.TransportError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert resp.status_code == 200
        assert resp.text.startswith("hub.test/ledger\n0\n")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
