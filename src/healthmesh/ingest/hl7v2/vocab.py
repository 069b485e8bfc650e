"""The vocabulary maps of the HL7 V2-to-FHIR IG that our mapping uses, as small tables.

Taken from the IG's ConceptMap sheets (PatientClass[EncounterClass], AdministrativeSex,
ObservationResultStatusCodesInterpretation, ResultStatus[Non-Queries],
OrderControlCode[ServiceRequest.status]) and the IG's coding-system table (HL7 table 0396
names -> FHIR system URIs).
"""

from __future__ import annotations

from functools import lru_cache

V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

#: PV1-2 patient class -> Encounter.class (v3 ActCode)
ENCOUNTER_CLASS: dict[str, tuple[str, str]] = {
    "E": ("EMER", "emergency"),
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "P": ("PRENC", "pre-admission"),
    "R": ("R", "Recurring patient"),
    "B": ("B", "Obstetrics"),
    "C": ("C", "Commercial Account"),
    "N": ("N", "Not Applicable"),
    "U": ("U", "Unknown"),
}

#: PID-8 administrative sex (table 0001; GB/T 2261.1 digits as used by Chinese HIS) -> gender
GENDER: dict[str, str] = {
    "F": "female",
    "M": "male",
    "O": "other",
    "U": "unknown",
    "A": "other",
    "N": "other",
    # GB/T 2261.1-2003: 0 unknown, 1 male, 2 female, 9 not stated
    "0": "unknown",
    "1": "male",
    "2": "female",
    "9": "unknown",
}

#: OBX-11 -> Observation.status
OBSERVATION_STATUS: dict[str, str] = {
    "A": "amended",
    "B": "amended",
    "C": "corrected",
    "D": "entered-in-error",
    "F": "final",
    "I": "registered",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "U": "final",
    "V": "final",
    "W": "entered-in-error",
    "X": "cancelled",
}

#: OBR-25 -> DiagnosticReport.status
REPORT_STATUS: dict[str, str] = {
    "O": "registered",
    "I": "registered",
    "S": "registered",
    "A": "partial",
    "P": "preliminary",
    "C": "corrected",
    "R": "partial",
    "F": "final",
    "X": "cancelled",
    "M": "corrected",
    "N": "partial",
}

#: ORC-1 order control -> ServiceRequest/MedicationRequest status
ORDER_STATUS: dict[str, str] = {
    "AF": "active",
    "CA": "active",
    "CR": "revoked",
    "DC": "revoked",
    "DF": "revoked",
    "DR": "revoked",
    "FU": "completed",
    "HD": "active",
    "HR": "on-hold",
    "NW": "active",
    "OC": "revoked",
    "OD": "revoked",
    "OH": "on-hold",
    "OK": "active",
    "PR": "active",
    "PY": "active",
    "RE": "active",
    "RP": "active",
    "RU": "active",
    "SC": "active",
    "XO": "active",
    "XX": "active",
}

#: coding-system names of HL7 table 0396 (and common local spellings) -> FHIR system URI
CODE_SYSTEMS: dict[str, str] = {
    "LN": "http://loinc.org",
    "LOINC": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "SNOMED-CT": "http://snomed.info/sct",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "I9": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "UCUM": "http://unitsofmeasure.org",
    "ISO+": "http://unitsofmeasure.org",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "MVX": "http://terminology.hl7.org/CodeSystem/MVX",
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "RXN": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "ATC": "http://www.whocc.no/atc",
    "WC": "http://www.whocc.no/atc",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "C4": "http://www.ama-assn.org/go/cpt",
    "NCIT": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
    "ISO3166_1": "urn:iso:std:iso:3166",
}

#: the resident identity number (GB 11643) and the system for Chinese mobile numbers
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
RESIDENT_ID_TYPES = frozenset({"NNCHN", "NI", "RI", "CZ", "ID", "SFZ"})


@lru_cache(maxsize=4096)
def code_system(name: str) -> str | None:
    """FHIR system for a v2 coding-system name; HL7nnnn tables map to terminology.hl7.org.

    >>> code_system("LN"), code_system("HL70004"), code_system("")
    ('http://loinc.org', 'http://terminology.hl7.org/CodeSystem/v2-0004', None)
    """
    if not name:
        return None
    key = name.upper()
    if key in CODE_SYSTEMS:
        return CODE_SYSTEMS[key]
    if key.startswith("HL7") and key[3:].isdigit():
        return f"http://terminology.hl7.org/CodeSystem/v2-{key[3:].zfill(4)}"
    if key.startswith("2.16.") or key[:2] in ("1.", "2."):
        return f"urn:oid:{name}"
    # a local coding system: kept, with a URN that names it
    return f"urn:healthmesh:codesystem:{name.replace(' ', '_')}"
