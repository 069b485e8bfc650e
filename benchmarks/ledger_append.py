"""Ledger append throughput on SQLite (durable: WAL + synchronous=FULL), or PostgreSQL.

Figures (medians of --repeat runs, entries/s):
  batched     one caller appending pre-encoded entries in batches of --batch
  concurrent  --threads callers appending batches of 10; group commit merges them
  events      batched, including schema validation + RFC 8785 canonicalisation
  baseline    one entry per transaction (no batching) -- ratio printed against it

Usage: .venv/bin/python benchmarks/ledger_append.py [--n 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from healthmesh.ledger.entries import encode_event, make_event, sha256_digest
from healthmesh.ledger.log import TransparencyLog
from healthmesh.ledger.note import Ed25519Signer
from healthmesh.ledger.store import SqlStore

KEY = Ed25519Signer.from_seed("bench.test/ledger", b"\7" * 32)


def _events(n: int, tag: str) -> list[dict]:
    return [
        make_event(
            "data_access",
            "hosp-a",
            {
                "node": "hosp-a",
                "audit_digest": sha256_digest(f"{tag}-{i}".encode()),
                "event_count": 100,
                "first_event": f"ae-{i}",
                "last_event": f"ae-{i + 99}",
            },
            time="2026-11-28T10:00:00Z",
        )
        for i in range(n)
    ]


PG_URL: str | None = None


def _fresh_pg(name: str) -> str:
    """A fresh schema on the PostgreSQL server given with --pg (dropped by the caller)."""
    import psycopg

    assert PG_URL is not None
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'drop schema if exists "bench_{name}" cascade')
        conn.execute(f'create schema "bench_{name}"')
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3Dbench_{name}"


def _log(tmp: Path, name: str) -> TransparencyLog:
    db = _fresh_pg(name) if PG_URL else str(tmp / f"{name}.db")
    return TransparencyLog(SqlStore(db), KEY)


def run_batched(tmp: Path, name: str, entries: list[bytes], batch: int) -> float:
    log = _log(tmp, name)
    t = time.perf_counter()
    for i in range(0, len(entries), batch):
        log.append_raw(entries[i : i + batch])
    dt = time.perf_counter() - t
    assert log.size() == len(entries)
    log.close()
    return len(entries) / dt


def run_events(tmp: Path, name: str, events: list[dict], batch: int) -> float:
    log = _log(tmp, name)
    t = time.perf_counter()
    for i in range(0, len(events), batch):
        log.append_events(events[i : i + batch])
    dt = time.perf_counter() - t
    log.close()
    return len(events) / dt


def run_concurrent(tmp: Path, name: str, entries: list[bytes], threads: int) -> float:
    log = _log(tmp, name)
    per = len(entries) // threads

    def worker(k: int) -> None:
        mine = entries[k * per : (k + 1) * per]
        for i in range(0, len(mine), 10):
            log.append_raw(mine[i : i + 10])

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    dt = time.perf_counter() - t
    n = log.size()
    log.close()
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--baseline-n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg", help="PostgreSQL URL: run on fresh schemas there instead of SQLite")
    args = ap.parse_args()
    global PG_URL
    PG_URL = args.pg
    events = _events(args.n, "x")
    entries = [encode_event(e) for e in events]
    size = statistics.median(map(len, entries))
    where = "PostgreSQL" if args.pg else "SQLite (WAL, synchronous=FULL)"
    print(f"entries: {args.n} data_access events, median size {size} B, on {where}")
    res: dict[str, list[float]] = {"batched": [], "concurrent": [], "events": [], "baseline": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for r in range(args.repeat):
            res["batched"].append(run_batched(tmp, f"b{r}", entries, args.batch))
            res["concurrent"].append(run_concurrent(tmp, f"c{r}", entries, args.threads))
            res["events"].append(run_events(tmp, f"e{r}", events, args.batch))
            res["baseline"].append(run_batched(tmp, f"s{r}", entries[: args.baseline_n], 1))
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"batched    (batch {args.batch}):           {med['batched']:>10,.0f} entries/s")
    print(f"concurrent ({args.threads} threads x batch 10):  {med['concurrent']:>10,.0f} entries/s")
    print(f"events     (validate+canonicalise):  {med['events']:>10,.0f} entries/s")
    print(f"baseline   (1 entry/transaction):    {med['baseline']:>10,.0f} entries/s")
    print(f"ratio batched/baseline:    {med['batched'] / med['baseline']:.1f}x")
    print(f"ratio concurrent/baseline: {med['concurrent'] / med['baseline']:.1f}x")
    print(f"target >= 10,000 entries/s batched: {'MET' if med['batched'] >= 10_000 else 'NOT MET'}")


if __name__ == "__main__":
    main()
