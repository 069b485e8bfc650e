"""Ingest a generated region into one node store per institution, with reconciliation.

Each institution's files go through the adapter of their format (HL7 v2, the shipped CSV
mappings, DICOM, NDJSON Consents) and the ingestion pipeline; the node also receives the
region's terminology. Used by the region benchmark and the end-to-end test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: which shipped CSV mapping reads which export file
CSV_MAPPINGS = {
    "visits.csv": "clinic_visits",
    "prescriptions.csv": "clinic_prescriptions",
    "sales.csv": "pharmacy_sales",
    "case_reports.csv": "cdc_case_reports",
}


@dataclass
class NodeLoad:
    """Counts of one institution's ingest."""

    institution: str
    received: int = 0
    converted: int = 0
    quarantined: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    resources: int = 0
    seconds: float = 0.0
    by_format: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        """received == converted + quarantined."""
        return self.received == self.converted + self.quarantined


def _adapter(path: Path, institution: str) -> Any:
    if path.suffix == ".hl7":
        from healthmesh.ingest.hl7v2 import Hl7v2Adapter

        return Hl7v2Adapter(institution)
    if path.suffix == ".dcm":
        from healthmesh.ingest.dicom import DicomAdapter

        return DicomAdapter(institution=institution)
    if path.suffix == ".ndjson":
        from healthmesh.ingest.fhir_files import FhirFileAdapter

        return FhirFileAdapter(institution, ndjson=True)
    from healthmesh.ingest.csv import CsvAdapter

    return CsvAdapter(CSV_MAPPINGS[path.with_suffix(".csv").name], institution=institution)


def institution_files(region: Path, institution: str) -> list[Path]:
    """The export files of one institution, in ingest order (consents last)."""
    folder = region / institution
    files = sorted(folder.glob("hl7/*.hl7")) + sorted(folder.glob("dicom/*.dcm"))
    for name in CSV_MAPPINGS:
        for candidate in (folder / name, (folder / name).with_suffix(".xlsx")):
            if candidate.exists():
                files.append(candidate)
    files += sorted(folder.glob("*.ndjson"))
    return files


def ingest_institution(
    region: Path,
    institution: str,
    db: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> NodeLoad:
    """Ingest one institution's exports into the node store at ``db`` (SQLite path)."""
    from healthmesh.fhir.store import FhirStore
    from healthmesh.ingest.pipeline import Pipeline
    from healthmesh.ingest.quarantine import QuarantineStore
    from healthmesh.ingest.terminology import load_terminology

    store = FhirStore(db)
    quarantine = QuarantineStore(db)
    load = NodeLoad(institution)
    began = time.perf_counter()
    try:
        load_terminology(store)
        pipeline = Pipeline(store, quarantine, institution)
        for path in institution_files(region, institution):
            adapter = _adapter(path, institution)
            summary = pipeline.ingest(adapter, path.read_bytes(), str(path.relative_to(region)))
            load.received += summary.received
            load.converted += summary.converted
            load.quarantined += summary.quarantined
            load.created += summary.created
            load.updated += summary.updated
            load.unchanged += summary.unchanged
            load.resources += summary.resources_written
            fmt = adapter.format
            load.by_format[fmt] = load.by_format.get(fmt, 0) + summary.received
            if progress is not None:
                progress(f"{institution} {path.name}: {summary.line()}")
    finally:
        load.seconds = time.perf_counter() - began
        quarantine.close()
        store.close()
    return load


def region_institutions(region: Path) -> list[str]:
    """Institution ids listed in the region's manifest."""
    manifest = json.loads((region / "manifest.json").read_text("utf-8"))
    return list(manifest["institutions"])
