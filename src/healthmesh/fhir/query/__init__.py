"""FHIR search: parameter parsing, SQL conditions, sorting, paging and includes."""
