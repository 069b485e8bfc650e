"""Checks for the 20 FHIR R4 primitive types, compiled once from the official regexes.

Each checker takes a JSON value and returns ``None`` when it is valid, or a
``(severity, issue-code, message)`` triple. Messages never repeat the value.

Why hand-written: the official regexes are used as given (``re.fullmatch``) for the
formatted types (date, dateTime, instant, time, id, code, oid, uuid, uri ...). Three of them
are replaced by equivalent linear checks, because the regex form is either meaningless for a
parsed JSON value (integer, decimal: JSON numbers, not strings) or risks super-linear
backtracking on long inputs (``base64Binary``'s ``(\\s*([0-9a-zA-Z+/=]){4}\\s*)+`` and the
string/markdown pattern): base64 is checked with :func:`binascii.a2b_base64` in strict mode.
Calendar validity ("dates SHALL be valid dates", e.g. no 31 February) is checked on top of the
regex, which only bounds the day to 01-31.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Callable
from decimal import Decimal

Problem = tuple[str, str, str]
Checker = Callable[[object], Problem | None]

MAX_STRING = 1024 * 1024  # R4: strings SHALL NOT exceed 1 MB
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]").search
_WS = re.compile(r"\s+", re.ASCII)
_DAY_GROUP = "(0[1-9]|[1-2][0-9]|3[0-1])"
_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_NOT_STRING: Problem = ("error", "structure", "must be a JSON string")
_EMPTY: Problem = ("error", "value", "empty string values are not allowed")
_TOO_LONG: Problem = ("error", "too-long", "string exceeds 1 MB")
_CONTROL_CHARS: Problem = ("warning", "value", "string contains control characters")


def _valid_day(value: str) -> bool:
    """Whether the YYYY-MM-DD prefix (if complete) names a real calendar day."""
    if len(value) < 10:
        return True
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    if day <= 28:
        return True
    if month == 2 and day == 29:
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return day <= _DAYS[month]


def _string_checker(regex: str | None, type_name: str, dated: bool) -> Checker:
    """A checker for a JSON-string primitive, optionally constrained by a regex."""
    fullmatch = re.compile(regex, re.ASCII).fullmatch if regex else None
    bad_format: Problem = ("error", "value", f"not a valid {type_name}")
    bad_date: Problem = ("error", "value", f"not a valid calendar {type_name}")

    def check(value: object) -> Problem | None:
        if type(value) is not str:
            return _NOT_STRING
        if not value:
            return _EMPTY
        if fullmatch is not None and fullmatch(value) is None:
            return bad_format
        if dated and not _valid_day(value):
            return bad_date
        return None

    return check


def _check_text(value: object) -> Problem | None:
    """string / markdown: non-empty, at most 1 MB, no control characters (SHOULD)."""
    if type(value) is not str:
        return _NOT_STRING
    if not value:
        return _EMPTY
    if len(value) > MAX_STRING:
        return _TOO_LONG
    if _CONTROL(value) is not None:
        return _CONTROL_CHARS
    if value.isspace():
        # R4 string regex [ \r\n\t\S]+ admits it; the datatypes page says SHOULD: a warning
        return ("warning", "value", "string values should contain non-whitespace content")
    return None


def _check_boolean(value: object) -> Problem | None:
    if type(value) is not bool:
        return ("error", "structure", "must be a JSON boolean")
    return None


def _int_checker(type_name: str, low: int) -> Checker:
    bad_type: Problem = ("error", "structure", f"{type_name} must be a JSON integer")
    bad_range: Problem = ("error", "value", f"{type_name} is out of range")

    def check(value: object) -> Problem | None:
        if type(value) is not int:
            return bad_type
        if value < low or value > INT32_MAX:
            return bad_range
        return None

    return check


def _check_decimal(value: object) -> Problem | None:
    kind = type(value)
    if kind is int:
        return None
    if kind is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return None
        return ("error", "value", "decimal must be finite")
    if kind is Decimal:
        if value.is_finite():  # type: ignore[attr-defined]
            return None
        return ("error", "value", "decimal must be finite")
    return ("error", "structure", "decimal must be a JSON number")


def _check_base64(value: object) -> Problem | None:
    if type(value) is not str:
        return _NOT_STRING
    if not value:
        return _EMPTY
    compact = _WS.sub("", value) if not value.isalnum() else value
    if not compact:
        return ("error", "value", "base64Binary cannot be only whitespace")
    try:
        binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError):
        return ("error", "value", "not valid base64Binary")
    return None


def _check_xhtml(value: object) -> Problem | None:
    """Narrative.div: a string holding one XHTML ``div`` element (content not parsed)."""
    if type(value) is not str:
        return _NOT_STRING
    text = value.strip()
    if not text.startswith("<div") or not text.endswith("div>"):
        return ("error", "value", "narrative must be an XHTML div element")
    return None


def build_checkers(primitives: dict[str, dict[str, str | None]]) -> dict[str, Checker]:
    """One checker per primitive type, from the generated ``primitives`` table.

    Parameters
    ----------
    primitives:
        ``{type: {"json": kind, "regex": pattern-or-None}}`` as written by the generator.

    Examples
    --------
    >>> c = build_checkers({"date": {"json": "string", "regex": "[0-9]{4}(-[0-9]{2}){0,2}"}})
    >>> c["date"]("2021-02-30")[2]
    'not a valid calendar date'
    """
    special: dict[str, Checker] = {
        "string": _check_text,
        "markdown": _check_text,
        "boolean": _check_boolean,
        "integer": _int_checker("integer", INT32_MIN),
        "positiveInt": _int_checker("positiveInt", 1),
        "unsignedInt": _int_checker("unsignedInt", 0),
        "decimal": _check_decimal,
        "base64Binary": _check_base64,
        "xhtml": _check_xhtml,
    }
    out: dict[str, Checker] = {}
    for name, spec in primitives.items():
        if name in special:
            out[name] = special[name]
        else:
            dated = name in ("date", "dateTime", "instant")
            out[name] = _string_checker(spec.get("regex"), name, dated)
    return out


def build_fast(primitives: dict[str, dict[str, str | None]]) -> dict[str, Callable[[str], object]]:
    """Fast acceptance tests (``fullmatch``) for the regex-formatted string primitives.

    A match means the value is valid; no match means "run the full checker", which gives the
    precise problem. For date, dateTime and instant the day field is narrowed to 01-28 so that
    a match needs no calendar check; days 29-31 take the full path.
    """
    out: dict[str, Callable[[str], object]] = {}
    for name, spec in primitives.items():
        regex = spec.get("regex")
        if spec.get("json") != "string" or not regex or name in ("string", "markdown",
                                                                   "base64Binary"):
            continue
        if name in ("date", "dateTime", "instant"):
            if _DAY_GROUP not in regex:
                continue  # unexpected pattern: always take the full path
            regex = regex.replace(_DAY_GROUP, "(0[1-9]|1[0-9]|2[0-8])")
        if name in ("uri", "url", "canonical"):
            regex = r"\S+"
        out[name] = re.compile(regex, re.ASCII).fullmatch
    return out
