"""Benchmark: the full region ingest (issue 3) — every institution of a synthetic region into
its own SQLite node, with the reconciliation received = converted + quarantined.

    .venv/bin/python benchmarks/ingest_region.py [--region DIR | --people 20000 --days 730]
        [--seed 42] [--nodes DIR] [--institution H01 ...]

Without ``--region`` it first generates the region with the default institutions (3 hospitals,
5 clinics, 1 CDC, 2 pharmacies). Prints, per institution: records received, converted
(created / updated / unchanged), quarantined, whether the counts balance, resources written,
wall and CPU seconds and resources/s; then the totals, the whole wall time and the load
average (the development machine is shared, so CPU seconds are printed next to wall seconds).
Exits non-zero when any institution does not balance.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from healthmesh.synth.region import RegionConfig, generate_region
from healthmesh.synth.region.ingest import ingest_institution, region_institutions


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--region", type=Path, help="an already generated region")
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--nodes", type=Path, help="folder for the node databases (kept)")
    parser.add_argument("--institution", action="append", help="only these institutions")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ingest_region_"))
    region = args.region
    if region is None:
        region = work / "region"
        t0 = time.perf_counter()
        made = generate_region(
            RegionConfig(seed=args.seed, people=args.people, days=args.days), region
        )
        print(
            f"generated {args.people} people x {args.days} days in "
            f"{time.perf_counter() - t0:.1f} s ({made.files} files, {made.bytes / 1e6:.1f} MB)"
        )
    nodes = args.nodes or work / "nodes"
    nodes.mkdir(parents=True, exist_ok=True)
    institutions = args.institution or region_institutions(region)
    print(f"region {region}; nodes in {nodes}; load average {os.getloadavg()[0]:.1f}", flush=True)
    print(
        f"{'inst':<6}{'received':>9}{'converted':>10}{'created':>9}{'updated':>9}"
        f"{'unchanged':>10}{'quarant.':>9}{'balanced':>9}{'resources':>10}{'wall s':>8}"
        f"{'CPU s':>8}{'res/s':>7}{'res/CPU-s':>10}",
        flush=True,
    )
    keys = ("received", "converted", "created", "updated", "unchanged", "quarantined", "resources")
    totals = dict.fromkeys(keys, 0)
    cpu_total = 0.0
    all_balanced = True
    began = time.perf_counter()
    for inst in institutions:
        db = nodes / f"{inst}.sqlite"
        db.unlink(missing_ok=True)
        cpu = time.process_time()
        load = ingest_institution(region, inst, db)
        cpu = time.process_time() - cpu
        cpu_total += cpu
        all_balanced &= load.balanced
        for key in keys:
            totals[key] += getattr(load, key)
        print(
            f"{inst:<6}{load.received:>9}{load.converted:>10}{load.created:>9}"
            f"{load.updated:>9}{load.unchanged:>10}{load.quarantined:>9}"
            f"{load.balanced!s:>9}{load.resources:>10}{load.seconds:>8.1f}{cpu:>8.1f}"
            f"{load.resources / load.seconds:>7.0f}{load.resources / cpu:>10.0f}",
            flush=True,
        )
    wall = time.perf_counter() - began
    t = totals
    print(
        f"total: received {t['received']}, converted {t['converted']} (created {t['created']},"
        f" updated {t['updated']}, unchanged {t['unchanged']}), quarantined "
        f"{t['quarantined']}; balanced {all_balanced}; {t['resources']} resources in "
        f"{wall:.1f} s wall = {t['resources'] / wall:.0f} resources/s, "
        f"{t['received'] / wall:.0f} records/s; CPU {cpu_total:.1f} s = "
        f"{t['resources'] / cpu_total:.0f} resources/CPU-s; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    return 0 if all_balanced else 1


if __name__ == "__main__":
    sys.exit(main())
