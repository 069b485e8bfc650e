"""Benchmark R4 validation over the 60 Synthea bundles in ../shared/data/synthea.

Prints medians over ``--rounds`` rounds of:

- ``validate`` per entry resource (what bulk import does): resources/s and µs/resource;
- ``validate`` of whole transaction bundles (what a transaction POST does);
- two baselines measured in the same run on the same data: ``orjson.loads`` of each resource
  (the parse the store does anyway) and a bare recursive walk that touches every JSON node
  without checking anything (a floor for any pure-Python validator);

the ratios validation/parse and validation/bare-walk, and the median time per resource
type. Times are process CPU time.

Run: ``.venv/bin/python benchmarks/fhir_validation.py [--rounds 5] [--data DIR]``
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from pathlib import Path
from typing import Any

import orjson

from healthmesh.fhir.validation import validate

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthea"


def bare_walk(node: Any) -> int:
    """Visit every JSON node; the cheapest possible full traversal."""
    if type(node) is dict:
        n = 1
        for v in node.values():
            n += bare_walk(v)
        return n
    if type(node) is list:
        n = 0
        for v in node:
            n += bare_walk(v)
        return n
    return 1


def timed(fn: Any, items: list[Any]) -> float:
    """CPU seconds of this process to apply ``fn`` to every item once.

    CPU time rather than wall time: the machine is shared, and wall time mostly measures
    how long we waited for a core.
    """
    t0 = time.process_time()
    for item in items:
        fn(item)
    return time.process_time() - t0


def main() -> None:
    """Run the benchmark and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    bundles = [orjson.loads(gzip.decompress(p.read_bytes()))
               for p in sorted(args.data.glob("*.json.gz"))]
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    raw = [orjson.dumps(r) for r in resources]
    errors = sum(1 for r in resources for i in validate(r) if i.severity == "error")
    print(f"data: {len(bundles)} bundles, {len(resources)} resources, "
          f"{sum(map(len, raw)) / 1e6:.1f} MB JSON; errors found: {errors}")
    rows: dict[str, list[float]] = {"validate": [], "bundle": [], "parse": [], "walk": []}
    for _ in range(args.rounds):
        rows["validate"].append(timed(validate, resources))
        rows["bundle"].append(timed(validate, bundles))
        rows["parse"].append(timed(orjson.loads, raw))
        rows["walk"].append(timed(bare_walk, resources))
    med = {k: statistics.median(v) for k, v in rows.items()}
    n = len(resources)
    for name, label in (("validate", "validate per resource"),
                        ("bundle", "validate whole bundles"),
                        ("parse", "baseline orjson.loads"),
                        ("walk", "baseline bare JSON walk")):
        print(f"{label:26s} {n / med[name]:10,.0f} resources/s  "
              f"{med[name] / n * 1e6:7.1f} µs/resource (median of {args.rounds})")
    print(f"ratio validate/parse {med['validate'] / med['parse']:.1f}x, "
          f"validate/bare-walk {med['validate'] / med['walk']:.1f}x")
    per_type: dict[str, list[int]] = {}
    clock = time.process_time_ns
    for res in resources:
        t0 = clock()
        validate(res)
        per_type.setdefault(res["resourceType"], []).append(clock() - t0)
    print("median µs per resource by type (one pass, CPU time):")
    for rtype, times in sorted(per_type.items(), key=lambda kv: -len(kv[1]))[:8]:
        print(f"  {rtype:22s} n={len(times):5d}  {statistics.median(times) / 1e3:7.1f} µs")


if __name__ == "__main__":
    main()
