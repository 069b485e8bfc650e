"""Benchmark: generate the synthetic region (default 20,000 people x 730 days) and report time
and size. Target (issue 3): <= 120 s on the project machine.

    .venv/bin/python benchmarks/synth_region.py [--people 20000] [--days 730] [--repeat 1]

Prints the median wall and CPU time of the whole generation, the share spent simulating
(no files), output size, per-institution counts, and the ratio to the 120 s target.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from healthmesh.synth.region import RegionConfig, generate_region, simulate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    config = RegionConfig(seed=args.seed, people=args.people, days=args.days)
    walls, cpus, sims = [], [], []
    summary = None
    for _ in range(args.repeat):
        out = Path(tempfile.mkdtemp(prefix="synth_region_"))
        t0, c0 = time.perf_counter(), time.process_time()
        simulate(config)
        sims.append(time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.process_time()
        summary = generate_region(config, out)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        shutil.rmtree(out)
    assert summary is not None
    wall, cpu, sim = statistics.median(walls), statistics.median(cpus), statistics.median(sims)
    print(f"region: {args.people} people x {args.days} days, seed {args.seed}, runs {args.repeat}")
    print(f"generation wall median {wall:.1f} s, CPU {cpu:.1f} s; simulation only {sim:.1f} s")
    print(f"output: {summary.files} files, {summary.bytes / 1e6:.1f} MB")
    for inst, info in summary.institutions.items():
        print(f"  {inst:<6} {info['kind']:<9} {info['counts']}")
    print(f"outbreaks {summary.outbreaks}; injected defects {summary.defects}")
    print(f"ratio wall / 120 s target: {wall / 120:.2f}; CPU / target: {cpu / 120:.2f}")


if __name__ == "__main__":
    main()
