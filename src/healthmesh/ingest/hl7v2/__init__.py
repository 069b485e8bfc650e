"""HL7 v2.x -> FHIR R4: decoding (charsets, batches, line ends), parsing (python-hl7) and
mapping after the HL7 V2-to-FHIR IG. The public face is ``Hl7v2Adapter``."""

from healthmesh.ingest.hl7v2.adapter import Hl7v2Adapter

__all__ = ["Hl7v2Adapter"]
