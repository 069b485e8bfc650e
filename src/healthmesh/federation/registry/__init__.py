"""Institutions and their federation keys at the hub: contract, rules, memory and SQL."""

from healthmesh.federation.registry.base import (
    DEFAULT_OVERLAP_S,
    Institution,
    InstitutionRegistry,
    KeyEntry,
    rotation_message,
    sign_rotation,
)
from healthmesh.federation.registry.memory import MemoryRegistry
from healthmesh.federation.registry.sql import SqlRegistry

__all__ = [
    "DEFAULT_OVERLAP_S",
    "Institution",
    "InstitutionRegistry",
    "KeyEntry",
    "MemoryRegistry",
    "SqlRegistry",
    "rotation_message",
    "sign_rotation",
]
