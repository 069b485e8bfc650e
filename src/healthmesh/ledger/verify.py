"""Verification of RFC 9162 inclusion and consistency proofs (sections 2.1.3.2, 2.1.4.2).

Pure functions over bytes; every failure raises :class:`ProofError` (a
``LedgerIntegrityError``). The rules for degenerate inputs follow transparency-dev/merkle,
whose 518 public probes are our test vectors:

* inclusion needs ``0 <= index < size`` and a 32-byte leaf hash;
* consistency from ``size1 == size2`` needs an empty proof and equal roots;
* **consistency from the empty tree (``size1 == 0``) is rejected here**: RFC 9162 defines
  proofs only for ``0 < m < n`` and the empty tree is trivially a prefix of every tree, so a
  "proof" carries no information. Callers that track a log from scratch (a witness that has
  never seen the log) handle ``old size 0`` themselves, as C2SP tlog-witness prescribes: they
  demand an empty proof and accept. See :meth:`healthmesh.ledger.witness.Witness.add_checkpoint`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from healthmesh.errors import LedgerIntegrityError
from healthmesh.ledger.hashing import EMPTY_ROOT, HASH_SIZE, node_hash


class ProofError(LedgerIntegrityError):
    """A Merkle proof did not verify (malformed, wrong size, or root mismatch)."""


def _check_elements(proof: Sequence[bytes]) -> None:
    for h in proof:
        if len(h) != HASH_SIZE:
            raise ProofError("proof element has the wrong length")


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Root implied by an inclusion proof of leaf hash ``leaf`` at ``index`` in ``size``.

    >>> from healthmesh.ledger.hashing import leaf_hash
    >>> root_from_inclusion_proof(0, 1, leaf_hash(b"x"), []) == leaf_hash(b"x")
    True
    """
    if not 0 <= index < size:
        raise ProofError("leaf index outside the tree")
    if len(leaf) != HASH_SIZE:
        raise ProofError("leaf hash has the wrong length")
    _check_elements(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows leaf hash ``leaf`` at ``index`` in the
    tree of ``size`` leaves with root hash ``root``."""
    if not _equal(root_from_inclusion_proof(index, size, leaf, proof), root):
        raise ProofError("inclusion proof does not lead to the expected root")


def root_from_consistency_proof(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> bytes:
    """Check the old-root half of a consistency proof and return the new root it implies."""
    if size2 < size1 or size1 < 0:
        raise ProofError("consistency proof to a smaller tree")
    if size1 == size2:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if size1 == 0 and not _equal(root1, EMPTY_ROOT):
            raise ProofError("the empty tree has the empty root")
        return root1
    if size1 == 0:
        raise ProofError("consistency proof from the empty tree is meaningless")
    if not proof:
        raise ProofError("empty consistency proof")
    _check_elements(proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # exact power of two: the old root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof too short")
    if not _equal(fr, root1):
        raise ProofError("consistency proof does not match the old root")
    return sr


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows the tree ``(size1, root1)`` is a prefix
    of the tree ``(size2, root2)``."""
    if not _equal(root_from_consistency_proof(size1, size2, root1, proof), root2):
        raise ProofError("consistency proof does not match the new root")
