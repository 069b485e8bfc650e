"""The compact range (right frontier) of a growing Merkle tree.

Appending needs only the perfect-subtree roots on the tree's right edge — at most one per
level, ``O(log n)`` hashes — to produce every perfect node the new leaves complete and the new
root. The frontier is rebuilt on start-up from the store with one read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from healthmesh.ledger.hashing import fold, leaf_hash, node_hash, range_coords
from healthmesh.ledger.proofs import NodeReader
from healthmesh.ledger.store.base import LedgerStore, NodeRow


class Frontier:
    """Right-edge perfect nodes of a tree of ``size`` leaves, largest first."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        coords = range_coords(0, size)
        if len(coords) != len(hashes):
            raise ValueError("frontier hashes do not match the tree size")
        self.size = size
        self.levels = [lv for lv, _ in coords]
        self.hashes = list(hashes)

    @classmethod
    def load(cls, size: int, reader: NodeReader) -> Frontier:
        """The frontier of the stored tree of ``size`` leaves."""
        coords = range_coords(0, size)
        nodes = reader.get_nodes(coords) if coords else {}
        return cls(size, [nodes[c] for c in coords])

    def copy(self) -> Frontier:
        """An independent copy (to roll back a failed batch)."""
        other = Frontier()
        other.size, other.levels, other.hashes = self.size, list(self.levels), list(self.hashes)
        return other

    def root(self) -> bytes:
        """Root hash of the current tree."""
        return fold(self.hashes)

    def extend(self, leaf_hashes: Sequence[bytes]) -> list[NodeRow]:
        """Append leaves; return every new perfect node ``(level, index, hash)``."""
        rows: list[NodeRow] = []
        levels, hashes = self.levels, self.hashes
        idx = self.size
        for h in leaf_hashes:
            rows.append((0, idx, h))
            level, cur = 0, h
            while levels and levels[-1] == level:
                cur = node_hash(hashes.pop(), cur)
                levels.pop()
                level += 1
                rows.append((level, idx >> level, cur))
            levels.append(level)
            hashes.append(cur)
            idx += 1
        self.size = idx
        return rows


def bulk_append(
    store: LedgerStore, entries: Iterable[bytes], chunk: int = 100_000
) -> tuple[int, bytes]:
    """Append a long stream of entries in large transactions (imports, benchmarks).

    Must not run while a :class:`~healthmesh.ledger.log.TransparencyLog` writes to the same
    store; each chunk is still atomic with a compare-and-set on the head, so a crash leaves a
    valid prefix. Returns the final ``(size, root)``.
    """
    size, _ = store.head()
    frontier = Frontier.load(size, store)
    buf: list[bytes] = []

    def flush() -> None:
        old = frontier.size
        rows = frontier.extend([leaf_hash(e) for e in buf])
        store.append(old, buf, rows, frontier.root())
        buf.clear()

    for e in entries:
        buf.append(e)
        if len(buf) >= chunk:
            flush()
    if buf:
        flush()
    return frontier.size, frontier.root()
