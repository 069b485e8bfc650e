"""Witnesses cosign only consistent checkpoints; a forking hub is caught."""

from __future__ import annotations

import pytest

from healthmesh.ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from healthmesh.ledger.cosign import CosignatureSigner, CosignatureVerifier, verify_final_checkpoint
from healthmesh.ledger.hashing import EMPTY_ROOT
from healthmesh.ledger.log import TransparencyLog
from healthmesh.ledger.note import Ed25519Signer, NoteVerificationError, ed25519_verifier_from_vkey
from healthmesh.ledger.store import MemoryStore
from healthmesh.ledger.witness import (
    Witness,
    WitnessError,
    detect_fork,
    format_add_checkpoint,
)

ORIGIN = "hub.test/ledger"


def _setup(n_witnesses: int = 3, quorum: int = 2):
    key = Ed25519Signer.generate(ORIGIN)
    signers = [CosignatureSigner.generate(f"node{i}.test/witness") for i in range(n_witnesses)]
    verifiers = [CosignatureVerifier.from_vkey(s.vkey()) for s in signers]
    log_v = ed25519_verifier_from_vkey(key.vkey())
    witnesses = [Witness(s, {ORIGIN: log_v}) for s in signers]
    return key, log_v, signers, verifiers, witnesses


def _witness_round(log: TransparencyLog, w: Witness) -> list[str]:
    """What a node's witness agent does: fetch checkpoint + proof from its last size, cosign."""
    size, note = log.publish_checkpoint()
    seen = w.state.get(ORIGIN)
    old = seen[0] if seen else 0
    proof = log.consistency_proof(old, size)
    line = w.handle_add_checkpoint(format_add_checkpoint(old, proof, note))
    return log.add_cosignature(size, line)


def test_honest_log_reaches_quorum_and_finality() -> None:
    key, log_v, _, verifiers, witnesses = _setup()
    log = TransparencyLog(MemoryStore(), key, witnesses=verifiers, quorum=2)
    log.append_raw([b"a", b"b", b"c"])
    assert _witness_round(log, witnesses[0]) == ["node0.test/witness"]
    assert not log.is_final(3)
    _witness_round(log, witnesses[1])
    assert log.is_final(3)
    assert not log.is_final(4)
    cp, names = verify_final_checkpoint(log.checkpoint()[1], log_v, verifiers, quorum=2)
    assert cp.size == 3
    assert len(names) == 2
    # The log grows; witnesses follow with consistency proofs.
    log.append_raw([b"d"] * 10)
    for w in witnesses:
        _witness_round(log, w)
    assert log.is_final(13)
    log.close()


def test_forking_hub_is_caught() -> None:
    key, log_v, _, verifiers, witnesses = _setup()
    view_a = TransparencyLog(MemoryStore(), key, witnesses=verifiers, quorum=2)
    view_b = TransparencyLog(MemoryStore(), key, witnesses=verifiers, quorum=2)
    view_a.append_raw([b"access-1", b"access-2", b"share-3"])
    view_b.append_raw([b"access-1", b"access-2", b"share-3"])
    for w in witnesses:
        _witness_round(view_a, w)
    # The hub now hides entry "share-4" from node2 only: different trees to different nodes.
    view_a.append_raw([b"share-4", b"x"])
    view_b.append_raw([b"other-4", b"x"])
    _witness_round(view_a, witnesses[0])
    _witness_round(view_a, witnesses[1])
    _witness_round(view_b, witnesses[2])
    cp_a, _ = verify_final_checkpoint(view_a.checkpoint()[1], log_v, verifiers, quorum=2)
    # (1) The forked view never reaches quorum, so relying parties reject it.
    with pytest.raises(NoteVerificationError):
        verify_final_checkpoint(view_b.checkpoint()[1], log_v, verifiers, quorum=2)
    # (2) Two log-signed checkpoints of one size with different roots are proof of the fork.
    cp_b, _, _ = open_checkpoint(view_b.checkpoint()[1], log_v)
    assert detect_fork(cp_a, cp_b)
    # (3) The hub cannot bring node2 back onto view A: no consistency proof exists.
    size, note = view_a.publish_checkpoint()
    with pytest.raises(WitnessError) as err:
        witnesses[2].add_checkpoint(5, view_a.consistency_proof(5, size), note)
    assert err.value.status == 422
    # ... nor onto a later view A after growth; the refusal is kept as evidence.
    view_a.append_raw([b"y"])
    size, note = view_a.publish_checkpoint()
    with pytest.raises(WitnessError) as err:
        witnesses[2].add_checkpoint(5, view_a.consistency_proof(5, size), note)
    assert err.value.status == 422
    assert len(witnesses[2].evidence) == 2
    assert len(witnesses[2].state.get_evidence(ORIGIN)) == 2
    for v in (view_a, view_b):
        v.close()


def test_rewritten_history_is_refused() -> None:
    key, _, _, verifiers, witnesses = _setup(1, 1)
    log = TransparencyLog(MemoryStore(), key, witnesses=verifiers, quorum=1)
    log.append_raw([b"a", b"b"])
    _witness_round(log, witnesses[0])
    rewritten = TransparencyLog(MemoryStore(), key)
    rewritten.append_raw([b"a", b"B", b"c"])
    size, note = rewritten.publish_checkpoint()
    with pytest.raises(WitnessError) as err:
        witnesses[0].add_checkpoint(2, rewritten.consistency_proof(2, size), note)
    assert err.value.status == 422


def test_witness_protocol_statuses() -> None:
    key, _, signers, _, witnesses = _setup(1, 1)
    w = witnesses[0]
    good = sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), key).format()
    bad_empty = sign_checkpoint(Checkpoint(ORIGIN, 0, b"\1" * 32), key).format()
    stranger = Ed25519Signer.generate(ORIGIN)
    forged = sign_checkpoint(Checkpoint(ORIGIN, 1, b"\1" * 32), stranger).format()
    other_origin = Ed25519Signer.generate("elsewhere.test/log")
    unknown = sign_checkpoint(Checkpoint("elsewhere.test/log", 1, b"\1" * 32), other_origin)
    cases = [
        (0, [], unknown.format(), 404),
        (0, [], forged, 403),
        (1, [], good, 400),
        (0, [], bad_empty, 422),
        (0, [b"\0" * 32], sign_checkpoint(Checkpoint(ORIGIN, 2, b"\2" * 32), key).format(), 422),
    ]
    for old, proof, note, status in cases:
        with pytest.raises(WitnessError) as err:
            w.add_checkpoint(old, proof, note)
        assert err.value.status == status
    sig = w.add_checkpoint(0, [], good)
    assert sig.name == signers[0].name
    with pytest.raises(WitnessError) as err:
        w.add_checkpoint(3, [], sign_checkpoint(Checkpoint(ORIGIN, 4, b"\2" * 32), key).format())
    assert err.value.status == 409
    assert err.value.latest_size == 0
