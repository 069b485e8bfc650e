"""Bulk NDJSON import: the fast path for loading millions of resources.

Files are streamed line by line (``.ndjson``, ``.ndjson.gz``, or JSON Bundles). Parsing,
validation and index extraction run in worker processes; the parent writes batches with
``executemany`` (SQLite) or ``COPY`` (PostgreSQL). A bad line never stops the import: it is
written to the quarantine folder with its line number and reason, and the rest goes on.
Resources keep their ids; one that already exists becomes a new version (update).
"""

from __future__ import annotations

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
from sqlalchemy import select, tuple_

from healthmesh.errors import HealthmeshError
from healthmesh.fhir.store import schema
from healthmesh.fhir.store.bulkwrite import write_batch
from healthmesh.fhir.store.records import check_id, instant, new_id

CHUNK = 1000
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


@dataclass
class Prepared:
    """A parsed, validated and indexed resource, ready to insert."""

    res_type: str
    res_id: str
    content: bytes
    rows: Any  # IndexRows


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


def prepare_chunk(
    chunk: list[tuple[str, int, bytes]], now: float
) -> tuple[list[Prepared], list[tuple[str, int, str, bytes]]]:
    """Parse, validate and index a chunk of lines (runs in a worker process)."""
    from healthmesh.fhir.search import default_registry, extract
    from healthmesh.fhir.validation import check

    registry = default_registry()
    ok: list[Prepared] = []
    bad: list[tuple[str, int, str, bytes]] = []
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
            meta["lastUpdated"] = instant(now)
            res["meta"] = meta
            check(res)
            ok.append(
                Prepared(
                    str(res["resourceType"]), res_id, orjson.dumps(res), extract(res, registry)
                )
            )
        except _Bad as exc:
            bad.append((source, line_no, str(exc), raw))
        except HealthmeshError as exc:
            where = f" at {exc.location}" if exc.location else ""
            bad.append((source, line_no, f"{exc.message}{where}", raw))
    return ok, bad


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
) -> ImportReport:
    """Import NDJSON/Bundle files into ``store``; return counts. Bad lines are quarantined."""
    report = ImportReport()
    start = time.perf_counter()
    now = time.time()
    big = sum(p.stat().st_size for p in files) > 8 * 1024 * 1024
    n_workers = workers if workers is not None else (max(1, os.cpu_count() or 1) if big else 1)
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    qfile = quarantine_dir / f"import-{int(now)}.ndjson"
    with qfile.open("ab") as qout:
        if n_workers <= 1:
            for chunk in _chunks(files):
                _consume(store, prepare_chunk(chunk, now), report, qout)
        else:
            ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            with ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
                pending: list[Future[Any]] = []
                for chunk in _chunks(files):
                    pending.append(pool.submit(prepare_chunk, chunk, now))
                    if len(pending) >= 2 * n_workers:
                        _consume(store, pending.pop(0).result(), report, qout)
                for fut in pending:
                    _consume(store, fut.result(), report, qout)
    if report.quarantined == 0:
        qfile.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - start
    return report


def _consume(
    store: Any,
    result: tuple[list[Prepared], list[tuple[str, int, str, bytes]]],
    report: ImportReport,
    qout: IO[bytes],
) -> None:
    ok, bad = result
    report.received += len(ok) + len(bad)
    for source, line_no, reason, raw in bad:
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
    if not ok:
        return
    with store.writing() as tx:
        keys = [(p.res_type, p.res_id) for p in ok]
        existing: set[tuple[str, str]] = set()
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            rows = tx.conn.execute(
                select(R.c.res_type, R.c.res_id).where(tuple_(R.c.res_type, R.c.res_id).in_(part))
            ).all()
            existing.update((r[0], r[1]) for r in rows)
        fresh = [p for p in ok if (p.res_type, p.res_id) not in existing]
        seen: set[tuple[str, str]] = set()
        unique: list[Prepared] = []
        dupes: list[Prepared] = []
        for p in fresh:
            ident = (p.res_type, p.res_id)
            (dupes if ident in seen else unique).append(p)
            seen.add(ident)
        write_batch(store, tx, unique)
        report.created += len(unique)
        for p in [q for q in ok if (q.res_type, q.res_id) in existing] + dupes:
            tx.update(p.res_type, p.res_id, orjson.loads(p.content))
            report.updated += 1
