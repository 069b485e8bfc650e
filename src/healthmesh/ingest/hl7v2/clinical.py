"""Orders and results: OBR/ORC -> ServiceRequest and DiagnosticReport, OBX -> Observation,
RXE/RXO -> MedicationRequest, RXD -> MedicationDispense, RXA -> Immunization, after the IG's
segment maps of the same names.

Ids come from the order numbers (placer ORC-2/OBR-2, filler ORC-3/OBR-3) and the source
system, and for an Observation from its report plus OBX-3 and OBX-4, so a corrected result
(OBX-11 = C) replaces the preliminary one.
"""

from __future__ import annotations

from typing import Any

from healthmesh.ingest.adapter import deterministic_id
from healthmesh.ingest.hl7v2.access import Segment
from healthmesh.ingest.hl7v2.datatypes import Ctx, MappingError, cwe, dtm, quantity, reference_name
from healthmesh.ingest.hl7v2.vocab import OBSERVATION_STATUS, ORDER_STATUS, REPORT_STATUS


def order_key(orc: Segment | None, obr: Segment | None, head: str) -> tuple[str, str]:
    """(kind, number) of an order: filler first (it is unique at the filler), then placer."""
    for seg in (obr, orc):
        if seg is not None and seg.v(3):
            return "filler", f"{seg.v(3, 2)}|{seg.v(3)}"
    for seg in (obr, orc):
        if seg is not None and seg.v(2):
            return "placer", f"{seg.v(2, 2)}|{seg.v(2)}"
    if orc is not None and orc.v(4):
        # only a placer group number: the group plus the set id and service of this order
        set_id = obr.v(1) if obr is not None else ""
        service = obr.v(4) if obr is not None else ""
        return "group", f"{orc.v(4, 2)}|{orc.v(4)}|{set_id}|{service}"
    loc = f"{head}-2" if head else "ORC-2"
    raise MappingError("no placer or filler order number", loc)


def _order_identifiers(orc: Segment | None, obr: Segment | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for seg in (orc, obr):
        if seg is None:
            continue
        for field_no, code in ((2, "PLAC"), (3, "FILL")):
            if seg.v(field_no):
                ident = {
                    "value": seg.v(field_no),
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": code,
                            }
                        ]
                    },
                }
                if seg.v(field_no, 2):
                    ident["system"] = f"urn:healthmesh:id:{seg.v(field_no, 2).replace(' ', '_')}"
                if ident not in out:
                    out.append(ident)
    return out


def service_request(
    orc: Segment | None, obr: Segment | None, ctx: Ctx, subject: str, encounter: str | None
) -> dict[str, Any]:
    """ORC + OBR -> ServiceRequest."""
    kind, number = order_key(orc, obr, "OBR" if obr is not None else "ORC")
    res: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": deterministic_id("ServiceRequest", ctx.facility, kind, number),
        "status": ORDER_STATUS.get(orc.v(1).upper(), "unknown") if orc is not None else "active",
        "intent": "order",
        "subject": {"reference": subject},
        "identifier": _order_identifiers(orc, obr),
    }
    if encounter:
        res["encounter"] = {"reference": encounter}
    code = cwe(obr.rep(4)) if obr is not None else None
    if code:
        res["code"] = code
    when = (orc.v(9) if orc is not None else "") or (obr.v(6) if obr is not None else "")
    if when:
        res["authoredOn"] = dtm(when, "ORC-9", ctx)
    requester = reference_name(
        (orc.rep(12) if orc is not None else None) or (obr.rep(16) if obr is not None else None)
    )
    if requester:
        res["requester"] = requester
    if obr is not None and obr.v(5).upper() in ("S", "A"):
        res["priority"] = "stat" if obr.v(5).upper() == "S" else "asap"
    return res


def diagnostic_report(
    orc: Segment | None,
    obr: Segment,
    ctx: Ctx,
    subject: str,
    encounter: str | None,
    results: list[str],
    order_ref: str | None,
) -> dict[str, Any]:
    """OBR (+ORC) -> DiagnosticReport referencing its Observations."""
    kind, number = order_key(orc, obr, "OBR")
    code = cwe(obr.rep(4))
    if code is None:
        raise MappingError("report without a universal service identifier", "OBR-4")
    res: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": deterministic_id("DiagnosticReport", ctx.facility, kind, number, obr.v(4)),
        "status": REPORT_STATUS.get(obr.v(25).upper(), "unknown"),
        "code": code,
        "subject": {"reference": subject},
        "identifier": _order_identifiers(orc, obr),
    }
    if encounter:
        res["encounter"] = {"reference": encounter}
    effective = dtm(obr.v(7), "OBR-7", ctx)
    if effective:
        res["effectiveDateTime"] = effective
    issued = dtm(obr.v(22), "OBR-22", ctx)
    if issued and "T" in issued:
        res["issued"] = issued
    if results:
        res["result"] = [{"reference": r} for r in results]
    if order_ref:
        res["basedOn"] = [{"reference": order_ref}]
    category = cwe(obr.rep(24))
    if category:
        res["category"] = [category]
    return res


def observation(
    obx: Segment, ctx: Ctx, subject: str, encounter: str | None, parent_key: str, n: int
) -> dict[str, Any]:
    """OBX -> Observation (value by OBX-2 type)."""
    code = cwe(obx.rep(3))
    if code is None:
        raise MappingError("observation without an identifier", f"OBX[{n}]-3")
    ctx.consumed.add(obx.position)
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": deterministic_id(
            "Observation", ctx.facility, parent_key, obx.v(3), obx.v(3, 4), obx.v(4) or obx.v(1)
        ),
        "status": OBSERVATION_STATUS.get(obx.v(11).upper(), "unknown"),
        "code": code,
        "subject": {"reference": subject},
    }
    if encounter:
        res["encounter"] = {"reference": encounter}
    _value(obx, res, n)
    ref_range = obx.v(7)
    if ref_range:
        res["referenceRange"] = [{"text": ref_range}]
    flags = [c for c in (cwe(r) for r in obx.reps(8)) if c]
    if flags:
        for f in flags:
            for c in f.get("coding", []):
                c.setdefault("system", "http://terminology.hl7.org/CodeSystem/v2-0078")
        res["interpretation"] = flags
    when = dtm(obx.v(14), f"OBX[{n}]-14", ctx)
    if when:
        res["effectiveDateTime"] = when
    method = cwe(obx.rep(17))
    if method:
        res["method"] = method
    return res


def _value(obx: Segment, res: dict[str, Any], n: int) -> None:
    vtype = obx.v(2).upper()
    reps = obx.reps(5)
    loc = f"OBX[{n}]-5"
    if not reps:
        return
    first = reps[0]
    if vtype == "NM":
        res["valueQuantity"] = quantity(first.c(1), obx.rep(6), loc)
    elif vtype == "SN":
        comparator, num = first.c(1), first.c(2)
        sep, num2 = first.c(3), first.c(4)
        if sep or num2:
            res["valueString"] = "".join((comparator, num, sep, num2))
            return
        q = quantity(num, obx.rep(6), loc)
        if comparator in ("<", "<=", ">=", ">"):
            q["comparator"] = comparator
        res["valueQuantity"] = q
    elif vtype in ("CWE", "CE", "CNE", "CF"):
        cc = cwe(first)
        if cc:
            res["valueCodeableConcept"] = cc
    elif vtype in ("DT", "DTM", "TS"):
        res["valueDateTime"] = dtm(first.c(1), loc, Ctx(""))
    else:
        text = "\n".join(
            "^".join(r.c(i) for i in range(1, len(r.comps) + 1)).rstrip("^") for r in reps
        )
        if text:
            res["valueString"] = text


def medication_request(
    orc: Segment | None,
    rxe: Segment,
    ctx: Ctx,
    subject: str,
    encounter: str | None,
    code_field: int = 2,
) -> dict[str, Any]:
    """ORC + RXE (or RXO) -> MedicationRequest."""
    kind, number = order_key(orc, None, "ORC")
    med = cwe(rxe.rep(code_field))
    if med is None:
        raise MappingError("medication order without a give code", f"{rxe.name}-{code_field}")
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": deterministic_id("MedicationRequest", ctx.facility, kind, number),
        "status": ORDER_STATUS.get(orc.v(1).upper(), "unknown") if orc is not None else "active",
        "intent": "order",
        "medicationCodeableConcept": med,
        "subject": {"reference": subject},
        "identifier": _order_identifiers(orc, None),
    }
    if encounter:
        res["encounter"] = {"reference": encounter}
    authored = dtm(orc.v(9), "ORC-9", ctx) if orc is not None else None
    if authored:
        res["authoredOn"] = authored
    requester = reference_name(orc.rep(12)) if orc is not None else None
    if requester:
        res["requester"] = requester
    if rxe.name == "RXE":
        dose: dict[str, Any] = {}
        amount = rxe.v(3)
        if amount:
            q = quantity(amount, rxe.rep(5), "RXE-3")
            dose = {"doseAndRate": [{"doseQuantity": q}]}
        text = rxe.v(7) or rxe.v(21)
        if text:
            dose["text"] = text
        if dose:
            res["dosageInstruction"] = [dose]
        if rxe.v(10):
            q = quantity(rxe.v(10), rxe.rep(11), "RXE-10")
            res["dispenseRequest"] = {"quantity": q}
    return res


def medication_dispense(
    rxd: Segment, ctx: Ctx, subject: str, request_ref: str | None, order_number: str, n: int
) -> dict[str, Any]:
    """RXD -> MedicationDispense."""
    med = cwe(rxd.rep(2))
    if med is None:
        raise MappingError("dispense without a dispense/give code", f"RXD[{n}]-2")
    res: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": deterministic_id(
            "MedicationDispense", ctx.facility, order_number, rxd.v(1) or str(n), rxd.v(7)
        ),
        "status": "completed",
        "medicationCodeableConcept": med,
        "subject": {"reference": subject},
    }
    handed = dtm(rxd.v(3), f"RXD[{n}]-3", ctx)
    if handed:
        res["whenHandedOver"] = handed
    if rxd.v(4):
        res["quantity"] = quantity(rxd.v(4), rxd.rep(5), f"RXD[{n}]-4")
    if request_ref:
        res["authorizingPrescription"] = [{"reference": request_ref}]
    return res


_RXA_STATUS = {"CP": "completed", "PA": "completed", "RE": "not-done", "NA": "not-done"}


def immunization(
    orc: Segment | None, rxa: Segment, ctx: Ctx, subject: str, patient_key: str, n: int
) -> dict[str, Any]:
    """RXA (+ORC) -> Immunization."""
    vaccine = cwe(rxa.rep(5))
    if vaccine is None:
        raise MappingError("administration without a vaccine code", f"RXA[{n}]-5")
    when = dtm(rxa.v(3), f"RXA[{n}]-3", ctx)
    if not when:
        raise MappingError("administration without a date", f"RXA[{n}]-3")
    if orc is not None and (orc.v(3) or orc.v(2)):
        kind, number = order_key(orc, None, "ORC")
        key: tuple[str, ...] = (kind, number)
    else:
        key = (patient_key, rxa.v(5), rxa.v(3))
    status = _RXA_STATUS.get(rxa.v(20).upper(), "completed")
    if rxa.v(21).upper() == "D":
        status = "entered-in-error"
    res: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": deterministic_id("Immunization", ctx.facility, *key),
        "status": status,
        "vaccineCode": vaccine,
        "patient": {"reference": subject},
        "occurrenceDateTime": when,
    }
    amount = rxa.v(6)
    if amount and amount != "999":
        res["doseQuantity"] = quantity(amount, rxa.rep(7), f"RXA[{n}]-6")
    lot = rxa.v(15)
    if lot:
        res["lotNumber"] = lot
    expiry = dtm(rxa.v(16), f"RXA[{n}]-16", ctx, date_only=True)
    if expiry:
        res["expirationDate"] = expiry
    if rxa.v(9, 1) == "00":
        res["primarySource"] = True
    elif rxa.v(9, 1):
        res["primarySource"] = False
    return res
