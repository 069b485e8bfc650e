"""Node-side signals: syndromes and sentinel drugs from FHIR R4 resources, daily aggregate
counts, and small-count protection before anything leaves the institution."""

from healthmesh.surveillance.signals.counts import CountKey, age_band, daily_counts
from healthmesh.surveillance.signals.pharmacy import classify_dispense
from healthmesh.surveillance.signals.protection import Protection, protect
from healthmesh.surveillance.signals.syndromes import SYNDROMES, classify_resource

__all__ = [
    "SYNDROMES",
    "CountKey",
    "Protection",
    "age_band",
    "classify_dispense",
    "classify_resource",
    "daily_counts",
    "protect",
]
