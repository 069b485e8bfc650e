"""The research opt-out as a FHIR R4 Consent, referring to the patient by local identifier."""

from __future__ import annotations

from typing import Any

from healthmesh.ingest.adapter import deterministic_id
from healthmesh.synth.region.variants import LocalRecord


def patient_system(institution: str) -> str:
    """Identifier system of an institution's patient numbers (MRN, clinic or member number)."""
    return f"urn:healthmesh:id:{institution}"


def opt_out_consent(institution: str, rec: LocalRecord) -> dict[str, Any]:
    """A Consent denying research use of the patient's data (scope research, deny HRESCH)."""
    return {
        "resourceType": "Consent",
        "id": deterministic_id("Consent", institution, rec.local_id, "research-opt-out"),
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "57016-8",
                        "display": "Privacy policy acknowledgment Document",
                    }
                ]
            }
        ],
        "patient": {"identifier": {"system": patient_system(institution), "value": rec.local_id}},
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}
            ]
        },
        "provision": {
            "type": "deny",
            "purpose": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}
            ],
        },
    }
