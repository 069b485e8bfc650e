"""The node's part of outbreak surveillance: syndromic and pharmacy counts from its own FHIR
store, protected before they leave (suppression or noise), as rows the hub pools.

Only aggregates leave the node: (institution, date, district, signal, count), with small
counts suppressed or noised per the configured :class:`Protection`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

from healthmesh.fhir.store import FhirStore
from healthmesh.surveillance.hub import CountRow
from healthmesh.surveillance.signals.counts import daily_counts
from healthmesh.surveillance.signals.protection import Protection, protect

#: resource types that carry signals, and the search parameter that dates them
SIGNAL_SOURCES = (
    ("Encounter", "date"),
    ("Condition", "onset-date"),
    ("Observation", "date"),
    ("MedicationDispense", "whenhandedover"),
)


def _pages(store: FhirStore, rtype: str, pairs: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        page = [*pairs, ("_count", "1000")] + ([("_cursor", cursor)] if cursor else [])
        result = store.search_engine.search(rtype, page)
        for stored in result.matches:
            yield stored.resource()
        cursor = result.next_cursor
        if cursor is None:
            return


def signal_resources(store: FhirStore, since: dt.date, until: dt.date) -> list[dict[str, Any]]:
    """Resources dated in [since, until) that may carry a signal, with their patients."""
    found: list[dict[str, Any]] = []
    window = [("date", f"ge{since.isoformat()}"), ("date", f"lt{until.isoformat()}")]
    for rtype, param in SIGNAL_SOURCES:
        pairs = [(param, v) for _, v in window]
        found.extend(_pages(store, rtype, pairs))
    patient_ids: set[str] = set()
    for res in found:
        for key in ("subject", "patient"):
            ref = str((res.get(key) or {}).get("reference", ""))
            if ref.startswith("Patient/"):
                patient_ids.add(ref.split("/", 1)[1])
    ids = sorted(patient_ids)
    for i in range(0, len(ids), 500):
        found.extend(_pages(store, "Patient", [("_id", ",".join(ids[i : i + 500]))]))
    return found


def node_counts(
    store: FhirStore,
    institution: str,
    since: dt.date,
    until: dt.date,
    protection: Protection,
    *,
    seed: int | None = None,
) -> list[CountRow]:
    """Protected daily counts by district and signal for [since, until)."""
    cells: Counter[tuple[dt.date, str, str]] = Counter()
    for key, n in daily_counts(signal_resources(store, since, until)).items():
        if since <= key.date < until:
            cells[(key.date, key.district, key.signal)] += n
    released = protect(cells, protection, seed=seed)
    return [
        CountRow(institution, day, district, signal, count)
        for (day, district, signal), count in sorted(released.items())
    ]
