"""Validate, index and serialise many new resources, in worker processes when it pays.

Validation and index extraction are pure CPU work on one resource at a time, so a large
transaction Bundle spreads them over the machine's cores before its rows are written (in one
database transaction, as before). Small batches stay in-process: starting workers would cost
more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from healthmesh.errors import HealthmeshError
from healthmesh.fhir.store.records import instant

if TYPE_CHECKING:
    from healthmesh.fhir.search import IndexRows

#: one prepared resource: (content, index rows) or (None, (message, location, status, code))
Prepared = tuple[bytes | None, Any]

MIN_PARALLEL = 64
#: fewest cores for which the worker pool is used by default
MIN_CORES = 4
Items = list[tuple[str, dict[str, Any], str, int, float]]
CHUNK = 100


@dataclass(frozen=True)
class Validated:
    """A resource version the store's validator has passed: id and meta set, serialised, its
    index rows extracted. Made only by :func:`validated_version` (the store's
    ``FhirStore.prepare_version``); ``WriteTx.put_validated`` writes it without validating
    it again."""

    res_type: str
    res_id: str
    version: int
    ts: float
    content: bytes
    rows: IndexRows


def stamp(resource: dict[str, Any], res_id: str, version: int, ts: float) -> None:
    """Set ``id``, ``meta.versionId`` and ``meta.lastUpdated`` (in place; meta is copied)."""
    resource["id"] = res_id
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(ts)
    resource["meta"] = meta


def validated_version(
    resource: dict[str, Any],
    res_id: str,
    version: int,
    ts: float,
    validate: Callable[[dict[str, Any]], None],
    extract: Callable[[dict[str, Any]], IndexRows],
) -> Validated:
    """Stamp ``resource`` (changed in place) as ``version`` at ``ts``, validate it (raises
    the validator's error), serialise it and extract its index rows."""
    stamp(resource, res_id, version, ts)
    validate(resource)
    return Validated(
        str(resource["resourceType"]),
        res_id,
        version,
        ts,
        orjson.dumps(resource),
        extract(resource),
    )


def prepare_items(
    items: Items,
    validate: Callable[[dict[str, Any]], None],
    extract: Callable[[dict[str, Any]], Any],
) -> list[Prepared]:
    """Set id and meta, validate, extract index rows, serialise, for each item. Errors come
    back as data: exceptions with custom signatures do not cross process boundaries."""
    out: list[Prepared] = []
    for _res_type, resource, res_id, version, ts in items:
        try:
            stamp(resource, res_id, version, ts)
            validate(resource)
            out.append((orjson.dumps(resource), extract(resource)))
        except HealthmeshError as exc:
            out.append((None, (exc.message, exc.location, exc.status, exc.code)))
    return out


def _prepare_chunk(items: Items) -> list[Prepared]:
    """Worker side: the default R4 validator and search-parameter registry."""
    from healthmesh.fhir.search import default_registry, extract
    from healthmesh.fhir.validation import check

    registry = default_registry()
    return prepare_items(items, check, lambda r: extract(r, registry))


def default_workers() -> int:
    """Worker processes to use: every core on machines with ``MIN_CORES`` or more, else 1."""
    cores = os.cpu_count() or 1
    return cores if cores >= MIN_CORES else 1


class PreparedError(HealthmeshError):
    """A resource failed validation in a worker; carries the original status and code."""

    def __init__(self, message: str, location: str | None, status: int, code: str) -> None:
        super().__init__(message, location=location)
        self.status = status
        self.code = code


class Preparer:
    """Prepares batches of resources; a process pool is started on first large batch.

    ``local`` prepares in-process (the store's own validator and registry); the pool uses the
    default R4 validator and registry, so a store configured otherwise passes ``workers=1``.
    """

    def __init__(
        self, local: Callable[[Items], list[Prepared]], workers: int | None = None
    ) -> None:
        self.local = local
        self.workers = workers if workers is not None else default_workers()
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, items: Items) -> list[Prepared]:
        if self.workers <= 1 or len(items) < MIN_PARALLEL:
            return self.local(items)
        pool = self._get_pool()
        chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
        out: list[Prepared] = []
        for part in pool.map(_prepare_chunk, chunks):
            out.extend(part)
        return out

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # forkserver: safe from a threaded server process (no fork of held locks)
                method = (
                    "forkserver"
                    if "forkserver" in multiprocessing.get_all_start_methods()
                    else "spawn"
                )
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context(method)
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
