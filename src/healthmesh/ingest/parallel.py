"""Parallel HL7 v2 ingestion: worker processes decode, parse, map, validate and index chunks
of messages; the parent only decides create/update/unchanged and writes (one transaction per
chunk). The same split as the node's bulk NDJSON importer: the CPU-heavy part scales with
cores, the single writer keeps SQLite happy and the order of messages intact.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from healthmesh.errors import HealthmeshError
from healthmesh.fhir.store.prepare import Validated, validated_version
from healthmesh.ingest.adapter import Converted, Outcome
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.hl7v2.decode import RawMessage, split_messages

#: messages per worker task
CHUNK = 200

Item = tuple[Outcome, bytes]
Prework = dict[tuple[str, str], Validated | tuple[str, str | None]]


def prepare_chunk(
    institution: str, tz: str, source: str, raws: list[tuple[int, bytes]], now: float
) -> tuple[list[Item], Prework]:
    """Worker: convert messages and prepare every resource as a new version."""
    from healthmesh.fhir.search import default_registry, extract
    from healthmesh.fhir.validation import check

    registry = default_registry()
    adapter = Hl7v2Adapter(institution, default_tz=tz)
    items: list[Item] = []
    prework: Prework = {}

    def index(res: dict[str, Any]) -> Any:
        return extract(res, registry)

    repeated: set[tuple[str, str]] = set()
    for number, data in raws:
        outcome = adapter.convert_one(RawMessage(number, data), source=f"{source}#{number}")
        items.append((outcome, data))
        if isinstance(outcome, Converted):
            for res in outcome.resources:
                key = (res["resourceType"], res["id"])
                if key in prework:
                    repeated.add(key)
                    continue
                try:
                    prework[key] = validated_version(dict(res), key[1], 1, now, check, index)
                except HealthmeshError as exc:
                    prework[key] = (exc.message, exc.location)
    for key in repeated:
        # a key written twice in one chunk (e.g. a patient's A01 then A08): which content
        # becomes version 1 is decided by the writer, so it prepares those itself
        del prework[key]
    return items, prework


def chunks_in_workers(
    adapter: Hl7v2Adapter, data: bytes, source: str, workers: int
) -> Iterator[tuple[list[Item], Prework]]:
    """Prepared chunks in source order, computed by ``workers`` processes."""
    now = time.time()
    ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending: list[Future[tuple[list[Item], Prework]]] = []
        batch: list[tuple[int, bytes]] = []

        def submit() -> None:
            pending.append(
                pool.submit(
                    prepare_chunk, adapter.institution, adapter.default_tz, source, batch, now
                )
            )

        for raw in split_messages(data):
            batch.append((raw.number, raw.data))
            if len(batch) >= CHUNK:
                submit()
                batch = []
                while len(pending) > 2 * workers:
                    yield pending.pop(0).result()
        if batch:
            submit()
        for fut in pending:
            yield fut.result()


def default_workers(size: int, cpu_count: Callable[[], int | None] = os.cpu_count) -> int:
    """Workers for an input of ``size`` bytes: one below 4 MB, else up to the cores."""
    return 1 if size < 4 * 1024 * 1024 else max(1, min(8, cpu_count() or 1))
