"""A bounded memo of mapped Patients, so a feed that repeats a patient's PID segment in
every message (admission, results, prescriptions, discharge) maps it once.

The Patient a PID maps to depends only on the segment's text, the separators, the source
system and the default time zone, so those are the key. Entries are kept serialised (orjson)
and every hit returns a fresh copy: a caller may change what it gets (an A40 adds links)
without touching the memo. Notes made while mapping are replayed on a hit.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson

Key = tuple[str, str, str, str]


class PatientMemo:
    """Least-recently-used memo: key -> (Patient as JSON bytes, notes)."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._entries: OrderedDict[Key, tuple[bytes, tuple[str, ...]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Key) -> tuple[dict[str, Any], tuple[str, ...]] | None:
        """A fresh copy of the Patient stored under ``key`` and its notes, or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return orjson.loads(entry[0]), entry[1]

    def put(self, key: Key, patient: dict[str, Any], notes: tuple[str, ...]) -> None:
        """Remember ``patient`` (serialised now, so later changes to it do not leak in)."""
        self._entries[key] = (orjson.dumps(patient), notes)
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
