"""Subtrees of a Merkle log and their proofs (draft-ietf-plants-merkle-tree-certs, section 4).

A subtree ``[start, end)`` is *valid* when ``start < end`` and ``start`` is a multiple of the
smallest power of two ``>= end - start``; C2SP tlog-cosignature v1 and tlog-witness
``sign-subtree`` sign such subtrees. We verify subtree inclusion and subtree consistency
proofs, and compute subtree hashes from stored perfect nodes. An *empty* subtree
(``start == end``) is accepted only as trivially consistent: empty proof and the empty-tree
hash, following transparency-dev/merkle's probes.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from healthmesh.ledger.hashing import EMPTY_ROOT, HASH_SIZE, Coord, node_hash, range_coords
from healthmesh.ledger.verify import ProofError


def is_valid_subtree(start: int, end: int) -> bool:
    """Whether ``[start, end)`` is a subtree in the draft's sense.

    >>> is_valid_subtree(8, 13), is_valid_subtree(2, 5), is_valid_subtree(3, 4)
    (True, False, True)
    """
    if not 0 <= start < end:
        return False
    width = end - start
    ceil_pow2 = 1 << (width - 1).bit_length()
    return start % ceil_pow2 == 0


def subtree_coords(start: int, end: int) -> list[Coord]:
    """Perfect nodes whose right fold is the hash of the valid subtree ``[start, end)``."""
    if not is_valid_subtree(start, end):
        raise ProofError("invalid subtree")
    return range_coords(start, end)


def root_from_subtree_consistency_proof(
    size: int, start: int, end: int, proof: Sequence[bytes], subtree_hash: bytes
) -> bytes:
    """Evaluate a subtree consistency proof; return the tree root it implies.

    Raises :class:`ProofError` if the inputs are invalid or the proof does not reproduce
    ``subtree_hash``.
    """
    if not is_valid_subtree(start, end) or end > size:
        raise ProofError("invalid subtree for this tree size")
    for h in proof:
        if len(h) != HASH_SIZE:
            raise ProofError("proof element has the wrong length")
    fn, sn, tn = start, end - 1, size - 1
    if sn == tn:
        while fn != sn:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    else:
        while fn != sn and sn & 1:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    rest = list(proof)
    if fn == sn:
        fr = sr = subtree_hash
    else:
        if not rest:
            raise ProofError("subtree consistency proof too short")
        fr = sr = rest.pop(0)
    for p in rest:
        if tn == 0:
            raise ProofError("subtree consistency proof too long")
        if sn & 1 or sn == tn:
            if fn < sn:
                fr = node_hash(p, fr)
            sr = node_hash(p, sr)
            while not sn & 1:
                fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
        else:
            sr = node_hash(sr, p)
        fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    if tn != 0:
        raise ProofError("subtree consistency proof too short")
    if not hmac.compare_digest(fr, subtree_hash):
        raise ProofError("subtree consistency proof does not match the subtree hash")
    return sr


def verify_subtree_consistency(
    start: int, end: int, size: int, subtree_hash: bytes, root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows subtree ``[start, end)`` with hash
    ``subtree_hash`` is part of the tree of ``size`` leaves with root ``root``."""
    if start == end:
        if end > size or proof or not hmac.compare_digest(subtree_hash, EMPTY_ROOT):
            raise ProofError("an empty subtree needs an empty proof and the empty hash")
        return
    got = root_from_subtree_consistency_proof(size, start, end, proof, subtree_hash)
    if not hmac.compare_digest(got, root):
        raise ProofError("subtree consistency proof does not match the tree root")


def verify_subtree_inclusion(
    index: int, start: int, end: int, leaf: bytes, proof: Sequence[bytes], subtree_hash: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows leaf hash ``leaf`` at absolute
    ``index`` inside the valid subtree ``[start, end)`` whose hash is ``subtree_hash``."""
    if not is_valid_subtree(start, end) or not start <= index < end:
        raise ProofError("leaf outside a valid subtree")
    if len(leaf) != HASH_SIZE:
        raise ProofError("leaf hash has the wrong length")
    rel = index - start
    got = root_from_subtree_consistency_proof(end - start, rel, rel + 1, proof, leaf)
    if not hmac.compare_digest(got, subtree_hash):
        raise ProofError("subtree inclusion proof does not match the subtree hash")
