"""FHIR node benchmark: import (transaction bundles, bulk NDJSON, raw-insert limit), search
latency, ``_summary=count`` throughput, NDJSON export, peak RSS.

Usage:
    python benchmarks/fhir_node.py [--copies N] [--db sqlite|postgres] [--queries 50]

``--copies N`` writes the 60 Synthea bundles N times with fresh ids as NDJSON (10,276
resources per copy; N=100 is ~1 M). Figures are medians; the raw limit is measured in the
same run on the same NDJSON (parse + insert into one un-indexed table).

The machine is shared, so the import lines also give CPU seconds per resource (this
process and its worker processes together) and the load average: wall-clock rates fall
when neighbours are busy, CPU per resource does not. ``--defer yes|no|auto`` chooses
whether the bulk import defers its secondary indexes (default: the importer decides).

PostgreSQL (``--db postgres``, ``--pg-url``, default the local ``test`` database): each run
works in a fresh schema, dropped at the end unless ``--keep``; with a local server the
import also reports the server's CPU per resource (its processes read from ``/proc``).
``--ndjson PATH`` reuses a generated file (written there when missing), which saves minutes
at 1 M.

``--search-only`` skips the import and export and times the searches alone, on a store kept
from an earlier run: ``--schema NAME`` (PostgreSQL, the name ``--keep`` printed) or
``--sqlite PATH``. With it, ``--extra`` also times a chained search's second page (by
cursor), the chain with ``_total=accurate`` and sorted on two keys, and a broad search's
later pages.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from healthmesh.fhir.bulk.export import Exporter, ExportRequest
from healthmesh.fhir.bulk.importer import import_files
from healthmesh.fhir.bundles import BundleProcessor
from healthmesh.fhir.store import FhirStore

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def bundles() -> list[dict]:
    return [
        json.loads(gzip.decompress(p.read_bytes()))
        for p in sorted((SHARED / "synthea").glob("*.json.gz"))
    ]


def write_ndjson(out: Path, copies: int) -> int:
    """Copies of every Synthea resource with fresh ids (references rewritten consistently)."""
    n = 0
    with out.open("wb") as fh:
        for _ in range(copies):
            for b in bundles():
                mapping = {
                    e["fullUrl"]: f"{e['resource']['resourceType']}/{uuid.uuid4()}"
                    for e in b["entry"]
                }
                text = orjson.dumps([e["resource"] for e in b["entry"]]).decode()
                for old, new in mapping.items():
                    text = text.replace(f'"{old}"', f'"{new}"')
                for res, (_, new) in zip(json.loads(text), mapping.items(), strict=True):
                    res["id"] = new.split("/")[1]
                    fh.write(orjson.dumps(res) + b"\n")
                    n += 1
    return n


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the import's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def server_cpu() -> float:
    """CPU seconds of the local PostgreSQL server's processes, exited backends included (they
    count in the postmaster's children times); 0 where no such process is visible."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].partition(") ")
        if name == "postgres":
            f = rest.split()
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / hz


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def raw_limit(path: Path, db: Path) -> tuple[float, float]:
    """(resources/s, CPU seconds per resource) of parse + insert into one un-indexed table."""
    cpu = cpu_seconds()
    conn = sqlite3.connect(db)
    conn.execute("create table raw (id text, type text, content blob)")
    start = time.perf_counter()
    batch = []
    n = 0
    with path.open("rb") as fh:
        for line in fh:
            res = orjson.loads(line)
            batch.append((res.get("id"), res["resourceType"], orjson.dumps(res)))
            n += 1
            if len(batch) >= 2000:
                conn.executemany("insert into raw values (?,?,?)", batch)
                conn.commit()
                batch.clear()
    conn.executemany("insert into raw values (?,?,?)", batch)
    conn.commit()
    conn.close()
    return n / (time.perf_counter() - start), (cpu_seconds() - cpu) / n


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--db", default="sqlite")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--defer", choices=["yes", "no", "auto"], default="auto")
    ap.add_argument(
        "--ndjson",
        type=Path,
        help="NDJSON file to reuse (written there first when missing; must match --copies)",
    )
    ap.add_argument(
        "--keep", action="store_true", help="keep the PostgreSQL schema (dropped by default)"
    )
    ap.add_argument("--schema", help="PostgreSQL: an existing schema to use (kept)")
    ap.add_argument("--sqlite", type=Path, help="SQLite: an existing store file to use")
    ap.add_argument(
        "--search-only", action="store_true", help="time the searches only (existing store)"
    )
    ap.add_argument("--extra", action="store_true", help="with --search-only: more searches")
    args = ap.parse_args()
    if args.search_only and not (args.schema or args.sqlite):
        ap.error("--search-only needs --schema or --sqlite")
    tmp = Path(tempfile.mkdtemp(prefix="hm-bench-")) if not args.search_only else Path()
    url = str(args.sqlite or tmp / "node.sqlite") if args.db == "sqlite" else args.pg_url
    if args.db != "sqlite":
        import psycopg

        schema = args.schema or "bench_" + uuid.uuid4().hex[:8]
        if not args.schema:
            with psycopg.connect(args.pg_url, autocommit=True) as c:
                c.execute(f"create schema {schema}")
        url = f"{args.pg_url}?options=-csearch_path%3D{schema}"
    store = FhirStore(url)
    try:
        if args.search_only:
            search_latency(store, args)
        else:
            run(store, args, tmp)
    finally:
        store.close()
        if args.db != "sqlite" and not args.keep and not args.schema:
            with psycopg.connect(args.pg_url, autocommit=True) as c:
                c.execute(f"drop schema {schema} cascade")
        elif args.db != "sqlite":
            print(f"kept schema {schema}")


def run(store: FhirStore, args: argparse.Namespace, tmp: Path) -> None:
    # 1. transaction bundles (the 60 Synthea bundles as-is)
    proc = BundleProcessor(store, lambda _t, _i: None, lambda _u: {})
    data = bundles()
    n = sum(len(b["entry"]) for b in data)
    t = time.perf_counter()
    for b in data:
        proc.process(b)
    txn_rate = n / (time.perf_counter() - t)
    print(f"transaction bundles: {n} resources, {txn_rate:,.0f} resources/s ({load()})")

    # 2. bulk NDJSON import vs the raw limit
    nd = args.ndjson or tmp / "big.ndjson"
    if not nd.exists():
        write_ndjson(nd, args.copies)
    raw, raw_cpu = raw_limit(nd, tmp / "raw.sqlite")
    defer = {"yes": True, "no": False, "auto": None}[args.defer]
    cpu, server = cpu_seconds(), server_cpu()
    report = import_files(store, [nd], quarantine_dir=tmp / "q", defer_indexes=defer)
    bulk_cpu = (cpu_seconds() - cpu) / report.received
    server = (server_cpu() - server) / report.received
    bulk_rate = report.received / report.seconds
    print(f"bulk NDJSON import: {report.summary()} ({load()})")
    print(
        f"  CPU {bulk_cpu * 1e6:,.0f} us/resource (all processes); on 2 idle cores at most "
        f"{2 / bulk_cpu:,.0f} resources/s"
    )
    if args.db == "postgres" and server:
        print(
            f"  PostgreSQL server CPU {server * 1e6:,.0f} us/resource (local server processes, "
            f"other clients' work included); with the client, on 2 idle cores at most "
            f"{2 / (bulk_cpu + server):,.0f} resources/s"
        )
    print(
        f"raw limit (parse + insert un-indexed): {raw:,.0f} resources/s, CPU "
        f"{raw_cpu * 1e6:,.1f} us/resource; bulk/raw = {bulk_rate / raw:.2f} (wall), "
        f"{raw_cpu / bulk_cpu:.2f} (CPU)"
    )

    # 3. search latency
    search_latency(store, args)
    count_total = store.count()

    # 4. export
    exp = Exporter(store, tmp / "exports")
    types = sorted({"Patient", "Observation", "Condition", "Encounter", "Procedure"})
    t = time.perf_counter()
    job = exp.start(ExportRequest(level="system", types=types), background=False)
    secs = time.perf_counter() - t
    exported = sum(o["count"] for o in job.outputs)
    print(f"$export: {exported:,} resources in {secs:.1f} s = {exported / secs:,.0f} resources/s")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"store holds {count_total:,} resources; peak RSS {rss:,.0f} MiB")


def search_latency(store: FhirStore, args: argparse.Namespace) -> None:
    """Median and p95 latency of the benchmark's searches, and ``_summary=count`` speed."""
    eng = store.search_engine
    pat = eng.search("Patient", [("_count", "1")]).matches[0]
    name = pat.resource()["name"][0]["family"][:4]
    loinc = "http://loinc.org|8302-2"
    queries = {
        "Observation?code=X": [("code", loinc)],
        "Observation?code=X&date=ge": [("code", loinc), ("date", "ge2015-01-01")],
        "Observation?subject=Patient/Y": [("subject", f"Patient/{pat.res_id}")],
        "Patient?name=": [("name", name)],
        "Condition?code&_include=subject": [
            ("code", "http://snomed.info/sct|44054006"),
            ("_include", "Condition:subject"),
        ],
        "Observation?subject:Patient.name=": [("subject:Patient.name", name), ("_count", "10")],
    }
    if args.search_only and args.extra:
        chain = [("subject:Patient.name", name), ("_count", "10")]
        after = eng.search("Observation", chain).next_cursor or ""
        broad = eng.search("Observation", [("code", loinc)])
        later = eng.search("Observation", [("code", loinc), ("_cursor", broad.next_cursor or "")])
        queries |= {
            "chain, page 2 (_cursor)": [*chain, ("_cursor", after)],
            "chain&_total=accurate": [*chain, ("_total", "accurate")],
            "chain&_sort=-date,_id": [*chain, ("_sort", "-date,_id")],
            "Observation?code=X page 3 (_cursor)": [
                ("code", loinc),
                ("_cursor", later.next_cursor or ""),
            ],
            "Observation?code=X&_sort=-date": [("code", loinc), ("_sort", "-date")],
        }
    for label, pairs in queries.items():
        rtype = label.split("?")[0] if "?" in label else "Observation"
        ms = timed(lambda p=pairs, t=rtype: eng.search(t, p), args.queries)
        q = statistics.quantiles(ms, n=20)
        print(f"search {label}: p50 {statistics.median(ms):.1f} ms, p95 {q[18]:.1f} ms ({load()})")
    ms = timed(lambda: eng.search("Observation", [("_summary", "count")]), 5)
    obs = store.count("Observation")
    print(
        f"_summary=count over {obs:,} Observations: {obs / (statistics.median(ms) / 1000):,.0f} "
        f"resources counted/s"
    )


if __name__ == "__main__":
    sys.exit(main())
