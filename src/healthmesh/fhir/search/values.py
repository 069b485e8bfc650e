"""Turn the elements a search expression selects into normalised index values, per type.

The functions take the items ``(json value, FHIR type)`` an expression returned. The
``*_into`` ones (strings, tokens: the most frequent) append finished rows with the parameter
code; the others yield tuples without it, which :mod:`.extract` prefixes (rows) or reshapes
(composite components). Elements of unknown type (fhirpathpy fallback) are classified by
their JSON shape.

Choices made here (documented in docs/search.md):

- token: a Coding row carries the normalised ``display`` as its text (``:text`` matches
  ``CodeableConcept.text`` and ``Coding.display``); an Identifier row carries the normalised
  ``type.text``; a ``code`` element with a required binding to one code system carries
  that system (``gender`` -> ``http://hl7.org/fhir/administrative-gender``), other
  ``code``/``string``/``uri`` tokens have none;
- string: the normalised form is cut to 255 characters (``exact`` keeps the full value);
- reference: contained (``#id``) references and references with only an ``identifier`` give
  no reference row (the identifier serves ``:identifier`` as a token); ``urn:uuid:``
  references keep only the url; canonicals are indexed without their ``|version`` and, when
  versioned, once more with it;
- quantity: Money uses ``urn:iso:std:iso:4217`` as system and the currency as code; a
  comparator (``<5``) opens the range on that side; SampledData is not indexed.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from healthmesh.fhir.search.coerce import (
    DATE_MAX,
    DATE_MIN,
    NUM_MAX,
    NUM_MIN,
    date_range,
    normalize_string,
    number_range,
)
from healthmesh.fhir.search.model import RESOURCE_TYPES, is_a

Items = list[tuple[Any, str | None]]
Token = tuple[str | None, str | None, str | None]
Quantity = tuple[str | None, str | None, str | None, float, float, float | None]
Reference = tuple[str | None, str | None, str | None]

ISO4217 = "urn:iso:std:iso:4217"
STRING_NORM_MAX = 255
_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_CONTACT_SYSTEMS = {"phone", "fax", "email", "pager", "url", "sms", "other"}


def _norm(text: str | None) -> str | None:
    return normalize_string(text)[:STRING_NORM_MAX] if isinstance(text, str) and text else None


def _shape(value: Any) -> str | None:
    """Guess a FHIR type from JSON shape (only for fhirpathpy fallback values)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if not isinstance(value, dict):
        return None
    if "resourceType" in value:
        return value["resourceType"]  # type: ignore[no-any-return]
    if "coding" in value:
        return "CodeableConcept"
    if "reference" in value:
        return "Reference"
    if "start" in value or "end" in value:
        return "Period"
    if "low" in value or "high" in value:
        return "Range"
    if "family" in value or "given" in value:
        return "HumanName"
    if "line" in value or "city" in value or "postalCode" in value:
        return "Address"
    if "currency" in value:
        return "Money"
    if "value" in value and isinstance(value["value"], int | float | Decimal):
        return "Quantity"
    if "value" in value:
        return "ContactPoint" if value.get("system") in _CONTACT_SYSTEMS else "Identifier"
    if "code" in value:
        return "Coding"
    if "event" in value or "repeat" in value:
        return "Timing"
    return "CodeableConcept" if "text" in value else None


def strings_into(out: list[Any], code: str, items: Items) -> None:
    """Append ``(code, norm, exact)`` per string, HumanName/Address expanded to their parts."""
    append = out.append
    for value, vtype in items:
        if type(value) is str:
            if value:
                append((code, normalize_string(value)[:STRING_NORM_MAX], value))
            continue
        if type(value) is not dict:
            continue
        t = vtype or _shape(value)
        if t == "HumanName" or t == "Address":
            for part in _NAME_PARTS if t == "HumanName" else _ADDRESS_PARTS:
                got = value.get(part)
                if got is None:
                    continue
                for text in got if type(got) is list else (got,):
                    if type(text) is str and text:
                        append((code, normalize_string(text)[:STRING_NORM_MAX], text))


def strings(items: Items) -> list[tuple[str, str]]:
    """``(norm, exact)`` per string (see :func:`strings_into`)."""
    out: list[Any] = []
    strings_into(out, "", items)
    return [(n, e) for _, n, e in out]


def _coding_into(append: Any, code: str, c: Any) -> None:
    if type(c) is not dict:
        return
    system, value, display = c.get("system"), c.get("code"), c.get("display")
    if system is None and value is None and not display:
        return
    append((code, system, value, _norm(display)))


def tokens_into(
    out: list[Any],
    code: str,
    items: Items,
    id_types: list[Any] | None = None,
    implicit_system: str | None = None,
) -> None:
    """Append ``(code, system, value, text_norm)`` per token; Identifier types go to
    ``id_types`` as ``(code, type_system, type_code, identifier_value)``. ``code`` elements
    get ``implicit_system`` (the code system of their required binding) as system."""
    append = out.append
    for value, vtype in items:
        tv = type(value)
        if tv is str:
            # untyped (fhirpathpy fallback) strings of such a plain-path parameter are codes too
            coded = vtype == "code" or vtype is None
            append((code, implicit_system if coded else None, value, None))
            continue
        if tv is bool:
            append((code, None, "true" if value else "false", None))
            continue
        if tv is not dict:
            if isinstance(value, int | float | Decimal):
                append((code, None, str(value), None))
            continue
        t = vtype or _shape(value)
        if t == "CodeableConcept":
            start = len(out)
            for c in value.get("coding") or ():
                _coding_into(append, code, c)
            text = value.get("text")
            if text:
                norm = _norm(text)
                # a coding row with the same display already answers ``:text``
                if all(row[3] != norm for row in out[start:]):
                    append((code, None, None, norm))
        elif t == "Coding":
            _coding_into(append, code, value)
        elif t == "Identifier":
            ident = value.get("value")
            itype = value.get("type")
            text = _norm(itype.get("text")) if type(itype) is dict else None
            if ident is not None or value.get("system") is not None:
                append((code, value.get("system"), ident, text))
            if id_types is not None and type(itype) is dict:
                for c in itype.get("coding") or ():
                    if type(c) is dict and (c.get("code") or c.get("system")):
                        id_types.append((code, c.get("system"), c.get("code"), ident))
        elif t == "ContactPoint" and value.get("value") is not None:
            append((code, None, value["value"], None))


def tokens(items: Items) -> list[Token]:
    """``(system, value, text_norm)`` per token (see :func:`tokens_into`)."""
    out: list[Any] = []
    tokens_into(out, "", items)
    return [(s, v, t) for _, s, v, t in out]


def dates(items: Items) -> Iterator[tuple[float, float]]:
    """``(low, high)`` per date, dateTime, instant, Period and Timing event/bounds."""
    for value, vtype in items:
        if isinstance(value, str):
            if (got := date_range(value)) is not None:
                yield got
            continue
        if not isinstance(value, dict):
            continue
        t = vtype or _shape(value)
        if t == "Period":
            if (got := _period(value)) is not None:
                yield got
        elif t == "Timing":
            for event in value.get("event") or ():
                if isinstance(event, str) and (got := date_range(event)) is not None:
                    yield got
            repeat = value.get("repeat")
            bounds = repeat.get("boundsPeriod") if isinstance(repeat, dict) else None
            if isinstance(bounds, dict) and (got := _period(bounds)) is not None:
                yield got


def _period(value: dict[str, Any]) -> tuple[float, float] | None:
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return None
    lo = date_range(start) if isinstance(start, str) else None
    hi = date_range(end) if isinstance(end, str) else None
    if (start is not None and lo is None) or (end is not None and hi is None):
        return None
    return (lo[0] if lo else DATE_MIN), (hi[1] if hi else DATE_MAX)


def numbers(items: Items) -> Iterator[tuple[float, float, float]]:
    """``(low, high, value)`` per decimal/integer."""
    for value, _ in items:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            yield number_range(value)


def quantities(items: Items) -> Iterator[Quantity]:
    """``(system, unit code, unit text, low, high, value)`` per Quantity, Money and Range."""
    for value, vtype in items:
        if not isinstance(value, dict):
            continue
        t = vtype or _shape(value)
        if t == "Range":
            low, high = value.get("low"), value.get("high")
            lo = _quantity(low) if isinstance(low, dict) else None
            hi = _quantity(high) if isinstance(high, dict) else None
            unit = lo if lo is not None else hi
            if unit is None:
                continue
            yield (
                unit[0],
                unit[1],
                unit[2],
                lo[3] if lo else NUM_MIN,
                hi[4] if hi else NUM_MAX,
                None,
            )
        elif t == "Money":
            amount = value.get("value")
            if isinstance(amount, int | float | Decimal) and not isinstance(amount, bool):
                lo_, hi_, v = number_range(amount)
                yield ISO4217, value.get("currency"), value.get("currency"), lo_, hi_, v
        elif t is not None and is_a(t, "Quantity") and (q := _quantity(value)) is not None:
            yield q


def _quantity(value: dict[str, Any]) -> Quantity | None:
    amount = value.get("value")
    if not isinstance(amount, int | float | Decimal) or isinstance(amount, bool):
        return None
    low, high, v = number_range(amount)
    comparator = value.get("comparator")
    if comparator in ("<", "<="):
        low = NUM_MIN
    elif comparator in (">", ">="):
        high = NUM_MAX
    return value.get("system"), value.get("code"), value.get("unit"), low, high, v


def parse_reference(text: str) -> Reference | None:
    """``(type, id, url)`` for a literal reference string (see module docstring).

    >>> parse_reference("Patient/1/_history/2")
    ('Patient', '1', None)
    >>> parse_reference("http://x.org/fhir/Patient/1")
    ('Patient', '1', 'http://x.org/fhir/Patient/1')
    """
    if not text or text.startswith("#"):
        return None
    absolute = "://" in text or text.startswith("urn:")
    parts = text.split("|", 1)[0].split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] in RESOURCE_TYPES and parts[-1]:
        return parts[-2], parts[-1], text if absolute else None
    return None, None, text


def references(items: Items) -> Iterator[Reference]:
    """``(target type, target id, url)`` per Reference, canonical, uri or resource."""
    for value, vtype in items:
        if isinstance(value, str):
            base = value.split("|", 1)[0]
            if (got := parse_reference(base)) is not None:
                yield got
            if base != value:
                yield None, None, value
            continue
        if not isinstance(value, dict):
            continue
        t = vtype or _shape(value)
        if "resourceType" in value:  # Bundle.entry[0].resource
            if isinstance(value.get("id"), str):
                yield value["resourceType"], value["id"], None
        elif t == "Reference":
            ref = value.get("reference")
            if isinstance(ref, str) and (got := parse_reference(ref)) is not None:
                yield got


def uris(items: Items) -> Iterator[str]:
    """The text of each uri/url/canonical/oid/uuid."""
    for value, _ in items:
        if isinstance(value, str) and value:
            yield value
