"""HL7 v2 data types -> FHIR data types, after the IG's datatype maps (CX[Identifier],
XPN[HumanName], XAD[Address], XTN[ContactPoint], CWE[CodeableConcept], DTM[dateTime],
NM/SN[Quantity]).

Functions take a ``Rep`` (one repetition) and a ``Ctx`` that collects notes; a value that
cannot be mapped faithfully raises ``MappingError`` with the v2 location, so the message goes
to quarantine instead of being stored wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from healthmesh.ingest.cn_identity import check_resident_id, normalise_mobile
from healthmesh.ingest.hl7v2.access import Rep
from healthmesh.ingest.hl7v2.memo import PatientMemo
from healthmesh.ingest.hl7v2.vocab import RESIDENT_ID_SYSTEM, RESIDENT_ID_TYPES, code_system

_DTM = re.compile(
    r"^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(\.\d{1,4})?)?)?)?)?)?"
    r"([+-]\d{4})?$"
)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")

EXT_CHECK_FAILED = "https://healthmesh.dev/fhir/StructureDefinition/identifier-check-failed"
EXT_EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


class MappingError(Exception):
    """A value that cannot be mapped; ``location`` is segment-field (e.g. "PID-7")."""

    def __init__(self, reason: str, location: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.reason = reason
        self.location = location


@dataclass
class Ctx:
    """Per-message mapping context: the source system, default time zone and notes."""

    facility: str
    tz: str = "+08:00"
    notes: list[str] = field(default_factory=list)
    #: positions of segments already mapped (OBX inside report groups)
    consumed: set[int] = field(default_factory=set)
    #: Patients already mapped from identical PID segments (shared by an adapter's messages)
    patients: PatientMemo | None = None


def dtm(value: str, loc: str, ctx: Ctx, *, date_only: bool = False) -> str | None:
    """v2 DTM/DT -> FHIR date or dateTime. A time without offset gets ``ctx.tz``.

    >>> dtm("202401021530+0100", "X", Ctx("F")), dtm("2024", "X", Ctx("F"))
    ('2024-01-02T15:30:00+01:00', '2024')
    """
    if not value:
        return None
    m = _DTM.match(value.strip())
    if m is None:
        raise MappingError("not a valid HL7 date/time", loc)
    y, mo, d, h, mi, s, frac, tz = m.groups()
    if (mo and not 1 <= int(mo) <= 12) or (d and not 1 <= int(d) <= 31):
        raise MappingError("month or day out of range", loc)
    if h and (int(h) > 23 or (mi and int(mi) > 59) or (s and int(s) > 60)):
        raise MappingError("time out of range", loc)
    date = y + (f"-{mo}" if mo else "") + (f"-{d}" if d else "")
    if date_only or not h:
        return date
    if not d:
        return date
    zone = f"{tz[:3]}:{tz[3:]}" if tz else ctx.tz
    return f"{date}T{h}:{mi or '00'}:{s or '00'}{(frac or '')}{zone}"


def coding(code: str, display: str, system_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    system = code_system(system_name)
    if system:
        out["system"] = system
    if code:
        out["code"] = code
    if display:
        out["display"] = display
    return out


def cwe(rep: Rep | None) -> dict[str, Any] | None:
    """CWE/CE -> CodeableConcept (primary and alternate codings; text from component 9 or 2)."""
    if rep is None:
        return None
    codings = []
    for base in (1, 4):
        code, text, system = rep.c(base), rep.c(base + 1), rep.c(base + 2)
        if code:
            codings.append(coding(code, text, system))
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = codings
    text = rep.c(9) or ("" if codings else rep.c(2))
    if text:
        out["text"] = text
    return out or None


def hd_system(namespace: str, universal: str, utype: str) -> str | None:
    """Assigning authority (HD) -> Identifier.system."""
    if universal and utype.upper() in ("ISO", "") and universal[:1].isdigit():
        return f"urn:oid:{universal}"
    if universal and utype.upper() in ("URI", "URL"):
        return universal
    if universal and utype.upper() == "UUID":
        return f"urn:uuid:{universal}"
    name = namespace or universal
    return f"urn:healthmesh:id:{name.replace(' ', '_')}" if name else None


def cx(rep: Rep, loc: str, ctx: Ctx) -> dict[str, Any] | None:
    """CX -> Identifier. A Chinese resident identity number gets its OID system and a
    GB 11643 check; a failed check is kept and flagged (extension and a note)."""
    value = rep.c(1)
    if not value:
        return None
    ns, uni, utype = rep.c(4, 1), rep.c(4, 2), rep.c(4, 3)
    id_type = rep.c(5)
    ident: dict[str, Any] = {"value": value}
    system = hd_system(ns, uni, utype)
    if id_type.upper() in RESIDENT_ID_TYPES or uni == RESIDENT_ID_SYSTEM[8:]:
        checked = check_resident_id(value)
        ident["value"] = checked.value
        system = RESIDENT_ID_SYSTEM
        if not checked.valid:
            ident["extension"] = [{"url": EXT_CHECK_FAILED, "valueString": checked.problem}]
            ctx.notes.append(f"{loc}: resident ID flagged: {checked.problem}")
    if system:
        ident["system"] = system
    if id_type:
        ident["type"] = {"coding": [{"system": V2_0203, "code": id_type}]}
    start, end = rep.c(7), rep.c(8)
    period = {}
    if start:
        period["start"] = dtm(start, f"{loc}.7", ctx)
    if end:
        period["end"] = dtm(end, f"{loc}.8", ctx)
    if period:
        ident["period"] = period
    return ident


@lru_cache(maxsize=65536)
def _pinyin(text: str) -> str:
    """Hanzi -> pinyin written as one word, capitalised (GB/T 28039: "Xiaoming")."""
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(text)).capitalize()


def xpn(rep: Rep, loc: str, ctx: Ctx) -> list[dict[str, Any]]:
    """XPN -> HumanName; a name in hanzi also gets its pinyin as a second, alphabetic name
    (ISO 21090 EN representation IDE / ABC)."""
    family, given, middle = rep.c(1), rep.c(2), rep.c(3)
    suffix, prefix, degree = rep.c(4), rep.c(5), rep.c(6)
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    givens = [g for g in (given, middle) if g]
    if givens:
        name["given"] = givens
    if prefix:
        name["prefix"] = [prefix]
    sfx = [s for s in (suffix, degree) if s]
    if sfx:
        name["suffix"] = sfx
    use = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "anonymous"}.get(
        rep.c(7).upper()
    )
    if use:
        name["use"] = use
    if not name or set(name) == {"use"}:
        return []
    whole = family + "".join(givens)
    if not _CJK.search(whole):
        return [name]
    name["text"] = whole
    name["extension"] = [{"url": EXT_EN_REPRESENTATION, "valueCode": "IDE"}]
    latin: dict[str, Any] = {
        "extension": [{"url": EXT_EN_REPRESENTATION, "valueCode": "ABC"}],
        "text": _pinyin(family) + " " + _pinyin("".join(givens)) if givens else _pinyin(family),
    }
    if family:
        latin["family"] = _pinyin(family)
    if givens:
        latin["given"] = [_pinyin("".join(givens))]
    return [name, latin]


def xad(rep: Rep) -> dict[str, Any] | None:
    """XAD -> Address."""
    street = rep.c(1, 1) or rep.c(1)
    lines = [x for x in (street, rep.c(2)) if x]
    out: dict[str, Any] = {}
    if lines:
        out["line"] = lines
    for key, idx in (("city", 3), ("state", 4), ("postalCode", 5), ("country", 6), ("district", 9)):
        if rep.c(idx):
            out[key] = rep.c(idx)
    kind = rep.c(7).upper()
    if kind in ("H", "HP"):
        out["use"] = "home"
    elif kind in ("B", "O"):
        out["use"] = "work"
    elif kind == "C":
        out["use"] = "temp"
    elif kind == "M":
        out["type"] = "postal"
    return out or None


def xtn(rep: Rep, loc: str, ctx: Ctx) -> dict[str, Any] | None:
    """XTN -> ContactPoint. A mainland mobile number is normalised to +86 and marked mobile."""
    use_code, equip = rep.c(2).upper(), rep.c(3).upper()
    value = rep.c(1) or rep.c(4) or rep.c(12)
    if not value:
        parts = [rep.c(5), rep.c(6), rep.c(7)]
        value = "".join(p for p in parts if p)
    if not value:
        return None
    out: dict[str, Any] = {}
    if equip in ("INTERNET", "X.400") or "@" in value:
        out["system"] = "email"
    elif equip == "FX":
        out["system"] = "fax"
    elif equip == "BP":
        out["system"] = "pager"
    else:
        out["system"] = "phone"
    if out["system"] == "phone":
        mobile = normalise_mobile(value)
        if mobile is not None:
            value = mobile
            out["use"] = "mobile"
        elif equip == "CP" and value.lstrip("+").startswith(("1", "86")) and len(value) >= 11:
            ctx.notes.append(f"{loc}: cellular number is not a valid mainland mobile number")
    out["value"] = value
    if "use" not in out:
        use = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "EMR": "temp"}.get(
            use_code
        )
        if equip == "CP":
            use = "mobile"
        if use:
            out["use"] = use
    return out


def quantity(value: str, unit: Rep | None, loc: str) -> dict[str, Any]:
    """NM + CWE unit -> Quantity (UCUM system when the unit says so)."""
    v = value.strip()
    if not _NUMBER.match(v):
        raise MappingError("numeric value is not a number", loc)
    q: dict[str, Any] = {"value": float(v) if "." in v else int(v)}
    if unit is not None:
        code, text, system = unit.c(1), unit.c(2), unit.c(3)
        q["unit"] = text or code
        if code:
            q["code"] = code
            q["system"] = code_system(system) or "http://unitsofmeasure.org"
    return q


def reference_name(rep: Rep | None) -> dict[str, Any] | None:
    """XCN (a person) -> a logical reference with display and identifier, no new resource."""
    if rep is None:
        return None
    ident, family, given = rep.c(1), rep.c(2), rep.c(3)
    display = " ".join(x for x in (given, family) if x)
    out: dict[str, Any] = {}
    if ident:
        out["identifier"] = {"value": ident}
    if display:
        out["display"] = display
    return out or None
