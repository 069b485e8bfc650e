"""The synthetic region: a population shared by hospitals, clinics, a CDC and pharmacies, each
exporting in its native format (HL7 v2, CSV, DICOM), with linkage truth, labelled influenza
outbreaks, chronic disease and research opt-outs. Deterministic by seed.

>>> RegionConfig(seed=7, people=10).people
10
"""

from healthmesh.synth.region.config import Institution, RegionConfig
from healthmesh.synth.region.region import RegionSummary, generate_region, simulate

__all__ = ["Institution", "RegionConfig", "RegionSummary", "generate_region", "simulate"]
