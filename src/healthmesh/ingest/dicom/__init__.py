"""DICOM headers to FHIR ImagingStudy (and the Patient they name), pixel data never read."""

from healthmesh.ingest.dicom.adapter import DicomAdapter

__all__ = ["DicomAdapter"]
