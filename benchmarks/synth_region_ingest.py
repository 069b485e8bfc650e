"""Benchmark: generate a region, ingest every institution into its own SQLite node, reconcile
counts (received = converted + quarantined) and score data quality per institution.

    .venv/bin/python benchmarks/synth_region_ingest.py [--people 2000] [--days 365]

Prints, per institution: records received/converted/quarantined, resources written, seconds
and records/s, the quality scores and the plausibility failures next to the defects the
generator injected. The baseline in the same run is the adapters alone (convert, no store),
so the ratio shows what the store costs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from healthmesh.fhir.store import FhirStore
from healthmesh.ingest.quality import assess_store
from healthmesh.synth.region import RegionConfig, generate_region
from healthmesh.synth.region.ingest import (
    _adapter,
    ingest_institution,
    institution_files,
    region_institutions,
)


def convert_only(region: Path, institution: str) -> tuple[int, float]:
    """Records converted by the adapters alone, and the seconds it took."""
    began = time.perf_counter()
    records = 0
    for path in institution_files(region, institution):
        records += sum(1 for _ in _adapter(path, institution).convert(path.read_bytes(),
                                                                      source=path.name))
    return records, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="region_ingest_"))
    config = RegionConfig(seed=args.seed, people=args.people, days=args.days)
    t0 = time.perf_counter()
    summary = generate_region(config, work / "region")
    print(f"generated {args.people} people x {args.days} days in {time.perf_counter() - t0:.1f} s"
          f" ({summary.files} files, {summary.bytes / 1e6:.1f} MB)")
    region = work / "region"
    header = (f"{'inst':<6}{'received':>9}{'converted':>10}{'quarant.':>9}{'balanced':>9}"
              f"{'resources':>10}{'s':>7}{'rec/s':>8}{'adapt rec/s':>12}{'quality':>9}"
              f"{'future':>7}{'neg':>5}{'unit':>5}{'range':>6}")
    print(header)
    totals = {"received": 0, "converted": 0, "quarantined": 0, "seconds": 0.0, "adapt": 0.0}
    found = {"future_birth_date": 0, "negative_value": 0, "unit_mismatch": 0, "out_of_range": 0}
    for inst in region_institutions(region):
        db = work / f"{inst}.sqlite"
        load = ingest_institution(region, inst, db)
        records, adapt_s = convert_only(region, inst)
        store = FhirStore(db)
        report = assess_store(store, inst)
        store.close()
        r = report.results

        def failed(check: str, results: dict = r) -> int:
            return results[check].failed if check in results else 0

        fut = failed("patient.birthDate.future")
        neg = failed("observation.value.nonnegative")
        unit = failed("observation.unit.fits")
        ranged = failed("observation.value.range")
        found["future_birth_date"] += fut
        found["negative_value"] += neg
        found["unit_mismatch"] += unit
        found["out_of_range"] += ranged
        overall = report.scores()["overall"] or 0.0
        print(f"{inst:<6}{load.received:>9}{load.converted:>10}{load.quarantined:>9}"
              f"{load.balanced!s:>9}{load.resources:>10}{load.seconds:>7.1f}"
              f"{load.received / load.seconds:>8.0f}{records / adapt_s:>12.0f}"
              f"{100 * overall:>8.2f}%{fut:>7}{neg:>5}{unit:>5}{ranged:>6}")
        for key, value in (("received", load.received), ("converted", load.converted),
                           ("quarantined", load.quarantined)):
            totals[key] += value
        totals["seconds"] += load.seconds
        totals["adapt"] += adapt_s
    balanced = totals["received"] == totals["converted"] + totals["quarantined"]
    print(f"total: received {totals['received']}, converted {totals['converted']}, quarantined "
          f"{totals['quarantined']}, balanced {balanced}; {totals['seconds']:.1f} s into nodes "
          f"({totals['received'] / totals['seconds']:.0f} records/s); adapters alone "
          f"{totals['adapt']:.1f} s; ratio nodes/adapters "
          f"{totals['seconds'] / totals['adapt']:.1f}")
    print("injected defects:", json.dumps(summary.defects), "| found:", json.dumps(found))
    print("(a clinic's glucose column has a fixed unit: a mg/dL value there shows as out of range;"
          " negative values are out of range too)")


if __name__ == "__main__":
    main()
