"""PID -> Patient, PV1 -> Encounter, MRG -> the merge links of an A40, after the IG's
segment maps PID[Patient], PV1[Encounter] and MRG.

Ids are deterministic: Patient from (source system, patient identifier), Encounter from
(source system, visit number PV1-19), so a repeated or updated message (A08) rewrites the
same resources instead of adding new ones.
"""

from __future__ import annotations

from typing import Any

from healthmesh.ingest.adapter import deterministic_id
from healthmesh.ingest.cn_identity import resident_id_birth_sex
from healthmesh.ingest.hl7v2.access import Rep, Segment, V2Message
from healthmesh.ingest.hl7v2.datatypes import (
    Ctx,
    MappingError,
    cwe,
    cx,
    dtm,
    reference_name,
    xad,
    xpn,
    xtn,
)
from healthmesh.ingest.hl7v2.vocab import (
    ENCOUNTER_CLASS,
    GENDER,
    RESIDENT_ID_SYSTEM,
    V3_ACT,
)

#: meta.tag on a Patient that was merged into another (A40); the pipeline keeps the stored
#: record's content and only applies ``active`` and ``link``.
MERGED_TAG = {"system": "https://healthmesh.dev/fhir/CodeSystem/ingest", "code": "merged"}


def patient_key(rep: Rep) -> str:
    """The business key of a patient identifier (CX): authority and value."""
    authority = rep.c(4, 2) or rep.c(4, 1)
    return f"{authority}|{rep.c(1)}" if authority else rep.c(1)


def patient_id(ctx: Ctx, rep: Rep) -> str:
    return deterministic_id("Patient", ctx.facility, patient_key(rep))


def _primary_identifier(pid: Segment) -> Rep:
    """The identifier that names the patient at the source: PID-3 (MR first), then PID-2/4."""
    reps = pid.reps(3)
    for rep in reps:
        if rep.c(5).upper() == "MR" and rep.c(1):
            return rep
    for rep in reps + pid.reps(2) + pid.reps(4):
        if rep.c(1):
            return rep
    raise MappingError("no patient identifier (PID-3, PID-2 or PID-4 are empty)", "PID-3")


def map_patient(pid: Segment, ctx: Ctx) -> dict[str, Any]:
    """PID -> Patient with a deterministic id."""
    key = _primary_identifier(pid)
    res: dict[str, Any] = {"resourceType": "Patient", "id": patient_id(ctx, key)}
    idents = []
    for field_no in (3, 2, 4):
        for i, rep in enumerate(pid.reps(field_no), 1):
            ident = cx(rep, f"PID-{field_no}[{i}]", ctx)
            if ident is not None and ident not in idents:
                idents.append(ident)
    for rep in pid.reps(20):  # driver's licence
        if rep.c(1):
            lic: dict[str, Any] = {
                "value": rep.c(1),
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "DL"}
                    ]
                },
            }
            if rep.c(3):
                lic["period"] = {"end": dtm(rep.c(3), "PID-20.3", ctx, date_only=True)}
            idents.append(lic)
    if pid.v(19):
        idents.append(
            {
                "value": pid.v(19),
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}
                    ]
                },
            }
        )
    res["identifier"] = idents
    names: list[dict[str, Any]] = []
    for i, rep in enumerate(pid.reps(5), 1):
        names.extend(xpn(rep, f"PID-5[{i}]", ctx))
    if names:
        res["name"] = names
    born = dtm(pid.v(7), "PID-7", ctx, date_only=True)
    if born:
        res["birthDate"] = born
    sex = pid.v(8).upper()
    if sex:
        gender = GENDER.get(sex)
        if gender is None:
            ctx.notes.append("PID-8: unknown administrative sex code, gender left empty")
        else:
            res["gender"] = gender
    _fill_from_resident_id(res, ctx)
    addresses = [a for a in (xad(r) for r in pid.reps(11)) if a]
    if addresses:
        res["address"] = addresses
    telecom = []
    for field_no in (13, 14, 40):
        for i, rep in enumerate(pid.reps(field_no), 1):
            cp = xtn(rep, f"PID-{field_no}[{i}]", ctx)
            if cp is not None and cp not in telecom:
                if field_no == 14 and "use" not in cp:
                    cp["use"] = "work"
                telecom.append(cp)
    if telecom:
        res["telecom"] = telecom
    marital = cwe(pid.rep(16))
    if marital:
        res["maritalStatus"] = marital
    lang = cwe(pid.rep(15))
    if lang:
        res["communication"] = [{"language": lang}]
    death = pid.v(29)
    if death:
        res["deceasedDateTime"] = dtm(death, "PID-29", ctx)
    elif pid.v(30).upper() == "Y":
        res["deceasedBoolean"] = True
    multiple = pid.v(24).upper()
    if multiple in ("Y", "N"):
        order = pid.v(25)
        if multiple == "Y" and order.isdigit():
            res["multipleBirthInteger"] = int(order)
        else:
            res["multipleBirthBoolean"] = multiple == "Y"
    return res


def map_patient_memo(pid: Segment, ctx: Ctx) -> dict[str, Any]:
    """``map_patient`` through the context's memo: an identical PID segment (same source
    system, separators and time zone) is mapped once; its notes are repeated on each hit."""
    memo = ctx.patients
    if memo is None:
        return map_patient(pid, ctx)
    key = (ctx.facility, ctx.tz, pid.separators, pid.text)
    hit = memo.get(key)
    if hit is not None:
        ctx.notes.extend(hit[1])
        return hit[0]
    before = len(ctx.notes)
    patient = map_patient(pid, ctx)
    memo.put(key, patient, tuple(ctx.notes[before:]))
    return patient


def _fill_from_resident_id(res: dict[str, Any], ctx: Ctx) -> None:
    """A valid resident ID fixes birth date and sex; a mismatch with PID-7/8 is noted."""
    for ident in res["identifier"]:
        if ident.get("system") != RESIDENT_ID_SYSTEM or "extension" in ident:
            continue  # not a resident ID, or one whose check failed
        born, gender = resident_id_birth_sex(ident["value"])
        if "birthDate" not in res:
            res["birthDate"] = born
        elif res["birthDate"] != born:
            ctx.notes.append("PID-7: birth date differs from the resident ID")
        if "gender" in res and res["gender"] in ("male", "female") and res["gender"] != gender:
            ctx.notes.append("PID-8: sex differs from the resident ID")
        return


def encounter_id(ctx: Ctx, pv1: Segment, patient_ref: str, msg: V2Message) -> str | None:
    """Deterministic Encounter id from PV1-19 (visit number), else PV1-50, else admit time."""
    visit = pv1.rep(19) or pv1.rep(50)
    if visit is not None and visit.c(1):
        return deterministic_id("Encounter", ctx.facility, patient_key(visit))
    admit = pv1.v(44)
    if admit:
        return deterministic_id("Encounter", ctx.facility, patient_ref, admit, pv1.v(2))
    if pv1.v(2) and pv1.v(2).upper() != "N" and msg.control_id:
        ctx.notes.append("PV1-19: no visit number; Encounter keyed on the message control id")
        return deterministic_id("Encounter", ctx.facility, patient_ref, "MSH-10", msg.control_id)
    return None


def map_encounter(
    pv1: Segment, ctx: Ctx, msg: V2Message, patient_ref: str
) -> dict[str, Any] | None:
    """PV1 (+PV2) -> Encounter, or None when the visit cannot be identified (noted)."""
    enc_id = encounter_id(ctx, pv1, patient_ref, msg)
    if enc_id is None:
        ctx.notes.append("PV1: no visit number, admit time nor patient class: no Encounter")
        return None
    pclass = pv1.v(2).upper()
    code, display = ENCOUNTER_CLASS.get(pclass, ("", ""))
    if not code:
        if pclass:
            ctx.notes.append("PV1-2: unknown patient class, Encounter.class set to unknown")
        code, display = "U", "Unknown"
    res: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": enc_id,
        "class": {"system": V3_ACT, "code": code, "display": display},
        "subject": {"reference": patient_ref},
    }
    visit = pv1.rep(19)
    if visit is not None:
        ident = cx(visit, "PV1-19", ctx)
        if ident:
            ident["type"] = {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN"}
                ]
            }
            res["identifier"] = [ident]
    start = dtm(pv1.v(44), "PV1-44", ctx)
    end = dtm(pv1.v(45), "PV1-45", ctx)
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    if period:
        res["period"] = period
    event = msg.event
    if end or event == "A03":
        res["status"] = "finished"
    elif pclass == "P" or event == "A05":
        res["status"] = "planned"
    else:
        res["status"] = "in-progress"
    adm_type = cwe(pv1.rep(4))
    if adm_type:
        res["type"] = [adm_type]
    service = cwe(pv1.rep(10))
    if service:
        res["serviceType"] = service
    participants = []
    for field_no, ptype in ((7, "ATND"), (8, "REF"), (9, "CON"), (17, "ADM")):
        for rep in pv1.reps(field_no):
            ref = reference_name(rep)
            if ref:
                participants.append(
                    {
                        "type": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                        "code": ptype,
                                    }
                                ]
                            }
                        ],
                        "individual": ref,
                    }
                )
    if participants:
        res["participant"] = participants
    location = pv1.rep(3)
    if location is not None:
        text = " ".join(x for x in (location.c(1), location.c(2), location.c(3)) if x)
        if text:
            res["location"] = [{"location": {"display": text}}]
    hosp: dict[str, Any] = {}
    admit_source = cwe(pv1.rep(14))
    if admit_source:
        hosp["admitSource"] = admit_source
    disposition = cwe(pv1.rep(36))
    if disposition:
        hosp["dischargeDisposition"] = disposition
    if hosp:
        res["hospitalization"] = hosp
    pv2 = msg.first("PV2")
    if pv2 is not None:
        reason = cwe(pv2.rep(3))
        if reason:
            res["reasonCode"] = [reason]
    return res


def map_merge(msg: V2Message, ctx: Ctx, survivor: dict[str, Any]) -> list[dict[str, Any]]:
    """A40: the surviving Patient links to each prior one (replaces); each prior Patient is
    marked inactive and replaced-by the survivor (tagged so the pipeline keeps its content)."""
    priors = []
    for n, mrg in enumerate(msg.all("MRG"), 1):
        rep = mrg.rep(1)
        if rep is None or not rep.c(1):
            raise MappingError("merge without a prior patient identifier", f"MRG[{n}]-1")
        prior_id = patient_id(ctx, rep)
        if prior_id == survivor["id"]:
            raise MappingError("prior and surviving patient identifiers are equal", "MRG-1")
        ident = cx(rep, f"MRG[{n}]-1", ctx)
        prior: dict[str, Any] = {
            "resourceType": "Patient",
            "id": prior_id,
            "meta": {"tag": [dict(MERGED_TAG)]},
            "active": False,
            "link": [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}],
        }
        if ident:
            prior["identifier"] = [ident]
        survivor.setdefault("link", []).append(
            {"other": {"reference": f"Patient/{prior_id}"}, "type": "replaces"}
        )
        priors.append(prior)
    if not priors:
        raise MappingError("A40 merge message without an MRG segment", "MRG")
    return priors
