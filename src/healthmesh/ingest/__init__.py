"""Ingestion: HL7 v2, CSV/Excel exports, DICOM headers and FHIR files turned into FHIR R4 in a
node, with quarantine of what cannot be converted and data-quality scores."""
