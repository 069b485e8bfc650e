"""Property tests: generated proofs always verify, and any single change breaks them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from healthmesh.ledger.compact import Frontier
from healthmesh.ledger.hashing import fold, leaf_hash, root_from_entries
from healthmesh.ledger.proofs import MemoryNodes, consistency_proof, inclusion_proof, tree_root
from healthmesh.ledger.subtree import is_valid_subtree, subtree_coords, verify_subtree_inclusion
from healthmesh.ledger.verify import ProofError, verify_consistency, verify_inclusion


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data())
def test_inclusion_and_consistency_roundtrip(n: int, data: st.DataObject) -> None:
    entries = [i.to_bytes(4, "big") for i in range(n)]
    nodes = MemoryNodes([leaf_hash(e) for e in entries])
    root = root_from_entries(entries)
    assert tree_root(n, nodes) == root
    i = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(i, n, nodes)
    verify_inclusion(i, n, leaf_hash(entries[i]), proof, root)
    if n > 1:
        j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
        try:
            verify_inclusion(j, n, leaf_hash(entries[i]), proof, root)
        except ProofError:
            pass
        else:
            raise AssertionError("proof verified for the wrong index")
    m = data.draw(st.integers(1, n))
    old = root_from_entries(entries[:m])
    cproof = consistency_proof(m, n, nodes)
    verify_consistency(m, n, old, root, cproof)
    if cproof:
        k = data.draw(st.integers(0, len(cproof) - 1))
        bad = list(cproof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        try:
            verify_consistency(m, n, old, root, bad)
        except ProofError:
            pass
        else:
            raise AssertionError("tampered consistency proof verified")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12))
def test_frontier_matches_reference(batches: list[int]) -> None:
    f = Frontier()
    nodes = MemoryNodes()
    count = 0
    for b in batches:
        leaves = [leaf_hash(str(count + i).encode()) for i in range(b)]
        rows = f.extend(leaves)
        for h in leaves:
            nodes.append(h)
        count += b
        for lv, ix, h in rows:
            assert nodes.levels[lv][ix] == h
    assert f.root() == tree_root(count, nodes)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.data())
def test_subtree_inclusion_of_generated_paths(size: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, 3)) * (1 << (size - 1).bit_length())
    end = start + size
    assert is_valid_subtree(start, end)
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(end)]
    nodes = MemoryNodes(leaves)
    sub_hash = fold([nodes.levels[lv][ix] for lv, ix in subtree_coords(start, end)])
    idx = data.draw(st.integers(start, end - 1))
    # A subtree inclusion proof is the ordinary proof inside the re-rooted subtree.
    inner = MemoryNodes(leaves[start:end])
    proof = inclusion_proof(idx - start, size, inner)
    verify_subtree_inclusion(idx, start, end, leaves[idx], proof, sub_hash)
