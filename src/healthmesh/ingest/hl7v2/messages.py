"""Message-level maps (the IG's message sheets): which segments of which message become
which resources, and how they reference each other.

Supported: ADT A01-A08, A13, A28, A31 (Patient, Encounter), A40 (merge), ORU^R01 and
OUL^R22-R24 (Observation, DiagnosticReport), ORM^O01, OML^O21, OMG^O19 (ServiceRequest,
or MedicationRequest for RXO), RDE^O11/O25 (MedicationRequest), RDS^O13 (+
MedicationDispense), VXU^V04 (Immunization). OBX outside report groups become Observations
of the patient. Anything else is refused with a precise reason so that it lands in
quarantine; segments a map does not read are listed in the record's notes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from healthmesh.ingest.adapter import deterministic_id
from healthmesh.ingest.hl7v2.access import Segment, V2Message
from healthmesh.ingest.hl7v2.clinical import (
    diagnostic_report,
    immunization,
    medication_dispense,
    medication_request,
    observation,
    order_key,
    service_request,
)
from healthmesh.ingest.hl7v2.datatypes import Ctx, MappingError
from healthmesh.ingest.hl7v2.patient import (
    map_encounter,
    map_merge,
    map_patient_memo,
    patient_key,
)

Resources = list[dict[str, Any]]

ADT_EVENTS = frozenset(
    {"A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A13", "A28", "A31"}
)
#: segments each handler reads; the rest of a message is reported in the notes
_USED: dict[str, frozenset[str]] = {
    "adt": frozenset({"MSH", "EVN", "PID", "PV1", "PV2", "MRG"}),
    "oru": frozenset({"MSH", "PID", "PV1", "PV2", "ORC", "OBR", "OBX"}),
    "orders": frozenset({"MSH", "PID", "PV1", "PV2", "ORC", "OBR", "RXO"}),
    "pharmacy": frozenset({"MSH", "PID", "PV1", "PV2", "ORC", "RXE", "RXD", "RXO"}),
    "vxu": frozenset({"MSH", "PID", "PV1", "PV2", "ORC", "RXA"}),
}
_QUIET = frozenset({"SFT", "NTE", "UAC"})


def _subject(msg: V2Message, ctx: Ctx) -> tuple[dict[str, Any], Resources]:
    pid = msg.first("PID")
    if pid is None:
        raise MappingError("message has no PID segment", "PID")
    patient = map_patient_memo(pid, ctx)
    return patient, [patient]


def _encounter(msg: V2Message, ctx: Ctx, patient_ref: str) -> dict[str, Any] | None:
    pv1 = msg.first("PV1")
    return map_encounter(pv1, ctx, msg, patient_ref) if pv1 is not None else None


def _adt(msg: V2Message, ctx: Ctx) -> Resources:
    patient, out = _subject(msg, ctx)
    ref = f"Patient/{patient['id']}"
    if msg.event in ("A28", "A31") and msg.first("PV1") is not None:
        pv1 = msg.first("PV1")
        if pv1 is not None and not pv1.v(19):
            return out  # person administration: PV1 usually carries no real visit
    enc = _encounter(msg, ctx, ref)
    if enc is not None:
        out.append(enc)
    return out


def _merge(msg: V2Message, ctx: Ctx) -> Resources:
    patient, out = _subject(msg, ctx)
    out.extend(map_merge(msg, ctx, patient))
    return out


def _oru(msg: V2Message, ctx: Ctx) -> Resources:
    patient, out = _subject(msg, ctx)
    ref = f"Patient/{patient['id']}"
    enc = _encounter(msg, ctx, ref)
    enc_ref = f"Encounter/{enc['id']}" if enc else None
    if enc:
        out.append(enc)
    first_orc = msg.first("ORC")
    reports = 0
    obx_n = 0
    for obr, members in msg.groups("OBR", ("OBX", "NTE"), stop=("PID",)):
        reports += 1
        own_orc = _preceding(msg, obr, "ORC") or first_orc
        kind, number = order_key(own_orc, obr, "OBR")
        parent = f"{kind}|{number}|{obr.v(4)}"
        obs_refs = []
        for seg in members:
            if seg.name != "OBX":
                continue
            obx_n += 1
            if not seg.v(3):
                continue  # reported by _loose_observations
            ob = observation(seg, ctx, ref, enc_ref, parent, obx_n)
            out.append(ob)
            obs_refs.append(f"Observation/{ob['id']}")
        out.append(diagnostic_report(own_orc, obr, ctx, ref, enc_ref, obs_refs, None))
    if not reports:
        raise MappingError("ORU message without an OBR segment", "OBR")
    return out


def _preceding(msg: V2Message, seg: Segment, name: str) -> Segment | None:
    """The segment ``name`` right before ``seg`` (skipping NTE/TQ1), if any."""
    i = seg.position - 2
    while i >= 0:
        s = msg.segments[i]
        if s.name == name:
            return s
        if s.name not in ("NTE", "TQ1", "TQ2", "CTD", "PRT"):
            return None
        i -= 1
    return None


def _orders(msg: V2Message, ctx: Ctx) -> Resources:
    patient, out = _subject(msg, ctx)
    ref = f"Patient/{patient['id']}"
    enc = _encounter(msg, ctx, ref)
    enc_ref = f"Encounter/{enc['id']}" if enc else None
    if enc:
        out.append(enc)
    found = 0
    groups: list[tuple[Segment | None, list[Segment]]] = list(msg.groups("ORC", ("OBR", "RXO")))
    if not groups:  # ORC is required, but OBR alone still names the order
        groups = [(None, [obr]) for obr in msg.all("OBR")]
        if groups:
            ctx.notes.append("ORC missing: orders taken from OBR alone")
    for orc, members in groups:
        obr = next((s for s in members if s.name == "OBR"), None)
        rxo = next((s for s in members if s.name == "RXO"), None)
        if rxo is not None and obr is None:
            out.append(medication_request(orc, rxo, ctx, ref, enc_ref, code_field=1))
        else:
            out.append(service_request(orc, obr, ctx, ref, enc_ref))
        found += 1
    if not found:
        raise MappingError("order message without an ORC segment", "ORC")
    return out


def _pharmacy(msg: V2Message, ctx: Ctx) -> Resources:
    patient, out = _subject(msg, ctx)
    ref = f"Patient/{patient['id']}"
    enc = _encounter(msg, ctx, ref)
    enc_ref = f"Encounter/{enc['id']}" if enc else None
    if enc:
        out.append(enc)
    found = 0
    for orc, members in msg.groups("ORC", ("RXE", "RXD", "RXO")):
        rxe = next((s for s in members if s.name == "RXE"), None)
        req_ref = None
        if rxe is not None:
            req = medication_request(orc, rxe, ctx, ref, enc_ref)
            out.append(req)
            req_ref = f"MedicationRequest/{req['id']}"
        _, number = order_key(orc, None, "ORC")
        for n, rxd in enumerate((s for s in members if s.name == "RXD"), 1):
            out.append(medication_dispense(rxd, ctx, ref, req_ref, number, n))
        found += 1
    if not found:
        raise MappingError("pharmacy message without an ORC segment", "ORC")
    if msg.type == "RDS" and not any(r["resourceType"] == "MedicationDispense" for r in out):
        raise MappingError("dispense message without an RXD segment", "RXD")
    return out


def _vxu(msg: V2Message, ctx: Ctx) -> Resources:
    patient, out = _subject(msg, ctx)
    ref = f"Patient/{patient['id']}"
    enc = _encounter(msg, ctx, ref)
    if enc:
        out.append(enc)
    pid = msg.first("PID")
    key = patient["id"] if pid is None else patient_key(pid.reps(3)[0]) if pid.reps(3) else ""
    n = 0
    for seg in msg.segments:
        if seg.name == "RXA":
            n += 1
            orc = _preceding(msg, seg, "ORC")
            out.append(immunization(orc, seg, ctx, ref, key, n))
    if not n:
        raise MappingError("VXU message without an RXA segment", "RXA")
    return out


HANDLERS: dict[str, Callable[[V2Message, Ctx], Resources]] = {
    "ORU^R01": _oru,
    "ORM^O01": _orders,
    "OML^O21": _orders,
    "OMG^O19": _orders,
    "OUL^R22": _oru,
    "OUL^R23": _oru,
    "OUL^R24": _oru,
    "RDE^O11": _pharmacy,
    "RDE^O25": _pharmacy,
    "RDS^O13": _pharmacy,
    "VXU^V04": _vxu,
    "ADT^A40": _merge,
}


def _loose_observations(msg: V2Message, ctx: Ctx, out: Resources) -> None:
    """OBX outside report groups (patient or visit observations in ADT, VXU, orders) become
    Observations of the patient; one without OBX-3 cannot be and is noted."""
    patient = next((r for r in out if r["resourceType"] == "Patient"), None)
    if patient is None:
        return
    enc = next((r for r in out if r["resourceType"] == "Encounter"), None)
    ref = f"Patient/{patient['id']}"
    enc_ref = f"Encounter/{enc['id']}" if enc else None
    parent = enc_ref or ref
    n = 0
    for seg in msg.segments:
        if seg.name != "OBX":
            continue
        n += 1
        if seg.position in ctx.consumed:
            continue
        if not seg.v(3):
            ctx.notes.append(f"OBX[{n}]: no observation identifier (OBX-3), not mapped")
            continue
        out.append(observation(seg, ctx, ref, enc_ref, parent, n))


def map_message(msg: V2Message, ctx: Ctx) -> Resources:
    """Map one parsed message to FHIR resources (deterministic ids), noting Z-segments and
    segments the map does not use.

    Raises
    ------
    MappingError
        Unsupported message type or a value that cannot be mapped.
    """
    kind = f"{msg.type}^{msg.event}"
    handler = HANDLERS.get(kind)
    if handler is None and msg.type == "ADT" and msg.event in ADT_EVENTS:
        handler = _adt
    if handler is None:
        raise MappingError(f"message type {kind} is not supported", "MSH-9")
    zsegs = sorted({s.name for s in msg.segments if s.name.startswith("Z")})
    if zsegs:
        ctx.notes.append("Z-segments ignored: " + ", ".join(zsegs))
    used = _USED[handler.__name__.lstrip("_").replace("merge", "adt")] | {"OBX"}
    unused = sorted({s.name for s in msg.segments} - used - _QUIET - set(zsegs))
    if unused:
        ctx.notes.append("segments not mapped: " + ", ".join(unused))
    out = handler(msg, ctx)
    _loose_observations(msg, ctx, out)
    return _distinct_ids(out, ctx)


def _distinct_ids(out: Resources, ctx: Ctx) -> Resources:
    """Two resources of one message with the same business key (e.g. OBX segments repeating
    code, sub-id and set id) get the k-th copy's id derived from the first's, so both are
    kept and the result stays deterministic."""
    seen: dict[tuple[str, str], int] = {}
    for res in out:
        key = (res["resourceType"], res["id"])
        if key in seen:
            seen[key] += 1
            res["id"] = deterministic_id(key[0], key[1], str(seen[key]))
            ctx.notes.append(f"{key[0]}: repeated business key, copy {seen[key]} kept apart")
        else:
            seen[key] = 0
    return out
