"""Benchmark: search-index extraction per resource, compiled closures vs fhirpathpy.

Loads the 60 Synthea bundles (../shared/data/synthea, 10,276 resources), then measures

- ``extract`` with the compiled closures over every resource (median of --repeats runs);
- the same ``extract`` with every expression evaluated by fhirpathpy (a registry whose
  compiler always falls back), on every --stride-th resource (fhirpathpy is slow);
- the element selection alone (closures vs fhirpathpy) on the same sample,

and prints medians per resource, the ratios, and whether both paths produced identical rows.

Run: ``.venv/bin/python benchmarks/fhir_indexing.py [--repeats 5] [--stride 10]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from healthmesh.fhir.search import extract, load_registry
from healthmesh.fhir.search.compiler import Closure
from healthmesh.fhir.search.registry import Registry, _fallback

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthea"


class FhirpathpyRegistry(Registry):
    """The same registry, with every expression evaluated by fhirpathpy."""

    def compiled(self, expression: str, root_type: str | None = None) -> Closure:
        fn = self._compiled.get((expression, root_type))
        if fn is None:
            fn = _fallback(expression)
            self._compiled[(expression, root_type)] = fn
        return fn


def load(limit: int | None) -> list[dict[str, Any]]:
    out = []
    for path in sorted(DATA.glob("*.json.gz"))[:limit]:
        with gzip.open(path, "rt") as fh:
            out.extend(e["resource"] for e in json.load(fh)["entry"])
    return out


def timed(fn: Any, resources: list[dict[str, Any]], repeats: int) -> tuple[float, float]:
    """Median (CPU, wall) seconds per resource over ``repeats`` passes.

    CPU time (``process_time``) is the figure to read: the benchmark machine is shared, and
    wall time there also measures the neighbours.
    """
    cpus, walls = [], []
    for _ in range(repeats):
        t0, w0 = time.process_time(), time.perf_counter()
        for r in resources:
            fn(r)
        cpus.append((time.process_time() - t0) / len(resources))
        walls.append((time.perf_counter() - w0) / len(resources))
    return statistics.median(cpus), statistics.median(walls)


def show(label: str, got: tuple[float, float]) -> None:
    print(f"{label:38} median {got[0] * 1e6:8.1f} us/resource CPU  [wall {got[1] * 1e6:.1f}]")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--stride", type=int, default=10, help="fhirpathpy on every n-th resource")
    ap.add_argument("--bundles", type=int, default=None)
    args = ap.parse_args()

    resources = load(args.bundles)
    sample = resources[:: args.stride]
    types = Counter(r["resourceType"] for r in resources)
    print(f"resources: {len(resources)} from Synthea; fhirpathpy sample: {len(sample)}")
    print("top types:", ", ".join(f"{t} {n}" for t, n in types.most_common(6)))

    t0 = time.perf_counter()
    reg = load_registry()
    for t in types:
        reg.plan(t)
    print(
        f"registry load + compile of {len(types)} types: {(time.perf_counter() - t0) * 1e3:.0f} ms"
    )
    fp_reg = FhirpathpyRegistry.__new__(FhirpathpyRegistry)
    fp_reg.__dict__.update(load_registry().__dict__)

    rows = sum(extract(r, reg).total() for r in resources)
    print(f"index rows: {rows} ({rows / len(resources):.1f} per resource)")

    blobs = {id(r): json.dumps(r) for r in resources}
    parse_all = timed(lambda r: json.loads(blobs[id(r)]), resources, args.repeats)
    compiled_all = timed(lambda r: extract(r, reg), resources, args.repeats)
    compiled_sample = timed(lambda r: extract(r, reg), sample, args.repeats)
    fp_sample = timed(lambda r: extract(r, fp_reg), sample, 1)

    def select(r: dict[str, Any], registry: Registry) -> None:
        focus = [(r, r["resourceType"])]
        for plan in registry.plan(r["resourceType"]):
            plan.fn(focus, r)

    sel_compiled = timed(lambda r: select(r, reg), sample, args.repeats)
    sel_fp = timed(lambda r: select(r, fp_reg), sample, 1)

    def rows_without_composites(r: dict[str, Any], registry: Registry) -> Any:
        rows = extract(r, registry)
        rows.composites = []
        return rows

    same = all(
        rows_without_composites(r, reg) == rows_without_composites(r, fp_reg) for r in sample
    )
    show("extract, compiled, all resources", compiled_all)
    show("baseline: json.loads of the resource", parse_all)
    print(f"  ratio extract / json.loads:  {compiled_all[0] / parse_all[0]:6.1f}x")
    show("extract, compiled, sample", compiled_sample)
    show("extract, fhirpathpy, sample", fp_sample)
    print(f"  ratio fhirpathpy / compiled: {fp_sample[0] / compiled_sample[0]:6.1f}x")
    show("selection only, compiled, sample", sel_compiled)
    show("selection only, fhirpathpy, sample", sel_fp)
    print(f"  ratio fhirpathpy / compiled: {sel_fp[0] / sel_compiled[0]:6.1f}x")
    # fhirpathpy returns untyped backbone elements, so composite components on them
    # (value[x] of Observation.component) cannot be evaluated there; the element-level
    # equivalence, components included, is tested in tests/fhir/test_search_equivalence.py.
    print(f"identical rows (composites aside) from both paths on the sample: {same}")
    print(f"throughput, compiled extract: {1 / compiled_all[0]:,.0f} resources/s per core")


if __name__ == "__main__":
    main()
