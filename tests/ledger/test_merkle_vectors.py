"""RFC 6962/9162 known answers and the 518 transparency-dev/merkle proof probes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from healthmesh.ledger.hashing import (
    EMPTY_ROOT,
    leaf_hash,
    node_hash,
    root_from_entries,
)
from healthmesh.ledger.proofs import MemoryNodes, consistency_proof, inclusion_proof, tree_root
from healthmesh.ledger.subtree import verify_subtree_consistency, verify_subtree_inclusion
from healthmesh.ledger.verify import ProofError, verify_consistency, verify_inclusion

VECTORS = Path("merkle_vectors")


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(d: dict) -> list[bytes]:
    return [_b64(p) for p in (d.get("proof") or [])]


def _probes(shared_data: Path, kind: str) -> list[tuple[str, dict]]:
    root = shared_data / VECTORS / "transparency-dev_merkle" / "testdata" / kind
    return [
        (str(p.relative_to(root)), json.loads(p.read_text())) for p in sorted(root.rglob("*.json"))
    ]


def _known(shared_data: Path) -> dict:
    return json.loads((shared_data / VECTORS / "known_answers.json").read_text())


def test_known_answers(shared_data: Path) -> None:
    ka = _known(shared_data)
    assert EMPTY_ROOT.hex() == ka["empty_tree_root"]
    for case in ka["leaf_hashes"]:
        assert leaf_hash(bytes.fromhex(case["data_hex"])).hex() == case["hash"]
    for case in ka["node_hashes"]:
        left, right = bytes.fromhex(case["left_hex"]), bytes.fromhex(case["right_hex"])
        assert node_hash(left, right).hex() == case["hash"]
    leaves = [bytes.fromhex(x) for x in ka["tree_leaves_hex"]]
    for size, root in ka["roots_by_size"].items():
        assert root_from_entries(leaves[: int(size)]).hex() == root


def test_generated_proofs_match_reference_tree(shared_data: Path) -> None:
    ka = _known(shared_data)
    leaves = [bytes.fromhex(x) for x in ka["tree_leaves_hex"]]
    nodes = MemoryNodes([leaf_hash(x) for x in leaves])
    roots = {int(k): bytes.fromhex(v) for k, v in ka["roots_by_size"].items()}
    for n in range(1, 9):
        assert tree_root(n, nodes) == roots[n]
        for i in range(n):
            verify_inclusion(i, n, leaf_hash(leaves[i]), inclusion_proof(i, n, nodes), roots[n])
        for m in range(1, n + 1):
            verify_consistency(m, n, roots[m], roots[n], consistency_proof(m, n, nodes))


def _expect(want_err: bool, check) -> None:
    if want_err:
        with pytest.raises(ProofError):
            check()
    else:
        check()


def test_inclusion_probes(shared_data: Path) -> None:
    probes = _probes(shared_data, "inclusion")
    assert len(probes) == 98
    for name, d in probes:
        try:
            _expect(
                d["wantErr"],
                lambda d=d: verify_inclusion(
                    d["leafIdx"], d["treeSize"], _b64(d["leafHash"]), _proof(d), _b64(d["root"])
                ),
            )
        except BaseException as exc:
            raise AssertionError(f"inclusion probe {name}: {d['desc']}") from exc


def test_consistency_probes(shared_data: Path) -> None:
    probes = _probes(shared_data, "consistency")
    assert len(probes) == 98
    for name, d in probes:
        try:
            _expect(
                d["wantErr"],
                lambda d=d: verify_consistency(
                    d["size1"], d["size2"], _b64(d["root1"]), _b64(d["root2"]), _proof(d)
                ),
            )
        except BaseException as exc:
            raise AssertionError(f"consistency probe {name}: {d['desc']}") from exc


def test_subtree_inclusion_probes(shared_data: Path) -> None:
    probes = _probes(shared_data, "subtreeinclusion")
    assert len(probes) == 204
    for name, d in probes:
        try:
            _expect(
                d["wantErr"],
                lambda d=d: verify_subtree_inclusion(
                    d["leafIdx"],
                    d["start"],
                    d["end"],
                    _b64(d["leafHash"]),
                    _proof(d),
                    _b64(d["root"]),
                ),
            )
        except BaseException as exc:
            raise AssertionError(f"subtree inclusion probe {name}: {d['desc']}") from exc


def test_subtree_consistency_probes(shared_data: Path) -> None:
    probes = _probes(shared_data, "subtreeconsistency")
    assert len(probes) == 118
    for name, d in probes:
        try:
            _expect(
                d["wantErr"],
                lambda d=d: verify_subtree_consistency(
                    d["start"],
                    d["end"],
                    d["size"],
                    _b64(d["root1"]),
                    _b64(d["root2"]),
                    _proof(d),
                ),
            )
        except BaseException as exc:
            raise AssertionError(f"subtree consistency probe {name}: {d['desc']}") from exc


def test_all_518_probes_counted(shared_data: Path) -> None:
    kinds = ("inclusion", "consistency", "subtreeinclusion", "subtreeconsistency")
    total = sum(len(_probes(shared_data, k)) for k in kinds)
    rejected = sum(1 for k in kinds for _, d in _probes(shared_data, k) if d["wantErr"])
    assert total == 518
    assert rejected == 518 - 36


def test_empty_tree_consistency_decision() -> None:
    # Documented decision: a proof "from" the empty tree is rejected by the pure verifier.
    with pytest.raises(ProofError):
        verify_consistency(0, 1, EMPTY_ROOT, leaf_hash(b"a"), [])
    with pytest.raises(ProofError):
        verify_consistency(0, 0, b"x" * 32, b"x" * 32, [EMPTY_ROOT])
