"""FHIR Bulk Data: asynchronous NDJSON export and fast NDJSON import."""
