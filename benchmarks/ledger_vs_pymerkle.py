"""Root and proof computation: healthmesh.ledger vs pymerkle (PyPI) on the same workload.

Same --n entries for both; both libraries produce RFC 9162 roots and the script checks the
roots agree. Timed (median of --repeat runs): building the tree + root from scratch, inclusion
proof generation + verification for --proofs random leaves, consistency proof generation +
verification for --proofs random old sizes. Both in memory, and both persistent on SQLite
(our SqlStore vs pymerkle.SqliteTree). Ratio = pymerkle time / healthmesh time.

Usage: .venv/bin/python benchmarks/ledger_vs_pymerkle.py [--n 100000] [--proofs 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from pymerkle import InmemoryTree, SqliteTree
from pymerkle import verify_consistency as pm_verify_consistency
from pymerkle import verify_inclusion as pm_verify_inclusion

from healthmesh.ledger.compact import bulk_append
from healthmesh.ledger.hashing import leaf_hash
from healthmesh.ledger.proofs import MemoryNodes, consistency_proof, inclusion_proof, tree_root
from healthmesh.ledger.store import SqlStore
from healthmesh.ledger.verify import verify_consistency, verify_inclusion


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--proofs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    n = args.n
    entries = [f"entry-{i}".encode() for i in range(n)]
    rng = random.Random(5)
    idx = [rng.randrange(n) for _ in range(args.proofs)]
    olds = [rng.randrange(1, n) for _ in range(args.proofs)]

    # -- build + root ----------------------------------------------------------------------
    def ours_build() -> MemoryNodes:
        return MemoryNodes([leaf_hash(e) for e in entries])

    def pm_build() -> InmemoryTree:
        return InmemoryTree.init_from_entries(entries, algorithm="sha256")

    ours, pm = ours_build(), pm_build()
    assert tree_root(n, ours) == pm.get_state(n), "roots must agree"
    t_ours_build = median_time(lambda: tree_root(n, ours_build()), args.repeat)
    t_pm_build = median_time(lambda: pm_build().get_state(n), args.repeat)

    # -- proofs in memory ------------------------------------------------------------------
    root = tree_root(n, ours)
    leaf_hashes = [leaf_hash(e) for e in entries]
    old_roots = {m: tree_root(m, ours) for m in olds}

    def ours_incl() -> None:
        for i in idx:
            verify_inclusion(i, n, leaf_hashes[i], inclusion_proof(i, n, ours), root)

    def pm_incl() -> None:
        for i in idx:
            pm_verify_inclusion(pm.get_leaf(i + 1), root, pm.prove_inclusion(i + 1, n))

    def ours_cons() -> None:
        for m in olds:
            verify_consistency(m, n, old_roots[m], root, consistency_proof(m, n, ours))

    def pm_cons() -> None:
        for m in olds:
            pm_verify_consistency(old_roots[m], root, pm.prove_consistency(m, n))

    t = {
        "incl_ours": median_time(ours_incl, args.repeat),
        "incl_pm": median_time(pm_incl, args.repeat),
        "cons_ours": median_time(ours_cons, args.repeat),
        "cons_pm": median_time(pm_cons, args.repeat),
    }

    # -- persistent on SQLite ------------------------------------------------------------
    with tempfile.TemporaryDirectory() as d:
        store = SqlStore(Path(d) / "ours.db", durable=False)
        t0 = time.perf_counter()
        _, sroot = bulk_append(store, entries, chunk=50_000)
        t_ours_sql_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        pm_sql = SqliteTree(str(Path(d) / "pm.db"), algorithm="sha256")
        pm_sql.append_entries(entries)
        pm_sql_root = pm_sql.get_state(n)
        t_pm_sql_build = time.perf_counter() - t0
        assert sroot == pm_sql_root == root

        def ours_sql_incl() -> None:
            for i in idx:
                verify_inclusion(i, n, leaf_hashes[i], inclusion_proof(i, n, store), root)

        def pm_sql_incl() -> None:
            for i in idx:
                pm_verify_inclusion(pm_sql.get_leaf(i + 1), root, pm_sql.prove_inclusion(i + 1, n))

        t["sql_incl_ours"] = median_time(ours_sql_incl, args.repeat)
        t["sql_incl_pm"] = median_time(pm_sql_incl, args.repeat)
        store.close()

    k = args.proofs
    print(f"workload: {n:,} entries, {k} random proofs, median of {args.repeat} runs")
    rows = [
        ("build tree + root (memory)", t_ours_build, t_pm_build, 1),
        (f"inclusion gen+verify x{k} (memory)", t["incl_ours"], t["incl_pm"], k),
        (f"consistency gen+verify x{k} (memory)", t["cons_ours"], t["cons_pm"], k),
        ("build tree + root (SQLite, 1 run)", t_ours_sql_build, t_pm_sql_build, 1),
        (f"inclusion gen+verify x{k} (SQLite)", t["sql_incl_ours"], t["sql_incl_pm"], k),
    ]
    print(f"{'':42} {'healthmesh':>12} {'pymerkle':>12} {'ratio':>8}")
    for name, ours_t, pm_t, per in rows:
        unit = "s" if per == 1 else "ms/op"
        scale = 1 if per == 1 else 1e3 / per
        print(
            f"{name:42} {ours_t * scale:>10.4f}{unit[:2]:>2} {pm_t * scale:>10.4f}{unit[:2]:>2}"
            f" {pm_t / ours_t:>7.1f}x"
        )
    print("ratio = pymerkle time / healthmesh time (higher is better for healthmesh)")


if __name__ == "__main__":
    main()
