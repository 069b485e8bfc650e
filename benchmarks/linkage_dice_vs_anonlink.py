"""Bloom-filter Dice comparisons per second: healthmesh's compiled kernel vs anonlink's C++
``dice_coefficient_accelerated``, on the same CLKs (FEBRL4 encoded), same run.

Both compute all pairs of an n x n slice and keep pairs with Dice >= threshold. Prints the
median comparisons/s of each and the ratio. Usage::

    .venv/bin/python benchmarks/linkage_dice_vs_anonlink.py --n 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd
from bitarray import bitarray

from healthmesh.identity.engine.presets import prepare_febrl
from healthmesh.identity.pprl.bloom import EncodingSchema
from healthmesh.identity.pprl.encode import encode_table
from healthmesh.identity.pprl.presets import febrl_schema
from healthmesh.identity.pprl.similarity import as_words, dice_all_pairs

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/febrl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.75)
    ap.add_argument("--balanced", action="store_true", help="use balanced (2048-bit) filters")
    args = ap.parse_args()
    schema = febrl_schema()
    schema = EncodingSchema(schema.fields, schema.length, balanced=args.balanced)
    tables = []
    for name in ("febrl4a.csv", "febrl4b.csv"):
        frame = prepare_febrl(pd.read_csv(DATA / name, dtype=str)).drop(columns=["soc_sec_id"])
        records = frame.to_dict("records")
        tables.append(encode_table(b"benchmark-secret-0123456789abcdef", schema, records))
    a, b = tables[0].clks[: args.n], tables[1].clks[: args.n]
    pairs = a.shape[0] * b.shape[0]
    bits = a.shape[1] * 8

    from anonlink.similarities import dice_coefficient_accelerated

    ba = [bitarray(np.unpackbits(r).astype(bool).tolist()) for r in a]
    bb = [bitarray(np.unpackbits(r).astype(bool).tolist()) for r in b]
    wa, wb = as_words(a), as_words(b)
    dice_all_pairs(wa[:10], wb[:10], args.threshold)  # compile the kernel outside the timing
    rates: dict[str, float] = {}
    found: dict[str, int] = {}
    for name in ("healthmesh", "anonlink"):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            if name == "healthmesh":
                found[name] = int(dice_all_pairs(wa, wb, args.threshold)[0].shape[0])
            else:
                sims, _ = dice_coefficient_accelerated([ba, bb], args.threshold)
                found[name] = len(sims)
            times.append(time.perf_counter() - start)
        rates[name] = pairs / statistics.median(times)
        med = statistics.median(times)
        print(
            f"{name:11s} {bits}-bit filters, {pairs:,} pairs: median {med:.3f}s "
            f"= {rates[name] / 1e6:.1f} M comparisons/s, {found[name]} pairs >= {args.threshold}"
        )
    ratio = rates["healthmesh"] / rates["anonlink"]
    print(f"ratio healthmesh/anonlink = {ratio:.2f} (target >= 1)")
    print(
        f"healthmesh kernel threads {numba.get_num_threads()} (NUMBA_NUM_THREADS=1 for one, "
        f"as anonlink's accelerated Dice uses); load average {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
