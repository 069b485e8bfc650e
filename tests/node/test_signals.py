"""Node-side surveillance counts come from the node's FHIR store and are protected."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from healthmesh.cli import main
from healthmesh.fhir.bundles import BundleProcessor
from healthmesh.fhir.store import FhirStore
from healthmesh.node.signals import node_counts
from healthmesh.surveillance.pipeline import read_counts_csv
from healthmesh.surveillance.signals.counts import daily_counts
from healthmesh.surveillance.signals.protection import Protection
from healthmesh.synth.sample import sample_bundle


def test_counts_from_the_store_equal_counts_on_the_source(tmp_path: Path) -> None:
    bundle = sample_bundle(60, seed=3)
    expected: dict[tuple[dt.date, str, str], int] = {}
    src = copy.deepcopy(bundle)
    for i, e in enumerate(src["entry"]):  # same data, ids as the bundle's own urn:uuids
        e["resource"]["id"] = f"r{i}"
    ids = {e["fullUrl"]: f"{e['resource']['resourceType']}/r{i}" for i, e in enumerate(src["entry"])}
    for e in src["entry"]:
        for key in ("subject", "encounter"):
            if key in e["resource"]:
                e["resource"][key]["reference"] = ids[e["resource"][key]["reference"]]
    for key, n in daily_counts([e["resource"] for e in src["entry"]]).items():
        cell = (key.date, key.district, key.signal)
        expected[cell] = expected.get(cell, 0) + n
    assert expected, "the sample must carry some signals"

    store = FhirStore(str(tmp_path / "node.sqlite"))
    BundleProcessor(store, lambda _t, _i: None, lambda _u: {}).process(bundle)
    rows = node_counts(store, "hosp-a", dt.date(2023, 1, 1), dt.date(2027, 1, 1),
                       Protection("none"))
    assert {(r.date, r.district, r.signal): r.count for r in rows} == expected
    protected = node_counts(store, "hosp-a", dt.date(2023, 1, 1), dt.date(2027, 1, 1),
                            Protection("suppress", threshold=2))
    assert all(r.count is None or r.count >= 2 for r in protected)
    assert any(r.count is None for r in protected)
    store.close()


def test_counts_command_writes_what_the_hub_reads(tmp_path: Path) -> None:
    store = FhirStore(str(tmp_path / "node.sqlite"))
    BundleProcessor(store, lambda _t, _i: None, lambda _u: {}).process(sample_bundle(40))
    store.close()
    out = tmp_path / "counts.csv"
    result = CliRunner().invoke(main, ["node", "counts", "--since", "2024-01-01",
                                       "--until", "2026-01-01", "--out", str(out),
                                       "--protect", "none", "--data-dir", str(tmp_path),
                                       "--institution", "clinic-1"])
    assert result.exit_code == 0, result.output
    rows = read_counts_csv(out)
    assert rows and {r.institution for r in rows} == {"clinic-1"}
