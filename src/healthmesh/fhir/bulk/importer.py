"""Bulk NDJSON import: the fast path for loading millions of resources.

Files are streamed line by line (``.ndjson``, ``.ndjson.gz``, or JSON Bundles). Parsing,
validation and index extraction run in worker processes; the parent writes batches with
``executemany`` (SQLite) or ``COPY`` (PostgreSQL). A bad line never stops the import: it is
written to the quarantine folder with its line number and reason, and the rest goes on.
Resources keep their ids; one that already exists becomes a new version (update).
"""

from __future__ import annotations

import contextlib
import gzip
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import Connection

from healthmesh.errors import HealthmeshError
from healthmesh.fhir.store import bulkindex, schema
from healthmesh.fhir.store.bulkwrite import write_rows
from healthmesh.fhir.store.params import empty_rows, rows_by_kind
from healthmesh.fhir.store.records import check_id, instant, new_id

CHUNK = 1000
#: NDJSON bytes per resource, roughly (Synthea: ~1,400); sizes the index-deferral decision
BYTES_PER_RESOURCE = 1400
#: imports of at least this many resources (estimated) defer the secondary indexes
DEFER_MIN = 10_000
R = schema.resource


@dataclass
class ImportReport:
    received: int = 0
    created: int = 0
    updated: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        rate = self.received / self.seconds if self.seconds else 0.0
        return (
            f"received {self.received}, created {self.created}, updated {self.updated}, "
            f"quarantined {self.quarantined} in {self.seconds:.1f} s ({rate:,.0f} resources/s)"
        )


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Lines of an NDJSON file, or the entries of a JSON Bundle file, as raw JSON."""
    name = path.name.removesuffix(".gz")
    with _open(path) as fh:
        if name.endswith(".ndjson"):
            for n, line in enumerate(fh, start=1):
                if line.strip():
                    yield n, line
            return
        doc = orjson.loads(fh.read())
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        for i, entry in enumerate(doc.get("entry") or [], start=1):
            if isinstance(entry, dict) and "resource" in entry:
                yield i, orjson.dumps(entry["resource"])
    else:
        yield 1, orjson.dumps(doc)


@dataclass
class Batch:
    """One prepared chunk: rows ready to insert and the lines that failed.

    Plain tuples only (cheap to send back from a worker): ``resources`` in the column order
    of ``fhir_resource``, ``index`` per index kind in the column order of its ``idx_*``
    table, ``bad`` as (file, line, reason, raw line).
    """

    resources: list[tuple[Any, ...]] = field(default_factory=list)
    index: dict[str, list[tuple[Any, ...]]] = field(default_factory=empty_rows)
    bad: list[tuple[str, int, str, bytes]] = field(default_factory=list)


def prepare_chunk(
    chunk: list[tuple[str, int, bytes]],
    now: float,
    lids: list[int],
    pids: dict[tuple[str, str], int],
) -> Batch:
    """Parse, validate and index a chunk of lines (runs in a worker process). The n-th good
    line gets ``lids[n]``; ``pids`` maps (type, parameter code) to the store's pid."""
    from healthmesh.fhir.search import default_registry, extract
    from healthmesh.fhir.validation import check

    registry = default_registry()
    stamp = instant(now)
    out = Batch()
    free = iter(lids)
    for source, line_no, raw in chunk:
        try:
            try:
                res = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise _Bad(f"not valid JSON (at character {exc.pos})") from None
            if not isinstance(res, dict):
                raise _Bad("a line must hold one JSON object")
            rid = res.get("id")
            res_id = check_id(rid) if isinstance(rid, str) else new_id()
            res["id"] = res_id
            meta = dict(res.get("meta") or {})
            meta["versionId"] = "1"
            meta["lastUpdated"] = stamp
            res["meta"] = meta
            check(res)
            rows = extract(res, registry)
            rtype = str(res["resourceType"])
            lid = next(free)
            out.resources.append((lid, rtype, res_id, 1, now, False, "POST", orjson.dumps(res)))
            rows_by_kind(pids, rtype, lid, rows, out.index)
        except _Bad as exc:
            out.bad.append((source, line_no, str(exc), raw))
        except HealthmeshError as exc:
            where = f" at {exc.location}" if exc.location else ""
            out.bad.append((source, line_no, f"{exc.message}{where}", raw))
    return out


class _Bad(Exception):
    pass


def _chunks(files: Iterable[Path]) -> Iterator[list[tuple[str, int, bytes]]]:
    chunk: list[tuple[str, int, bytes]] = []
    for path in files:
        try:
            for line_no, raw in _lines(path):
                chunk.append((path.name, line_no, raw))
                if len(chunk) >= CHUNK:
                    yield chunk
                    chunk = []
        except (OSError, EOFError, orjson.JSONDecodeError):
            chunk.append((path.name, 0, b""))  # the file itself is broken: quarantine a marker
    if chunk:
        yield chunk


def import_files(
    store: Any,
    files: list[Path],
    *,
    quarantine_dir: Path,
    workers: int | None = None,
    defer_indexes: bool | None = None,
) -> ImportReport:
    """Import NDJSON/Bundle files into ``store``; return counts. Bad lines are quarantined.

    ``defer_indexes`` drops the secondary search indexes for the load and rebuilds them at
    the end (:mod:`healthmesh.fhir.store.bulkindex`); by default a load does so when it is
    large (about ``DEFER_MIN`` resources or more) and at least half the store's size.
    """
    report = ImportReport()
    start = time.perf_counter()
    now = time.time()
    size = sum(p.stat().st_size * (8 if p.suffix == ".gz" else 1) for p in files)
    big = size > 8 * 1024 * 1024
    n_workers = workers if workers is not None else (max(1, os.cpu_count() or 1) if big else 1)
    if defer_indexes is None:
        est = size // BYTES_PER_RESOURCE
        defer_indexes = est >= DEFER_MIN and est >= store.count() // 2
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    qfile = quarantine_dir / f"import-{int(now)}.ndjson"
    lids = _LidPool(store)
    pids = dict(store.params.pids)
    load = bulkindex.deferred(store.db) if defer_indexes else contextlib.nullcontext()
    with qfile.open("ab") as qout, load:
        if n_workers <= 1:
            for chunk in _chunks(files):
                batch = prepare_chunk(chunk, now, lids.take(len(chunk)), pids)
                _consume(store, batch, report, qout, defer_indexes)
        else:
            ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            with ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
                pending: list[Future[Batch]] = []
                for chunk in _chunks(files):
                    take = lids.take(len(chunk))
                    pending.append(pool.submit(prepare_chunk, chunk, now, take, pids))
                    if len(pending) >= 2 * n_workers:
                        _consume(store, pending.pop(0).result(), report, qout, defer_indexes)
                for fut in pending:
                    _consume(store, fut.result(), report, qout, defer_indexes)
    if report.quarantined == 0:
        qfile.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - start
    return report


class _LidPool:
    """Resource keys handed to workers ahead of the write, allocated in large blocks (keys
    of lines that fail or turn out to be updates are simply never used)."""

    BLOCK = 20_000

    def __init__(self, store: Any) -> None:
        self.store = store
        self.free: list[int] = []

    def take(self, n: int) -> list[int]:
        if len(self.free) < n:
            with self.store.db.write() as conn:
                self.free.extend(self.store.db.allocate_lids(conn, max(n, self.BLOCK)))
        got, self.free = self.free[:n], self.free[n:]
        return got


def _existing(conn: Connection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (type, id) pairs are stored already: one IN query per type and 500 ids, on the
    unique (type, id) index. Plain driver SQL: the statement differs in length every time, so
    building it through SQLAlchemy would cost more than the lookups."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, []).append(rid)
    marks = "?" if conn.dialect.name == "sqlite" else "%s"
    found: set[tuple[str, str]] = set()
    for rtype, ids in by_type.items():
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            sql = (
                f"SELECT res_id FROM {R.name} WHERE res_type = {marks} "
                f"AND res_id IN ({', '.join([marks] * len(part))})"
            )
            rows = conn.exec_driver_sql(sql, (rtype, *part)).all()
            found.update((rtype, r[0]) for r in rows)
    return found


def _consume(
    store: Any, batch: Batch, report: ImportReport, qout: IO[bytes], heartbeat: bool
) -> None:
    report.received += len(batch.resources) + len(batch.bad)
    for source, line_no, reason, raw in batch.bad:
        report.quarantined += 1
        why = reason.split(" at ")[0][:80]
        report.reasons[why] = report.reasons.get(why, 0) + 1
        qout.write(
            orjson.dumps(
                {
                    "file": source,
                    "line": line_no,
                    "reason": reason,
                    "raw": raw.decode("utf-8", errors="replace"),
                }
            )
            + b"\n"
        )
    if not batch.resources:
        return
    with store.writing() as tx:
        if heartbeat:
            bulkindex.beat(tx.conn)
        existing = _existing(tx.conn, [(r[1], r[2]) for r in batch.resources])
        seen: set[tuple[str, str]] = set()
        fresh: list[tuple[Any, ...]] = []
        again: list[tuple[Any, ...]] = []
        for r in batch.resources:
            ident = (r[1], r[2])
            (again if ident in existing or ident in seen else fresh).append(r)
            seen.add(ident)
        index = batch.index
        if again:  # drop the index rows of resources that become updates instead
            keep = {r[0] for r in fresh}
            index = {k: [row for row in rows if row[0] in keep] for k, rows in index.items()}
        write_rows(tx, fresh, index)
        report.created += len(fresh)
        for r in again:
            tx.update(r[1], r[2], orjson.loads(r[7]))
            report.updated += 1
