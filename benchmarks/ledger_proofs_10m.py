"""Inclusion/consistency proof speed and storage size of a 10 M-entry ledger on SQLite.

Builds the tree once with ``bulk_append`` (chunks of 200k entries, one transaction each) from
templated RFC 8785 ``data_access`` events (~255 bytes, the size real ones have), then times,
over --samples random leaves: proof generation from the store (one indexed read of O(log n)
node rows, through a fresh SqlStore connection pool as the API would use), verification, and
both together. Prints medians and p99, plus storage size.

Usage: .venv/bin/python benchmarks/ledger_proofs_10m.py [--n 10000000] [--db /tmp/l10m.db]
(the database is reused when it already holds --n entries)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import rfc8785

from healthmesh.ledger.compact import bulk_append
from healthmesh.ledger.hashing import leaf_hash
from healthmesh.ledger.proofs import consistency_proof, inclusion_proof, tree_root
from healthmesh.ledger.store import SqlStore
from healthmesh.ledger.verify import verify_consistency, verify_inclusion

TEMPLATE = (
    '{{"actor":"hosp-{h}","body":{{"audit_digest":"sha256:{d}","event_count":{c},'
    '"first_event":"ae-{i}","last_event":"ae-{j}","node":"hosp-{h}"}},'
    '"time":"2026-11-28T10:00:00Z","type":"data_access","v":1}}'
)


def entries(n: int) -> Iterator[bytes]:
    for i in range(n):
        d = leaf_hash(i.to_bytes(8, "big")).hex()
        yield TEMPLATE.format(h=i % 97, d=d, c=100, i=i * 100, j=i * 100 + 99).encode()


def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return (
        f"median {statistics.median(xs) * 1e3:.3f} ms, p99 {xs[int(len(xs) * 0.99)] * 1e3:.3f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--db", default="/tmp/healthmesh_ledger_10m.db")
    ap.add_argument("--samples", type=int, default=1000)
    args = ap.parse_args()
    sample = next(entries(1))
    assert rfc8785.dumps(json.loads(sample)) == sample, "template must be canonical"

    store = SqlStore(args.db, durable=False)
    size, _ = store.head()
    if size not in (0, args.n):
        raise SystemExit(f"{args.db} holds {size} entries; remove it or pass --n {size}")
    if size == 0:
        t = time.perf_counter()
        size, root = bulk_append(store, entries(args.n), chunk=200_000)
        load = time.perf_counter() - t
        print(f"bulk load: {args.n:,} entries in {load:.0f} s ({args.n / load:,.0f} entries/s)")
    store.close()

    store = SqlStore(args.db)
    size, root = store.head()
    assert tree_root(size, store) == root
    rng = random.Random(1)
    gen, ver, both, cons = [], [], [], []
    for _ in range(args.samples):
        i = rng.randrange(size)
        leaf = leaf_hash(store.get_entries(i, i + 1)[0])
        t0 = time.perf_counter()
        proof = inclusion_proof(i, size, store)
        t1 = time.perf_counter()
        verify_inclusion(i, size, leaf, proof, root)
        t2 = time.perf_counter()
        gen.append(t1 - t0)
        ver.append(t2 - t1)
        both.append(t2 - t0)
    old_sizes = [rng.randrange(1, size) for _ in range(min(200, args.samples))]
    old_roots = {m: tree_root(m, store) for m in old_sizes}
    for m in old_sizes:
        t0 = time.perf_counter()
        verify_consistency(m, size, old_roots[m], root, consistency_proof(m, size, store))
        cons.append(time.perf_counter() - t0)
    store.close()

    db_bytes = sum(os.path.getsize(p) for p in Path(args.db).parent.glob(Path(args.db).name + "*"))
    print(f"tree size: {size:,} entries, proof length {len(proof)} hashes")
    print(f"inclusion proof generation:        {_ms(gen)}")
    print(f"inclusion proof verification:      {_ms(ver)}")
    print(f"inclusion generation+verification: {_ms(both)}")
    print(f"consistency generation+verification ({len(cons)} random old sizes): {_ms(cons)}")
    print(f"storage: {db_bytes / 2**30:.2f} GiB ({db_bytes / size:.0f} bytes/entry incl. nodes)")
    target = statistics.median(both) < 1e-3
    print(f"target < 1 ms generation+verification at this size: {'MET' if target else 'NOT MET'}")


if __name__ == "__main__":
    main()
