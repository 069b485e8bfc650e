"""The institution node: FHIR store + REST API + security, composed from the domains."""
