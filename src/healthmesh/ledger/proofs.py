"""Generation of RFC 9162 inclusion and consistency proofs from stored perfect nodes.

Proof generation is split in two so that a store answers a proof with **one** batched read
of ``O(log n)`` rows: a *plan* lists, for every proof element, the perfect nodes whose right
fold is that element (RFC 9162's ``MTH(D[a:b])`` of a sub-range); :func:`materialize` then
fetches all of them at once through a :class:`NodeReader` and folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from healthmesh.errors import InvalidInput
from healthmesh.ledger.hashing import Coord, fold, largest_power_of_two_below, range_coords

Plan = list[list[Coord]]
"""One list of perfect-node coordinates per proof element, each to be right-folded."""


class NodeReader(Protocol):
    """Anything that returns stored perfect-node hashes by ``(level, index)``."""

    def get_nodes(self, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        """Hashes for ``coords``; must raise if one is missing."""
        ...


def inclusion_plan(index: int, size: int) -> Plan:
    """Plan for RFC 9162 ``PATH(index, D[0:size])``, lowest level first.

    >>> inclusion_plan(2, 3)
    [[(1, 0)]]
    """
    if not 0 <= index < size:
        raise InvalidInput("leaf index outside the tree")
    out: Plan = []
    lo, hi, m = 0, size, index
    stack: Plan = []
    while hi - lo > 1:
        k = largest_power_of_two_below(hi - lo)
        if m < k:
            stack.append(range_coords(lo + k, hi))
            hi = lo + k
        else:
            stack.append(range_coords(lo, lo + k))
            lo, m = lo + k, m - k
    # The recursion appends on the way back up, so the deepest sibling comes first.
    out.extend(reversed(stack))
    return out


def consistency_plan(size1: int, size2: int) -> Plan:
    """Plan for RFC 9162 ``PROOF(size1, D[0:size2])`` (``0 < size1 <= size2``).

    >>> consistency_plan(4, 4)
    []
    """
    if not 0 < size1 <= size2:
        raise InvalidInput("consistency proofs need 0 < old size <= new size")
    if size1 == size2:
        return []
    stack: Plan = []
    lo, hi, m, complete = 0, size2, size1, True
    while True:
        if m == hi - lo:
            if not complete:
                stack.append(range_coords(lo, hi))
            break
        k = largest_power_of_two_below(hi - lo)
        if m <= k:
            stack.append(range_coords(lo + k, hi))
            hi = lo + k
        else:
            stack.append(range_coords(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    return list(reversed(stack))


def root_plan(size: int) -> list[Coord]:
    """Perfect nodes whose right fold is the root of the tree of ``size`` leaves."""
    return range_coords(0, size)


def materialize(plan: Plan, reader: NodeReader) -> list[bytes]:
    """Fetch every node the plan needs in one call and fold each proof element."""
    wanted = sorted({c for element in plan for c in element})
    nodes = reader.get_nodes(wanted) if wanted else {}
    return [fold([nodes[c] for c in element]) for element in plan]


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """Inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return materialize(inclusion_plan(index, size), reader)


def consistency_proof(size1: int, size2: int, reader: NodeReader) -> list[bytes]:
    """Consistency proof from the tree of ``size1`` leaves to the tree of ``size2``."""
    return materialize(consistency_plan(size1, size2), reader)


def tree_root(size: int, reader: NodeReader) -> bytes:
    """Root hash of the tree of ``size`` leaves (``EMPTY_ROOT`` when ``size`` is 0)."""
    coords = root_plan(size)
    nodes = reader.get_nodes(coords) if coords else {}
    return fold([nodes[c] for c in coords])


class MemoryNodes:
    """In-memory :class:`NodeReader` over a list of leaf hashes (tests, small trees)."""

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaves:
            self.append(h)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash and every perfect node it completes."""
        from healthmesh.ledger.hashing import node_hash

        self.levels[0].append(leaf)
        level, idx = 0, len(self.levels[0]) - 1
        while idx & 1:
            h = node_hash(self.levels[level][idx - 1], self.levels[level][idx])
            level += 1
            if level == len(self.levels):
                self.levels.append([])
            self.levels[level].append(h)
            idx >>= 1

    def get_nodes(self, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        """See :class:`NodeReader`."""
        return {(lv, i): self.levels[lv][i] for lv, i in coords}
