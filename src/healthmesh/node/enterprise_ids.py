"""The node's side of the patient index: its PPRL encodings out, the hub's enterprise ids in.

:func:`encodings_from_store` encodes the node's own Patients under the linkage project's
key — quasi-identifiers are standardised and encoded here and never leave in plaintext —
ready for the federation transport to carry to the hub. :func:`apply_enterprise_ids` writes
the hub's answer back into the node's FHIR store.

How a Patient carries the enterprise id (FHIR R4):

* ``identifier`` with system ``urn:healthmesh:enterprise-id`` and ``use: secondary``
  (:func:`healthmesh.identity.mpi.api.patient_identifier`): it is assigned by the region's
  linkage for use across institutions and may change after a merge or unmerge at the hub, so
  it is not the institution's ``official``/``usual`` record number, which stays first.
* ``link`` of type ``seealso`` between two local Patients the hub found to be one person: the
  institution has not merged them itself, so neither is ``replaced-by`` the other (that type,
  with ``active: false``, stays reserved for the institution's own merges, e.g. HL7 ADT^A40).
  These links carry the extension :data:`LINK_SOURCE` so a later run can remove the ones the
  hub no longer supports (after an unmerge) without touching the institution's own links.

Idempotent: a Patient whose identifiers and links already say what the hub says is not
written (no new version). Ingesting a new version of a Patient drops its enterprise
identifier (the adapters do not know it); running this again restores it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select

from healthmesh.errors import InvalidInput, NotFound
from healthmesh.fhir.store import FhirStore, schema
from healthmesh.identity.fhir_patient import encode_groups, merged_into, standardised
from healthmesh.identity.mpi.api import ENTERPRISE_SYSTEM, patient_identifier
from healthmesh.identity.mpi.service import Encoding
from healthmesh.identity.pprl.encode import encode_table
from healthmesh.identity.pprl.presets import CHINESE_BLOCKING, chinese_schema

R = schema.resource
#: extension on the Patient.link elements this module writes
LINK_SOURCE = "https://healthmesh.dev/fhir/StructureDefinition/link-source"
_SOURCE_EXT = {"url": LINK_SOURCE, "valueCode": "enterprise-id"}
_EID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class PatientEncoding:
    """What the node sends for one Patient: its store id, the record-level encoding the
    patient index links on arrival, and the field-group segments for batch linkage."""

    local_id: str
    record: Encoding
    groups: bytes


@dataclass
class ApplySummary:
    """Counts of one :func:`apply_enterprise_ids` run."""

    updated: int = 0
    unchanged: int = 0
    identifiers_set: int = 0
    identifiers_removed: int = 0
    links_added: int = 0
    links_removed: int = 0


def _patients(conn: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    rows = conn.execute(
        select(R.c.res_id, R.c.content)
        .where(R.c.res_type == "Patient", R.c.deleted == False)  # noqa: E712
        .order_by(R.c.lid)
    )
    for res_id, content in rows:
        yield str(res_id), orjson.loads(content)


def encodings_from_store(store: FhirStore, project_key: bytes) -> list[PatientEncoding]:
    """Encode every current Patient of the store under the linkage project's key.

    Patients the institution merged away itself (inactive, ``replaced-by``) are skipped:
    their survivor stands for them. Only encodings and keyed tokens are returned.
    """
    if len(project_key) < 16:
        raise InvalidInput("the linkage project key must have at least 16 bytes")
    with store.db.read() as conn:
        patients = [(pid, p) for pid, p in _patients(conn) if merged_into(p) is None]
    records = standardised(patients)
    flat = encode_table(
        project_key,
        chinese_schema(),
        records,
        identity_field="id_number",
        blocking_rules=CHINESE_BLOCKING,
    )
    groups = encode_groups(project_key, records)
    out = []
    for i, (pid, _) in enumerate(patients):
        tok = int(flat.id_tokens[i])
        blocks = [int(b) or None for b in flat.blocking[i].tolist()]
        enc = Encoding(flat.clks[i].tobytes(), tok.to_bytes(8, "big") if tok else None, blocks)
        out.append(PatientEncoding(pid, enc, groups.clks[i].tobytes()))
    return out


def _check_links(links: Mapping[str, str | None]) -> None:
    for eid in links.values():
        if eid is not None and not _EID.match(eid):
            raise InvalidInput("enterprise id must be 1-64 letters, digits, '-' or '.'")


def _current_eid(patient: Mapping[str, Any]) -> str | None:
    for ident in patient.get("identifier") or []:
        if ident.get("system") == ENTERPRISE_SYSTEM and ident.get("value"):
            return str(ident["value"])
    return None


def _is_ours(link: Mapping[str, Any]) -> bool:
    return any(e.get("url") == LINK_SOURCE for e in link.get("extension") or [])


def _desired(
    patient: dict[str, Any], eid: str | None, same_person: list[str], summary: ApplySummary
) -> dict[str, Any]:
    out = dict(patient)
    idents = [i for i in patient.get("identifier") or [] if i.get("system") != ENTERPRISE_SYSTEM]
    old_eid = _current_eid(patient)
    if eid is not None:
        idents.append(patient_identifier(eid))
    if old_eid != eid:
        summary.identifiers_set += eid is not None
        summary.identifiers_removed += old_eid is not None and eid is None
    if idents:
        out["identifier"] = idents
    else:
        out.pop("identifier", None)
    kept = [link for link in patient.get("link") or [] if not _is_ours(link)]
    ours_before = {
        (link.get("other") or {}).get("reference")
        for link in patient.get("link") or []
        if _is_ours(link)
    }
    ours = [
        {
            "extension": [dict(_SOURCE_EXT)],
            "other": {"reference": f"Patient/{o}"},
            "type": "seealso",
        }
        for o in same_person
    ]
    now = {f"Patient/{o}" for o in same_person}
    summary.links_added += len(now - ours_before)
    summary.links_removed += len(ours_before - now)
    if kept or ours:
        out["link"] = kept + ours
    else:
        out.pop("link", None)
    return out


def _content(resource: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k not in ("meta", "id")}
    meta = {
        k: v
        for k, v in (resource.get("meta") or {}).items()
        if k not in ("versionId", "lastUpdated")
    }
    if meta:
        out["meta"] = meta
    return out


def apply_enterprise_ids(
    store: FhirStore, links: Mapping[str, str | None] | Iterable[tuple[str, str | None]]
) -> ApplySummary:
    """Write the hub's (local Patient id -> enterprise id) answer into the store.

    ``None`` as enterprise id removes the Patient's enterprise identifier. Patients not named
    keep theirs. Local Patients that end up with the same enterprise id are linked to each
    other (``seealso``); stale links of this kind are removed. One transaction: an unknown
    Patient id or a malformed enterprise id writes nothing.

    Raises:
        InvalidInput: a malformed enterprise id.
        NotFound: a Patient id the store does not hold.
    """
    wanted = dict(links.items() if isinstance(links, Mapping) else links)
    _check_links(wanted)
    summary = ApplySummary()
    with store.writing() as tx:
        current = dict(_patients(tx.conn))
        unknown = [pid for pid in wanted if pid not in current]
        if unknown:
            raise NotFound(
                f"{len(unknown)} Patient ids of the enterprise links are not in the store"
            )
        eid_of = {pid: wanted.get(pid, _current_eid(p)) for pid, p in current.items()}
        members: dict[str, list[str]] = defaultdict(list)
        for pid, eid in eid_of.items():
            if eid is not None and merged_into(current[pid]) is None:
                members[eid].append(pid)
        for pid, patient in current.items():
            eid = eid_of[pid]
            others = [o for o in members.get(eid or "", []) if o != pid] if eid else []
            desired = _desired(patient, eid, sorted(others), summary)
            if _content(desired) == _content(patient):
                summary.unchanged += 1
                continue
            tx.update("Patient", pid, desired)
            summary.updated += 1
    return summary
