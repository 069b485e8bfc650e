"""Cell values to FHIR values: dates with declared formats, numbers, codes through tables.

Every failure raises :class:`CellError` with a public reason (never the cell's content).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any

from healthmesh.identity.idnumber import try_parse_id_number
from healthmesh.ingest.csv.mapping import FieldSpec, Translation
from healthmesh.ingest.terminology.codes import RESIDENT_ID, UCUM, display

#: identifier system for a resident identity number that failed validation (kept for review)
UNVERIFIED_ID = "urn:healthmesh:resident-id-unverified"


class CellError(ValueError):
    """A cell cannot be converted; ``reason`` is public."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


#: strptime's own patterns for the directives date columns use (from ``_strptime.TimeRE``)
_DIRECTIVES = {
    "Y": r"(\d\d\d\d)",
    "m": r"(1[0-2]|0[1-9]|[1-9])",
    "d": r"(3[01]|[12]\d|0[1-9]|[1-9]| [1-9])",
    "H": r"(2[0-3]|[0-1]\d|\d)",
    "M": r"([0-5]\d|\d)",
    "S": r"(6[0-1]|[0-5]\d|\d)",
}


@lru_cache(maxsize=64)
def _format_regex(fmt: str) -> tuple[re.Pattern[str], str] | None:
    """``fmt`` as a regular expression with one group per directive (and the directive
    letters in order), or None when it uses a directive this shortcut does not know."""
    parts, order, i = [], "", 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            code = fmt[i + 1 : i + 2]
            if code not in _DIRECTIVES or code in order:
                return None
            parts.append(_DIRECTIVES[code])
            order += code
            i += 2
        elif ch.isspace():  # a run of white space matches any run, as in strptime
            while i < len(fmt) and fmt[i].isspace():
                i += 1
            parts.append(r"\s+")
        else:
            parts.append(re.escape(ch))
            i += 1
    return re.compile("".join(parts), re.IGNORECASE), order


def _strptime(text: str, fmt: str) -> dt.datetime:
    """``datetime.strptime(text, fmt)`` for the usual numeric formats without its per-call
    locale and cache lookups (a third of a clinic row's conversion); other formats go to
    strptime itself. Raises ValueError as strptime does."""
    compiled = _format_regex(fmt)
    if compiled is None:
        return dt.datetime.strptime(text, fmt)
    pattern, order = compiled
    m = pattern.fullmatch(text)
    if m is None:
        raise ValueError("time data does not match format")
    got = dict(zip(order, (int(g) for g in m.groups()), strict=True))
    return dt.datetime(
        got.get("Y", 1900),
        got.get("m", 1),
        got.get("d", 1),
        got.get("H", 0),
        got.get("M", 0),
        got.get("S", 0),
    )


def parse_date(text: str, formats: tuple[str, ...]) -> dt.date:
    """A date in one of ``formats`` (default ISO)."""
    for fmt in formats or ("%Y-%m-%d",):
        try:
            return _strptime(text, fmt).date()
        except ValueError:
            continue
    raise CellError("date does not match the declared formats")


def parse_datetime(text: str, formats: tuple[str, ...], tz: str) -> str:
    """A FHIR dateTime (seconds, with the mapping's zone) from one of ``formats``."""
    for fmt in formats or ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            moment = _strptime(text, fmt)
        except ValueError:
            continue
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + tz
    raise CellError("date-time does not match the declared formats")


def parse_number(text: str, integer: bool = False) -> int | float:
    """A decimal (or integer) number."""
    if not _NUMBER.match(text):
        raise CellError("not a number")
    if integer:
        if "." in text:
            raise CellError("not an integer")
        return int(text)
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def resident_identifier(text: str, notes: list[str]) -> dict[str, str]:
    """An Identifier for a resident identity number; an invalid one is kept, unverified."""
    parsed = try_parse_id_number(text)
    if parsed is None:
        notes.append("resident identity number fails validation; kept as unverified")
        return {"system": UNVERIFIED_ID, "value": text}
    return {"system": RESIDENT_ID, "value": parsed.number}


def coding(
    text: str, spec: FieldSpec, tables: dict[str, Translation], notes: list[str]
) -> list[dict[str, Any]]:
    """Codings for a local code: the standard one (when translated) and the local original.

    A local code with no standard equivalent is kept under its local system and a note flags
    it; a code absent from the table altogether is kept the same way.
    """
    if spec.translate is None:
        system = spec.system or ""
        out = {"system": system, "code": text}
        shown = display(system, text)
        if shown:
            out["display"] = shown
        return [out]
    table = tables[spec.translate]
    local = {"system": table.local_system, "code": text}
    if table.displays.get(text):
        local["display"] = table.displays[text]
    target = table.codes.get(text)
    if target is None:
        notes.append(f"unmapped local code kept and flagged ({spec.translate})")
        return [local]
    standard = {"system": table.system, "code": target}
    shown = display(table.system, target)
    if shown:
        standard["display"] = shown
    return [standard, local]


def convert(
    text: str, spec: FieldSpec, tables: dict[str, Translation], tz: str, notes: list[str]
) -> Any:
    """Convert one non-empty cell according to its field spec."""
    kind = spec.type
    if kind in ("string", "code"):
        if kind == "code" and spec.translate:
            table = tables[spec.translate]
            if text not in table.codes:
                raise CellError("value is not one of the mapping's codes")
            return table.codes[text]
        return text
    if kind == "date":
        return parse_date(text, spec.formats).isoformat()
    if kind == "dateTime":
        return parse_datetime(text, spec.formats, tz)
    if kind in ("decimal", "integer"):
        return parse_number(text, kind == "integer")
    if kind == "boolean":
        if text.lower() not in ("true", "false", "1", "0", "是", "否"):
            raise CellError("not a boolean")
        return text.lower() in ("true", "1", "是")
    if kind == "resident_id":
        return resident_identifier(text, notes)
    if kind == "quantity":
        value = parse_number(text)
        unit = spec.unit or "1"
        return {"value": value, "unit": unit, "system": UCUM, "code": unit}
    if kind == "coding":
        return coding(text, spec, tables, notes)[0]
    if kind == "codeable":
        return {"coding": coding(text, spec, tables, notes)}
    raise CellError("unsupported value type")
