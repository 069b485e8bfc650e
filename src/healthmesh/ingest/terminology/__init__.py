"""The region's terminology: standard code subsets, local code tables, FHIR CodeSystem and
ConceptMap resources loadable into a node, and lookups that flag what they do not know."""

from healthmesh.ingest.terminology.resources import (
    code_systems,
    concept_maps,
    load_terminology,
    terminology_resources,
)
from healthmesh.ingest.terminology.translate import Lookup, Terminology

__all__ = [
    "Lookup",
    "Terminology",
    "code_systems",
    "concept_maps",
    "load_terminology",
    "terminology_resources",
]
