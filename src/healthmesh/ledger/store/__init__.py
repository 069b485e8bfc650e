"""Ledger storage: one contract (:class:`LedgerStore`), an in-memory twin and SQL."""

from healthmesh.ledger.store.base import KeyRecord, LedgerStore, NodeRow, StaleHead
from healthmesh.ledger.store.memory import MemoryStore
from healthmesh.ledger.store.sql import SqlStore

__all__ = ["KeyRecord", "LedgerStore", "MemoryStore", "NodeRow", "SqlStore", "StaleHead"]
