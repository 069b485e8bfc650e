"""Data quality per institution on the Kahn et al. (2016) harmonized framework: completeness,
conformance and plausibility checks over a node's FHIR resources, scored and reported."""

from healthmesh.ingest.quality.assess import assess
from healthmesh.ingest.quality.checks import CHECKS, Check
from healthmesh.ingest.quality.report import QualityReport, assess_store, render_table

__all__ = ["CHECKS", "Check", "QualityReport", "assess", "assess_store", "render_table"]
