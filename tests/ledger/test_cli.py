"""``healthmesh ledger`` commands: keygen, register-key, prove, export and offline verify."""

from __future__ import annotations

import json
from pathlib import Path

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
