"""The ledger storage contract, implemented by :class:`~.memory.MemoryStore` and
:class:`~.sql.SqlStore` (SQLite and PostgreSQL) and checked by one shared test suite."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from healthmesh.errors import Conflict
from healthmesh.ledger.hashing import Coord

NodeRow = tuple[int, int, bytes]
"""``(level, index, hash)`` of a perfect node."""


class StaleHead(Conflict):
    """The tree grew under a writer (another process appended); the batch was not written."""


@dataclass(frozen=True)
class KeyRecord:
    """A registered institution key: ``purpose`` is ``request-signing`` or ``witness``."""

    institution: str
    purpose: str
    vkey: str
    active: bool


class LedgerStore(Protocol):
    """Durable state of one log: entries, perfect nodes, tree head, checkpoints,
    cosignatures, registered keys and used request nonces."""

    def head(self) -> tuple[int, bytes]:
        """``(size, root)`` of the committed tree."""
        ...

    def append(
        self,
        old_size: int,
        entries: Sequence[bytes],
        nodes: Sequence[NodeRow],
        root: bytes,
    ) -> None:
        """Atomically add ``entries`` at ``old_size..``, their new perfect ``nodes`` and the new
        head. Raises :class:`StaleHead` (writing nothing) if the head is not ``old_size``."""
        ...

    def get_entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)`` in index order (fewer if past the end)."""
        ...

    def get_nodes(self, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        """Perfect-node hashes; raises ``LedgerIntegrityError`` if one is missing."""
        ...

    def save_checkpoint(self, size: int, note: str) -> None:
        """Store the log-signed checkpoint note for ``size`` (first one wins)."""
        ...

    def get_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """``(size, note)`` of the checkpoint at ``size``, or the latest one."""
        ...

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        """Store (or replace) ``witness``'s cosignature line on checkpoint ``size``."""
        ...

    def get_cosignatures(self, size: int) -> dict[str, str]:
        """Witness name -> cosignature line for checkpoint ``size``."""
        ...

    def largest_cosigned(self, min_cosigners: int) -> int | None:
        """Largest checkpoint size with at least ``min_cosigners`` cosignatures, if any."""
        ...

    def put_key(self, record: KeyRecord) -> None:
        """Insert or update a key (matched on institution, purpose and vkey)."""
        ...

    def get_keys(self, institution: str | None = None) -> list[KeyRecord]:
        """Registered keys, optionally of one institution."""
        ...

    def use_nonce(self, scope: str, nonce: str, expires_at: int, now: int) -> bool:
        """Record a request nonce; ``False`` if it was already used and has not expired."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
