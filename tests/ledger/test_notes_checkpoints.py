"""Signed notes, checkpoints and cosignatures: C2SP examples, transparency-dev/formats
checkpoint vectors and the real Sigstore Rekor entries."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from healthmesh.ledger.checkpoint import (
    Checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from healthmesh.ledger.cosign import CosignatureSigner, CosignatureVerifier, verify_final_checkpoint
from healthmesh.ledger.hashing import leaf_hash
from healthmesh.ledger.note import (
    EcdsaVerifier,
    Ed25519Signer,
    NoteError,
    NoteVerificationError,
    ed25519_verifier_from_vkey,
    parse_note,
    verify_note,
)
from healthmesh.ledger.verify import ProofError, verify_inclusion

MV = Path("merkle_vectors")


def test_c2sp_signed_note_example_verifies(shared_data: Path) -> None:
    spec = (shared_data / MV / "C2SP_specs" / "signed-note.md").read_text()
    vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
    assert vkey in spec
    start = spec.index("This is an example message.")
    end = spec.index("```", start)
    note = spec[start:end]
    verifier = ed25519_verifier_from_vkey(vkey)
    parsed, names = verify_note(note, [verifier])
    assert names == ["example.com/foo"]
    assert parsed.text == "This is an example message.\n"
    tampered = note.replace("example message", "exemplary message")
    with pytest.raises(NoteVerificationError):
        verify_note(tampered, [verifier])


def test_checkpoint_unmarshal_vectors(shared_data: Path) -> None:
    cases = json.loads(
        (
            shared_data / MV / "transparency-dev_formats" / "checkpoint_unmarshal_vectors.json"
        ).read_text()
    )
    assert len(cases) == 12
    for case in cases:
        if case["wantErr"]:
            with pytest.raises(NoteError):
                parse_checkpoint(case["note_text"])
            continue
        cp = parse_checkpoint(case["note_text"])
        assert cp.origin == case["origin"]
        assert cp.size == case["size"]
        assert cp.root == case["hash_utf8"].encode()
        assert cp.rest == (case["rest"] or "")


def _rekor_keys(shared_data: Path) -> dict[str, bytes]:
    keys = {}
    for name in ("prod_trusted_root.json", "staging_trusted_root.json"):
        root = json.loads((shared_data / MV / "sigstore_rekor_real" / name).read_text())
        for tlog in root["tlogs"]:
            keys[tlog["logId"]["keyId"]] = base64.b64decode(tlog["publicKey"]["rawBytes"])
    return keys


def test_real_sigstore_rekor_entries(shared_data: Path) -> None:
    keys = _rekor_keys(shared_data)
    bundles = sorted((shared_data / MV / "sigstore_rekor_real").glob("*.sigstore"))
    assert len(bundles) == 3
    checked = 0
    for path in bundles:
        for entry in json.loads(path.read_text())["verificationMaterial"]["tlogEntries"]:
            proof = entry["inclusionProof"]
            body = base64.b64decode(entry["canonicalizedBody"])
            index, size = int(proof["logIndex"]), int(proof["treeSize"])
            hashes = [base64.b64decode(h) for h in proof["hashes"]]
            root = base64.b64decode(proof["rootHash"])
            verify_inclusion(index, size, leaf_hash(body), hashes, root)
            with pytest.raises(ProofError):
                verify_inclusion(index, size, leaf_hash(body + b" "), hashes, root)
            envelope = proof["checkpoint"]["envelope"]
            key_name = parse_note(envelope).signatures[0].name
            verifier = EcdsaVerifier(key_name, keys[entry["logId"]["keyId"]])
            cp, _, _ = open_checkpoint(envelope, verifier)
            assert (cp.size, cp.root) == (size, root)
            zero = base64.b64encode(b"\0" * 32).decode()
            with pytest.raises(NoteVerificationError):
                open_checkpoint(envelope.replace(proof["rootHash"], zero), verifier)
            checked += 1
    assert checked == 3


def test_checkpoint_cosignature_quorum() -> None:
    log = Ed25519Signer.generate("hub.example/ledger")
    w = [CosignatureSigner.generate(f"node{i}.example/witness") for i in range(3)]
    cp = Checkpoint("hub.example/ledger", 5, b"\x07" * 32)
    note = sign_checkpoint(cp, log)
    note.signatures.append(w[0].cosign(note.text))
    note.signatures.append(w[1].cosign(note.text))
    text = note.format()
    verifiers = [CosignatureVerifier.from_vkey(x.vkey()) for x in w]
    log_v = ed25519_verifier_from_vkey(log.vkey())
    got, names = verify_final_checkpoint(text, log_v, verifiers, quorum=2)
    assert got == cp
    assert sorted(names) == sorted([w[0].name, w[1].name])
    with pytest.raises(NoteVerificationError):
        verify_final_checkpoint(text, log_v, verifiers, quorum=3)
    forged = text.replace("\n5\n", "\n6\n")
    with pytest.raises(NoteVerificationError):
        verify_final_checkpoint(forged, log_v, verifiers, quorum=1)
    # A cosignature copied onto a different checkpoint fails.
    other = sign_checkpoint(Checkpoint("hub.example/ledger", 6, b"\x08" * 32), log)
    other.signatures.append(note.signatures[1])
    with pytest.raises(NoteVerificationError):
        verify_final_checkpoint(other.format(), log_v, verifiers, quorum=1)
