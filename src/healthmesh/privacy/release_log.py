"""What a node has released about whom: the cohorts described to each researcher.

The differencing rule (:func:`check_differencing`) compares a new cohort with every cohort
released earlier to the same researcher (across studies): two cohorts that differ by fewer than
the minimum cell size patients (but not zero) would let the researcher learn about those few by
subtraction, so the second one is refused. Member sets stay at the node; they are never released.

:class:`ReleaseLog` is the storage contract (memory here; SQL at the node, one contract suite
``tests/privacy/store_contract.py``).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from healthmesh.errors import DisclosureRisk


class ReleaseLog(Protocol):
    """Cohorts (member id sets) released to each researcher."""

    def released(self, researcher: str) -> Iterable[frozenset[str]]:
        """Every distinct cohort recorded for ``researcher`` (any study)."""
        ...

    def record(self, researcher: str, members: frozenset[str]) -> None:
        """Remember a released cohort (recording the same set again changes nothing)."""
        ...


class MemoryReleaseLog:
    """In-memory :class:`ReleaseLog` (tests, the in-process federation); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cohorts: dict[str, set[frozenset[str]]] = defaultdict(set)

    def released(self, researcher: str) -> list[frozenset[str]]:
        """Every distinct cohort recorded for ``researcher``."""
        with self._lock:
            return list(self._cohorts.get(researcher, ()))

    def record(self, researcher: str, members: frozenset[str]) -> None:
        """Remember a released cohort."""
        with self._lock:
            self._cohorts[researcher].add(frozenset(members))


def check_differencing(
    members: frozenset[str], earlier: Iterable[frozenset[str]], min_cell: int
) -> None:
    """Refuse (``differencing``) when ``0 < |members Δ old| < min_cell`` for an earlier cohort."""
    for old in earlier:
        diff = len(members ^ old)
        if 0 < diff < min_cell:
            raise DisclosureRisk(
                "differencing: this cohort differs from one released earlier to the same "
                f"researcher by fewer than {min_cell} patients"
            )
