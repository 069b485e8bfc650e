"""In-memory twin of the ledger store, for tests and throw-away logs."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from healthmesh.errors import LedgerIntegrityError
from healthmesh.ledger.hashing import EMPTY_ROOT, Coord
from healthmesh.ledger.store.base import KeyRecord, NodeRow, StaleHead


class MemoryStore:
    """A :class:`~healthmesh.ledger.store.base.LedgerStore` held in dictionaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[bytes] = []
        self.nodes: dict[Coord, bytes] = {}
        self.root = EMPTY_ROOT
        self.checkpoints: dict[int, str] = {}
        self.cosigs: dict[int, dict[str, str]] = {}
        self.keys: dict[tuple[str, str, str], KeyRecord] = {}
        self.nonces: dict[tuple[str, str], int] = {}

    def head(self) -> tuple[int, bytes]:
        with self._lock:
            return len(self.entries), self.root

    def append(
        self, old_size: int, entries: Sequence[bytes], nodes: Sequence[NodeRow], root: bytes
    ) -> None:
        with self._lock:
            if len(self.entries) != old_size:
                raise StaleHead("the ledger grew under this writer")
            self.entries.extend(entries)
            for level, idx, h in nodes:
                self.nodes[(level, idx)] = h
            self.root = root

    def get_entries(self, start: int, end: int) -> list[bytes]:
        with self._lock:
            return self.entries[start:end]

    def get_nodes(self, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        with self._lock:
            try:
                return {c: self.nodes[c] for c in coords}
            except KeyError as exc:
                raise LedgerIntegrityError("a tree node is missing from the store") from exc

    def save_checkpoint(self, size: int, note: str) -> None:
        with self._lock:
            self.checkpoints.setdefault(size, note)

    def get_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        with self._lock:
            if not self.checkpoints:
                return None
            if size is None:
                size = max(self.checkpoints)
            note = self.checkpoints.get(size)
            return None if note is None else (size, note)

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        with self._lock:
            self.cosigs.setdefault(size, {})[witness] = line

    def get_cosignatures(self, size: int) -> dict[str, str]:
        with self._lock:
            return dict(self.cosigs.get(size, {}))

    def largest_cosigned(self, min_cosigners: int) -> int | None:
        with self._lock:
            sizes = [s for s, c in self.cosigs.items() if len(c) >= min_cosigners]
            return max(sizes) if sizes else None

    def put_key(self, record: KeyRecord) -> None:
        with self._lock:
            self.keys[(record.institution, record.purpose, record.vkey)] = record

    def get_keys(self, institution: str | None = None) -> list[KeyRecord]:
        with self._lock:
            return [
                k for k in self.keys.values() if institution is None or k.institution == institution
            ]

    def use_nonce(self, scope: str, nonce: str, expires_at: int, now: int) -> bool:
        with self._lock:
            for key in [k for k, exp in self.nonces.items() if exp < now]:
                del self.nonces[key]
            if (scope, nonce) in self.nonces:
                return False
            self.nonces[(scope, nonce)] = expires_at
            return True

    def close(self) -> None:
        """Nothing to release."""
