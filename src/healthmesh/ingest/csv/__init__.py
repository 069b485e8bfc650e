"""CSV and Excel exports to FHIR R4 through declarative YAML mappings (see docs/mappings.md)."""

from healthmesh.ingest.csv.adapter import CsvAdapter
from healthmesh.ingest.csv.mapping import Mapping, load_mapping, shipped_mapping

__all__ = ["CsvAdapter", "Mapping", "load_mapping", "shipped_mapping"]
