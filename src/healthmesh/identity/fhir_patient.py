"""Quasi-identifiers of a FHIR R4 Patient, as a node extracts them for linkage.

A node's Patients come from many adapters (HL7 v2 PID, clinic and pharmacy CSV, CDC report
cards), so a name may be hanzi (``iso21090-EN-representation`` ``IDE``), pinyin (``ABC``) or
a bare ``text``; an address may be lines or ``text``; the resident identity number is the
identifier of system :data:`RESIDENT_ID_SYSTEM`. :func:`quasi_identifiers` turns one Patient
into the raw record :func:`healthmesh.identity.standardise.standardise_record` expects; the
result never leaves the node in plaintext (it is encoded first, see
:func:`encode_patients`). Pure: takes and returns values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from healthmesh.identity.divisions import DivisionTable
from healthmesh.identity.pprl.blocking import blocking_tokens
from healthmesh.identity.pprl.bloom import BloomEncoder
from healthmesh.identity.pprl.encode import EncodedTable, encode_table, identity_token
from healthmesh.identity.pprl.groups import GroupEncoder, chinese_groups
from healthmesh.identity.pprl.presets import CHINESE_BLOCKING, chinese_schema
from healthmesh.identity.standardise import standardise_record

#: GB 11643 resident identity number (the OID the HL7 v2 and CSV adapters write)
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
_GENDER = {"male": "1", "female": "2"}


def _representation(name: Mapping[str, Any]) -> str | None:
    for ext in name.get("extension") or []:
        if ext.get("url") == _REPRESENTATION:
            return str(ext.get("valueCode"))
    return None


def _name_text(name: Mapping[str, Any]) -> str:
    family = name.get("family") or ""
    given = "".join(name.get("given") or [])
    if family or given:
        sep = "" if any("\u3400" <= ch <= "\u9fff" for ch in family + given) else " "
        return f"{family}{sep}{given}".strip()
    return str(name.get("text") or "")


def best_name(patient: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(full text, family, given) of the name to compare: the ideographic (hanzi) one first,
    then ``official``/``usual``, then any; ``anonymous`` names last."""
    names = [n for n in patient.get("name") or [] if isinstance(n, Mapping)]

    def rank(n: Mapping[str, Any]) -> int:
        if _representation(n) == "IDE":
            return 0
        if n.get("use") in ("official", "usual"):
            return 1
        if n.get("use") in ("anonymous", "old", "maiden"):
            return 3
        return 2

    for name in sorted(names, key=rank):
        family = name.get("family")
        given = "".join(name.get("given") or []) or None
        if family or given:
            return _name_text(name), family, given
        if name.get("text"):
            return str(name["text"]), None, None
    return None, None, None


def _address_text(patient: Mapping[str, Any]) -> str | None:
    addresses = [a for a in patient.get("address") or [] if isinstance(a, Mapping)]
    addresses.sort(key=lambda a: 0 if a.get("use") in (None, "home") else 1)
    for addr in addresses:
        lines = "".join(addr.get("line") or [])
        if lines:
            return lines
        if addr.get("text"):
            return str(addr["text"])
    return None


def _phone(patient: Mapping[str, Any]) -> str | None:
    phones = [t for t in patient.get("telecom") or [] if isinstance(t, Mapping) and t.get("value")]
    phones.sort(key=lambda t: (t.get("system") != "phone", t.get("use") != "mobile"))
    return str(phones[0]["value"]) if phones else None


def resident_id(patient: Mapping[str, Any]) -> str | None:
    """The resident identity number as recorded (validation happens at encoding)."""
    for ident in patient.get("identifier") or []:
        if isinstance(ident, Mapping) and ident.get("system") == RESIDENT_ID_SYSTEM:
            value = ident.get("value")
            if value:
                return str(value)
    return None


def quasi_identifiers(patient: Mapping[str, Any], local_id: str) -> dict[str, str | None]:
    """The raw linkage record of one Patient: ``id`` (= ``local_id``), ``name`` or
    ``surname``/``given``, ``sex``, ``birth_date``, ``id_number``, ``phone``, ``address``.

    Example:
        >>> p = {"resourceType": "Patient", "name": [{"text": "张伟"}], "gender": "male",
        ...      "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": "11010519491231002X"}]}
        >>> q = quasi_identifiers(p, "P1")
        >>> q["name"], q["sex"], q["id_number"]
        ('张伟', '1', '11010519491231002X')
    """
    text, family, given = best_name(patient)
    out: dict[str, str | None] = {"id": local_id}
    if family or given:
        out["surname"], out["given"] = family, given
    else:
        out["name"] = text
    out["sex"] = _GENDER.get(str(patient.get("gender") or ""))
    out["birth_date"] = patient.get("birthDate")
    out["id_number"] = resident_id(patient)
    out["phone"] = _phone(patient)
    out["address"] = _address_text(patient)
    return out


def merged_into(patient: Mapping[str, Any]) -> str | None:
    """For a Patient the institution itself merged away (inactive, ``link`` ``replaced-by``),
    the reference of the survivor; else None. Such a record is not encoded on its own."""
    if patient.get("active", True) is not False:
        return None
    for link in patient.get("link") or []:
        if isinstance(link, Mapping) and link.get("type") == "replaced-by":
            ref = (link.get("other") or {}).get("reference")
            if ref:
                return str(ref)
    return None


def encode_patients(
    secret: bytes,
    patients: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    encoder: BloomEncoder | None = None,
    table: DivisionTable | None = None,
) -> EncodedTable:
    """Encode (local id, Patient) pairs with the Chinese schema, keyed identity tokens and
    keyed blocking tokens (:mod:`healthmesh.identity.pprl.presets`)."""
    table = table or DivisionTable.load()
    records: Sequence[dict[str, str | None]] = [
        standardise_record(quasi_identifiers(p, lid), table) for lid, p in patients
    ]
    return encode_table(
        secret,
        chinese_schema(),
        records,
        identity_field="id_number",
        blocking_rules=CHINESE_BLOCKING,
        encoder=encoder,
    )


def standardised(
    patients: Iterable[tuple[str, Mapping[str, Any]]], table: DivisionTable | None = None
) -> list[dict[str, str | None]]:
    """Standardised linkage records of (local id, Patient) pairs (plaintext: node only)."""
    table = table or DivisionTable.load()
    return [standardise_record(quasi_identifiers(p, lid), table) for lid, p in patients]


def encode_groups(
    secret: bytes,
    records: Sequence[Mapping[str, str | None]],
    *,
    encoder: GroupEncoder | None = None,
) -> EncodedTable:
    """Field-group encodings (:mod:`healthmesh.identity.pprl.groups`) of standardised
    records, with keyed identity and blocking tokens; ``clks`` holds the segments."""
    enc = encoder or GroupEncoder(secret, chinese_groups())
    tokens = np.zeros(len(records), dtype=np.uint64)
    for i, rec in enumerate(records):
        tok = identity_token(secret, rec.get("id_number"))
        if tok is not None:
            tokens[i] = int.from_bytes(tok[:8], "big") or 1
    return EncodedTable(
        np.asarray([rec.get("id") for rec in records], dtype=object),
        enc.encode_many(records),
        tokens,
        blocking_tokens(secret, CHINESE_BLOCKING, records),
    )
