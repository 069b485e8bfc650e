"""The FHIR resource store (SQLite / PostgreSQL)."""

from healthmesh.fhir.store.records import Stored, WriteResult
from healthmesh.fhir.store.store import FhirStore

__all__ = ["FhirStore", "Stored", "WriteResult"]
