"""Incremental linking throughput of the master patient index (SQLite file or PostgreSQL).

Encodes ``--n`` synthetic persons at two institutions (generator of linkage_pprl_1m.py), then
submits them one by one; prints submissions per second (median of 5 slices) and the share of
true pairs that ended under one enterprise id. Usage::

    .venv/bin/python benchmarks/linkage_mpi_incremental.py --n 2000 --db /tmp/mpi-bench.db
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from linkage_pprl_1m import SECRET, generate, record

from healthmesh.identity.mpi.service import Encoding, MasterPatientIndex
from healthmesh.identity.pprl.encode import EncodedTable, encode_table
from healthmesh.identity.pprl.presets import CHINESE_BLOCKING, chinese_schema


def _enc(table: EncodedTable, i: int) -> Encoding:
    tok = int(table.id_tokens[i])
    blocks = [int(x) or None for x in table.blocking[i]]
    return Encoding(table.clks[i].tobytes(), tok.to_bytes(8, "big") if tok else None, blocks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--db", default="/tmp/mpi-bench.db")
    args = ap.parse_args()
    n = args.n
    rng = np.random.default_rng(3)
    people = generate(n + n // 2, rng)
    side_a = [record(people, i, f"A{i}", None) for i in range(n)]
    side_b = [record(people, i, f"B{i}", rng) for i in range(n // 2, n + n // 2)]
    kwargs = {"identity_field": "id_number", "blocking_rules": CHINESE_BLOCKING}
    enc_a = encode_table(SECRET, chinese_schema(), side_a, **kwargs)  # type: ignore[arg-type]
    enc_b = encode_table(SECRET, chinese_schema(), side_b, **kwargs)  # type: ignore[arg-type]
    Path(args.db).unlink(missing_ok=True)
    mpi = MasterPatientIndex.open(args.db)
    mpi.register_institution("a", "A")
    mpi.register_institution("b", "B")
    jobs = [("a", enc_a, i) for i in range(n)] + [("b", enc_b, i) for i in range(n)]
    rates = []
    start = time.perf_counter()
    for s in range(5):
        part = jobs[s * len(jobs) // 5 : (s + 1) * len(jobs) // 5]
        t0 = time.perf_counter()
        for inst, table, i in part:
            mpi.submit(inst, str(table.ids[i]), _enc(table, i))
        rates.append(len(part) / (time.perf_counter() - t0))
    total = time.perf_counter() - start
    same = sum(
        mpi.enterprise_of("a", f"A{i}") == mpi.enterprise_of("b", f"B{i}") for i in range(n // 2, n)
    )
    print(
        f"{len(jobs)} submissions in {total:.1f}s; median {statistics.median(rates):.0f}/s; "
        f"slices {[round(r) for r in rates]}/s"
    )
    print(f"true pairs under one enterprise id: {same / (n - n // 2):.4f}")


if __name__ == "__main__":
    main()
