"""The in-memory twin of the institution registry (tests, the demo)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from healthmesh.errors import Conflict
from healthmesh.federation.registry.base import Institution, RegistryRules


class MemoryRegistry(RegistryRules):
    """:class:`~.base.InstitutionRegistry` in a dict."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._lock = threading.Lock()
        self._items: dict[str, Institution] = {}

    def _load(self, institution: str) -> Institution | None:
        with self._lock:
            return self._items.get(institution)

    def _save(self, inst: Institution, *, new: bool) -> None:
        with self._lock:
            if new and inst.institution in self._items:
                raise Conflict("institution registered concurrently")
            self._items[inst.institution] = inst

    def _all(self) -> list[Institution]:
        with self._lock:
            return list(self._items.values())

    def _owner_of(self, key_id: str) -> str | None:
        with self._lock:
            for inst in self._items.values():
                if any(k.record.key_id == key_id for k in inst.keys):
                    return inst.institution
        return None
