"""FHIR R4: resource store, search, REST API, bundles, history, bulk data."""
