"""Adapters by format name. CSV and DICOM adapters are imported lazily, so the HL7 path
never pays for pandas/pydicom and a missing optional adapter fails with a clear message."""

from __future__ import annotations

import importlib
from pathlib import Path

from healthmesh.errors import InvalidInput, NotSupported
from healthmesh.ingest.adapter import Adapter

FORMATS = ("hl7v2", "csv", "dicom", "fhir", "ndjson")

_SUFFIXES = {
    ".hl7": "hl7v2",
    ".er7": "hl7v2",
    ".hl7v2": "hl7v2",
    ".msg": "hl7v2",
    ".csv": "csv",
    ".xlsx": "csv",
    ".xls": "csv",
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".json": "fhir",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}


def guess_format(path: Path) -> str:
    """Format from a file name (``.gz`` ignored); raises InvalidInput when unknown.

    >>> guess_format(Path("adt.hl7")), guess_format(Path("x.ndjson.gz"))
    ('hl7v2', 'ndjson')
    """
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise InvalidInput("cannot tell the format from the file name; pass --format")


def _lazy(module: str, cls: str, *args: object, **kwargs: object) -> Adapter:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            name = module.rsplit(".", 2)[-2]
            raise NotSupported(f"the {name} adapter is not installed") from None
        raise
    factory = getattr(mod, cls, None)
    if factory is None:
        raise NotSupported(f"{module} has no {cls}")
    adapter: Adapter = factory(*args, **kwargs)
    return adapter


def adapter_for(fmt: str, *, institution: str, mapping: Path | None = None) -> Adapter:
    """The adapter of ``fmt`` for ``institution`` (``mapping`` is the CSV mapping file).

    Raises
    ------
    InvalidInput
        Unknown format, or CSV without a mapping file.
    NotSupported
        The adapter's module is not available.
    """
    if fmt == "hl7v2":
        from healthmesh.ingest.hl7v2 import Hl7v2Adapter

        return Hl7v2Adapter(institution)
    if fmt in ("fhir", "ndjson"):
        from healthmesh.ingest.fhir_files import FhirFileAdapter

        return FhirFileAdapter(institution, ndjson=fmt == "ndjson")
    if fmt == "csv":
        if mapping is None:
            raise InvalidInput("the csv format needs --mapping FILE")
        return _lazy(
            "healthmesh.ingest.csv.adapter", "CsvAdapter", mapping, institution=institution
        )
    if fmt == "dicom":
        return _lazy("healthmesh.ingest.dicom.adapter", "DicomAdapter", institution=institution)
    raise InvalidInput(f"unknown format; expected one of {', '.join(FORMATS)}")
