"""Ledger storage: one contract (:class:`LedgerStore`), an in-memory twin and SQL.

``SqlStore`` is imported lazily so that the pure parts of the ledger (proofs, checkpoints,
witnesses, verification) never load the database layer.
"""

from typing import TYPE_CHECKING, Any

from healthmesh.ledger.store.base import KeyRecord, LedgerStore, NodeRow, StaleHead
from healthmesh.ledger.store.memory import MemoryStore

if TYPE_CHECKING:
    from healthmesh.ledger.store.sql import SqlStore

__all__ = ["KeyRecord", "LedgerStore", "MemoryStore", "NodeRow", "SqlStore", "StaleHead"]


def __getattr__(name: str) -> Any:
    if name == "SqlStore":
        from healthmesh.ledger.store.sql import SqlStore

        return SqlStore
    raise AttributeError(name)
