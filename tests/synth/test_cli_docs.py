"""The synth CLI, the end-to-end ingest of a region (slow), and docs that must not drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from healthmesh.cli import main
from healthmesh.cli.synth import region as region_command
from healthmesh.ingest.csv.mapping import VALUE_TYPES
from healthmesh.ingest.quality import CHECKS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_generates_a_region_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = CliRunner().invoke(main, ["synth", "region", "--out", str(out), "--seed", "3",
                                       "--people", "120", "--days", "40", "--hospitals", "2",
                                       "--clinics", "2", "--cdc", "0", "--pharmacies", "1"])
    assert result.exit_code == 0, result.output
    assert "120 people" in result.output and "H02" in result.output
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert set(manifest["institutions"]) == {"H01", "H02", "C01", "C02", "P01"}
    assert all((out / f).is_file() for f in manifest["files"])
    loaded = CliRunner().invoke(main, ["synth", "load", str(out), "--nodes", str(tmp_path / "n"),
                                       "--institution", "C01", "--institution", "P01"])
    assert loaded.exit_code == 0, loaded.output
    assert "C01" in loaded.output and "P01" in loaded.output and "H01" not in loaded.output
    assert (tmp_path / "n/C01.sqlite").is_file()
    bad = CliRunner().invoke(main, ["synth", "region", "--out", str(tmp_path / "x"),
                                    "--people", "0"])
    assert bad.exit_code != 0


def test_docs_cover_options_value_types_and_checks() -> None:
    synth = (DOCS / "synth.md").read_text("utf-8")
    for param in region_command.params:
        assert f"--{param.name}" in synth, param.name
    mappings = (DOCS / "mappings.md").read_text("utf-8")
    for kind in VALUE_TYPES:
        assert f"`{kind}`" in mappings, kind
    for check in CHECKS:
        assert f"`{check}`" in mappings, check


@pytest.mark.slow
def test_region_ingests_into_nodes_with_balanced_books(tmp_path: Path) -> None:
    from healthmesh.fhir.store import FhirStore
    from healthmesh.synth.region import RegionConfig, generate_region
    from healthmesh.synth.region.ingest import ingest_institution, region_institutions

    region = tmp_path / "region"
    generate_region(RegionConfig(seed=9, people=400, days=120), region)
    for inst in region_institutions(region):
        load = ingest_institution(region, inst, tmp_path / f"{inst}.sqlite")
        assert load.received > 0 and load.balanced, inst
        assert load.quarantined == 0, inst
        store = FhirStore(tmp_path / f"{inst}.sqlite")
        assert store.count("Patient") > 0 and store.count("CodeSystem") > 0
        consents = (region / inst / "consent.ndjson")
        if consents.exists() and consents.read_text("utf-8").strip():
            assert store.count("Consent") == len(consents.read_text("utf-8").splitlines())
        store.close()
        again = ingest_institution(region, inst, tmp_path / f"{inst}.sqlite")  # idempotent
        assert again.received == load.received and again.unchanged == again.received, inst
