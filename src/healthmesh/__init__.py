"""healthmesh: an open health-data sharing platform (FHIR R4 nodes, a federation hub,
record linkage, a provenance ledger and outbreak detection)."""

__version__ = "0.1.0"
